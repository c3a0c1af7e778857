/**
 * Process vitals for the soak benchmark, sampled inside the process under test (bench/server.ts with the
 * `soak` option): memory, event-loop delay, open file descriptors and active handles. A sample goes to
 * the parent over IPC every `intervalMs` (`{ soakSample }`), and on request (`{ soak: 'sample', id,
 * detail? }` is answered with `{ soakSample, id }`; with `detail`, the sample lists the TCP sockets). `{ soak: 'reset' }` restarts the cumulative event-loop
 * histogram (the driver sends it when traffic starts).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { constants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'

/** Sampling interval of the event-loop delay timer, ms; reported delays are beyond it. */
export const ELD_RESOLUTION_MS = 10

export interface Vitals {
  /** Epoch ms when taken. */
  at: number
  rssMb: number
  heapUsedMb: number
  heapTotalMb: number
  externalMb: number
  arrayBuffersMb: number
  /** Event-loop delay beyond the sampling interval, ms, over the window since the previous sample. */
  eld: { p50: number, p99: number, max: number, count: number }
  /** Same, since the last reset (normally: since traffic started). */
  eldTotal: { p50: number, p99: number, max: number, count: number }
  /** Open file descriptors, and by kind (socket, pipe, anon_inode, file, other). */
  fds: number
  fdKinds: Record<string, number>
  /** process.getActiveResourcesInfo(): total and by type (TCPSocketWrap, Timeout, ...). */
  handles: number
  handleKinds: Record<string, number>
  /** Extra gauges of the process under test (e.g. the gateway's connection registry). */
  gauges: Record<string, number>
  /**
   * Full (mark-compact) collections since the previous sample: when each ended (epoch ms), its pause
   * (ms), and heapUsed right after it (MB). heapUsed sampled at any moment rides a sawtooth of garbage
   * tens of MB high; after a full collection it is the live heap, the series a leak shows in.
   */
  majorGcs: Array<{ at: number, pauseMs: number, heapAfterMb: number }>
  /** Minor (scavenge) collections since the previous sample. */
  minorGcs: number
  /** Only in samples asked for with `detail`: this process's TCP sockets (ports and state). */
  sockets?: SocketInfo[]
}

export interface SocketInfo { localPort: number, remotePort: number, state: string }

const TCP_STATES: Record<string, string> = { '01': 'ESTABLISHED', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '0A': 'LISTEN', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '09': 'LAST_ACK', '0B': 'CLOSING', '02': 'SYN_SENT', '03': 'SYN_RECV' }

/** The TCP sockets among this process's fds, from /proc/self/net/tcp{,6} (matched by inode). */
function tcpSockets (): SocketInfo[] {
  const inodes = new Set<string>()
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))
        if (m !== null) inodes.add(m[1]!)
      } catch {}
    }
  } catch {
    return []
  }
  const out: SocketInfo[] = []
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text = ''
    try { text = readFileSync(file, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 10 || !inodes.has(f[9]!)) continue
      const port = (addr: string): number => parseInt(addr.slice(addr.lastIndexOf(':') + 1), 16)
      out.push({ localPort: port(f[1]!), remotePort: port(f[2]!), state: TCP_STATES[f[3]!] ?? f[3]! })
    }
  }
  return out
}

const MB = 2 ** 20
const ms = (ns: number): number => Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS)
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d

function histogramSummary (h: { percentile: (p: number) => number, max: number, count: number }): Vitals['eld'] {
  if (h.count === 0) return { p50: 0, p99: 0, max: 0, count: 0 }
  return { p50: round(ms(h.percentile(50))), p99: round(ms(h.percentile(99))), max: round(ms(h.max)), count: h.count }
}

function fdKinds (): { fds: number, kinds: Record<string, number> } {
  const kinds: Record<string, number> = {}
  let fds = 0
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      let kind = 'gone'
      try {
        const target = readlinkSync(`/proc/self/fd/${fd}`)
        kind = target.startsWith('socket:')
          ? 'socket'
          : target.startsWith('pipe:')
            ? 'pipe'
            : target.startsWith('anon_inode:')
              ? 'anon_inode'
              : target.startsWith('/')
                ? 'file'
                : 'other'
      } catch {
        // closed between readdir and readlink: that is readdir's own directory fd
      }
      if (kind === 'gone') continue
      fds++
      kinds[kind] = (kinds[kind] ?? 0) + 1
    }
  } catch {
    return { fds: -1, kinds }
  }
  return { fds, kinds }
}

/** Starts sampling; returns a stop function. `gauges` is read at every sample. */
export function startSampler (intervalMs: number, gauges: () => Record<string, number> = () => ({})): () => void {
  // Two monitors (histograms of this kind cannot be added up): one per window, one since the last reset.
  const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS })
  const total = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS })
  eld.enable()
  total.enable()
  const majorGcs: Vitals['majorGcs'] = []
  let minorGcs = 0
  // Entries arrive shortly after each collection (asynchronously): heapUsed then is the survivors plus
  // the little allocated since.
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = ((e as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        majorGcs.push({ at: Math.round(performance.timeOrigin + e.startTime + e.duration), pauseMs: round(e.duration), heapAfterMb: round(process.memoryUsage().heapUsed / MB) })
      } else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        minorGcs++
      }
    }
  })
  gcs.observe({ entryTypes: ['gc'] })

  const sample = (detail = false): Vitals => {
    const mem = process.memoryUsage()
    const window = histogramSummary(eld)
    eld.reset()
    const { fds, kinds } = fdKinds()
    const minor = minorGcs
    minorGcs = 0
    const handleKinds: Record<string, number> = {}
    const resources = process.getActiveResourcesInfo()
    for (const r of resources) handleKinds[r] = (handleKinds[r] ?? 0) + 1
    return {
      at: Date.now(),
      rssMb: round(mem.rss / MB),
      heapUsedMb: round(mem.heapUsed / MB),
      heapTotalMb: round(mem.heapTotal / MB),
      externalMb: round(mem.external / MB),
      arrayBuffersMb: round(mem.arrayBuffers / MB),
      eld: window,
      eldTotal: histogramSummary(total),
      fds,
      fdKinds: kinds,
      handles: resources.length,
      handleKinds,
      majorGcs: majorGcs.splice(0),
      minorGcs: minor,
      gauges: gauges(),
      ...(detail ? { sockets: tcpSockets() } : {})
    }
  }

  const timer = setInterval(() => { process.send?.({ soakSample: sample() }) }, intervalMs)
  timer.unref()
  const onMessage = (msg: unknown): void => {
    if (typeof msg !== 'object' || msg === null) return
    const m = msg as { soak?: string, id?: number, detail?: boolean }
    if (m.soak === 'sample') process.send?.({ soakSample: sample(m.detail === true), id: m.id })
    else if (m.soak === 'reset') { eld.reset(); total.reset() }
  }
  process.on('message', onMessage)
  return () => {
    clearInterval(timer)
    eld.disable()
    total.disable()
    gcs.disconnect()
    process.off('message', onMessage)
  }
}
