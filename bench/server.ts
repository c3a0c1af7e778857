/**
 * One server under test, in its own process so it gets its own event loop (the load generator runs in
 * the parent). Started by bench/lib/procs.ts with `node --import tsx bench/server.ts <role> <json>`;
 * reports `{ url, admin? }` over IPC once it listens and exits on the message 'stop'.
 *
 * Roles:
 * - upstream: a minimal node:http server answering 200 "ok" to everything;
 * - bare: @fastify/http-proxy in front of the upstream, no session logic (the baseline);
 * - gateway: sessiongate built from a raw (YAML-shaped) config with buildGateway;
 * - cluster: sessiongate with `workers` from the config, as the CLI runs it (node:cluster: this process
 *   is the primary, its forks run this file again as workers).
 *
 * Options for the soak benchmark (bench/soak.ts), off unless given: `ws: true` makes the upstream also
 * echo WebSockets and `keepAliveTimeout` (ms) shortens how long it keeps idle connections;
 * `soak: { intervalMs }` makes the process sample its own vitals (bench/lib/sampler.ts) and send them
 * over IPC.
 */
import cluster from 'node:cluster'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { WebSocketServer } from 'ws'
import httpProxy from '@fastify/http-proxy'
import { stringify } from 'yaml'
import { parseConfig } from '../src/config/loader.js'
import { buildGateway } from '../src/app.js'
import { createLogger } from '../src/log.js'
import { NearCacheStore } from '../src/store/near-cache.js'
import { startSampler } from './lib/sampler.js'
import { runPrimary } from '../src/cluster/primary.js'
import { runWorker } from '../src/cluster/worker.js'

interface Ready { url: string, admin?: string }

const [role = '', json = '{}'] = process.argv.slice(2)
const opts = JSON.parse(json) as Record<string, unknown>

async function start (): Promise<{ ready: Ready, stop: () => Promise<void>, gauges?: () => Record<string, number> }> {
  if (role === 'upstream') {
    const body = Buffer.from('ok')
    const server = createServer((req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
      res.end(body)
    })
    server.keepAliveTimeout = typeof opts.keepAliveTimeout === 'number' ? opts.keepAliveTimeout : 60_000
    if (opts.ws === true) {
      const wss = new WebSocketServer({ server })
      wss.on('connection', (ws) => { ws.on('message', (m, binary) => ws.send(m, { binary })) })
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    return {
      ready: { url: `http://127.0.0.1:${port}` },
      stop: async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) }
    }
  }
  if (role === 'bare') {
    const app = Fastify({ logger: false })
    await app.register(httpProxy, { upstream: String(opts.upstream) })
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    return { ready: { url }, stop: async () => { await app.close() } }
  }
  if (role === 'gateway') {
    const env = (opts.env ?? {}) as Record<string, string>
    const config = parseConfig(stringify(opts.config), env)
    const gateway = await buildGateway(config, { logger: createLogger(config.logLevel), processMetrics: false })
    const { public: url, admin } = await gateway.listen({ public: config.listen.port, admin: 0 })
    const store = gateway.ctx.store
    const gauges = (): Record<string, number> => ({
      connections: gateway.ctx.connections.size,
      ...(store instanceof NearCacheStore ? { nearCacheEntries: store.size } : {})
    })
    return { ready: { url, admin }, stop: async () => { await gateway.close() }, gauges }
  }
  if (role === 'cluster') {
    const config = parseConfig(stringify(opts.config), (opts.env ?? {}) as Record<string, string>)
    const logger = createLogger(config.logLevel)
    if (cluster.isWorker) {
      await runWorker(config, logger)
      return { ready: { url: '' }, stop: async () => {} }
    }
    const primary = await runPrimary(config, logger)
    return { ready: { url: `http://127.0.0.1:${config.listen.port}`, admin: primary.adminUrl }, stop: async () => { await primary.close({ drainMs: 2000 }) } }
  }
  throw new Error(`unknown role ${role}`)
}

const { ready, stop, gauges } = await start()
// A cluster worker's IPC channel leads to its primary, not to the bench: it only serves.
if (!cluster.isWorker) {
  process.on('message', (msg) => {
    if (msg !== 'stop') return
    stop().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1) })
  })
  process.on('disconnect', () => process.exit(0)) // the parent died: never linger
  process.send?.(ready)
  const soak = opts.soak as { intervalMs?: number } | undefined
  if (soak !== undefined) startSampler(soak.intervalMs ?? 5000, gauges)
}
