/**
 * The session service (src/session/) driven through every decision with no HTTP server: real stores
 * (memory, and Redis through the test harness), real sealing, a clock the tests move.
 */
import { createHmac, randomBytes } from 'node:crypto'
import t from 'tap'
import { KeyRing } from '../../src/core/sealed-cookie.js'
import { formatDeviceCookie, hashCredential, newCredential, newSessionId } from '../../src/core/device.js'
import { issueSession, type SessionClaims } from '../../src/core/session.js'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis.js'
import { NearCacheStore } from '../../src/store/near-cache.js'
import type { Store } from '../../src/store/store.js'
import { createSeals, type Seals } from '../../src/session/seals.js'
import { createSessionService, type SessionService } from '../../src/session/service.js'
import type { CheckResult, IdpSource, SessionCounters, SessionSettings } from '../../src/session/deps.js'
import type { OidcClient } from '../../src/oidc/client.js'
import type { CookieOp, Decision, RequestFacts, ResolveOptions } from '../../src/session/types.js'
import { startRedis } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/store-kit.js'
import { createLogger } from '../../src/log.js'

const TTL = 300
const GRACE = 10

/** A request as the service sees it: a logger that keeps what it was told. */
function facts (): RequestFacts & { lines: string[] } {
  const lines: string[] = []
  return { ip: '192.0.2.1', headers: { 'user-agent': 'unit' }, log: { info: (_o, m) => { lines.push(m ?? '') }, warn: (_o, m) => { lines.push(m ?? '') } }, lines }
}

/** An IdP that is never reached: these tests hold no refresh tokens and start no logins. */
const noIdp: IdpSource = { get: async () => { throw new Error('no IdP in this test') }, current: () => undefined }

interface Rig {
  store: Store
  seals: Seals
  service: SessionService
  counts: Record<string, number>
  clock: { now: number }
  /** Creates a device record as a login does; returns its cookies' values. */
  login (sub: string, opts?: { remember?: boolean }): Promise<{ claims: SessionClaims, sealed: string, device: string, legacyDevice: string, sid: string }>
  resolve (sealed: string | undefined, device?: string, opts?: ResolveOptions): Promise<Decision>
}

function rig (store: Store, failMode: 'open' | 'closed' = 'closed', opts: { idp?: IdpSource, checkIdp?: boolean, keepsAccessToken?: boolean } = {}): Rig {
  const seals = createSeals(new KeyRing([randomBytes(32)]))
  const clock = { now: Math.floor(Date.now() / 1000) }
  const counts: Record<string, number> = {}
  const count = (k: string): void => { counts[k] = (counts[k] ?? 0) + 1 }
  const counters: SessionCounters = {
    check: (r: CheckResult) => { count(`check:${r}`) },
    renewal: (r) => { count(`renewal:${r}`) },
    storeError: () => { count('store_error') },
    reuse: () => { count('reuse') },
    logout: (c) => { count(`logout:${c}`) }
  }
  const settings: SessionSettings = {
    session: { ttl: TTL, absoluteTtl: 3600 },
    rememberMe: { enabled: true, ttl: 86400, rotationGrace: GRACE, checkIdp: opts.checkIdp ?? false },
    failMode,
    keepsAccessToken: opts.keepsAccessToken ?? false,
    redirectUri: 'https://gw.example/auth/callback',
    scopes: ['openid'],
    postLogoutRedirectUri: 'https://gw.example/',
    identity: { user: 'sub', groups: 'groups', headers: {} },
    keptPaths: []
  }
  const service = createSessionService({ store, seals, idp: opts.idp ?? noIdp, settings, counters, nowMs: () => clock.now * 1000 })
  return {
    store,
    seals,
    service,
    counts,
    clock,
    async login (sub, opts = {}) {
      const sid = newSessionId()
      const credential = newCredential()
      const now = clock.now
      const profile = { email: `${sub}@example.com` }
      const version = await store.createSession({
        sid, sub, iss: 'https://idp.example', createdAt: now * 1000, lastSeenAt: now * 1000, userAgent: 'unit', ip: '192.0.2.1',
        rememberMe: opts.remember ?? true, expiresAt: (now + 86400) * 1000, credHash: hashCredential(credential),
        tokens: seals.tokens.seal({ idToken: 'id-token', refreshToken: 'rt-1', at: 'at-1', atExp: now + 30, profile })
      }, 86400 + TTL)
      const claims = issueSession({ sid, sub, iss: 'https://idp.example', ver: version, epoch: await store.epoch(), authTime: now, rememberMe: true, profile, at: 'at-1', atExp: now + 30, loginAt: now }, now, TTL, 3600)
      return { claims, sealed: seals.session.seal(claims), device: formatDeviceCookie(sid, credential, sub), legacyDevice: formatDeviceCookie(sid, credential), sid }
    },
    async resolve (sealed, device, opts = {}) {
      return await service.resolve(sealed, device, clock.now, opts, facts())
    }
  }
}

