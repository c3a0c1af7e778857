/**
 * The cluster primary (`workers` > 1, README section "Workers"): forks the workers, which share the public
 * port, restarts a crashed one with backoff, owns the admin port (metrics added up over the workers,
 * readiness only when every worker is ready, every other admin request handed to one worker), and on
 * shutdown drains every worker within the drain bound.
 */
import cluster, { type Worker } from 'node:cluster'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client'
import type { Config } from '../config/types.js'
import { isOurs, jsonReply, type AdminReply, type AdminRequest, type ToPrimary, type ToWorker } from './messages.js'
import { readyzOf } from './readiness.js'

/** A worker that lived at least this long was healthy: its next crash restarts it at once. */
const STABLE_MS = 10_000
const MAX_BACKOFF_MS = 30_000
const ADMIN_BODY_LIMIT = 1024 * 1024
const ADMIN_TIMEOUT_MS = 30_000
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade'])

interface Slot { worker?: Worker, ready: boolean, startedAt: number, crashes: number, restart?: NodeJS.Timeout, failure?: string }
interface Pending { resolve: (r: AdminReply) => void, worker: Worker, timer: NodeJS.Timeout }

export interface Primary {
  adminUrl: string
  close (opts?: { drainMs?: number }): Promise<void>
}

export async function runPrimary (config: Config, log: Logger): Promise<Primary> {
  const slots: Slot[] = Array.from({ length: config.workers }, () => ({ ready: false, startedAt: 0, crashes: 0 }))
  const pending = new Map<number, Pending>()
  let nextId = 0
  let turn = 0
  let stopping = false
  let started: { resolve: () => void, reject: (e: Error) => void } | undefined

  const aggregator = new AggregatorRegistry()
  const own = new Registry()
  const restarts = new Counter({ name: 'sessiongate_worker_restarts_total', help: 'Workers restarted after they exited unexpectedly', registers: [own] })
  // eslint-disable-next-line no-new -- read on collect
  new Gauge({ name: 'sessiongate_workers_ready', help: 'Workers serving the public port', registers: [own], collect () { this.set(slots.filter((s) => s.ready).length) } })

  function fork (index: number): void {
    const slot = slots[index]!
    const worker = cluster.fork({ SG_WORKER: String(index + 1) })
    Object.assign(slot, { worker, ready: false, startedAt: Date.now() })
    delete slot.failure
    worker.on('message', (m: unknown) => {
      if (!isOurs<ToPrimary>(m)) return
      if (m.sg === 'listening') {
        slot.ready = true
        if (slots.every((s) => s.ready)) started?.resolve()
      } else if (m.sg === 'failed') {
        slot.failure = m.message
      } else if (m.sg === 'admin-reply') {
        const p = pending.get(m.id)
        if (p !== undefined) { pending.delete(m.id); clearTimeout(p.timer); p.resolve(m.reply) }
      }
    })
    worker.on('exit', (code, signal) => exited(index, worker, code, signal))
    // The channel can close before the process exits: from then on the worker takes no admin request, and a
    // send to it fails (reported to ask's callback; an unheard 'error' would be fatal to the primary).
    worker.on('disconnect', () => { if (slot.worker === worker) slot.ready = false })
    worker.on('error', (err: Error) => { log.warn({ err, worker: index + 1 }, 'worker channel error') })
  }

  function exited (index: number, worker: Worker, code: number | null, signal: string | null): void {
    const slot = slots[index]!
    if (slot.worker !== worker) return
    const wasReady = slot.ready
    slot.ready = false
    delete slot.worker
    for (const [id, p] of pending) {
      if (p.worker === worker) { pending.delete(id); clearTimeout(p.timer); p.resolve(jsonReply(502, { error: 'worker_exited' })) }
    }
    if (stopping) return
    if (started !== undefined && !wasReady) {
      // Never served on the first start: the same config would fail again; stop with its reason.
      started.reject(new Error(slot.failure ?? `worker ${index + 1} exited during start-up (code ${code ?? signal})`))
      return
    }
    slot.crashes = Date.now() - slot.startedAt >= STABLE_MS ? 0 : slot.crashes + 1
    const delay = slot.crashes === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 100 * 2 ** slot.crashes)
    restarts.inc()
    log.error({ worker: index + 1, pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker exited: restarting it')
    slot.restart = setTimeout(() => { delete slot.restart; if (!stopping) fork(index) }, delay)
  }

  async function toWorker (request: AdminRequest): Promise<AdminReply> {
    const ready = slots.filter((s) => s.ready && s.worker?.isConnected() === true)
    if (ready.length === 0) return jsonReply(503, { error: 'no_worker_ready' })
    const worker = ready[turn++ % ready.length]!.worker!
    return await ask(worker, request)
  }

  async function ask (worker: Worker, request: AdminRequest): Promise<AdminReply> {
    const id = nextId++
    return await new Promise<AdminReply>((resolve) => {
      const timer = setTimeout(() => { pending.delete(id); resolve(jsonReply(504, { error: 'worker_timeout' })) }, ADMIN_TIMEOUT_MS)
      pending.set(id, { resolve, worker, timer })
      const message: ToWorker = { sg: 'admin', id, request }
      const failed = (): void => {
        if (!pending.delete(id)) return
        clearTimeout(timer)
        resolve(jsonReply(502, { error: 'worker_exited' }))
      }
      if (!worker.isConnected()) { failed(); return }
      worker.send(message, undefined, (err: Error | null) => { if (err !== null) failed() })
    })
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The path as the worker's admin.inject would route it (light-my-request resolves it as a URL), and
    // HEAD as GET (Fastify's own HEAD routes): a request the primary does not answer itself must not
    // reach a worker's own /readyz, which speaks for that worker only.
    const path = injectedPath(req.url ?? '/')
    const read = req.method === 'GET' || req.method === 'HEAD'
    const request = await readRequest(req)
    if (request === null) return send(res, jsonReply(413, { error: 'payload_too_large' }))
    if (read && path === '/healthz') return send(res, jsonReply(200, { status: 'ok' }))
    if (read && path === '/metrics') {
      const text = await aggregator.clusterMetrics().catch((err: Error) => { log.warn({ err }, 'metrics from the workers incomplete'); return '' })
      return send(res, { status: 200, headers: { 'content-type': own.contentType }, body: Buffer.from(text + await own.metrics()).toString('base64') })
    }
    if (read && path === '/readyz') {
      const probe: AdminRequest = { ...request, method: 'GET' }
      const replies = await Promise.all(slots.map(async (s) => s.ready && s.worker?.isConnected() === true ? await ask(s.worker, probe) : undefined))
      return send(res, readyzOf(replies, stopping))
    }
    send(res, await toWorker(request))
  }

  const server = createServer({ requestTimeout: config.timeouts.request * 1000, headersTimeout: config.timeouts.headers * 1000 }, (req, res) => {
    handle(req, res).catch((err: Error) => {
      log.error({ err }, 'admin request failed')
      if (!res.headersSent) send(res, jsonReply(500, { error: 'internal' }))
    })
  })

  const up = new Promise<void>((resolve, reject) => { started = { resolve, reject } })
  slots.forEach((_s, i) => fork(i))
  try {
    await up
  } catch (err) {
    stopping = true
    for (const s of slots) s.worker?.process.kill('SIGKILL')
    throw err
  }
  started = undefined
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.admin.listen.port, config.admin.listen.host, () => resolve())
  })
  const addr = server.address() as { address: string, port: number }
  const adminUrl = `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`
  log.info({ workers: config.workers, admin: adminUrl }, 'sessiongate workers serving')

  return {
    adminUrl,
    async close (opts = {}) {
      stopping = true
      const drainMs = opts.drainMs ?? 10_000
      const live = slots.flatMap((s) => {
        if (s.restart !== undefined) clearTimeout(s.restart)
        return s.worker !== undefined && !s.worker.isDead() ? [s.worker] : []
      })
      const gone = live.map(async (w) => await new Promise<void>((resolve) => { if (w.isDead()) resolve(); else w.once('exit', () => resolve()) }))
      for (const w of live) { const m: ToWorker = { sg: 'shutdown', drainMs }; if (w.isConnected()) w.send(m); else w.process.kill('SIGTERM') }
      // Each worker bounds its own drain; this only catches a worker that hangs past it.
      const bound = setTimeout(() => { for (const w of live) if (!w.isDead()) w.process.kill('SIGKILL') }, drainMs + 5000)
      await Promise.all(gone)
      clearTimeout(bound)
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
    }
  }
}

/** The path light-my-request (admin.inject in the worker) routes for a request target. */
function injectedPath (url: string): string {
  try {
    return new URL(url.startsWith('//') ? `http://localhost${url}` : url, 'http://localhost').pathname
  } catch {
    return url.split('?', 1)[0] ?? url
  }
}

/** The request as a worker's admin app will see it; null when the body is over the limit. */
async function readRequest (req: IncomingMessage): Promise<AdminRequest | null> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > ADMIN_BODY_LIMIT) return null
    chunks.push(chunk as Buffer)
  }
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v
  return { method: req.method ?? 'GET', url: req.url ?? '/', headers, body: Buffer.concat(chunks).toString('base64'), remoteAddress: req.socket.remoteAddress ?? '' }
}

function send (res: ServerResponse, reply: AdminReply): void {
  const body = Buffer.from(reply.body, 'base64')
  for (const [k, v] of Object.entries(reply.headers)) if (!HOP_BY_HOP.has(k.toLowerCase())) res.setHeader(k, v)
  res.setHeader('content-length', body.length)
  res.writeHead(reply.status)
  res.end(body)
}
