/**
 * `npm run soak`: the gateway under minutes of mixed traffic (real logins through the IdP, minted sessions,
 * authenticated GETs, renewals from the device credential, every kind of logout, WebSockets and event
 * streams), sampling its RSS, heap, event-loop delay, open fds and active handles every 5 s from inside its
 * process. PASS when the heap does not grow after warm-up (least-squares slope < 1 MB/min), the fds of the
 * idle gateway after the run are no more than before it (+2), and the gateway answered as it should.
 * See bench/README.md ("Soak"). Environment knobs:
 *   SOAK_MINUTES=n        traffic duration (default 10; 1 for a smoke run)
 *   SOAK_CONCURRENCY=n    simulated devices at a time (default 24): one request in flight each, plus
 *                         the WebSocket and event stream they hold
 *   SOAK_LOGINS_PER_MIN=n real logins through the IdP per minute (default 30; other sessions are minted)
 *   SOAK_THINK_MS=n       mean pause between a device's requests (default 20)
 *   SOAK_OUT=path         where to write the JSON (default bench/results/soak.json)
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { importJWK, SignJWT } from 'jose'
import { WebSocket } from 'ws'
import { stringify } from 'yaml'
import { parseConfig } from '../src/config/loader.js'
import { redisOf, type Config } from '../src/config/types.js'
import { RedisStore } from '../src/store/redis.js'
import type { ProfileClaims } from '../src/core/session.js'
import { startIdp, type RunningIdp } from '../src/demo/idp.js'
import { startRedis } from '../test/helpers/redis-server.js'
import { Browser, login, type Response as BrowserResponse } from '../test/helpers/browser.js'
import { freePort } from '../test/helpers/ports.js'
import { startChild, type Child } from './lib/procs.js'
import { Minter } from './lib/mint.js'
import type { SocketInfo, Vitals } from './lib/sampler.js'

const num = (name: string, def: number, min: number, max: number): number => {
  const v = Number(process.env[name] ?? def)
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`${name} must be a number in [${min}, ${max}]`)
  return v
}
const MINUTES = num('SOAK_MINUTES', 10, 0.25, 120)
const AGENTS = Math.round(num('SOAK_CONCURRENCY', 24, 1, 200))
const LOGINS_PER_MIN = num('SOAK_LOGINS_PER_MIN', 30, 0, 600)
const THINK_MS = num('SOAK_THINK_MS', 20, 0, 10_000)
const OUT = process.env.SOAK_OUT ?? fileURLToPath(new URL('./results/soak.json', import.meta.url))

const DURATION_MS = MINUTES * 60_000
/** Samples before this are warm-up: the first 2 minutes, or the first 20% of a shorter run. */
const WARMUP_MS = Math.min(120_000, DURATION_MS * 0.2)
const SAMPLE_MS = 5000
/** Idle time before the fd baseline and before the final count: every keep-alive socket times out in it. */
const SETTLE_MS = 12_000
/** The short session cookie: renewals from the device credential happen all the time. */
const SESSION_TTL_S = 10
const HEAP_SLOPE_LIMIT = 1 // MB/min
const FD_TOLERANCE = 2
/** Unexpected answers tolerated, as a share of requests (a shared machine may time one out). */
const UNEXPECTED_BUDGET = 0.001
const REQUEST_TIMEOUT_MS = 10_000
const WAIT_CLOSE_MS = 5000

const ADMIN_TOKEN = randomBytes(24).toString('base64url')
const CLIENT_SECRET = randomBytes(24).toString('base64url')
const SESSION_KEY = randomBytes(32).toString('base64url')
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 sessiongate-soak'
const started = performance.now()
const log = (msg: string): void => { console.error(`[soak ${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}`) }
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
const rand = (lo: number, hi: number): number => lo + Math.random() * (hi - lo)
const round = (x: number, d: number): number | null => Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null

// ------------------------------------------------------------------ counters

const COUNTERS = [
  'requests', 'unexpected', 'errors', 'renewals', 'slides', 'cookiesIssued',
  'loginsReal', 'loginsMinted', 'loginStarts',
  'logoutRpGet', 'logoutRpPost', 'logoutDelete', 'logoutBclSid', 'logoutBclSub', 'abandoned',
  'wsOpened', 'wsClosedByClient', 'wsClosedByLogout', 'wsEchoes',
  'sseOpened', 'sseClosedByClient', 'sseEndedByLogout'
] as const
type CounterName = typeof COUNTERS[number]
type Counters = Record<CounterName, number>
const counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Counters
const reasons = new Map<string, number>()
/** An answer the gateway should not have given (or none at all): counted, with the first kinds kept. */
function unexpected (what: string): void {
  counters.unexpected++
  note(what)
}
/** Keeps the kind of an unexpected answer without counting it again. */
function note (what: string): void {
  if (reasons.has(what) || reasons.size < 40) reasons.set(what, (reasons.get(what) ?? 0) + 1)
}

// ------------------------------------------------------------------ cookies and requests

/** A browser's cookie jar for the gateway's host, with Max-Age expiry. */
class Jar {
  private readonly m = new Map<string, { value: string, exp: number }>()
  set (name: string, value: string, maxAgeS?: number): void {
    if (value === '' || (maxAgeS !== undefined && maxAgeS <= 0)) this.m.delete(name)
    else this.m.set(name, { value, exp: maxAgeS === undefined ? Infinity : Date.now() + maxAgeS * 1000 })
  }

  get (name: string): string | undefined {
    const c = this.m.get(name)
    if (c === undefined) return undefined
    if (c.exp <= Date.now()) { this.m.delete(name); return undefined }
    return c.value
  }

  /** The Cookie header; `deviceOnly` sends just the device credential (a renewal). */
  header (deviceOnly = false): string {
    const out: string[] = []
    for (const name of [...this.m.keys()]) {
      if (deviceOnly && name !== 'sg-device') continue
      const v = this.get(name)
      if (v !== undefined) out.push(`${name}=${v}`)
    }
    return out.join('; ')
  }

