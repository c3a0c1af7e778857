/**
 * Starts the servers under test as child processes (bench/server.ts) and stops them again.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('../server.ts', import.meta.url))
const START_TIMEOUT_MS = 30_000
const children = new Set<ChildProcess>()
process.once('exit', () => { for (const c of children) c.kill('SIGKILL') })

export interface Child {
  url: string
  admin?: string
  pid: number
  /** CPU time (user + system) the process used so far, in ms; null where /proc is not available. */
  cpuMs (): number | null
  /** Sends an IPC message to the child (the soak sampler's requests). */
  send (msg: unknown): void
  /** True once the child has exited. */
  exited (): boolean
  stop (): Promise<void>
}

let ticksPerSecond: number | undefined

/** utime + stime of a Linux process from /proc/<pid>/stat, in ms; null elsewhere. */
export function processCpuMs (pid: number): number | null {
  try {
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces) start at field 3; utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / ticksPerSecond
  } catch {
    return null
  }
}

/** CPU time of a process and its children (a cluster primary and its workers), in ms. */
export function treeCpuMs (pid: number): number | null {
  const own = processCpuMs(pid)
  if (own === null) return null
  let kids: number[] = []
  try { kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number) } catch {}
  return kids.reduce((sum, k) => sum + (processCpuMs(k) ?? 0), own)
}

/**
 * Forks `bench/server.ts <role> <opts>` and resolves with the URL it reports once it listens. Later IPC
 * messages (the soak sampler's) go to `onMessage`.
 */
export async function startChild (role: 'upstream' | 'bare' | 'gateway' | 'cluster', opts: Record<string, unknown> = {}, onMessage?: (msg: unknown) => void): Promise<Child> {
  const child = fork(SERVER, [role, JSON.stringify(opts)], {
    // BENCH_CHILD_ARGS: extra node flags for the servers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_CHILD_ARGS ?? '').split(' ').filter((a) => a !== '')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  const ready = await new Promise<{ url: string, admin?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    child.once('message', (msg) => {
      clearTimeout(timer)
      resolve(msg as { url: string, admin?: string })
      if (onMessage !== undefined) child.on('message', onMessage)
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${role} exited early (code ${String(code)})`)) })
  })
  return {
    ...ready,
    pid: child.pid ?? 0,
    // A cluster's workers are the primary's children: count them too.
    cpuMs: () => role === 'cluster' ? treeCpuMs(child.pid ?? 0) : processCpuMs(child.pid ?? 0),
    send: (msg) => { if (child.connected) child.send(msg as Parameters<ChildProcess['send']>[0]) },
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send('stop')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await gone
      clearTimeout(timer)
      children.delete(child)
    }
  }
}
