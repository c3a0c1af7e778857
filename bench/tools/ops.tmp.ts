import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importJWK, SignJWT } from 'jose'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/loader.js'
import { RedisStore } from '../../src/store/redis.js'
import { startIdp } from '../../src/demo/idp.js'
import { startRedis } from '../../test/helpers/redis-server.js'
import { freePort } from '../../test/helpers/ports.js'
import { startChild } from '../lib/procs.js'
import { cannon, loop } from '../lib/load.js'
import { Minter } from '../lib/mint.js'

const which = process.argv[2] ?? 'bcl'
const dir = await mkdtemp(join(tmpdir(), 'sg-ops-'))
const redis = await startRedis()
const upstream = await startChild('upstream')
const port = await freePort()
const idp = await startIdp({ hostname: '127.0.0.1', clients: [{ client_id: 'gateway', client_secret: 'x'.repeat(32), redirect_uris: [`http://127.0.0.1:${port}/auth/callback`], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }] })
const raw = {
  publicUrl: `http://127.0.0.1:${port}`, listen: { host: '127.0.0.1', port }, admin: { listen: { host: '127.0.0.1', port: 0 }, token: 'x'.repeat(24) },
  logLevel: 'error', oidc: { issuer: idp.issuer, clientId: 'gateway', clientSecret: 'x'.repeat(32), allowInsecureHttp: true },
  session: { ttl: '1s', absoluteTtl: '12h', keys: [randomBytes(32).toString('base64url')] },
  store: { kind: 'redis', nearCache: true, redis: { url: redis.url } }, routes: [{ prefix: '/', upstream: upstream.url, auth: 'required' }], rateLimit: { enabled: false }
}
process.env.BENCH_CHILD_ARGS = `--cpu-prof --cpu-prof-dir=${dir}`
const g = await startChild('gateway', { config: raw })
delete process.env.BENCH_CHILD_ARGS
const config = parseConfig(stringify(raw), {})
const store = new RedisStore({ redis: (config.store as any).redis })
const now = Date.now()
const template: any = { sid: 't', sub: 'alice', iss: idp.issuer, createdAt: now, lastSeenAt: now, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', ip: '127.0.0.1', rememberMe: true, expiresAt: now + 86400_000, version: 0, credHash: 'x', email: 'a@example.com', tokens: randomBytes(840).toString('base64url') }
const minter = new Minter(config, store, template, { email: 'a@example.com' } as any)
let ops = 0
const c0 = g.cpuMs()
if (which === 'bcl') {
  const key = await importJWK(idp.signingKey, 'RS256')
  for (let r = 0; r < 2; r++) {
    const sessions = await minter.many(3000, (i) => ({ sub: `bcl-${r}-${i}-${randomUUID()}`, idpSid: randomBytes(16).toString('base64url') }))
    const t = Math.floor(Date.now() / 1000)
    const bodies = await Promise.all(sessions.map(async (s) => `logout_token=${await new SignJWT({ sub: s.sub, sid: s.idpSid, jti: randomBytes(12).toString('base64url'), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }).setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid, typ: 'logout+jwt' }).setIssuer(idp.issuer).setAudience('gateway').setIssuedAt(t).setExpirationTime(t + 600).sign(key)}`))
    const s = await cannon({ url: `${g.url}/auth/backchannel-logout`, connections: 50, amount: bodies.length, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, bodies })
    console.log(`bcl round ${r}: ${s.rps.toFixed(0)}/s ok ${s.ok} non2xx ${s.non2xx}`)
    ops += s.ok
  }
} else {
  const devices = (await minter.many(50, (i) => ({ sub: `renew-${i}` }))).map((d) => d.device)
  const s = await loop({ url: g.url, connections: 50, durationMs: 10_000, request: (w) => ({ path: '/', headers: { cookie: `sg-device=${devices[w]!}` } }), onResponse: (w, res) => {
    const next = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith('sg-device='))
    if (next !== undefined) devices[w] = next.slice('sg-device='.length).split(';', 1)[0]!
    return res.status === 200 && next !== undefined
  } })
  console.log(`renewal: ${s.rps.toFixed(0)}/s ok ${s.ok} non2xx ${s.non2xx}`)
  ops = s.ok
}
const c1 = g.cpuMs()
console.log(`cpu per op ${((c1! - c0!) * 1000 / ops).toFixed(0)} us`)
await g.stop(); await upstream.stop(); await store.close(); await redis.stop(); await idp.close()
interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }
const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))
const sizes = await Promise.all(files.map(async (f) => (await readFile(join(dir, f))).length))
const prof = JSON.parse(await readFile(join(dir, files[sizes.indexOf(Math.max(...sizes))]!), 'utf8')) as { nodes: Node[], samples: number[], timeDeltas: number[] }
const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const groups = new Map<string, number>(); const self = new Map<string, number>()
let busy = 0
prof.samples.forEach((id, i) => {
  const f = byId.get(id)!.callFrame
  if (f.functionName === '(idle)') return
  const dt = prof.timeDeltas[i] ?? 0
  busy += dt
  const gname = /\/src\//.test(f.url) ? 'sessiongate src/' : /node_modules\/(@fastify\/[^/]+|fastify|prom-client|undici|pino|ioredis|jose|tsx)\//.exec(f.url)?.[1] ?? (f.functionName === '(garbage collector)' ? 'garbage collector' : f.url.startsWith('node:') ? 'node internals' : 'native, other')
  groups.set(gname, (groups.get(gname) ?? 0) + dt)
  const k = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')}`
  self.set(k, (self.get(k) ?? 0) + dt)
})
console.log(`profiled busy per op ${(busy / ops).toFixed(0)} us (start-up included)`)
for (const [k, v] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`${(v / ops).toFixed(1).padStart(7)} us  ${k}`)
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 14)) console.log(`${(100 * v / busy).toFixed(1).padStart(5)}%  ${k}`)