  /** ms the session cookie has left (0 when there is none). */
  sessionLeftMs (): number {
    const c = this.m.get('sg')
    return c === undefined ? 0 : Math.max(0, c.exp - Date.now())
  }

  apply (lines: string[] | undefined): void {
    for (const line of lines ?? []) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const maxAge = attrs.map((a) => a.trim().toLowerCase()).find((a) => a.startsWith('max-age='))
      this.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim(), maxAge !== undefined ? Number(maxAge.slice(8)) : undefined)
    }
  }

  /** Seeds from a `Cookie` header string (minted sessions, a real login's jar). */
  seed (header: string, maxAgeS?: number): void {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=')
      if (eq > 0) this.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim(), maxAgeS)
    }
  }

  clone (): Jar {
    const j = new Jar()
    for (const [k, v] of this.m) j.m.set(k, { ...v })
    return j
  }
}

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: string }

/**
 * Every request of the driver (to the gateway and to the IdP) goes over this keep-alive agent, destroyed
 * when traffic stops: the gateway's idle count then has no client connections left open by the driver.
 */
let httpAgent = new http.Agent({ keepAlive: true, maxSockets: AGENTS * 2 })
let base: URL

/** One request to the gateway over the shared keep-alive agent; never throws (status 0: no answer). */
async function send (method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  counters.requests++
  return await rawRequest(base, method, path, headers, body)
}

async function rawRequest (target: URL, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return await new Promise((resolve) => {
    const req = http.request({ host: target.hostname, port: target.port, method, path, headers: { 'user-agent': UA, ...headers }, agent: httpAgent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { if (chunks.length < 64) chunks.push(c) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', () => { counters.errors++; resolve({ status: 0, headers: {}, body: '' }) })
    })
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timeout')))
    req.on('error', () => { counters.errors++; resolve({ status: 0, headers: {}, body: '' }) })
    req.end(body)
  })
}

/** A request with the jar's cookies; the jar takes the answer's Set-Cookie lines like a browser. */
async function browse (jar: Jar, method: string, path: string, opts: { deviceOnly?: boolean, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  const cookie = jar.header(opts.deviceOnly)
  const res = await send(method, path, { ...(cookie !== '' ? { cookie } : {}), ...opts.headers }, opts.body)
  const set = res.headers['set-cookie']
  if (set?.some((l) => l.startsWith('sg-device=') && !l.startsWith('sg-device=;'))) counters.renewals++
  if (set?.some((l) => l.startsWith('sg=') && !l.startsWith('sg=;'))) {
    counters.cookiesIssued++
    if (!set.some((l) => l.startsWith('sg-device='))) counters.slides++
  }
  jar.apply(set)
  return res
}

/**
 * The test suite's cookie-jar browser (real logins through the IdP with test/helpers/browser.ts `login`),
 * on the driver's own agent instead of global fetch, whose pool would keep sockets open for a minute.
 */
class SoakBrowser extends Browser {
  override async fetch (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<BrowserResponse> {
    const u = new URL(url)
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...init.headers }
    const cookie = this.cookieHeader(url)
    if (cookie !== '' && headers.cookie === undefined) headers.cookie = cookie
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body))
    if (u.host === base.host) counters.requests++
    const res = await rawRequest(u, init.method ?? 'GET', `${u.pathname}${u.search}`, headers, init.body)
    if (res.status === 0) throw new Error(`no answer from ${u.origin}${u.pathname}`)
    const setCookies = res.headers['set-cookie'] ?? []
    const jar = this.cookies(url)
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const maxAge = attrs.map((a) => a.trim().toLowerCase()).find((a) => a.startsWith('max-age='))
      const value = pair!.slice(eq + 1).trim()
      if (value === '' || (maxAge !== undefined && Number(maxAge.slice(8)) <= 0)) jar.delete(pair!.slice(0, eq).trim())
      else jar.set(pair!.slice(0, eq).trim(), value)
    }
    this.visited.push(url)
    const h = new Headers()
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) for (const x of v) h.append(k, x)
      else if (v !== undefined) h.set(k, v)
    }
    return { status: res.status, url, headers: h, body: res.body, setCookies, json: <T>() => JSON.parse(res.body) as T }
  }
}

// ------------------------------------------------------------------ long-lived connections

interface Held {
  /** Resolves with how it ended: 'logout' (WebSocket 1008 / `event: logout`), 'client', or 'other:<detail>'. */
  ended: Promise<string>
  /** Client-side close; resolves once it is closed (bounded). */
  close (): Promise<void>
}

async function openWebSocket (jar: Jar, path: string): Promise<Held | null> {
  const ws = new WebSocket(`ws://${base.host}${path}`, { headers: { cookie: jar.header(), 'user-agent': UA }, handshakeTimeout: WAIT_CLOSE_MS })
  let byClient = false
  const ended = new Promise<string>((resolve) => {
    ws.once('close', (code) => resolve(byClient ? 'client' : code === 1008 ? 'logout' : `other:ws-close-${code}`))
  })
  const opened = await new Promise<boolean>((resolve) => {
    ws.once('open', () => resolve(true))
    ws.once('error', () => resolve(false))
    ws.once('unexpected-response', (_req, res) => { note(`ws upgrade answered ${res.statusCode ?? 0}`); res.resume(); resolve(false) })
  })
  ws.on('error', () => {})
  if (!opened) {
    ws.terminate()
    return null
  }
  counters.wsOpened++
  ws.on('message', () => { counters.wsEchoes++ })
  const ping = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send(`ping ${Date.now()}`) }, 2000)
  void ended.then(() => clearInterval(ping))
  return {
    ended,
    async close () {
      byClient = true
      ws.close(1000)
      const timer = setTimeout(() => ws.terminate(), WAIT_CLOSE_MS)
      await ended
      clearTimeout(timer)
    }
  }
}