const ops = (d: Decision): string[] => d.cookies.map((c) => c.op)
const deviceValue = (cookies: readonly CookieOp[]): string | undefined => {
  const c = cookies.find((x) => x.op === 'device')
  return c?.op === 'device' ? c.value : undefined
}
const sessionValue = (cookies: readonly CookieOp[]): string | undefined => {
  const c = cookies.find((x) => x.op === 'session')
  return c?.op === 'session' ? c.value : undefined
}

t.test('live: a cookie in time, not revoked, is answered synchronously and with the same object each time', async (t) => {
  const r = rig(new MemoryStore())
  const { sealed, claims } = await r.login('alice')
  const first = r.service.resolve(sealed, undefined, r.clock.now, {}, facts())
  t.notOk(first instanceof Promise, 'memory store peeks: no promise on the hot path')
  const d = first as Decision
  t.equal(d.kind, 'live')
  t.same(d.kind === 'live' ? d.session : null, claims)
  t.same(d.cookies, [], 'nothing to write')
  t.equal(r.service.resolve(sealed, undefined, r.clock.now, {}, facts()), d, 'the decision object is reused (nothing allocated)')
  t.equal(r.counts['check:live'], 2)
})

t.test('slid: past half its life the cookie is re-sealed with a new expiry, never past absExp', async (t) => {
  const r = rig(new MemoryStore())
  const { sealed, claims } = await r.login('bob')
  r.clock.now += TTL / 2 + 1
  const d = await r.resolve(sealed)
  t.equal(d.kind, 'slid')
  if (d.kind !== 'slid') return
  t.equal(d.from, r.service.cookieSession(sealed), 'slid from the opened cookie')
  t.equal(d.session.exp, r.clock.now + TTL)
  t.equal(d.session.sid, claims.sid, 'same session')
  t.same(ops(d), ['session'])
  const value = sessionValue(d.cookies)!
  t.same(r.seals.session.open(value), d.session, 'the cookie carries the slid claims')
  t.equal((await r.resolve(value)).kind, 'live', 'the new cookie is live')
})

t.test('expired and invalid cookies: anonymous, their session cookie cleared', async (t) => {
  const r = rig(new MemoryStore())
  const { sealed } = await r.login('carol')
  t.same(await r.resolve(undefined), { kind: 'anonymous', cookies: [] }, 'no cookie at all')
  const junk = await r.resolve('v1.abcdefgh.x.y.z')
  t.equal(junk.kind, 'anonymous')
  t.same(ops(junk), ['clear-session'])
  r.clock.now += TTL
  const expired = await r.resolve(sealed)
  t.equal(expired.kind, 'anonymous')
  t.same(ops(expired), ['clear-session'])
  t.equal(r.counts['check:expired'], 1)
  t.equal(r.counts['check:invalid'], 1)
  const quiet = await r.resolve(sealed, undefined, { oneCookie: true })
  t.same(quiet, { kind: 'anonymous', cookies: [] }, 'forward-auth clears nothing')
})

