/**
 * `npm run bench`: the gateway against a bare proxy and the upstream direct, side by side in one run.
 * See bench/README.md for what each scenario means. Environment knobs:
 *   BENCH_QUICK=1        short rounds (a smoke run; numbers are not for publishing)
 *   BENCH_DEVICES=n      device records in scenario 7 (default 1,000,000)
 *   BENCH_DENY=n         denylist entries in scenario 7 (default 100,000)
 *   BENCH_OUT=path       where to write the JSON (default bench/results/latest.json)
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { importJWK, SignJWT } from 'jose'
import { stringify } from 'yaml'
import { parseConfig } from '../src/config/loader.js'
import { redisOf, type Config } from '../src/config/types.js'
import { RedisStore } from '../src/store/redis.js'
import type { SessionRecord } from '../src/store/store.js'
import type { ProfileClaims } from '../src/core/session.js'
import { startIdp } from '../src/demo/idp.js'
import { startRedis, type RedisServer } from '../test/helpers/redis-server.js'
import { Browser, login } from '../test/helpers/browser.js'
import { freePort } from '../test/helpers/ports.js'
import { startChild, type Child } from './lib/procs.js'
import { startApachePeer } from './lib/apache.js'
import { cannon, combine, loop, quantile, type Sample } from './lib/load.js'
import { Minter, type Minted } from './lib/mint.js'
import { checkLayout, loadDenylist, loadDevices, subOf, usedMemory, type PopulationOptions } from './lib/populate.js'
import { EVENT, startTransmitter } from '../test/helpers/ssf-transmitter.js'

const QUICK = process.env.BENCH_QUICK === '1'
const CONNECTIONS = 50
const ROUNDS = QUICK ? 1 : 5
const SECONDS = QUICK ? 2 : 4
const WARMUP_S = QUICK ? 1 : 2
const RENEWAL_SECONDS = QUICK ? 2 : 3
const BCL_TOKENS_PER_ROUND = QUICK ? 500 : 2500
const BCL_ROUNDS = QUICK ? 1 : 2
const SSF_SETS_PER_ROUND = QUICK ? 1000 : 3000
const SSF_ROUNDS = QUICK ? 1 : 2
const SSF_WARMUP_SETS = QUICK ? 1000 : 3000
const SSF_PUSH_TOKEN = randomBytes(24).toString('base64url')
const PROPAGATION_LOGOUTS = QUICK ? 30 : 150
const DEVICES = Number(process.env.BENCH_DEVICES ?? 1_000_000)
const DENY = Number(process.env.BENCH_DENY ?? 100_000)
const VARIANT_SAMPLE = QUICK ? 10_000 : 50_000
const POP_ROUNDS = QUICK ? 1 : 2
const OUT = process.env.BENCH_OUT ?? fileURLToPath(new URL('./results/latest.json', import.meta.url))

const ADMIN_TOKEN = randomBytes(24).toString('base64url')
const API_AUDIENCE = 'https://api.bench.test'
/** Scenario 8: three rules that admit alice (the third one), as an admin route of a real site would have. */
const RULES = [{ groups: ['admins'] }, { emails: ['ops@example.com'] }, { emailDomains: ['example.com'], groups: ['demo-users'] }]
const CLIENT_SECRET = randomBytes(24).toString('base64url')
const SESSION_KEY = randomBytes(32).toString('base64url')
const started = performance.now()
const log = (msg: string): void => { console.error(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`) }

interface Row {
  name: string
  rps: number | null
  p50_ms: number | null
  p99_ms: number | null
  ratio_to_bare_proxy: number | null
  ratio_to_upstream: number | null
  ratio_to_apache?: number | null
  extra: Record<string, unknown>
}

const cleanups: Array<() => Promise<unknown>> = []
async function cleanup (): Promise<void> {
  for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => { console.error('cleanup:', err) })
}

async function main (): Promise<void> {
  // ------------------------------------------------------------------ servers
  const redis = await startRedis()
  cleanups.push(redis.stop)
  const upstream = await startChild('upstream')
  cleanups.push(upstream.stop)
  const bare = await startChild('bare', { upstream: upstream.url })
  cleanups.push(bare.stop)

  const ports = { apache: await freePort(), onW: await freePort(), offW: await freePort(), renewW: await freePort(), mem: await freePort(), off: await freePort(), on: await freePort(), renew: await freePort(), replica: await freePort(), pop: await freePort(), rules: await freePort(), bearer: await freePort(), fauth: await freePort() }
  const idp = await startIdp({
    hostname: '127.0.0.1',
    clients: [{
      client_id: 'gateway',
      client_secret: CLIENT_SECRET,
      redirect_uris: Object.values(ports).map((p) => `http://127.0.0.1:${p}/auth/callback`),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic'
    }, {
      // The peer (Apache + mod_auth_openidc), when installed: its own client at the same IdP.
      client_id: 'apache',
      client_secret: CLIENT_SECRET,
      redirect_uris: [`http://127.0.0.1:${ports.apache}/redirect_uri`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic'
    }]
  })
  cleanups.push(idp.close)
  // A Shared Signals transmitter for scenario 11 (its own keys and JWKS), trusted by the near-cache gateway.
  const transmitter = await startTransmitter({ audience: `http://127.0.0.1:${ports.onW}` })
  cleanups.push(transmitter.close)

  const raw = (port: number, o: { redisUrl?: string, nearCache?: boolean, ttl?: string, route?: Record<string, unknown>, oidc?: Record<string, unknown>, ssf?: boolean } = {}): Record<string, unknown> => ({
    publicUrl: `http://127.0.0.1:${port}`,
    listen: { host: '127.0.0.1', port },
    admin: { listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN },
    logLevel: 'warn',
    oidc: { issuer: idp.issuer, clientId: 'gateway', clientSecret: CLIENT_SECRET, allowInsecureHttp: true, scopes: ['openid', 'profile', 'email', 'offline_access', 'groups'], prompt: 'consent', ...o.oidc },
    session: { ttl: o.ttl ?? '5m', absoluteTtl: '12h', keys: [SESSION_KEY] },
    store: o.redisUrl !== undefined ? { kind: 'redis', nearCache: o.nearCache ?? false, redis: { url: o.redisUrl } } : { kind: 'memory' },
    routes: [{ prefix: '/', upstream: upstream.url, auth: 'required', ...o.route }],
    // The bench measures the gateway, not the limiter (its sign-ins all come from 127.0.0.1).
    rateLimit: { enabled: false },
    ...(o.ssf === true ? { ssf: { transmitters: [{ issuer: transmitter.issuer, jwksUri: transmitter.jwksUri, pushToken: SSF_PUSH_TOKEN }] } } : {})
  })
  const parsed = (r: Record<string, unknown>): Config => parseConfig(stringify(r), {})
  const gateway = async (r: Record<string, unknown>): Promise<Child> => {
    const c = await startChild('gateway', { config: r })
    cleanups.push(c.stop)
    return c
  }
  // The same gateway as the CLI runs it with `workers: auto`: one worker per core, sharing the port.
  const workers = async (r: Record<string, unknown>): Promise<Child> => {
    const c = await startChild('cluster', { config: { ...r, workers: 'auto' } })
    cleanups.push(c.stop)
    return c
  }

  const cfg = {
    mem: raw(ports.mem),
    off: raw(ports.off, { redisUrl: redis.url, nearCache: false }),
    on: raw(ports.on, { redisUrl: redis.url, nearCache: true }),
    onW: raw(ports.onW, { redisUrl: redis.url, nearCache: true, ssf: true }),
    offW: raw(ports.offW, { redisUrl: redis.url, nearCache: false }),
    renewW: raw(ports.renewW, { redisUrl: redis.url, nearCache: true, ttl: '1s' }),
    renew: raw(ports.renew, { redisUrl: redis.url, nearCache: true, ttl: '1s' }),
    replica: raw(ports.replica, { redisUrl: redis.url, nearCache: true }),
    // Scenario 3 plus three rules: the first two do not admit alice, the third does.
    rules: raw(ports.rules, { redisUrl: redis.url, nearCache: true, route: { authorize: RULES } }),
    bearer: raw(ports.bearer, { redisUrl: redis.url, nearCache: true, route: { bearer: true }, oidc: { audience: [API_AUDIENCE] } }),
    // Scenario 3 as an ingress controller asks it: GET /auth/check naming the original request, no proxying.
    fauth: { ...raw(ports.fauth, { redisUrl: redis.url, nearCache: true }), forwardAuth: { enabled: true } }
  }
  const [gMem, gOff, gOn, gRenew, gReplica, gRules, gBearer, gFauth] = await Promise.all([gateway(cfg.mem), gateway(cfg.off), gateway(cfg.on), gateway(cfg.renew), gateway(cfg.replica), gateway(cfg.rules), gateway(cfg.bearer), gateway(cfg.fauth)])
  // One cluster at a time: each forks a worker per core (forks in parallel would only slow each other).
  const gOnW = await workers(cfg.onW)
  const gOffW = await workers(cfg.offW)
  const gRenewW = await workers(cfg.renewW)
  const peer = await startApachePeer({ issuer: idp.issuer, clientId: 'apache', clientSecret: CLIENT_SECRET, upstreamUrl: upstream.url, port: ports.apache })
  const apache = 'skipped' in peer ? undefined : peer
  if (apache === undefined) log(`peer skipped: ${'skipped' in peer ? peer.skipped : ''}`)
  else cleanups.push(apache.stop)
  const apacheCookie = apache === undefined ? '' : await apache.login('alice')
  if (apache !== undefined) {
    const status = await get(apache.url, apacheCookie)
    if (status !== 200) throw new Error(`signed-in GET through Apache answered ${status}`)
  }
  log(`servers up: upstream ${upstream.url}, bare ${bare.url}, gateways ${[gMem, gOff, gOn, gRenew, gReplica, gRules, gBearer].map((g) => g.url).join(' ')}, workers ${[gOnW, gOffW, gRenewW].map((g) => g.url).join(' ')} (${os.availableParallelism()} each)`)

  // ------------------------------------------------------------------ sessions
  // One real sign-in per store through the IdP; the Redis one is the template for every minted session.
  const memBrowser = new Browser('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36')
  await login(memBrowser, gMem.url, 'alice', { remember: true })
  const memCookie = `sg=${memBrowser.cookies(gMem.url).get('sg') ?? ''}`
  const browser = new Browser(memBrowser.userAgent)
  await login(browser, gOn.url, 'alice', { remember: true })
  const redisCookie = `sg=${browser.cookies(gOn.url).get('sg') ?? ''}`
  const me = (await browser.fetch(`${gOn.url}/auth/session`)).json<{ sub: string, sid: string, claims: ProfileClaims }>()
  const mainStore = new RedisStore({ redis: redisOf(parsed(cfg.on).store) })
  cleanups.push(async () => { await mainStore.close() })
  const template = await mainStore.getSession(me.sub, me.sid)
  if (template === null) throw new Error('the real login left no session record')
  const minter = new Minter(parsed(cfg.on), mainStore, template, me.claims)
  for (const [g, cookie] of [[gMem, memCookie], [gOff, redisCookie], [gOn, redisCookie], [gReplica, redisCookie], [gRules, redisCookie], [gFauth, redisCookie], [gOnW, redisCookie], [gOffW, redisCookie]] as const) {
    const status = await get(g.url, cookie)
    if (status !== 200) throw new Error(`signed-in GET through ${g.url} answered ${status}`)
  }
  // A JWT access token as the IdP would issue it (its real key, RFC 9068 shape, an IdP session id).
  const accessToken = await bearerToken(idp, me.sub, idpSidOf(template.idpSid))
  const bearerAuth = `Bearer ${accessToken}`
  if (await request(gBearer.url, 'GET', '/', { authorization: bearerAuth }) !== 200) throw new Error('the bearer gateway refused the access token')
  log(`signed in as ${me.sub} (record ${JSON.stringify(template).length} bytes as JSON, tokens ${template.tokens?.length ?? 0} chars)`)

  // ------------------------------------------------------------------ main rounds (1-4 with baselines)
  const renewMinter = new Minter(parsed(cfg.renew), mainStore, template, me.claims)
  const devices = await renewMinter.many(CONNECTIONS, (i) => ({ sub: `renew-user-${i}` }))
  const renewState = devices.map((d) => d.device)
  const renewStateW = (await renewMinter.many(CONNECTIONS, (i) => ({ sub: `renew-w-user-${i}` }))).map((d) => d.device)
  // Each connection presents its device cookie and keeps the rotated one it gets back.
  const renewal = async (g: Child, state: string[], seconds: number): Promise<Sample> => await loop({
    url: g.url,
    connections: CONNECTIONS,
    durationMs: seconds * 1000,
    request: (w) => ({ path: '/', headers: { cookie: `sg-device=${state[w]!}` } }),
    onResponse: (w, res) => {
      const next = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith('sg-device='))
      if (next !== undefined) state[w] = next.slice('sg-device='.length).split(';', 1)[0]!
      return res.status === 200 && next !== undefined
    }
  })
  const redisCli = new Redis(redis.url)
  cleanups.push(async () => { redisCli.disconnect() })
  const targets: Array<{ key: string, proc: Pick<Child, 'cpuMs'>, run: (s: number) => Promise<Sample> }> = [
    // The peer, same upstream, same load, its mod_auth_openidc session cookie (server-cache sessions).
    ...(apache !== undefined ? [{ key: 'apache', proc: apache, run: async (s: number) => await cannon({ url: apache.url, connections: CONNECTIONS, duration: s, headers: { cookie: apacheCookie } }) }] : []),
    { key: 'upstream', proc: upstream, run: async (s) => await cannon({ url: upstream.url, connections: CONNECTIONS, duration: s }) },
    { key: 'bare', proc: bare, run: async (s) => await cannon({ url: bare.url, connections: CONNECTIONS, duration: s }) },
    { key: 's1', proc: gMem, run: async (s) => await cannon({ url: gMem.url, connections: CONNECTIONS, duration: s, headers: { cookie: memCookie } }) },
    { key: 's2', proc: gOff, run: async (s) => await cannon({ url: gOff.url, connections: CONNECTIONS, duration: s, headers: { cookie: redisCookie } }) },
    { key: 's3', proc: gOn, run: async (s) => await cannon({ url: gOn.url, connections: CONNECTIONS, duration: s, headers: { cookie: redisCookie } }) },
    { key: 's8', proc: gRules, run: async (s) => await cannon({ url: gRules.url, connections: CONNECTIONS, duration: s, headers: { cookie: redisCookie } }) },
    { key: 's9', proc: gBearer, run: async (s) => await cannon({ url: gBearer.url, connections: CONNECTIONS, duration: s, headers: { authorization: bearerAuth } }) },
    { key: 's10', proc: gFauth, run: async (s) => await cannon({ url: `${gFauth.url}/auth/check`, connections: CONNECTIONS, duration: s, headers: { cookie: redisCookie, 'x-original-url': 'https://app.example.com/reports', 'x-original-method': 'GET' } }) },
    { key: 's4', proc: gRenew, run: async (s) => await renewal(gRenew, renewState, Math.min(s, RENEWAL_SECONDS)) },
    { key: 'w2', proc: gOffW, run: async (s) => await cannon({ url: gOffW.url, connections: CONNECTIONS, duration: s, headers: { cookie: redisCookie } }) },
    { key: 'w3', proc: gOnW, run: async (s) => await cannon({ url: gOnW.url, connections: CONNECTIONS, duration: s, headers: { cookie: redisCookie } }) },
    { key: 'w4', proc: gRenewW, run: async (s) => await renewal(gRenewW, renewStateW, Math.min(s, RENEWAL_SECONDS)) }
  ]
  for (const t of targets) await t.run(WARMUP_S)
  log('warmed up')
  const samples = new Map<string, Sample[]>(targets.map((t) => [t.key, []]))
  // CPU time of the process under test and of redis-server, per 2xx response: steadier than req/s on a
  // shared or noisy machine, and it is what bounds throughput once the cores are busy.
  const cpu = new Map<string, { proc: number, redis: number, ok: number }>(targets.map((t) => [t.key, { proc: 0, redis: 0, ok: 0 }]))
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order each round so no configuration always runs first or last.
    for (let i = 0; i < targets.length; i++) {
      const t = targets[(i + r) % targets.length]!
      const [p0, r0] = [t.proc.cpuMs(), await redisCpuMs(redisCli)]
      const s = await t.run(SECONDS)
      const [p1, r1] = [t.proc.cpuMs(), await redisCpuMs(redisCli)]
      const c = cpu.get(t.key)!
      c.proc += p0 !== null && p1 !== null ? p1 - p0 : NaN
      c.redis += r1 - r0
      c.ok += s.ok
      samples.get(t.key)!.push(s)
      log(`round ${r + 1}/${ROUNDS} ${t.key.padEnd(8)} ${s.rps.toFixed(0).padStart(6)} req/s  p50 ${quantile(s.latencies, 0.5).toFixed(2)} ms  p99 ${quantile(s.latencies, 0.99).toFixed(2)} ms${s.non2xx + s.errors > 0 ? `  (non-2xx ${s.non2xx}, errors ${s.errors})` : ''}`)
    }
  }
  const res = Object.fromEntries([...samples].map(([k, v]) => [k, combine(v)]))
  const cpuOf = (key: string): Record<string, number | null> => {
    const c = cpu.get(key)!
    return { cpu_us_per_request: round(c.proc * 1000 / c.ok, 1), redis_cpu_us_per_request: round(c.redis * 1000 / c.ok, 1) }
  }
  const up = res.upstream!
  const bp = res.bare!
  const nearCache = await nearCacheCounts(gOn)
  const nearCacheRules = await nearCacheCounts(gRules)
  const nearCacheBearer = await nearCacheCounts(gBearer)

  // ------------------------------------------------------------------ 5: back-channel logout throughput
  const key = await importJWK(idp.signingKey, 'RS256')
  const bclSamples: Sample[] = []
  const bclCpu = { proc: 0, redis: 0, ok: 0 }
  cpu.set('s5', bclCpu)
  for (let r = 0; r < BCL_ROUNDS; r++) {
    const sessions = await minter.many(BCL_TOKENS_PER_ROUND, (i) => ({ sub: `bcl-${r}-${i}-${randomUUID()}`, idpSid: randomBytes(16).toString('base64url') }))
    const now = Math.floor(Date.now() / 1000)
    const bodies = await Promise.all(sessions.map(async (s) => {
      const token = await new SignJWT({
        sub: s.sub,
        sid: s.idpSid,
        jti: randomBytes(12).toString('base64url'),
        events: { 'http://schemas.openid.net/event/backchannel-logout': {} }
      }).setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid, typ: 'logout+jwt' })
        .setIssuer(idp.issuer).setAudience('gateway').setIssuedAt(now).setExpirationTime(now + 600).sign(key)
      return `logout_token=${token}`
    }))
    const [p0, r0] = [gOnW.cpuMs(), await redisCpuMs(redisCli)]
    const s = await cannon({
      url: `${gOnW.url}/auth/backchannel-logout`,
      connections: CONNECTIONS,
      amount: bodies.length,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      bodies
    })
    const [p1, r1] = [gOnW.cpuMs(), await redisCpuMs(redisCli)]
    bclCpu.proc += p0 !== null && p1 !== null ? p1 - p0 : NaN
    bclCpu.redis += r1 - r0
    bclCpu.ok += s.ok
    bclSamples.push(s)
    log(`back-channel round ${r + 1}: ${s.rps.toFixed(0)} logouts/s, p99 ${quantile(s.latencies, 0.99).toFixed(2)} ms (non-2xx ${s.non2xx}, errors ${s.errors})`)
    // Every session must really be gone.
    const left = await Promise.all(sessions.slice(0, 50).map(async (m) => await mainStore.getSession(m.sub, m.sid)))
    if (left.some((x) => x !== null)) throw new Error('back-channel logout left sessions behind')
  }
  const bcl = combine(bclSamples)

  // ------------------------------------------------------------------ 11: Shared Signals SET throughput
  const setSamples: Sample[] = []
  const setCpu = { proc: 0, redis: 0, ok: 0 }
  cpu.set('s11', setCpu)
  const pushSets = async (bodies: string[]): Promise<Sample> => await cannon({
    url: `${gOnW.url}/auth/ssf/push`,
    connections: CONNECTIONS,
    amount: bodies.length,
    method: 'POST',
    headers: { 'content-type': 'application/secevent+jwt', authorization: `Bearer ${SSF_PUSH_TOKEN}` },
    bodies
  })
  const setFor = async (sub: string): Promise<string> => await transmitter.sign({ type: EVENT.accountDisabled, subject: { format: 'iss_sub', iss: idp.issuer, sub } })
  // Warm-up like the main scenarios' (the first SET also fetches the JWKS): users without sessions.
  await pushSets(await Promise.all(Array.from({ length: SSF_WARMUP_SETS }, async () => await setFor(`ssf-warm-${randomUUID()}`))))
  for (let r = 0; r < SSF_ROUNDS; r++) {
    const sessions = await minter.many(SSF_SETS_PER_ROUND, (i) => ({ sub: `ssf-${r}-${i}-${randomUUID()}` }))
    const bodies = await Promise.all(sessions.map(async (s) => await setFor(s.sub)))
    const [p0, r0] = [gOnW.cpuMs(), await redisCpuMs(redisCli)]
    const s = await pushSets(bodies)
    const [p1, r1] = [gOnW.cpuMs(), await redisCpuMs(redisCli)]
    setCpu.proc += p0 !== null && p1 !== null ? p1 - p0 : NaN
    setCpu.redis += r1 - r0
    setCpu.ok += s.ok
    setSamples.push(s)
    log(`Shared Signals round ${r + 1}: ${s.rps.toFixed(0)} SETs/s, p99 ${quantile(s.latencies, 0.99).toFixed(2)} ms (non-2xx ${s.non2xx}, errors ${s.errors})`)
    // Every user must really be revoked.
    const left = await Promise.all(sessions.slice(0, 50).map(async (m) => await mainStore.getSession(m.sub, m.sid)))
    if (left.some((x) => x !== null)) throw new Error('Shared Signals left sessions behind')
  }
  const sets = combine(setSamples)

  // ------------------------------------------------------------------ 6: propagation between replicas
  const idle = await propagation(minter, gOn, gReplica, PROPAGATION_LOGOUTS, 0)
  log(`propagation, idle: p50 ${idle.p50.toFixed(2)} ms, p99 ${idle.p99.toFixed(2)} ms, max ${idle.max.toFixed(2)} ms`)
  const background = await minter.session(`bg-${randomUUID()}`)
  const loaded = await propagation(minter, gOn, gReplica, PROPAGATION_LOGOUTS, 16, background.session)
  log(`propagation, B under load: p50 ${loaded.p50.toFixed(2)} ms, p99 ${loaded.p99.toFixed(2)} ms, max ${loaded.max.toFixed(2)} ms`)
  // To every worker of a cluster under load: B is the workers: auto gateway, polled over 4 connections.
  const toWorkers = await propagation(minter, gOn, gOnW, PROPAGATION_LOGOUTS, 16, background.session, 4)
  log(`propagation to every worker under load: p50 ${toWorkers.p50.toFixed(2)} ms, p99 ${toWorkers.p99.toFixed(2)} ms, max ${toWorkers.max.toFixed(2)} ms`)

  // ------------------------------------------------------------------ 7: a large population
  const pop = await population(raw(ports.pop, {}), parsed, template, me.claims, bare)

  // ------------------------------------------------------------------ report
  const row = (name: string, r: ReturnType<typeof combine>, extra: Record<string, unknown> = {}, key?: string): Row => ({
    name,
    rps: round(r.rps, 0),
    p50_ms: round(r.p50, 3),
    p99_ms: round(r.p99, 3),
    ratio_to_bare_proxy: round(r.rps / bp.rps, 3),
    ratio_to_upstream: round(r.rps / up.rps, 3),
    ratio_to_apache: ap === undefined ? null : round(r.rps / ap.rps, 3),
    extra: {
      ...(ap !== undefined ? { p99_ratio_to_apache: round(r.p99 / ap.p99, 3) } : {}),
      rounds_rps: r.roundsRps.map((x) => round(x, 0)),
      mean_rps: round(r.meanRps, 0),
      // (max - min) / median of the rounds: how much the machine drifted while this row was measured.
      rounds_spread: round((Math.max(...r.roundsRps) - Math.min(...r.roundsRps)) / r.rps, 3),
      ...(key !== undefined ? cpuOf(key) : {}),
      ...(key !== undefined && key !== 'bare' && key !== 'upstream' ? { cpu_ratio_to_bare_proxy: round(cpu.get('bare')!.proc / cpu.get('bare')!.ok / (cpu.get(key)!.proc / cpu.get(key)!.ok), 3) } : {}),
      ...(r.non2xx + r.errors > 0 ? { non2xx: r.non2xx, errors: r.errors } : {}),
      ...extra
    }
  })
  const p99Added = (r: ReturnType<typeof combine>): number => round(r.p99 - bp.p99, 3)!
  const ap = res.apache
  const rows: Row[] = [
    row('baseline: upstream direct', up, {}, 'upstream'),
    row('baseline: bare @fastify/http-proxy', bp, {}, 'bare'),
    ...(ap !== undefined ? [row('peer: Apache 2.4 + mod_auth_openidc, server-cache sessions', ap, { note: 'mpm_event, StartServers 2, ThreadsPerChild 25, KeepAlive On; the same IdP, upstream and load; CPU over all its processes' }, 'apache')] : []),
    row('1. authenticated GET, memory store', res.s1!, { p99_added_ms: p99Added(res.s1!) }, 's1'),
    row('2. authenticated GET, Redis, near cache off', res.s2!, { p99_added_ms: p99Added(res.s2!) }, 's2'),
    row('3. authenticated GET, Redis, near cache on', res.s3!, { p99_added_ms: p99Added(res.s3!), near_cache: nearCache }, 's3'),
    row('4. renewal from the device credential on every request', res.s4!, {
      note: 'session.ttl 1s (the config refuses 0) and the client never sends the session cookie, so every request renews and rotates the device credential; Redis with near cache; own keep-alive loop instead of autocannon (each request needs the previous response\'s cookie)'
    }, 's4'),
    row('W2. authenticated GET, Redis, near cache off, workers: auto', res.w2!, { p99_added_ms: p99Added(res.w2!), ratio_to_scenario_2: round(res.w2!.rps / res.s2!.rps, 3), workers: os.availableParallelism() }, 'w2'),
    row('W3. authenticated GET, Redis, near cache on, workers: auto', res.w3!, { p99_added_ms: p99Added(res.w3!), ratio_to_scenario_3: round(res.w3!.rps / res.s3!.rps, 3), workers: os.availableParallelism() }, 'w3'),
    row('W4. renewal from the device credential on every request, workers: auto', res.w4!, { ratio_to_scenario_4: round(res.w4!.rps / res.s4!.rps, 3), ratio_to_first_wave_3722: round(res.w4!.rps / 3722, 3), workers: os.availableParallelism() }, 'w4'),
    row('5. back-channel logout throughput, workers: auto', bcl, {
      unit: 'valid logout tokens per second (RS256 verification, replay claim, IdP-session lookup, revocation, publish)',
      tokens: bcl.ok + bcl.non2xx
    }, 's5'),
    {
      name: '6. revocation propagation between two replicas',
      rps: null,
      p50_ms: round(loaded.p50, 3),
      p99_ms: round(loaded.p99, 3),
      ratio_to_bare_proxy: null,
      ratio_to_upstream: null,
      extra: {
        measure: 'ms from the logout response on replica A (DELETE /auth/sessions/:id) to the first 401 on replica B; near cache on in both; B polled back to back by one client, under 16 connections of background load',
        logouts: loaded.n,
        max_ms: round(loaded.max, 3),
        refused_before_logout_response: loaded.early,
        idle: { p50_ms: round(idle.p50, 3), p99_ms: round(idle.p99, 3), max_ms: round(idle.max, 3), logouts: idle.n, refused_before_logout_response: idle.early }
      }
    },
    pop.row(bp, up),
    row('8. authenticated GET with 3 rules, Redis, near cache on', res.s8!, {
      p99_added_ms: p99Added(res.s8!),
      ratio_to_scenario_3: round(res.s8!.rps / res.s3!.rps, 3),
      near_cache: nearCacheRules,
      rules: RULES
    }, 's8'),
    row('9. bearer JWT, Redis, near cache on, warm JWKS', res.s9!, {
      p99_added_ms: p99Added(res.s9!),
      ratio_to_scenario_3: round(res.s9!.rps / res.s3!.rps, 3),
      near_cache: nearCacheBearer,
      token_chars: accessToken.length,
      note: 'Authorization: Bearer <RS256 JWT> with sid; verified once (cached by value), then time checks and the revocation check (user revoked-at, IdP-session marker, epoch) from the near cache on every request'
    }, 's9'),
    row('10. forward-auth check, Redis, near cache on', res.s10!, {
      ratio_to_scenario_3: round(res.s10!.rps / res.s3!.rps, 3),
      note: 'GET /auth/check with the session cookie and X-Original-URL, as nginx auth_request sends it: the same decision as scenario 3, answered with identity headers instead of proxied'
    }, 's10'),
    {
      name: '6W. revocation propagation to every worker of a cluster',
      rps: null,
      p50_ms: round(toWorkers.p50, 3),
      p99_ms: round(toWorkers.p99, 3),
      ratio_to_bare_proxy: null,
      ratio_to_upstream: null,
      extra: {
        measure: 'ms from the logout response on replica A to the moment the workers: auto gateway refused on each of 4 connections of its own (spread over its workers by the primary), polled back to back, under 16 connections of background load',
        logouts: toWorkers.n,
        max_ms: round(toWorkers.max, 3),
        refused_before_logout_response: toWorkers.early
      }
    },
    row('11. Shared Signals SET throughput, workers: auto', sets, {
      unit: 'valid SETs per second pushed to /auth/ssf/push (bearer check, RS256 verification, RISC account-disabled with an iss_sub subject: replay check, revocation of the user (Lua), index cleanup, publish, jti claim); workers: auto',
      sets: sets.ok + sets.non2xx
    }, 's11')
  ]
  printTable(rows)
  const targetsMet = [
    check('scenario 3 >= 0.90 of bare proxy req/s', res.s3!.rps / bp.rps, (x) => x >= 0.9),
    check('scenario 2 >= 0.80 of bare proxy req/s', res.s2!.rps / bp.rps, (x) => x >= 0.8),
    check('scenario 1 p99 added <= 1 ms', p99Added(res.s1!), (x) => x <= 1, 'ms'),
    check('scenario 2 p99 added <= 1 ms', p99Added(res.s2!), (x) => x <= 1, 'ms'),
    check('scenario 3 p99 added <= 1 ms', p99Added(res.s3!), (x) => x <= 1, 'ms'),
    check('scenario 6 p99 <= 50 ms', loaded.p99, (x) => x <= 50, 'ms'),
    check('scenario 8 (3 rules) >= 0.98 of scenario 3 req/s', res.s8!.rps / res.s3!.rps, (x) => x >= 0.98),
    check('scenario 9 (bearer) >= 0.90 of scenario 3 req/s', res.s9!.rps / res.s3!.rps, (x) => x >= 0.9),
    check('scenario 10 (forward-auth check) CPU per request <= scenario 3 (proxied)', (cpu.get('s10')!.proc / cpu.get('s10')!.ok) / (cpu.get('s3')!.proc / cpu.get('s3')!.ok), (x) => x <= 1),
    check('Redis <= 400 bytes per device record', pop.bytesPerDevice, (x) => x <= 400, 'B'),
    check('scenario 11 (workers: auto) >= 3,000 SETs/s', sets.rps, (x) => x >= 3000, 'SETs/s'),
    check('scenario 5 (workers: auto) >= 5,000 logouts/s', bcl.rps, (x) => x >= 5000, 'logouts/s'),
    check('scenario W4 (renewal, workers: auto) >= 3x the first wave\'s 3,722 req/s', res.w4!.rps / 3722, (x) => x >= 3, 'x'),
    check('scenario 6W propagation to every worker p99 <= 20 ms', toWorkers.p99, (x) => x <= 20, 'ms')
  ]
  if (ap !== undefined) {
    targetsMet.push(
      check('scenario W3 (near cache, workers: auto) >= 1.3x Apache + mod_auth_openidc req/s', res.w3!.rps / ap.rps, (x) => x >= 1.3, 'x'),
      check('scenario W2 (no near cache, workers: auto) >= 1.0x Apache + mod_auth_openidc req/s', res.w2!.rps / ap.rps, (x) => x >= 1.0, 'x'),
      check('scenario W3 p99 <= Apache p99', res.w3!.p99 / ap.p99, (x) => x <= 1, 'x'))
  } else {
    console.log('\nPeer skipped: install apache2 and libapache2-mod-auth-openidc to compare with Apache + mod_auth_openidc.')
  }
  console.log('\nTargets:')
  for (const t of targetsMet) console.log(`  ${t.ok ? 'met   ' : 'MISSED'} ${t.name}: ${t.value}`)

  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.platform()} ${os.release()}, node ${process.version}, redis ${pop.redisVersion}`
  const out = { machine, date: new Date().toISOString(), scenarios: rows }
  await mkdir(dirname(OUT), { recursive: true })
  await writeFile(OUT, `${JSON.stringify(out, null, 2)}\n`)
  log(`wrote ${OUT}`)
}

// ------------------------------------------------------------------ scenario 6

/**
 * `count` logouts on replica A, each of a session that replica B has just served (so B's near cache holds
 * its verdict); B is polled back to back until it refuses. Optionally B carries background load. With
 * `lanes` > 1, B is polled over that many connections of their own at once (a cluster's primary hands
 * each new connection to the next worker) and the time is when the last of them refused.
 */
async function propagation (minter: Minter, a: Child, b: Child, count: number, backgroundConnections: number, backgroundCookie?: string, lanes = 1): Promise<{ p50: number, p99: number, max: number, n: number, early: number }> {
  let stopBackground = (): void => {}
  let backgroundDone: Promise<unknown> = Promise.resolve()
  if (backgroundConnections > 0 && backgroundCookie !== undefined) {
    let running = true
    stopBackground = () => { running = false }
    backgroundDone = (async () => {
      while (running) await cannon({ url: b.url, connections: backgroundConnections, duration: 1, headers: { cookie: backgroundCookie } })
    })()
  }
  const agents = Array.from({ length: lanes }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }))
  const aAgent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const times = new Float64Array(count)
  let early = 0
  try {
    const sessions = await minter.many(count, () => ({ sub: `prop-${randomUUID()}` }))
    for (let i = 0; i < count; i++) {
      const s = sessions[i]!
      for (const agent of agents) {
        for (let k = 0; k < 3; k++) {
          const st = await get(b.url, s.session, agent)
          if (st !== 200) throw new Error(`replica B refused a live session (${st})`)
        }
      }
      let stop = false
      const pollers = agents.map(async (agent) => {
        const deadline = performance.now() + 5000
        while (!stop && performance.now() < deadline) {
          const st = await get(b.url, s.session, agent)
          if (st === 401) return performance.now()
          if (st !== 200) throw new Error(`replica B answered ${st}`)
        }
        return 0
      })
      const st = await request(a.url, 'DELETE', `/auth/sessions/${s.sid}`, { cookie: s.session, 'x-csrf': '1' }, aAgent)
      const loggedOutAt = performance.now()
      if (st !== 204) throw new Error(`logout on replica A answered ${st}`)
      const refused = await Promise.all(pollers)
      stop = true
      if (refused.some((x) => x === 0)) throw new Error('replica B never refused the revoked session within 5 s')
      const refusedAt = Math.max(...refused)
      if (refusedAt <= loggedOutAt) early++
      times[i] = Math.max(0, refusedAt - loggedOutAt)
    }
  } finally {
    stopBackground()
    await backgroundDone
    for (const agent of [...agents, aAgent]) agent.destroy()
  }
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), max: quantile(times, 1), n: count, early }
}

// ------------------------------------------------------------------ scenario 7

async function population (rawCfg: Record<string, unknown>, parsed: (r: Record<string, unknown>) => Config, template: SessionRecord, profile: ProfileClaims, bare: Child): Promise<{ row: (bp: ReturnType<typeof combine>, up: ReturnType<typeof combine>) => Row, bytesPerDevice: number, redisVersion: string }> {
  const server: RedisServer = await startRedis()
  cleanups.push(server.stop)
  const cfgRaw = { ...rawCfg, store: { kind: 'redis', nearCache: false, redis: { url: server.url } } }
  const config = parsed(cfgRaw)
  const redis = new Redis(server.url)
  cleanups.push(async () => { redis.disconnect() })
  const store = new RedisStore({ redis: redisOf(config.store) })
  cleanups.push(async () => { await store.close() })
  const redisVersion = /^redis_version:(\S+)/m.exec(await redis.info('server'))?.[1] ?? 'unknown'
  const opts: PopulationOptions = {
    keyPrefix: redisOf(config.store).keyPrefix,
    devicesPerUser: 2,
    template: { ...template, userAgent: template.userAgent },
    deviceTtlMs: config.rememberMe.ttl * 1000,
    userStateTtlMs: (Math.max(config.rememberMe.ttl, config.session.absoluteTtl) + config.session.ttl) * 1000,
    denyTtlS: config.session.ttl
  }
  const t0 = performance.now()
  const m0 = await usedMemory(redis)

  // A sample through RedisStore.createSession itself (2 devices per user, like the bulk).
  const minter = new Minter(config, store, template, profile)
  const SAMPLE = 2000
  const sampled = await minter.many(SAMPLE, (i) => ({ sub: subOf('aaaaaaaa', Math.floor(i / 2)), ...(template.idpSid !== undefined ? { idpSid: randomBytes(16).toString('base64url').slice(0, template.idpSid.length) } : {}) }))
  const m1 = await usedMemory(redis)
  const viaStore = (m1 - m0) / SAMPLE

  // Variants on samples, each under its own key prefix: without the sealed tokens (a login without a
  // refresh token), and with tokens but hashes kept in listpack encoding (hash-max-listpack-value raised).
  const variant = async (keyPrefix: string, template: SessionRecord, listpackValue?: number): Promise<number> => {
    if (listpackValue !== undefined) await redis.config('SET', 'hash-max-listpack-value', String(listpackValue))
    const before = await usedMemory(redis)
    await loadDevices(redis, 'cccccccc', VARIANT_SAMPLE, { ...opts, keyPrefix, template })
    const per = (await usedMemory(redis) - before) / VARIANT_SAMPLE
    if (listpackValue !== undefined) await redis.config('SET', 'hash-max-listpack-value', '64')
    return per
  }
  const perDeviceNoTokens = await variant('nt:', withoutTokens(template))
  const perDeviceListpack = await variant('lp:', template, 4096)
  const m2 = await usedMemory(redis)

  const users = await loadDevices(redis, 'bbbbbbbb', DEVICES, opts)
  const m3 = await usedMemory(redis)
  await checkLayout(redis, opts, { sub: sampled[0]!.sub, sid: sampled[0]!.sid }, { sub: subOf('bbbbbbbb', 0) })
  const loadSeconds = (performance.now() - t0) / 1000
  await loadDenylist(redis, 'bbbbbbbb', DENY, users, opts)
  const m4 = await usedMemory(redis)
  const perDevice = (m3 - m2) / DEVICES
  const perDeny = (m4 - m3) / DENY
  const breakdown = await keyBreakdown(redis, opts.keyPrefix, subOf('bbbbbbbb', 0), template.iss)
  log(`population: ${DEVICES} devices of ${users} users + ${DENY} denylist entries in ${loadSeconds.toFixed(1)} s; ${perDevice.toFixed(0)} B/device (createSession sample ${viaStore.toFixed(0)}; without tokens ${perDeviceNoTokens.toFixed(0)}; listpack ${perDeviceListpack.toFixed(0)}), ${perDeny.toFixed(0)} B/deny entry; keys ${JSON.stringify(breakdown)}; used_memory ${(m4 / 2 ** 20).toFixed(0)} MiB`)

  // Throughput of the gate over that population: near cache off (every request reads Redis), the
  // requests spread over the 2000 sampled sessions; alternated with the bare proxy for the ratio.
  const gw = await startChild('gateway', { config: cfgRaw })
  cleanups.push(gw.stop)
  const headerSets = sampled.map((s: Minted) => ({ cookie: s.session }))
  if (await get(gw.url, sampled[0]!.session) !== 200) throw new Error('population gateway refused a sampled session')
  await cannon({ url: gw.url, connections: CONNECTIONS, duration: WARMUP_S, headerSets })
  const gate: Sample[] = []
  const bareAdjacent: Sample[] = []
  const popCpu = { proc: 0, redis: 0, ok: 0 }
  for (let r = 0; r < POP_ROUNDS; r++) {
    // The bare proxy gets the same varying cookies, so the load generator does the same work for both.
    bareAdjacent.push(await cannon({ url: bare.url, connections: CONNECTIONS, duration: SECONDS, headerSets }))
    const [p0, r0] = [gw.cpuMs(), await redisCpuMs(redis)]
    const s = await cannon({ url: gw.url, connections: CONNECTIONS, duration: SECONDS, headerSets })
    const [p1, r1] = [gw.cpuMs(), await redisCpuMs(redis)]
    popCpu.proc += p0 !== null && p1 !== null ? p1 - p0 : NaN
    popCpu.redis += r1 - r0
    popCpu.ok += s.ok
    gate.push(s)
    log(`population round ${r + 1}: bare ${bareAdjacent[r]!.rps.toFixed(0)} req/s, gateway ${s.rps.toFixed(0)} req/s, p99 ${quantile(s.latencies, 0.99).toFixed(2)} ms (non-2xx ${s.non2xx})`)
  }
  const g = combine(gate)
  const b = combine(bareAdjacent)
  return {
    bytesPerDevice: perDevice,
    redisVersion,
    row: (bp, up) => ({
      name: '7. large population: authenticated GET, Redis, near cache off',
      rps: round(g.rps, 0),
      p50_ms: round(g.p50, 3),
      p99_ms: round(g.p99, 3),
      ratio_to_bare_proxy: round(g.rps / b.rps, 3),
      ratio_to_upstream: round(g.rps / up.rps, 3),
      extra: {
        devices: DEVICES,
        users,
        denylist_entries: DENY,
        bytes_per_device: Math.round(perDevice),
        bytes_per_device_via_createSession_sample: Math.round(viaStore),
        bytes_per_device_without_tokens: Math.round(perDeviceNoTokens),
        bytes_per_device_listpack_hash: Math.round(perDeviceListpack),
        bytes_per_denylist_entry: Math.round(perDeny),
        memory_usage_per_key: breakdown,
        variants_note: `without_tokens: same layout without the sealed token bundle; listpack_hash: with tokens but hash-max-listpack-value 4096 (Redis keeps the hash as a compact listpack instead of a hashtable once any value exceeds 64 bytes); ${VARIANT_SAMPLE} devices each`,
        sealed_tokens_chars: template.tokens?.length ?? 0,
        user_agent_chars: template.userAgent.length,
        redis_used_memory_mib: Math.round(m4 / 2 ** 20),
        load_seconds: round(loadSeconds, 1),
        bytes_note: 'used_memory delta / count; per device includes its token key, its share of the user keys (ver, devs, email; 2 devices per user), sidx and idpsid index entries. MEMORY USAGE per record: bench/memory.ts',
        ratio_note: `ratio_to_bare_proxy against bare-proxy rounds run alternately in this phase (${round(b.rps, 0)} req/s); against the main-phase bare proxy: ${round(g.rps / bp.rps, 3)}`,
        sessions_used: headerSets.length,
        cpu_us_per_request: round(popCpu.proc * 1000 / popCpu.ok, 1),
        redis_cpu_us_per_request: round(popCpu.redis * 1000 / popCpu.ok, 1),
        rounds_rps: g.roundsRps.map((x) => round(x, 0)),
        ...(g.non2xx + g.errors > 0 ? { non2xx: g.non2xx, errors: g.errors } : {})
      }
    })
  }
}

/** MEMORY USAGE of each key kind of one bulk user (2 devices) and its encodings. */
async function keyBreakdown (redis: Redis, prefix: string, sub: string, iss: string): Promise<Record<string, unknown>> {
  const tg = `{${Buffer.from(sub, 'utf8').toString('base64url')}}`
  const usage = async (key: string): Promise<number> => Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
  const sids = await redis.hkeys(`${prefix}devs:${tg}`)
  const dev = `${prefix}dev:${tg}:${sids[0]!}`
  const idpSid = await redis.hget(dev, 'd')
  const deny = (await redis.scan('0', 'MATCH', `${prefix}deny:*`, 'COUNT', 1000))[1][0]
  return {
    dev_hash: await usage(dev),
    dev_hash_encoding: await redis.object('ENCODING', dev),
    token_key: await usage(`${prefix}tok:${tg}:${sids[0]!}`),
    sidx: await usage(`${prefix}sidx:${sids[0]!}`),
    ...(idpSid !== null ? { idpsid_index: await usage(`${prefix}idpsid:${iss}:${idpSid}`) } : {}),
    devs_set_per_user: await usage(`${prefix}devs:${tg}`),
    devs_encoding: await redis.object('ENCODING', `${prefix}devs:${tg}`),
    ver_per_user: await usage(`${prefix}ver:${tg}`),
    ...(deny !== undefined ? { deny: await usage(deny) } : {}),
    note: 'MEMORY USAGE counts the key, value and dict entry; used_memory deltas also include the expires dict and allocator rounding'
  }
}

function withoutTokens (r: SessionRecord): SessionRecord {
  const { tokens: _dropped, ...rest } = r
  return rest
}

// ------------------------------------------------------------------ helpers

/** The IdP session id to put in the bench's access token: the real login's, or a made-up one. */
function idpSidOf (sid: string | undefined): string {
  return sid ?? randomBytes(16).toString('base64url')
}

/** An RFC 9068 access token for `sub`, signed with the IdP's real key (its JWKS publishes it). */
async function bearerToken (idp: Awaited<ReturnType<typeof startIdp>>, sub: string, sid: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ sub, sid, client_id: 'bench-cli', scope: 'api:read', email: `${sub}@example.com`, email_verified: true, groups: ['demo-users', 'staff'] })
    .setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid, typ: 'at+jwt' })
    .setIssuer(idp.issuer).setAudience(API_AUDIENCE).setIssuedAt(now).setExpirationTime(now + 3000).setJti(randomUUID())
    .sign(await importJWK(idp.signingKey, 'RS256'))
}

/** redis-server's own CPU time (user + sys), ms. */
async function redisCpuMs (r: Redis): Promise<number> {
  const info = await r.info('cpu')
  const read = (k: string): number => Number(new RegExp(`^${k}:(\\S+)`, 'm').exec(info)?.[1] ?? NaN)
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1000
}

async function nearCacheCounts (g: Child): Promise<Record<string, number>> {
  const text = await (await fetch(`${g.admin}/metrics`)).text()
  const read = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
  const hits = read('sessiongate_near_cache_hits_total')
  const misses = read('sessiongate_near_cache_misses_total')
  return { hits, misses, hit_ratio: round(hits / (hits + misses), 4)! }
}

async function get (url: string, cookie: string, agent?: http.Agent): Promise<number> {
  return await request(url, 'GET', '/', { cookie }, agent)
}

async function request (url: string, method: string, path: string, headers: Record<string, string>, agent?: http.Agent): Promise<number> {
  const u = new URL(url)
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers, ...(agent !== undefined ? { agent } : {}) }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

function round (x: number, digits: number): number | null {
  if (!Number.isFinite(x)) return null
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function check (name: string, value: number, ok: (x: number) => boolean, unit = ''): { name: string, value: string, ok: boolean } {
  return { name, value: `${round(value, 3) ?? 'n/a'}${unit === '' ? '' : ` ${unit}`}`, ok: ok(value) }
}

function printTable (rows: Row[]): void {
  const head = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'x bare proxy', 'x Apache', 'x upstream']
  const cells = rows.map((r) => [r.name, fmt(r.rps, 0), fmt(r.p50_ms, 2), fmt(r.p99_ms, 2), fmt(r.ratio_to_bare_proxy, 3), fmt(r.ratio_to_apache ?? null, 3), fmt(r.ratio_to_upstream, 3)])
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
  const line = (c: string[]): string => `| ${c.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join(' | ')} |`
  console.log(`\n${line(head)}`)
  console.log(`|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`)
  for (const c of cells) console.log(line(c))
}

function fmt (x: number | null, digits: number): string {
  return x === null ? '-' : x.toFixed(digits)
}

try {
  await main()
} catch (err) {
  console.error(err)
  process.exitCode = 1
} finally {
  await cleanup()
  log('done')
}
// Open handles (keep-alive agents of the IdP client, ioredis reconnect timers) must not keep us alive.
process.exit(process.exitCode ?? 0)