async function openEventStream (jar: Jar): Promise<Held | null> {
  let byClient = false
  let resolveEnded: (how: string) => void = () => {}
  const ended = new Promise<string>((resolve) => { resolveEnded = resolve })
  let text = ''
  const req = http.get({ host: base.hostname, port: base.port, path: '/auth/events', agent: false, headers: { cookie: jar.header(), accept: 'text/event-stream', 'user-agent': UA } })
  const opened = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => { req.destroy(new Error('timeout')); resolve(false) }, WAIT_CLOSE_MS)
    req.once('response', (res) => {
      if (res.statusCode !== 200) {
        clearTimeout(timer)
        note(`event stream answered ${res.statusCode ?? 0}`)
        res.resume()
        resolve(false)
        return
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        if (text.length < 4096) text += chunk
        if (text.includes('event: session')) { clearTimeout(timer); resolve(true) }
      })
      res.once('close', () => {
        req.destroy()
        resolveEnded(byClient ? 'client' : text.includes('event: logout') ? 'logout' : 'other:sse-ended')
      })
      res.on('error', () => {})
    })
    req.on('error', () => { clearTimeout(timer); resolveEnded(byClient ? 'client' : 'other:sse-error'); resolve(false) })
  })
  if (!opened) {
    req.destroy()
    return null
  }
  counters.sseOpened++
  return {
    ended,
    async close () {
      byClient = true
      req.destroy()
      await Promise.race([ended, sleep(WAIT_CLOSE_MS)])
    }
  }
}

// ------------------------------------------------------------------ the simulated devices

interface Session { jar: Jar, sub: string, sid: string, idpSid?: string, real: boolean }

interface World {
  gw: Child
  idp: RunningIdp
  store: RedisStore
  minter: Minter
  signLogout: (claims: Record<string, unknown>) => Promise<string>
}

let nextRealLoginAt = 0

/** A real login through the IdP, at most LOGINS_PER_MIN of them; otherwise a minted session. */
async function newSession (w: World, agent: number, n: number): Promise<Session | null> {
  const now = Date.now()
  if (LOGINS_PER_MIN > 0 && now >= nextRealLoginAt) {
    nextRealLoginAt = Math.max(nextRealLoginAt, now) + 60_000 / LOGINS_PER_MIN
    const user = `real-${agent}-${n}`
    const browser = new SoakBrowser(UA)
    let res
    try {
      res = await login(browser, w.gw.url, user, { remember: true })
    } catch (err) {
      unexpected(`login failed: ${(err as Error).message.slice(0, 80)}`)
      return null
    }
    if (res.status !== 200) { unexpected(`login ended with ${res.status}`); return null }
    const jar = new Jar()
    jar.seed(browser.cookieHeader(w.gw.url))
    jar.set('sg', jar.get('sg') ?? '', SESSION_TTL_S)
    const device = jar.get('sg-device')
    if (device === undefined || jar.get('sg') === undefined) { unexpected('login set no session or device cookie'); return null }
    counters.loginsReal++
    return { jar, sub: user, sid: device.slice(0, 22), real: true }
  }
  const sub = `mint-${agent}-${n}`
  const idpSid = randomBytes(16).toString('base64url')
  const m = await w.minter.session(sub, { idpSid })
  const jar = new Jar()
  jar.seed(m.session, SESSION_TTL_S)
  jar.set('sg-device', m.device)
  counters.loginsMinted++
  return { jar, sub, sid: m.sid, idpSid, real: false }
}

type Ending = 'rpGet' | 'rpPost' | 'delete' | 'bclSid' | 'bclSub' | 'abandon'
const ENDINGS: Array<[Ending, number]> = [['rpGet', 2], ['rpPost', 1], ['delete', 2], ['bclSid', 2], ['bclSub', 1], ['abandon', 2]]
type Action = 'get' | 'session' | 'renew' | 'anonymous' | 'loginStart'
/**
 * Half the sessions renew often (30% of their requests carry only the device cookie); the other half
 * never do it on purpose, so their cookies live long enough to be slid forward at half life.
 */
const ACTIONS_RENEWING: Array<[Action, number]> = [['get', 60], ['session', 8], ['renew', 30], ['anonymous', 1], ['loginStart', 0.5]]
const ACTIONS_SLIDING: Array<[Action, number]> = [['get', 90], ['session', 8], ['anonymous', 1], ['loginStart', 0.5]]

function pick<T> (weighted: Array<[T, number]>): T {
  let r = Math.random() * weighted.reduce((a, [, w]) => a + w, 0)
  for (const [v, w] of weighted) { r -= w; if (r <= 0) return v }
  return weighted[weighted.length - 1]![0]
}

function expectStatus (what: string, res: Answer, ...ok: number[]): boolean {
  if (ok.includes(res.status)) return true
  unexpected(res.status === 0 ? `${what}: no answer` : `${what} ${res.status}`)
  return false
}

/**
 * Like a page load before the page's script connects: a GET first when the session cookie is gone or
 * about to go. (A WebSocket or event stream opened on the device credential alone also renews, and its
 * 101 / stream head carries the new cookies; the driver models the usual page load order.)
 */
async function freshen (jar: Jar): Promise<void> {
  if (jar.sessionLeftMs() < 3000) expectStatus('GET / (page load)', await browse(jar, 'GET', '/'), 200)
}