t.test('revoked by the denylist: refused, every cookie cleared', async (t) => {
  const r = rig(new MemoryStore())
  const { sealed, claims } = await r.login('dave')
  await r.service.revoke.session('dave', claims.sid, 'self', facts().log)
  const d = await r.resolve(sealed)
  t.same(d, { kind: 'refused', reason: 'denied', cookies: [{ op: 'clear-session' }, { op: 'clear-device' }] })
  t.equal(r.counts['logout:self'], 1)
  t.same(r.service.cookieSession(sealed), claims, 'the cookie still names its session (a logout retry finishes it)')
})

t.test('revoked by the user version: every session of the user refused', async (t) => {
  const r = rig(new MemoryStore())
  const a = await r.login('erin')
  const b = await r.login('erin')
  t.equal(await r.service.revoke.user('erin', 'admin', facts().log), 2, 'both records deleted')
  for (const s of [a, b]) t.equal((await r.resolve(s.sealed)).kind, 'refused')
  // A cookie of the user issued before the revocation whose sid was never denylisted: the version alone refuses it.
  const older = r.seals.session.seal({ ...a.claims, sid: newSessionId() })
  const d = await r.resolve(older)
  t.equal(d.kind === 'refused' ? d.reason : d.kind, 'version')
  const fresh = await r.login('erin')
  t.equal((await r.resolve(fresh.sealed)).kind, 'live', 'a login after the revocation carries the new version')
})

t.test('revoked by the epoch: a cookie from another store epoch is refused', async (t) => {
  const r = rig(new MemoryStore())
  const { claims } = await r.login('frank')
  const foreign = r.seals.session.seal({ ...claims, epoch: 'another-epoch.1' })
  const d = await r.resolve(foreign)
  t.equal(d.kind, 'refused')
  t.equal(d.kind === 'refused' ? d.reason : '', 'epoch')
})

t.test('store down: failMode closed answers unavailable, failMode open admits on the cookie', async (t) => {
  for (const mode of ['closed', 'open'] as const) {
    const store = new MemoryStore()
    const r = rig(store, mode)
    const { sealed, claims } = await r.login(`gina-${mode}`)
    await store.close()
    const d = await r.resolve(sealed)
    if (mode === 'closed') {
      t.equal(d.kind, 'unavailable', 'closed: 503')
      t.same(d.cookies, [], 'no cookie touched')
      t.equal(r.counts['check:store_unavailable'], 1)
    } else {
      t.equal(d.kind, 'live', 'open: the cookie alone decides')
      t.equal(d.kind === 'live' ? d.failOpen : undefined, true)
      t.same(d.kind === 'live' ? d.session : null, claims)
      t.equal(r.counts['check:fail_open'], 1)
    }
    t.equal(r.counts.store_error, 1)
  }
})

t.test('renewed: the device credential mints a session and is rotated; a parallel request gets grace', async (t) => {
  const r = rig(new MemoryStore())
  const { device, claims } = await r.login('hank')
  r.clock.now += TTL + 1 // the session cookie is gone
  const d = await r.resolve(undefined, device)
  t.equal(d.kind, 'renewed')
  if (d.kind !== 'renewed') return
  t.equal(d.rotation, 'rotated')
  t.equal(d.session.sid, claims.sid, 'same device, same session id')
  t.same(d.session.profile, claims.profile, 'the profile comes from the sealed token bundle')
  t.same(ops(d), ['device', 'session'], 'a new device credential and a new session cookie')
  const rotated = deviceValue(d.cookies)!
  t.not(rotated, device, 'rotated')
  t.same(r.seals.session.open(sessionValue(d.cookies)!), d.session)
  const rec = await r.store.getSession('hank', claims.sid)
  t.equal(rec?.userAgent, 'unit', 'last seen recorded')

  const parallel = await r.resolve(undefined, device)
  t.equal(parallel.kind, 'renewed')
  t.equal(parallel.kind === 'renewed' ? parallel.rotation : '', 'grace', 'the previous credential works within the grace window')
  t.same(ops(parallel), ['session'], 'grace writes no device cookie')

  const next = await r.resolve(undefined, rotated)
  t.equal(next.kind === 'renewed' ? next.rotation : next.kind, 'rotated', 'the new credential rotates in turn')
  t.equal(r.counts['renewal:rotated'], 2)
  t.equal(r.counts['renewal:grace'], 1)
})

