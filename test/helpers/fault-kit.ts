/**
 * The harness of the logout fault tests: a real redis-server, two gateway replicas (each with the near
 * cache, each behind its own fault proxy), signed-in devices with a WebSocket open on each replica, and
 * one driver that runs a logout path under a fault:
 *   (a) the answer is the documented failure, (b) the very same request, sent again once the fault is
 *   gone, succeeds, (c) then the revoked session is refused on both replicas, by its cookie and by its
 *   device credential, its WebSockets are closed within 1 s, and its device record is gone.
 * The step sweep makes every store command of a path fail in turn (its reply lost: it ran, the gateway
 * cannot know), plus the first one before it runs.
 */
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import WebSocket from 'ws'
import { buildGateway, type Gateway } from '../../src/app.js'
import { createLogger } from '../../src/log.js'
import { Browser, login } from './browser.js'
import { startRedis, type RedisServer } from './redis-server.js'
import { freePort } from './ports.js'
import { startStack, type Stack } from './stack.js'
import { acl, aclRestore, pause, startFaultProxy, type FaultProxy } from './fault-proxy.js'

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export interface Env {
  s: Stack
  redis: RedisServer
  /** Replica A (the stack's gateway, which handles the logout) and replica B, each with its proxy. */
  a: { url: string, adminUrl: string, proxy: FaultProxy }
  b: { url: string, adminUrl: string, proxy: FaultProxy, gateway: Gateway }
}

/** Redis, the IdP, the upstream and two replicas on the same Redis, each through its own fault proxy. */
export async function startEnv (t: Test, config: Record<string, unknown> = {}): Promise<Env> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const pa = await startFaultProxy(redis.port)
  const pb = await startFaultProxy(redis.port)
  t.teardown(async () => { await Promise.all([pa.close(), pb.close()]) })
  const store = (url: string): Record<string, unknown> => ({ kind: 'redis', nearCache: true, redis: { url, commandTimeout: '500ms' } })
  const s = await startStack(t, { config: { ...config, store: store(pa.url) } })
  const [port, adminPort] = [await freePort(), await freePort()]
  const cfg = { ...s.config, store: { ...s.config.store, redis: { ...s.config.store.redis!, url: pb.url } } }
  const sink = new Writable({ write (_c, _e, cb) { cb() } })
  const gb = await buildGateway(cfg, { logger: createLogger('warn', sink), processMetrics: false })
  await gb.listen({ public: port, admin: adminPort })
  t.teardown(() => gb.close())
  const env: Env = {
    s,
    redis,
    a: { url: s.url, adminUrl: s.adminUrl, proxy: pa },
    b: { url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}`, proxy: pb, gateway: gb }
  }
  await ready(env)
  return env
}

/** Waits until both replicas answer /readyz 200 (store reachable and subscribed). */
export async function ready (env: Env, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  for (const admin of [env.a.adminUrl, env.b.adminUrl]) {
    for (;;) {
      const status = await fetch(`${admin}/readyz`).then((r) => r.status, () => 0)
      if (status === 200) break
      if (Date.now() > deadline) throw new Error(`${admin}/readyz not 200 within ${ms} ms`)
      await sleep(50)
    }
  }
}

/** A WebSocket through one replica, and when (and how) it closed. */
export interface Probe { closed: Promise<{ code: number, at: number }>, socket: WebSocket }

async function openWs (url: string, cookie: string): Promise<Probe> {
  const socket = new WebSocket(`${url.replace('http', 'ws')}/live`, { headers: { cookie } })
  const closed = new Promise<{ code: number, at: number }>((resolve) => socket.once('close', (code) => resolve({ code, at: Date.now() })))
  await new Promise<void>((resolve, reject) => {
    socket.once('message', () => resolve())
    socket.once('error', reject)
    socket.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket refused: ${res.statusCode ?? 0}`)))
  })
  return { closed, socket }
}

/** One signed-in device: its cookies, ids, and a WebSocket open on each replica. */
export interface Device {
  b: Browser
  sub: string
  sid: string
  idpSid: string
  /** The Cookie header it sends (session and device cookie). */
  cookie: string
  /** Only its device credential, as a Cookie header. */
  deviceOnly: string
  ws: { a: Probe, b: Probe }
}

/** Signs `user` in on a new browser through replica A (remember-me), and opens a WebSocket on each replica. */
export async function signIn (env: Env, user: string): Promise<Device> {
  const b = new Browser()
  await login(b, env.a.url, user, { remember: true })
  return await deviceOf(env, b, user)
}