/** One device's session from sign-in to its end. */
async function live (w: World, s: Session, agent: number, deadline: number): Promise<void> {
  const end = Math.min(deadline, Date.now() + rand(15_000, 50_000))
  const ending = pick(ENDINGS)
  const actions = Math.random() < 0.5 ? ACTIONS_RENEWING : ACTIONS_SLIDING
  // Half the devices go quiet once for longer than the session cookie lives (the held connections stay
  // open): the next request renews from the device credential, as after a coffee break.
  const quiet = SESSION_TTL_S * 1000 + rand(200, 1500)
  let quietAt = Math.random() < 0.5 && end - Date.now() > quiet + 4000 ? rand(Date.now() + 2000, end - quiet - 1000) : Infinity
  expectStatus('GET / (first)', await browse(s.jar, 'GET', '/'), 200)

  // Long-lived connections: each held until a random moment (closed by the client) or until the logout.
  const held: Array<{ h: Held, kind: 'ws' | 'sse', closeAt: number }> = []
  for (const kind of ['ws', 'sse'] as const) {
    if (Math.random() >= 0.35) continue
    await freshen(s.jar)
    const h = kind === 'ws' ? await openWebSocket(s.jar, `/ws/${agent}`) : await openEventStream(s.jar)
    if (h === null) { unexpected(`${kind} did not open`); continue }
    const untilLogout = ending !== 'abandon' && Math.random() < 0.6
    held.push({ h, kind, closeAt: untilLogout ? Infinity : rand(Date.now() + 2000, end) })
  }
  const closeHeld = async (x: { h: Held, kind: 'ws' | 'sse' }): Promise<void> => {
    await x.h.close()
    counters[x.kind === 'ws' ? 'wsClosedByClient' : 'sseClosedByClient']++
  }

  while (Date.now() < end) {
    for (const x of held.filter((x) => x.closeAt <= Date.now())) {
      held.splice(held.indexOf(x), 1)
      await closeHeld(x)
    }
    if (Date.now() >= quietAt) {
      quietAt = Infinity
      await sleep(quiet)
      continue
    }
    const action = pick(actions)
    if (action === 'get') {
      expectStatus('GET /', await browse(s.jar, 'GET', '/'), 200)
    } else if (action === 'session') {
      const res = await browse(s.jar, 'GET', '/auth/session')
      if (expectStatus('GET /auth/session', res, 200) && !res.body.includes(s.sid)) unexpected('GET /auth/session names another session')
    } else if (action === 'renew') {
      const res = await browse(s.jar, 'GET', '/', { deviceOnly: true })
      if (expectStatus('renewal', res, 200) && !(res.headers['set-cookie'] ?? []).some((l) => l.startsWith('sg-device=') && !l.startsWith('sg-device=;'))) unexpected('renewal without a rotated credential')
    } else if (action === 'anonymous') {
      expectStatus('anonymous GET /', await send('GET', '/', {}), 401)
    } else {
      counters.loginStarts++
      expectStatus('GET /auth/login', await send('GET', '/auth/login?remember=1', {}), 302)
    }
    await sleep(THINK_MS * rand(0.5, 1.5))
  }

  if (ending === 'abandon') {
    counters.abandoned++
    for (const x of held.splice(0)) await closeHeld(x)
    return
  }
  const before = s.jar.clone()
  let ok = false
  if (ending === 'rpGet') {
    ok = expectStatus('GET /auth/logout?sid', await browse(s.jar, 'GET', `/auth/logout?sid=${encodeURIComponent(s.sid)}`), 302)
    counters.logoutRpGet++
  } else if (ending === 'rpPost') {
    ok = expectStatus('POST /auth/logout', await browse(s.jar, 'POST', '/auth/logout', { headers: { 'x-csrf': '1' } }), 302)
    counters.logoutRpPost++
  } else if (ending === 'delete') {
    ok = expectStatus('DELETE /auth/sessions/:id', await browse(s.jar, 'DELETE', `/auth/sessions/${encodeURIComponent(s.sid)}`, { headers: { 'x-csrf': '1' } }), 204)
    counters.logoutDelete++
  } else {
    let claims: Record<string, unknown> = { sub: s.sub }
    if (ending === 'bclSid') {
      const idpSid = s.idpSid ?? (await w.store.getSession(s.sub, s.sid))?.idpSid
      if (idpSid !== undefined) claims = { sub: s.sub, sid: idpSid }
    }
    const token = await w.signLogout(claims)
    ok = expectStatus('back-channel logout', await send('POST', '/auth/backchannel-logout', { 'content-type': 'application/x-www-form-urlencoded' }, `logout_token=${token}`), 200)
    counters[claims.sid !== undefined ? 'logoutBclSid' : 'logoutBclSub']++
  }
  if (ok) {
    // The session is gone everywhere: the old cookies get 401, the held connections were closed.
    expectStatus('GET / after logout', await browse(before.clone(), 'GET', '/'), 401)
    expectStatus('renewal after logout', await browse(before.clone(), 'GET', '/', { deviceOnly: true }), 401)
    for (const x of held.splice(0)) {
      const how = await Promise.race([x.h.ended, sleep(WAIT_CLOSE_MS).then(() => 'timeout')])
      if (how === 'logout') counters[x.kind === 'ws' ? 'wsClosedByLogout' : 'sseEndedByLogout']++
      else {
        unexpected(`${x.kind} after logout: ${how}`)
        await x.h.close()
      }
    }
  }
  for (const x of held.splice(0)) await closeHeld(x)
}

async function device (w: World, agent: number, deadline: number): Promise<void> {
  // Start staggered, so the sessions do not all end together.
  await sleep(rand(0, 3000))
  for (let n = 0; Date.now() < deadline - 1000; n++) {
    const s = await newSession(w, agent, n)
    if (s === null) { await sleep(1000); continue }
    await live(w, s, agent, deadline)
  }
}

// ------------------------------------------------------------------ sampling

/** One sample: the gateway's vitals, the driver's counters, the gateway's CPU time so far and the machine's load. */
interface Sample { phase: 'idle-start' | 'traffic' | 'settle' | 'idle-end', v: Vitals, c: Counters, cpuMs: number | null, load1: number }
/** Seconds since traffic started (negative before). */
const tOf = (s: Sample): number => (s.v.at - trafficStart) / 1000

const samples: Sample[] = []
let phase: Sample['phase'] = 'idle-start'
let trafficStart = 0
const pending = new Map<number, (v: Vitals) => void>()
let nextId = 1
let gwCpuMs: () => number | null = () => null