t.test('a device cookie of the previous format (no user in it) renews, and gets the new format', async (t) => {
  const r = rig(new MemoryStore())
  const { legacyDevice, device, sid } = await r.login('hal')
  t.not(legacyDevice, device)
  const d = await r.resolve(undefined, legacyDevice)
  t.equal(d.kind === 'renewed' ? d.rotation : d.kind, 'rotated')
  const next = deviceValue(d.cookies)!
  t.ok(next.startsWith(`${sid}.`) && next.length > legacyDevice.length, 'the rotated cookie carries the user')
  t.equal((await r.resolve(undefined, next)).kind, 'renewed')
})

t.test('a device cookie naming another user finds nothing and revokes nothing', async (t) => {
  const r = rig(new MemoryStore())
  const victim = await r.login('ann')
  const forged = formatDeviceCookie(victim.sid, newCredential(), 'mallory')
  const d = await r.resolve(undefined, forged)
  t.equal(d.kind === 'refused' ? d.reason : d.kind, 'unknown_device')
  t.ok(await r.store.getSession('ann', victim.sid), 'the real device is untouched')
  t.equal((await r.resolve(undefined, victim.device)).kind, 'renewed', 'and still renews')
})

t.test('renewal after an expired session cookie clears it first, then writes the new one', async (t) => {
  const r = rig(new MemoryStore())
  const { sealed, device } = await r.login('ivy')
  r.clock.now += TTL
  const d = await r.resolve(sealed, device)
  t.equal(d.kind, 'renewed')
  t.same(ops(d), ['clear-session', 'device', 'session'])
})

t.test('reuse: a rotated-away credential after the grace window revokes the device', async (t) => {
  const r = rig(new MemoryStore())
  const { device, sid } = await r.login('jack')
  r.clock.now += TTL + 1
  const d = await r.resolve(undefined, device)
  t.equal(d.kind, 'renewed')
  r.clock.now += GRACE + 1
  const stolen = await r.resolve(undefined, device)
  t.same(stolen, { kind: 'refused', reason: 'reuse', cookies: [{ op: 'clear-session' }, { op: 'clear-device' }] })
  t.equal(await r.store.getSession('jack', sid), null, 'the device record is gone')
  t.equal(r.counts.reuse, 1)
  t.equal(r.counts['logout:reuse'], 1)
  const owner = await r.resolve(undefined, deviceValue(d.cookies)!)
  t.equal(owner.kind, 'refused', 'the rightful holder is signed out too')
})

t.test('renewal refused: malformed, unknown, revoked device, or a revoked user', async (t) => {
  const r = rig(new MemoryStore())
  t.equal((await r.resolve(undefined, 'junk')).kind === 'refused' && r.counts['renewal:malformed'], 1, 'malformed')
  const unknown = await r.resolve(undefined, formatDeviceCookie(newSessionId(), newCredential()))
  t.equal(unknown.kind === 'refused' ? unknown.reason : '', 'unknown_device')
  const revoked = await r.login('kim')
  await r.service.revoke.session('kim', revoked.sid, 'self', facts().log)
  const d1 = await r.resolve(undefined, revoked.device)
  t.equal(d1.kind === 'refused' ? d1.reason : '', 'unknown_device', 'its record went with the revocation')
  const guessed = await r.login('lou')
  const wrong = formatDeviceCookie(guessed.sid, newCredential())
  const d2 = await r.resolve(undefined, wrong)
  t.equal(d2.kind === 'refused' ? d2.reason : '', 'unknown', 'a guessed credential is refused')
  t.ok(await r.store.getSession('lou', guessed.sid), 'and signs nobody out')
  const quiet = await r.resolve(undefined, guessed.device, { oneCookie: true })
  t.same(quiet, { kind: 'anonymous', cookies: [] }, 'forward-auth never renews')
})

