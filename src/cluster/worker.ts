/**
 * One cluster worker: a whole gateway (its own store connections, subscription and near cache, kept
 * true by the same revocation events as any replica) serving the shared public port. The admin port
 * belongs to the primary, which hands admin requests over IPC to `admin.inject`.
 */
import cluster from 'node:cluster'
import type { Logger } from 'pino'
import { AggregatorRegistry } from 'prom-client'
import { buildGateway } from '../app.js'
import type { Config } from '../config/types.js'
import { isOurs, jsonReply, type AdminRequest, type AdminReply, type ToPrimary, type ToWorker } from './messages.js'

const send = (m: ToPrimary): void => { if (process.connected) process.send?.(m) }

async function answer (inject: (r: AdminRequest) => Promise<AdminReply>, id: number, request: AdminRequest): Promise<void> {
  const reply = await inject(request).catch((err: Error) => jsonReply(500, { error: 'internal', message: err.message }))
  send({ sg: 'admin-reply', id, reply })
}

/** Builds and starts this worker's gateway; resolves once it serves. */
export async function runWorker (config: Config, log: Logger): Promise<void> {
  if (!cluster.isWorker) throw new Error('runWorker outside a cluster worker')
  let gateway
  try {
    gateway = await buildGateway(config, { logger: log })
    // The primary's AggregatorRegistry asks every worker for this registry and adds them up.
    AggregatorRegistry.setRegistries([gateway.ctx.metrics.registry])
    void new AggregatorRegistry()
    await gateway.listen({ admin: false })
  } catch (err) {
    send({ sg: 'failed', message: (err as Error).message })
    throw err
  }
  const gw = gateway
  const inject = async (r: AdminRequest): Promise<AdminReply> => {
    const res = await gw.admin.inject({
      method: r.method as 'GET',
      url: r.url,
      headers: r.headers,
      remoteAddress: r.remoteAddress,
      ...(r.body !== '' ? { payload: Buffer.from(r.body, 'base64') } : {})
    })
    return { status: res.statusCode, headers: res.headers as Record<string, string | string[]>, body: res.rawPayload.toString('base64') }
  }

  let stopping = false
  const stop = (drainMs?: number): void => {
    if (stopping) return
    stopping = true
    gw.close(drainMs !== undefined ? { drainMs } : {}).then(() => process.exit(0), (err: Error) => {
      log.error({ err }, 'worker shutdown failed')
      process.exit(1)
    })
  }
  process.on('message', (m: unknown) => {
    if (!isOurs<ToWorker>(m)) return
    if (m.sg === 'admin') void answer(inject, m.id, m.request)
    else if (m.sg === 'shutdown') stop(m.drainMs)
  })
  // The primary decides when to stop: a terminal's Ctrl-C reaches the whole process group, and a
  // worker acting on it alone would race the primary's orderly shutdown.
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => stop())
  // Without the primary nobody restarts or drains us: stop serving.
  process.on('disconnect', () => stop())
  log.info({ pid: process.pid }, 'worker serving')
  send({ sg: 'listening' })
}