function onChildMessage (msg: unknown): void {
  if (typeof msg !== 'object' || msg === null || !('soakSample' in msg)) return
  const m = msg as { soakSample: Vitals, id?: number }
  if (m.id !== undefined) {
    pending.get(m.id)?.(m.soakSample)
    pending.delete(m.id)
    return
  }
  record(m.soakSample)
}

function record (v: Vitals): Sample {
  const s: Sample = { phase, v, c: { ...counters }, cpuMs: gwCpuMs(), load1: os.loadavg()[0]! }
  samples.push(s)
  if (phase === 'traffic' && samples.filter((x) => x.phase === 'traffic').length % 6 === 0) {
    log(`t=${tOf(s).toFixed(0)}s rss ${v.rssMb.toFixed(1)} MB heap ${v.heapUsedMb.toFixed(1)} MB eld p99 ${v.eld.p99} ms fds ${v.fds} handles ${v.handles} conns ${v.gauges.connections ?? '-'} | ${counters.requests} requests, ${counters.renewals} renewals, ${counters.loginsReal}+${counters.loginsMinted} logins, ${counters.wsOpened} ws, ${counters.sseOpened} sse, ${counters.unexpected} unexpected`)
  }
  return s
}

/** A sample taken now (recorded with the current phase). */
async function sampleNow (gw: Child, detail = false): Promise<Sample> {
  const id = nextId++
  const v = await new Promise<Vitals>((resolve, reject) => {
    const timer = setTimeout(() => { pending.delete(id); reject(new Error('the gateway did not answer a sample request')) }, 10_000)
    pending.set(id, (x) => { clearTimeout(timer); resolve(x) })
    gw.send({ soak: 'sample', id, detail })
  })
  return record(v)
}