t.test('renewal needs the store whatever failMode says', async (t) => {
  const store = new MemoryStore()
  const r = rig(store, 'open')
  const { device } = await r.login('max')
  await store.close()
  const d = await r.resolve(undefined, device)
  t.equal(d.kind, 'unavailable')
  t.equal(r.counts.store_error, 1)
})

t.test('revokeOwn: only the caller\'s own sessions; a half-done sign-out is finished', async (t) => {
  const r = rig(new MemoryStore())
  const mine = await r.login('nia')
  const theirs = await r.login('oscar')
  const log = facts().log
  t.equal(await r.service.revokeOwn({ sub: 'nia' }, theirs.sid, log), 'not_found')
  t.ok(await r.store.getSession('oscar', theirs.sid), 'another user\'s session untouched')
  t.equal(await r.service.revokeOwn({ sub: 'nia' }, mine.sid, log), 'revoked')
  t.equal(await r.service.revokeOwn({ sub: 'nia' }, mine.sid, log), 'not_found', 'gone: not found by default')
  t.equal(await r.service.revokeOwn({ sub: 'nia' }, mine.sid, log, { finishHalfDone: true }), 'revoked', 'but its denylist entry lets the devices page finish it')
  t.same(await r.service.sessionsOf('nia'), [])
})

t.test('Redis: live, revoked by the denylist, and store down with failMode closed', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const store = new RedisStore({ redis: { url: server.url, keyPrefix: `sgu${randomBytes(4).toString('hex')}:`, commandTimeoutMs: 2000 }, logger: createLogger('silent') })
  t.teardown(() => store.close())
  await store.ping()
  const r = rig(store)
  const { sealed, claims } = await r.login('pat')
  const live = r.service.resolve(sealed, undefined, r.clock.now, {}, facts())
  t.ok(live instanceof Promise, 'no near cache: the check is a round trip')
  t.equal((await live).kind, 'live')
  await r.service.revoke.session('pat', claims.sid, 'backchannel', facts().log)
  const d = await r.resolve(sealed)
  t.equal(d.kind === 'refused' ? d.reason : d.kind, 'denied')
  const other = await r.login('quinn')

  // Behind the near cache: once the cookie was opened and its state read, the decision is synchronous.
  const cached = rig(new NearCacheStore(new RedisStore({ redis: { url: server.url, keyPrefix: `sgn${randomBytes(4).toString('hex')}:`, commandTimeoutMs: 2000 }, logger: createLogger('silent') })))
  t.teardown(() => cached.store.close())
  await waitFor(async () => { await cached.store.ping() }, 10_000) // connected and subscribed
  const n = await cached.login('rae')
  t.equal((await cached.resolve(n.sealed)).kind, 'live', 'first: read from Redis')
  // The near cache answers only while the subscription vouches for its events (a heartbeat within its
  // lease); on a loaded machine a heartbeat can be late, so the read is retried until one is on time.
  let hit = cached.service.resolve(n.sealed, undefined, cached.clock.now, {}, facts())
  for (let i = 0; i < 50 && hit instanceof Promise; i++) {
    await hit
    await new Promise((resolve) => setTimeout(resolve, 100))
    hit = cached.service.resolve(n.sealed, undefined, cached.clock.now, {}, facts())
  }
  t.notOk(hit instanceof Promise, 'then answered without a promise')
  t.equal((hit as Decision).kind, 'live')
  t.equal(cached.service.resolve(n.sealed, undefined, cached.clock.now, {}, facts()), hit, 'and with the same decision object')
  await cached.service.revoke.session('rae', n.sid, 'self', facts().log)
  const after = await cached.service.resolve(n.sealed, undefined, cached.clock.now, {}, facts())
  t.equal(after.kind === 'refused' ? after.reason : after.kind, 'denied', 'this replica\'s revocation reaches its near cache at once')

  await server.kill()
  t.equal((await r.resolve(other.sealed)).kind, 'unavailable', 'closed: 503')
})

