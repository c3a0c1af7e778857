/**
 * `node --import tsx bench/profile.ts [seconds]`: one focused run of scenario 3 (authenticated GET, Redis,
 * near cache on) under autocannon, with the gateway process under `--cpu-prof`, then the top self-time
 * frames of its profile. For before/after comparisons of the hot path (docs/profile.md); not a benchmark
 * of record (`npm run bench` is).
 *   PROFILE_DIR=dir   where the .cpuprofile goes (default a temp dir)
 *   PROFILE_OFF=1     no profiler (req/s without its overhead)
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRedis } from '../test/helpers/redis-server.js'
import { freePort } from '../test/helpers/ports.js'
import { startChild } from './lib/procs.js'
import { cannon } from './lib/load.js'
import { Minter } from './lib/mint.js'
import { mainProfile, startProfiledGateway, templateRecord } from './lib/profiled.js'

const SECONDS = Number(process.argv[2] ?? 10)
const dir = process.env.PROFILE_DIR ?? await mkdtemp(join(tmpdir(), 'sg-prof-'))
const redis = await startRedis()
const upstream = await startChild('upstream')
const port = await freePort()
const raw = {
  publicUrl: `http://127.0.0.1:${port}`,
  listen: { host: '127.0.0.1', port },
  admin: { listen: { host: '127.0.0.1', port: 0 }, token: randomBytes(24).toString('base64url') },
  logLevel: 'error',
  // Never reached on this path: discovery fails quietly in the background.
  oidc: { issuer: 'http://127.0.0.1:9/idp', clientId: 'gateway', clientSecret: 'x'.repeat(32), allowInsecureHttp: true },
  session: { ttl: '5m', absoluteTtl: '12h', keys: [randomBytes(32).toString('base64url')] },
  store: { kind: 'redis', nearCache: true, redis: { url: redis.url } },
  routes: [{ prefix: '/', upstream: upstream.url, auth: 'required' }],
  rateLimit: { enabled: false }
}
const { gateway, config, store } = await startProfiledGateway(raw, dir)
const minted = await new Minter(config, store, templateRecord('http://127.0.0.1:9/idp'), { email: 'alice@example.com', preferred_username: 'alice', groups: ['demo-users'] }).session('alice')
const headers = { cookie: minted.session }
const warm = await cannon({ url: gateway.url, connections: 50, duration: 2, headers }) // warm-up
const cpu0 = gateway.cpuMs()
const s = await cannon({ url: gateway.url, connections: 50, duration: SECONDS, headers })
const cpu1 = gateway.cpuMs()
// CPU per request is steadier than req/s on a shared machine: it is what bounds throughput once the cores are busy.
const cpuUs = cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) * 1000 / s.ok).toFixed(1) : '?'
console.log(`req/s ${s.rps.toFixed(0)}  cpu µs/request ${cpuUs}  ok ${s.ok}  non2xx ${s.non2xx}  errors ${s.errors}`)
await gateway.stop()
await upstream.stop()
await store.close()
await redis.stop()

if (process.env.PROFILE_OFF !== '1') {
  interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
  const file = await mainProfile(dir)
  const prof = JSON.parse(await readFile(file, 'utf8')) as { nodes: Node[], samples: number[], timeDeltas: number[] }
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  for (const id of prof.samples) {
    const f = byId.get(id)!.callFrame
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')}:${f.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + 1)
  }
  // CPU per request by who spends it (self time), over every request of the profile (warm-up included).
  const requests = warm.ok + s.ok
  const groups = new Map<string, number>()
  let busyUs = 0
  prof.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame
    if (f.functionName === '(idle)') return
    const dt = prof.timeDeltas[i] ?? 0
    busyUs += dt
    const g = /\/src\//.test(f.url)
      ? 'sessiongate src/'
      : /node_modules\/(@fastify\/[^/]+|fastify|prom-client|undici|pino|ioredis)\//.exec(f.url)?.[1] ??
        (f.functionName === '(garbage collector)' ? 'garbage collector' : 'node internals, native, other')
    groups.set(g, (groups.get(g) ?? 0) + dt)
  })
  console.log(`profiled CPU per request ${(busyUs / requests).toFixed(1)} µs (${requests} requests, start-up included)`)
  for (const [g, us] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`${(us / requests).toFixed(2).padStart(7)} µs  ${g}`)
  const idle = self.get('(idle) :0') ?? 0
  const total = prof.samples.length - idle
  self.delete('(idle) :0')
  console.log(`profile ${file}: ${total} busy samples (${idle} idle); self time, % of busy`)
  for (const [k, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${(100 * n / total).toFixed(1).padStart(5)}%  ${k}`)
}