/** The gateway's TCP sockets by what they connect, e.g. `{ "to redis": 2, "listen": 2 }`. */
function classify (sockets: SocketInfo[] | undefined, ports: Record<string, number>): Record<string, number> {
  const name = (port: number): string => Object.entries(ports).find(([, p]) => p === port)?.[0] ?? `port ${port}`
  const out: Record<string, number> = {}
  for (const s of sockets ?? []) {
    const key = s.state === 'LISTEN'
      ? `listen ${name(s.localPort)}`
      : s.localPort === ports.gateway || s.localPort === ports.admin
        ? `from clients to ${name(s.localPort)}`
        : `to ${name(s.remotePort)}`
    const k = s.state === 'LISTEN' || s.state === 'ESTABLISHED' ? key : `${key} (${s.state})`
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}

/** Least-squares slope of y over x. */
function slope (xs: number[], ys: number[]): number {
  const n = xs.length
  if (n < 2) return NaN
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let sxy = 0
  let sxx = 0
  for (let i = 0; i < n; i++) { sxy += (xs[i]! - mx) * (ys[i]! - my); sxx += (xs[i]! - mx) ** 2 }
  return sxy / sxx
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

// ------------------------------------------------------------------ main

const cleanups: Array<() => Promise<unknown>> = []

async function main (): Promise<boolean> {
  const redis = await startRedis()
  cleanups.push(redis.stop)
  // The upstream closes idle connections after 5 s (Node's default; the main bench keeps them 60 s): the
  // gateway's proxy pool then shrinks back within the settle time.
  const upstream = await startChild('upstream', { ws: true, keepAliveTimeout: 5000 })
  cleanups.push(upstream.stop)
  const port = await freePort()
  const idp = await startIdp({
    hostname: '127.0.0.1',
    clients: [{
      client_id: 'gateway',
      client_secret: CLIENT_SECRET,
      redirect_uris: [`http://127.0.0.1:${port}/auth/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic'
    }]
  })
  cleanups.push(idp.close)
  const raw = {
    publicUrl: `http://127.0.0.1:${port}`,
    listen: { host: '127.0.0.1', port },
    admin: { listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN },
    logLevel: 'warn',
    oidc: { issuer: idp.issuer, clientId: 'gateway', clientSecret: CLIENT_SECRET, allowInsecureHttp: true, scopes: ['openid', 'profile', 'email', 'offline_access', 'groups'], prompt: 'consent' },
    session: { ttl: `${SESSION_TTL_S}s`, absoluteTtl: '12h', keys: [SESSION_KEY] },
    rememberMe: { ttl: '30d', rotationGrace: '5s' },
    store: { kind: 'redis', nearCache: true, redis: { url: redis.url } },
    routes: [{ prefix: '/', upstream: upstream.url, auth: 'required' }]
  }
  const config: Config = parseConfig(stringify(raw), {})
  const gw = await startChild('gateway', { config: raw, soak: { intervalMs: SAMPLE_MS } }, onChildMessage)
  cleanups.push(gw.stop)
  base = new URL(gw.url)
  gwCpuMs = () => gw.cpuMs()
  const ports = { gateway: port, admin: Number(new URL(gw.admin!).port), redis: redis.port, upstream: Number(new URL(upstream.url).port), IdP: idp.port }
  log(`redis ${redis.url}, upstream ${upstream.url}, IdP ${idp.issuer}, gateway ${gw.url} (pid ${gw.pid}); ${MINUTES} min of traffic from ${AGENTS} devices, ${LOGINS_PER_MIN} real logins/min`)

  // ---------------------------------------------------------------- primer: every path once
  const store = new RedisStore({ redis: redisOf(config.store) })
  cleanups.push(async () => { await store.close() })
  const browser = new SoakBrowser(UA)
  await login(browser, gw.url, 'soak-template', { remember: true })
  const me = (await browser.fetch(`${gw.url}/auth/session`)).json<{ sub: string, sid: string, claims: ProfileClaims }>()
  const template = await store.getSession(me.sub, me.sid)
  if (template === null) throw new Error('the real login left no session record')
  const key = await importJWK(idp.signingKey, 'RS256')
  const world: World = {
    gw,
    idp,
    store,
    minter: new Minter(config, store, template, me.claims),
    signLogout: async (claims) => {
      const now = Math.floor(Date.now() / 1000)
      return await new SignJWT({ ...claims, jti: randomBytes(12).toString('base64url'), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
        .setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid, typ: 'logout+jwt' })
        .setIssuer(idp.issuer).setAudience('gateway').setIssuedAt(now).setExpirationTime(now + 120).sign(key)
    }
  }
  {
    const s = await newSession(world, 999, 0)
    if (s === null) throw new Error('primer: no session')
    const ws = await openWebSocket(s.jar, '/ws/primer')
    const sse = await openEventStream(s.jar)
    if (ws === null || sse === null) throw new Error('primer: the WebSocket or the event stream did not open')
    await ws.close()
    const token = await world.signLogout({ sub: s.sub })
    if ((await send('POST', '/auth/backchannel-logout', { 'content-type': 'application/x-www-form-urlencoded' }, `logout_token=${token}`)).status !== 200) throw new Error('primer: back-channel logout refused')
    if (await Promise.race([sse.ended, sleep(WAIT_CLOSE_MS).then(() => 'timeout')]) !== 'logout') throw new Error('primer: the event stream did not end on logout')
  }
  if (counters.unexpected > 0) throw new Error(`primer: unexpected answers ${JSON.stringify([...reasons])}`)
  httpAgent.destroy()
  httpAgent = new http.Agent({ keepAlive: true, maxSockets: AGENTS * 2 })
  log(`primer done; idle ${SETTLE_MS / 1000} s for the baseline`)
  await sleep(SETTLE_MS)
  trafficStart = Date.now()
  const startSample = await sampleNow(gw, true)
  const socketsStart = classify(startSample.v.sockets, ports)
  log(`baseline: rss ${startSample.v.rssMb} MB, heap ${startSample.v.heapUsedMb} MB, fds ${startSample.v.fds} ${JSON.stringify(startSample.v.fdKinds)}, tcp ${JSON.stringify(socketsStart)}, handles ${startSample.v.handles} ${JSON.stringify(startSample.v.handleKinds)}`)

  // ---------------------------------------------------------------- traffic
  for (const k of COUNTERS) counters[k] = 0
  phase = 'traffic'
  trafficStart = Date.now()
  gw.send({ soak: 'reset' })
  const deadline = trafficStart + DURATION_MS
  const devices = Promise.all(Array.from({ length: AGENTS }, async (_, i) => await device(world, i, deadline)))
  // Every device stops by itself at the deadline; a stuck one is cut off 60 s later.
  const stuck = await Promise.race([devices.then(() => false), sleep(DURATION_MS + 60_000).then(() => true)])
  if (stuck) unexpected('a device was still busy 60 s after the deadline')
  const lastTraffic = await sampleNow(gw)
  log(`traffic stopped after ${((Date.now() - trafficStart) / 1000).toFixed(0)} s`)

  // ---------------------------------------------------------------- settle and count
  phase = 'settle'
  httpAgent.destroy()
  await sleep(SETTLE_MS)
  phase = 'idle-end'
  let endSample = await sampleNow(gw, true)
  // A connection still closing is not a leak: more fds than before get up to 60 s more to go away.
  for (let waited = 0; endSample.v.fds > startSample.v.fds + FD_TOLERANCE && waited < 60_000; waited += 5000) {
    log(`fds ${endSample.v.fds} > ${startSample.v.fds} + ${FD_TOLERANCE}: tcp ${JSON.stringify(classify(endSample.v.sockets, ports))}; waiting`)
    await sleep(5000)
    endSample = await sampleNow(gw, true)
  }
  const socketsEnd = classify(endSample.v.sockets, ports)
  log(`after the run, idle: rss ${endSample.v.rssMb} MB, heap ${endSample.v.heapUsedMb} MB, fds ${endSample.v.fds} ${JSON.stringify(endSample.v.fdKinds)}, tcp ${JSON.stringify(socketsEnd)}, handles ${endSample.v.handles} ${JSON.stringify(endSample.v.handleKinds)}, registry ${endSample.v.gauges.connections}`)
  const metrics = (await rawRequest(new URL(gw.admin!), 'GET', '/metrics', { connection: 'close' })).body
  const gwAlive = !gw.exited()

  // ---------------------------------------------------------------- analysis
  const traffic = samples.filter((s) => s.phase === 'traffic')
  const fit = traffic.filter((s) => tOf(s) * 1000 >= WARMUP_MS)
  const rawHeapSlope = slope(fit.map((s) => tOf(s) / 60), fit.map((s) => s.v.heapUsedMb))
  const rssSlope = slope(fit.map((s) => tOf(s) / 60), fit.map((s) => s.v.rssMb))
  // The verdict's slope: the live heap after each full collection (after warm-up, during traffic); the
  // fit over every 5 s heapUsed sample is kept for reference (it rides the garbage sawtooth). With fewer
  // than 4 full collections after warm-up (a very short run), the raw samples decide.
  const trafficEnd = lastTraffic.v.at
  // The gate caches opened cookies (src/http/gate.ts, UnsealCache: 10,000 entries, then first in, first
  // out); the heap grows until it is full. When the driver had received that many new session cookies:
  const cacheFullAt = traffic.find((s) => s.c.cookiesIssued >= 10_000)
  const majors = samples.flatMap((s) => s.v.majorGcs).filter((g) => g.at >= trafficStart + WARMUP_MS && g.at <= trafficEnd)
  const gcHeapSlope = slope(majors.map((g) => (g.at - trafficStart) / 60_000), majors.map((g) => g.heapAfterMb))
  const heapSeries = majors.length >= 4 ? 'heap after each full GC' : 'heapUsed samples (too few full GCs)'
  const heapSlope = majors.length >= 4 ? gcHeapSlope : rawHeapSlope
  const afterWarmup = fit[0]
  const perMinute = []
  let prev: Counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Counters
  let prevT = 0
  let prevCpu = startSample.cpuMs
  // Minute m holds the samples of (m, m + 1] minutes; the last one also those taken while devices finished.
  const minutes = Math.ceil(MINUTES)
  const minuteOf = (s: Sample): number => Math.max(0, Math.min(minutes - 1, Math.ceil(tOf(s) / 60) - 1))
  for (let m = 0; m < minutes; m++) {
    const inMinute = traffic.filter((s) => minuteOf(s) === m)
    if (inMinute.length === 0) continue
    const last = inMinute[inMinute.length - 1]!
    const d = (k: CounterName): number => last.c[k] - prev[k]
    perMinute.push({
      minute: m + 1,
      requests_per_s: round(d('requests') / (tOf(last) - prevT), 0),
      renewals: d('renewals'),
      slides: d('slides'),
      logins_real: d('loginsReal'),
      logins_minted: d('loginsMinted'),
      logouts: d('logoutRpGet') + d('logoutRpPost') + d('logoutDelete') + d('logoutBclSid') + d('logoutBclSub'),
      ws_opened: d('wsOpened'),
      sse_opened: d('sseOpened'),
      unexpected: d('unexpected'),
      rss_mb: round(last.v.rssMb, 1),
      heap_used_mb: round(median(inMinute.map((s) => s.v.heapUsedMb)), 1),
      heap_after_gc_mb: (() => { const g = inMinute.flatMap((s) => s.v.majorGcs); return g.length > 0 ? round(g[g.length - 1]!.heapAfterMb, 1) : null })(),
      full_gcs: inMinute.reduce((a, s) => a + s.v.majorGcs.length, 0),
      gc_pause_max_ms: round(Math.max(0, ...inMinute.flatMap((s) => s.v.majorGcs.map((g) => g.pauseMs))), 1),
      gateway_cpu_pct: last.cpuMs !== null && prevCpu !== null ? round((last.cpuMs - prevCpu) / ((tOf(last) - prevT) * 10), 0) : null,
      load_avg_1m: round(last.load1, 1),
      eld_p50_ms: round(median(inMinute.map((s) => s.v.eld.p50)), 2),
      eld_p99_ms: round(Math.max(...inMinute.map((s) => s.v.eld.p99)), 2),
      eld_max_ms: round(Math.max(...inMinute.map((s) => s.v.eld.max)), 1),
      fds_max: Math.max(...inMinute.map((s) => s.v.fds)),
      handles_max: Math.max(...inMinute.map((s) => s.v.handles)),
      held_connections: last.v.gauges.connections ?? null,
      near_cache_entries: last.v.gauges.nearCacheEntries ?? null
    })
    prev = last.c
    prevT = tOf(last)
    prevCpu = last.cpuMs
  }
  const total = lastTraffic.c
  const read = (name: string, label: string): number => Number(new RegExp(`^${name}\\{${label}\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? 0)
  const gatewayCounts = {
    renewals_rotated: read('sessiongate_renewals_total', 'result="rotated"'),
    renewals_grace: read('sessiongate_renewals_total', 'result="grace"'),
    renewals_reuse: read('sessiongate_renewals_total', 'result="reuse"'),
    logouts: Object.fromEntries(['rp', 'self', 'backchannel', 'reuse'].map((c) => [c, read('sessiongate_logouts_total', `channel="${c}"`)])),
    http_5xx: [...metrics.matchAll(/^sessiongate_http_requests_total\{[^}]*status="5\d\d"\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0)
  }
  const unexpectedShare = total.unexpected / Math.max(1, total.requests)
  const checks = [
    { name: `heap slope after warm-up < ${HEAP_SLOPE_LIMIT} MB/min (${heapSeries})`, value: round(heapSlope, 3), ok: Number.isFinite(heapSlope) && heapSlope < HEAP_SLOPE_LIMIT },
    { name: `idle fds after the run <= before + ${FD_TOLERANCE}`, value: `${startSample.v.fds} -> ${endSample.v.fds}`, ok: endSample.v.fds <= startSample.v.fds + FD_TOLERANCE },
    { name: 'no long-lived connection left in the registry', value: endSample.v.gauges.connections ?? null, ok: (endSample.v.gauges.connections ?? 0) === 0 },
    { name: `unexpected answers <= ${UNEXPECTED_BUDGET * 100}% of requests, no 5xx`, value: `${total.unexpected} of ${total.requests}, 5xx ${gatewayCounts.http_5xx}`, ok: unexpectedShare <= UNEXPECTED_BUDGET && gatewayCounts.http_5xx === 0 },
    { name: 'the gateway process stayed up', value: gwAlive, ok: gwAlive }
  ]
  const pass = checks.every((c) => c.ok)
  const eldTotal = lastTraffic.v.eldTotal
  const summary = {
    heap_slope_mb_per_min: round(heapSlope, 3),
    heap_slope_series: heapSeries,
    heap_after_full_gc_slope_mb_per_min: round(gcHeapSlope, 3),
    full_gcs_after_warmup: majors.length,
    heap_used_samples_slope_mb_per_min: round(rawHeapSlope, 3),
    heap_used_samples_after_warmup: fit.length,
    rss_slope_mb_per_min: round(rssSlope, 3),
    unseal_cache_full_after_s: cacheFullAt !== undefined ? round(tOf(cacheFullAt), 0) : null,
    heap_after_full_gc_mb: { first_after_warmup: majors[0]?.heapAfterMb ?? null, last: majors[majors.length - 1]?.heapAfterMb ?? null, min: round(Math.min(...majors.map((g) => g.heapAfterMb)), 1), max: round(Math.max(...majors.map((g) => g.heapAfterMb)), 1) },
    rss_mb: { idle_start: startSample.v.rssMb, after_warmup: afterWarmup?.v.rssMb ?? null, traffic_end: lastTraffic.v.rssMb, idle_end: endSample.v.rssMb },
    heap_used_mb: { idle_start: startSample.v.heapUsedMb, after_warmup: afterWarmup?.v.heapUsedMb ?? null, traffic_end: lastTraffic.v.heapUsedMb, idle_end: endSample.v.heapUsedMb },
    eld_ms_over_traffic: { p50: eldTotal.p50, p99: eldTotal.p99, max: eldTotal.max },
    fds: { idle_start: startSample.v.fds, peak: Math.max(...traffic.map((s) => s.v.fds)), idle_end: endSample.v.fds, kinds_start: startSample.v.fdKinds, kinds_end: endSample.v.fdKinds, tcp_start: socketsStart, tcp_end: socketsEnd },
    handles: { idle_start: startSample.v.handles, peak: Math.max(...traffic.map((s) => s.v.handles)), idle_end: endSample.v.handles, kinds_start: startSample.v.handleKinds, kinds_end: endSample.v.handleKinds },
    traffic: { ...total, requests_per_s: round(total.requests / ((lastTraffic.v.at - trafficStart) / 1000), 0) },
    unexpected_kinds: Object.fromEntries(reasons),
    gateway_metrics: gatewayCounts
  }

  // ---------------------------------------------------------------- report
  const head = ['min', 'req/s', 'renew', 'slide', 'login r+m', 'logout', 'ws', 'sse', 'unexp', 'RSS MB', 'heap MB', 'after GC', 'ELD p50', 'p99', 'max ms', 'fds', 'handles', 'held', 'cpu %', 'load']
  const cells = perMinute.map((r) => [r.minute, r.requests_per_s, r.renewals, r.slides, `${r.logins_real}+${r.logins_minted}`, r.logouts, r.ws_opened, r.sse_opened, r.unexpected, r.rss_mb, r.heap_used_mb, r.heap_after_gc_mb, r.eld_p50_ms, r.eld_p99_ms, r.eld_max_ms, r.fds_max, r.handles_max, r.held_connections, r.gateway_cpu_pct, r.load_avg_1m].map((x) => String(x ?? '-')))
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
  const line = (c: string[]): string => `| ${c.map((x, i) => x.padStart(widths[i]!)).join(' | ')} |`
  console.log(`\n${line(head)}\n|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|`)
  for (const c of cells) console.log(line(c))
  console.log(`\nheap slope after warm-up (${WARMUP_MS / 1000} s): ${summary.heap_after_full_gc_slope_mb_per_min} MB/min over the heap after each of ${majors.length} full GCs (${summary.heap_after_full_gc_mb.first_after_warmup} -> ${summary.heap_after_full_gc_mb.last} MB); ${summary.heap_used_samples_slope_mb_per_min} MB/min over ${fit.length} heapUsed samples; RSS ${summary.rss_slope_mb_per_min} MB/min`)
  console.log(`the gate's unseal cache (10,000 cookies) was full ${cacheFullAt !== undefined ? `after about ${tOf(cacheFullAt).toFixed(0)} s of traffic` : 'at no time'} (warm-up ${WARMUP_MS / 1000} s)`)
  if (cacheFullAt === undefined || tOf(cacheFullAt) * 1000 > WARMUP_MS) console.log('  note: it was still filling after warm-up; that bounded growth (about 1 KB per cookie) is in the heap slope')
  console.log(`RSS ${startSample.v.rssMb} MB idle before -> ${afterWarmup?.v.rssMb ?? '-'} after warm-up -> ${lastTraffic.v.rssMb} at the end of traffic -> ${endSample.v.rssMb} idle after`)
  console.log(`event-loop delay over the traffic: p50 ${eldTotal.p50} ms, p99 ${eldTotal.p99} ms, max ${eldTotal.max} ms`)
  console.log(`fds idle ${startSample.v.fds} before, ${summary.fds.peak} peak, ${endSample.v.fds} idle after; handles ${startSample.v.handles} / ${summary.handles.peak} / ${endSample.v.handles}`)
  console.log(`traffic: ${JSON.stringify(summary.traffic)}`)
  if (reasons.size > 0) console.log(`unexpected: ${JSON.stringify(summary.unexpected_kinds)}`)
  console.log('\nChecks:')
  for (const c of checks) console.log(`  ${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${String(c.value)}`)
  console.log(`\n${pass ? 'PASS' : 'FAIL'}`)

  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.platform()} ${os.release()}, node ${process.version}`
  const out = {
    machine,
    date: new Date().toISOString(),
    verdict: pass ? 'PASS' : 'FAIL',
    settings: { minutes: MINUTES, devices: AGENTS, real_logins_per_min: LOGINS_PER_MIN, think_ms: THINK_MS, session_ttl_s: SESSION_TTL_S, sample_ms: SAMPLE_MS, warmup_s: WARMUP_MS / 1000, settle_s: SETTLE_MS / 1000, store: 'redis, near cache on' },
    checks,
    summary,
    per_minute: perMinute,
    samples: samples.map((s) => ({
      t: round(tOf(s), 1),
      phase: s.phase,
      rss_mb: s.v.rssMb,
      heap_used_mb: s.v.heapUsedMb,
      heap_total_mb: s.v.heapTotalMb,
      full_gcs: s.v.majorGcs.map((g) => ({ t: round((g.at - trafficStart) / 1000, 1), heap_after_mb: g.heapAfterMb, pause_ms: g.pauseMs })),
      minor_gcs: s.v.minorGcs,
      external_mb: s.v.externalMb,
      eld_p50_ms: s.v.eld.p50,
      eld_p99_ms: s.v.eld.p99,
      eld_max_ms: s.v.eld.max,
      fds: s.v.fds,
      handles: s.v.handles,
      ...s.v.gauges,
      requests: s.c.requests
    }))
  }
  await mkdir(dirname(OUT), { recursive: true })
  await writeFile(OUT, `${JSON.stringify(out, null, 2)}\n`)
  log(`wrote ${OUT}`)
  return pass
}

let passed = false
try {
  passed = await main()
} catch (err) {
  console.error(err)
} finally {
  for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => { console.error('cleanup:', err) })
  log('done')
}
// Open handles (the IdP's keep-alive sockets, ioredis timers) must not keep us alive.
process.exit(passed ? 0 : 1)
