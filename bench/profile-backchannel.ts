/**
 * `node --import tsx bench/profile-backchannel.ts [logouts]`: back-channel logouts (scenario 5's path) at
 * one gateway process (Redis, near cache on) under autocannon, the gateway under `--cpu-prof`; prints CPU
 * per logout and where the profile went. For before/after comparisons of that path; not a benchmark of
 * record (`npm run bench` is).
 *   PROFILE_DIR=dir   where the .cpuprofile goes (default a temp dir)
 *   PROFILE_OFF=1     no profiler (CPU per logout without its overhead)
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importJWK, SignJWT } from 'jose'
import { startIdp } from '../src/demo/idp.js'
import { startRedis } from '../test/helpers/redis-server.js'
import { freePort } from '../test/helpers/ports.js'
import { startChild } from './lib/procs.js'
import { cannon } from './lib/load.js'
import { Minter } from './lib/mint.js'
import { mainProfile, startProfiledGateway, templateRecord } from './lib/profiled.js'

const LOGOUTS = Number(process.argv[2] ?? 20_000)
const dir = process.env.PROFILE_DIR ?? await mkdtemp(join(tmpdir(), 'sg-prof-bcl-'))
const redis = await startRedis()
const upstream = await startChild('upstream')
const port = await freePort()
const secret = randomBytes(24).toString('base64url')
const idp = await startIdp({
  hostname: '127.0.0.1',
  clients: [{ client_id: 'gateway', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback`], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }]
})
const raw = {
  publicUrl: `http://127.0.0.1:${port}`,
  listen: { host: '127.0.0.1', port },
  admin: { listen: { host: '127.0.0.1', port: 0 }, token: randomBytes(24).toString('base64url') },
  logLevel: 'warn',
  oidc: { issuer: idp.issuer, clientId: 'gateway', clientSecret: secret, allowInsecureHttp: true },
  session: { ttl: '5m', absoluteTtl: '12h', keys: [randomBytes(32).toString('base64url')] },
  store: { kind: 'redis', nearCache: true, redis: { url: redis.url } },
  routes: [{ prefix: '/', upstream: upstream.url, auth: 'required' }],
  rateLimit: { enabled: false }
}
const { gateway, config, store } = await startProfiledGateway(raw, dir)
const minter = new Minter(config, store, templateRecord(idp.issuer), { email: 'alice@example.com', preferred_username: 'alice', groups: ['demo-users'] })
const key = await importJWK(idp.signingKey, 'RS256')
async function bodies (n: number, round: string): Promise<string[]> {
  const sessions = await minter.many(n, (i) => ({ sub: `bcl-${round}-${i}`, idpSid: randomBytes(16).toString('base64url') }))
  const iat = Math.floor(Date.now() / 1000)
  return await Promise.all(sessions.map(async (s) => `logout_token=${await new SignJWT({
    sub: s.sub, sid: s.idpSid, jti: randomBytes(12).toString('base64url'), events: { 'http://schemas.openid.net/event/backchannel-logout': {} }
  }).setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid, typ: 'logout+jwt' }).setIssuer(idp.issuer).setAudience('gateway').setIssuedAt(iat).setExpirationTime(iat + 600).sign(key)}`))
}
const post = async (b: string[]): Promise<Awaited<ReturnType<typeof cannon>>> => await cannon({
  url: `${gateway.url}/auth/backchannel-logout`, connections: 50, amount: b.length, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, bodies: b
})
const warm = await post(await bodies(2000, 'warm')) // the IdP's keys fetched, the JIT warm
const measured = await bodies(LOGOUTS, 'run')
const cpu0 = gateway.cpuMs()
const threads0 = await threadCpu(gateway.pid)
const s = await post(measured)
const cpu1 = gateway.cpuMs()
const threads1 = await threadCpu(gateway.pid)
const cpuUs = cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) * 1000 / s.ok).toFixed(1) : '?'
console.log(`logouts/s ${s.rps.toFixed(0)}  cpu µs/logout ${cpuUs}  ok ${s.ok}  non2xx ${s.non2xx + warm.non2xx}  errors ${s.errors}`)
// Where that CPU ran: the event loop, libuv's pool (WebCrypto jobs), V8's GC helpers...
const byThread = [...threads1].map(([tid, t1]) => ({ what: tid === String(gateway.pid) ? 'main thread (event loop)' : `thread ${tid} (${t1.name})`, ticks: t1.ticks - (threads0.get(tid)?.ticks ?? 0) }))
for (const { what, ticks } of byThread.sort((a, b) => b.ticks - a.ticks).filter((x) => x.ticks > 0)) console.log(`${(ticks * 10_000 / s.ok).toFixed(1).padStart(7)} µs/logout  ${what}`)
await gateway.stop()
await upstream.stop()
await store.close()
await idp.close()
await redis.stop()

/** CPU ticks (1/100 s) of each thread of `pid`, by thread id, with the thread's name. */
async function threadCpu (pid: number): Promise<Map<string, { name: string, ticks: number }>> {
  const out = new Map<string, { name: string, ticks: number }>()
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '')
    const name = (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8').catch(() => '?')).trim()
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields.length > 13) out.set(tid, { name, ticks: Number(fields[11]) + Number(fields[12]) })
  }
  return out
}

if (process.env.PROFILE_OFF !== '1') {
  console.log(`profile: ${await mainProfile(dir)} (node --import tsx bench/tools/top-frames.ts FILE lists its top frames)`)
}