/** The Device view of a browser that holds a live session on replica A. */
export async function deviceOf (env: Env, b: Browser, user: string): Promise<Device> {
  const me = await b.fetch(`${env.a.url}/auth/session`)
  if (me.status !== 200) throw new Error(`no session after login: ${me.status}`)
  const { sid } = me.json<{ sid: string }>()
  const rec = await env.s.gateway.ctx.store.getSession(user, sid)
  if (rec === null) throw new Error('no device record after login')
  const cookie = b.cookieHeader(env.a.url)
  const deviceOnly = `sg-device=${b.cookies(env.a.url).get('sg-device') ?? ''}`
  const ws = { a: await openWs(env.a.url, cookie), b: await openWs(env.b.url, cookie) }
  return { b, sub: user, sid, idpSid: rec.idpSid ?? '', cookie, deviceOnly, ws }
}

/** A unique user name per run (every run revokes its user). */
export const user = (tag: string): string => `${tag}-${randomBytes(4).toString('hex')}`

export interface Answer { status: number, body: string, location: string | null, setCookies: string[] }

/** One HTTP request, no redirect following, cookies as given. */
export async function call (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  const res = await fetch(url, { method: init.method ?? 'GET', headers: init.headers, body: init.body, redirect: 'manual' })
  return { status: res.status, body: await res.text(), location: res.headers.get('location'), setCookies: res.headers.getSetCookie() }
}

/** A request through a replica with these cookies, as an API client (JSON). 200 when the session passes. */
async function passes (url: string, cookie: string): Promise<number> {
  return (await call(`${url}/api/probe`, { headers: { accept: 'application/json', cookie } })).status
}

/** One logout path, prepared for one run: the very same request each time it is sent. */
export interface Run {
  /** The session that must end. */
  victim: Device
  /** Sessions that must stay live (another device that did the signing out). */
  bystanders?: Device[]
  send: () => Promise<Answer>
  /** Asserts the documented failure. */
  failed: (t: Test, a: Answer) => void
  /** Asserts the documented success. */
  succeeded: (t: Test, a: Answer) => void
}

export interface LogoutPath {
  name: string
  setup: (env: Env) => Promise<Run>
}

/** A fault: `inject` before the first attempt, `clear` after it (then both replicas are waited for). */
export interface Fault {
  name: string
  inject: (env: Env) => Promise<void>
  clear: (env: Env) => Promise<void>
}

export const FAULTS: Record<'unreachable' | 'stall' | 'sigstop' | 'noScripting' | 'noPublish' | 'noDel', Fault> = {
  unreachable: {
    name: 'Redis unreachable from replica A (connections dropped, new ones refused)',
    inject: async (env) => { env.a.proxy.refuse(true); env.a.proxy.dropAll() },
    clear: async (env) => { env.a.proxy.refuse(false) }
  },
  stall: {
    name: 'network stall on replica A (commands delivered late, after the timeout)',
    inject: async (env) => { env.a.proxy.stall() },
    clear: async (env) => { env.a.proxy.resume() }
  },
  sigstop: (() => {
    let resume: (() => void) | undefined
    return {
      name: 'redis-server SIGSTOP, then SIGCONT',
      inject: async (env: Env) => { resume = await pause(env.redis.port) },
      clear: async () => { resume?.() }
    }
  })(),
  noScripting: {
    name: 'ACL takes scripting away (-@scripting)',
    inject: async (env) => { await acl(env.redis.port, '-@scripting') },
    clear: async (env) => { await aclRestore(env.redis.port) }
  },
  noPublish: {
    name: 'ACL takes PUBLISH away',
    inject: async (env) => { await acl(env.redis.port, '-publish') },
    clear: async (env) => { await aclRestore(env.redis.port) }
  },
  noDel: {
    name: 'ACL takes DEL away (it fails inside the revocation script)',
    inject: async (env) => { await acl(env.redis.port, '-del') },
    clear: async (env) => { await aclRestore(env.redis.port) }
  }
}

/** Fills both replicas' near caches with the victim's live verdict, as traffic would. */
async function warm (env: Env, d: Device): Promise<void> {
  for (const url of [env.a.url, env.b.url]) {
    const st = await passes(url, d.cookie)
    if (st !== 200) throw new Error(`the victim is not live on ${url} before the fault (${st})`)
  }
}