t.test('seals: each purpose opens only its own values; the form token and key checks need no key outside the ring', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const before = createSeals(new KeyRing([oldKey]))
  const after = createSeals(new KeyRing([newKey, oldKey]))
  const bundle = before.tokens.seal({ idToken: 'x' })
  t.same(after.tokens.open(bundle), { idToken: 'x' }, 'an older key still opens')
  t.notOk(after.tokens.isCurrent(bundle), 'but is not the current one')
  t.ok(after.tokens.isCurrent(after.tokens.seal({ idToken: 'x' })))
  t.equal(after.session.open(bundle), null, 'a token bundle never opens as a session')
  t.equal(after.loginTx.open(after.session.seal({} as SessionClaims)), null, 'nor a session as a login transaction')
  // The devices page's form token is what it was before it moved behind the sealers.
  const sid = newSessionId()
  t.equal(after.devicesFormToken(sid), createHmac('sha256', newKey).update(`devices-csrf:${sid}`).digest('base64url'))
  t.not(after.devicesFormToken(sid), after.devicesFormToken(newSessionId()), 'bound to the session')
})

/** An IdP whose refresh grant answers as told (the only IdP call these paths make). */
function refreshingIdp (answer: () => Promise<{ accessToken: string, accessTokenExp?: number, refreshToken?: string }>): IdpSource & { calls: number } {
  const idp = {
    calls: 0,
    current: () => undefined,
    get: async () => ({ refresh: async () => { idp.calls++; return await answer() } }) as unknown as OidcClient
  }
  return idp
}

t.test('a forwarded access token about to expire is refreshed once, and the cookie slid with it', async (t) => {
  const idp = refreshingIdp(async () => ({ accessToken: 'at-2', accessTokenExp: Math.floor(Date.now() / 1000) + 3600, refreshToken: 'rt-2' }))
  const r = rig(new MemoryStore(), 'closed', { idp, keepsAccessToken: true })
  const { sealed, sid } = await r.login('uma')
  const plain = await r.resolve(sealed)
  t.equal(plain.kind, 'live', 'a route that does not forward it does not refresh it')
  const d = await r.resolve(sealed, undefined, { accessToken: true })
  t.equal(d.kind, 'slid')
  t.equal(d.kind === 'slid' ? d.session.at : undefined, 'at-2', 'the new token is in the new cookie')
  t.equal(idp.calls, 1)
  const stored = r.seals.tokens.open((await r.store.getSession('uma', sid))!.tokens!)
  t.equal(stored?.refreshToken, 'rt-2', 'a rotated refresh token is kept')
  const again = await r.resolve(sealed, undefined, { accessToken: true })
  t.equal(again.kind === 'slid' ? again.session.at : again.kind, 'at-2', 'another request with the old cookie takes the stored token')
  t.equal(idp.calls, 1, 'without asking the IdP again')
})

t.test('rememberMe.checkIdp: an IdP outage is no logout; the device keeps its rotated credential', async (t) => {
  const idp = refreshingIdp(async () => { throw new Error('IdP down') })
  const r = rig(new MemoryStore(), 'closed', { idp, checkIdp: true })
  const { device, sid } = await r.login('vic')
  const d = await r.resolve(undefined, device)
  t.equal(d.kind, 'anonymous', 'no session now')
  t.same(ops(d), ['device'], 'but the rotated credential goes out')
  t.equal(idp.calls, 1)
  t.ok(await r.store.getSession('vic', sid), 'the device is not revoked')
  t.equal(r.counts['renewal:idp_unavailable'], 1)
  const later = await r.resolve(undefined, deviceValue(d.cookies)!)
  t.equal(later.kind, 'anonymous', 'the new credential works (and asks the IdP again)')
  t.equal(idp.calls, 2)
})