/** (c): the victim is out everywhere, the bystanders are not. `since`: when the successful answer came. */
export async function assertRevoked (t: Test, env: Env, run: Run, since: number): Promise<void> {
  const v = run.victim
  for (const [name, probe] of [['A', v.ws.a], ['B', v.ws.b]] as const) {
    const c = await Promise.race([probe.closed, sleep(Math.max(0, since + 1000 - Date.now())).then(() => null)])
    t.ok(c !== null && c.code === 1008, `its WebSocket on replica ${name} is closed as revoked within 1 s (${c === null ? 'still open' : `code ${c.code}`})`)
    if (c === null) probe.socket.terminate()
  }
  for (const [name, url] of [['A', env.a.url], ['B', env.b.url]] as const) {
    t.equal(await passes(url, v.cookie), 401, `its session cookie is refused on replica ${name}`)
    t.equal(await passes(url, v.deviceOnly), 401, `its device credential is refused on replica ${name}`)
  }
  t.equal(await env.s.gateway.ctx.store.getSession(v.sub, v.sid), null, 'its device record (the credential\'s hash) is gone from the store')
  for (const by of run.bystanders ?? []) {
    t.equal(await passes(env.b.url, by.cookie), 200, 'the device that signed it out is still signed in')
    by.ws.a.socket.terminate()
    by.ws.b.socket.terminate()
  }
}

/** One run: fault, first attempt (documented failure), fault gone, same request (success), revoked everywhere. */
export async function faultRun (t: Test, env: Env, path: LogoutPath, fault: Fault): Promise<void> {
  const run = await path.setup(env)
  await warm(env, run.victim)
  await fault.inject(env)
  env.a.proxy.record()
  let first: Answer
  try {
    first = await run.send()
  } finally {
    await fault.clear(env)
  }
  const during = env.a.proxy.seen.join(' ')
  await ready(env)
  run.failed(t, first)
  env.a.proxy.record()
  const second = await run.send()
  const at = Date.now()
  t.comment(`replica A's store commands: first attempt ${during || '(none)'}; retry ${env.a.proxy.seen.join(' ') || '(none)'}`)
  run.succeeded(t, second)
  await assertRevoked(t, env, run, at)
}

/**
 * The step sweep: a fault-free run first (it also loads the scripts) records the path's store commands
 * on replica A; then, for each of them, a run where that command runs but its reply is lost, and one
 * where the first command never runs. Each is a faultRun.
 */
export async function sweep (t: Test, env: Env, path: LogoutPath): Promise<void> {
  let steps: string[] = []
  // Twice: the first run may load the scripts (EVALSHA answered NOSCRIPT, then EVAL).
  for (const round of ['no fault', 'no fault, scripts loaded']) {
    const base = await path.setup(env)
    await warm(env, base.victim)
    env.a.proxy.record()
    const answer = await base.send()
    steps = [...env.a.proxy.seen]
    const at = Date.now()
    await t.test(`${path.name}: ${round} (store commands: ${steps.join(' ')})`, async (t) => {
      base.succeeded(t, answer)
      await assertRevoked(t, env, base, at)
    })
  }
  const drop = (n: number, when: 'request' | 'reply'): Fault => ({
    name: when === 'request' ? `connection dropped before #${n} ${steps[n - 1]} runs` : `#${n} ${steps[n - 1]} runs, its reply is lost (connection dropped)`,
    inject: async (env) => { env.a.proxy.dropAt(n, when) },
    clear: async (env) => {
      const hit = env.a.proxy.fired()
      env.a.proxy.disarm()
      if (hit !== steps[n - 1]) throw new Error(`the drop hit ${hit ?? 'nothing'}, expected ${steps[n - 1]} (the path's commands changed: ${env.a.proxy.seen.join(' ')})`)
    }
  })
  const faults = [drop(1, 'request'), ...steps.map((_s, i) => drop(i + 1, 'reply'))]
  for (const f of faults) await t.test(`${path.name}: ${f.name}`, async (t) => { await faultRun(t, env, path, f) })
}

/** The documented failure of the gateway's JSON answers: 503 store_unavailable. */
export function storeUnavailable (t: Test, a: Answer): void {
  t.equal(a.status, 503, `answered 503 (got ${a.status} ${a.body.slice(0, 120)})`)
  t.match(a.body, /"error":"store_unavailable"/, 'error store_unavailable')
}
