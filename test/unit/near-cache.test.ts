import t, { type Test } from 'tap'
import { MemoryStore } from '../../src/store/memory.js'
import { NearCacheStore, type SubscriptionSignals } from '../../src/store/near-cache.js'
import type { BearerCheck, RenewDeviceInput, RenewDeviceResult, RevocationEvent, SessionCheck, SessionRecord, Store } from '../../src/store/store.js'
import { createMetrics } from '../../src/http/metrics.js'
import { storeSuite } from '../store/suite.js'

const ISS = 'https://idp.example.test'
const USER_TTL = 3600
const DENY_TTL = 300

/** A clock that starts at real time and only moves when told. */
function fakeClock (): { now: () => number, advance: (ms: number) => void } {
  let offset = 0
  return { now: () => Date.now() + offset, advance: (ms) => { offset += ms } }
}

/**
 * The inner store of these tests: a MemoryStore whose event subscription can be cut (events published
 * meanwhile are lost, as with Redis pub/sub), whose check replies can be held, and which counts reads.
 * With `signals`, it reports its subscription state and reconnects like a RedisStore should.
 */
class ControlledStore implements Store, SubscriptionSignals {
  readonly kind = 'memory' as const
  readonly memory: MemoryStore
  checks = 0
  bearerChecks = 0
  epochs = 0
  connected = true
  /** When set, check replies wait for it. */
  hold: Promise<void> | undefined
  failRevoke = false
  /** What `eventsUpToDate` answers (with `signals`). */
  upToDate = true
  onSubscriptionChange?: (cb: (live: boolean) => void) => () => void
  onReconnect?: (cb: () => void) => () => void
  onTrouble?: (cb: () => void) => () => void
  eventsUpToDate?: () => boolean
  private readonly subscriptionListeners = new Set<(live: boolean) => void>()
  private readonly reconnectListeners = new Set<() => void>()
  private readonly troubleListeners = new Set<() => void>()

  constructor (now: () => number, opts: { signals?: boolean } = {}) {
    this.memory = new MemoryStore({ now })
    if (opts.signals === true) {
      this.onSubscriptionChange = (cb) => {
        this.subscriptionListeners.add(cb)
        cb(this.connected)
        return () => { this.subscriptionListeners.delete(cb) }
      }
      this.onReconnect = (cb) => {
        this.reconnectListeners.add(cb)
        return () => { this.reconnectListeners.delete(cb) }
      }
      this.onTrouble = (cb) => {
        this.troubleListeners.add(cb)
        return () => { this.troubleListeners.delete(cb) }
      }
      this.eventsUpToDate = () => this.upToDate
    }
  }

  /** Cuts (false) or restores (true) the event subscription, telling listeners when `signals` is on. */
  setConnected (live: boolean): void {
    this.connected = live
    for (const cb of this.subscriptionListeners) cb(live)
  }

  reconnected (): void { for (const cb of this.reconnectListeners) cb() }
  trouble (): void { for (const cb of this.troubleListeners) cb() }

  async epoch (): Promise<string> { this.epochs++; return await this.memory.epoch() }
  async check (sub: string, sid: string): Promise<SessionCheck> {
    this.checks++
    const result = await this.memory.check(sub, sid)
    if (this.hold !== undefined) await this.hold
    return result
  }

  async createSession (rec: Omit<SessionRecord, 'version'>, ttl: number): Promise<number> { return await this.memory.createSession(rec, ttl) }
  async getSession (sub: string, sid: string): Promise<SessionRecord | null> { return await this.memory.getSession(sub, sid) }
  async findOwner (sid: string): Promise<string | null> { return await this.memory.findOwner(sid) }
  async listSessions (sub: string): Promise<SessionRecord[]> { return await this.memory.listSessions(sub) }
  async updateSession (sub: string, sid: string, patch: Partial<Pick<SessionRecord, 'lastSeenAt'>>): Promise<void> { await this.memory.updateSession(sub, sid, patch) }
  async rotateCredential (sub: string, sid: string, e: string, n: string, now: number, g: number): Promise<'rotated' | 'grace' | 'reuse' | 'unknown' | 'missing'> {
    return await this.memory.rotateCredential(sub, sid, e, n, now, g)
  }

  async renewDevice (input: RenewDeviceInput): Promise<RenewDeviceResult> { return await this.memory.renewDevice(input) }

  async revokeSessions (sub: string, sids: string[], ttl: number): Promise<RevocationEvent> {
    if (this.failRevoke) {
      await this.memory.revokeSessions(sub, sids, ttl) // stored, but the publish "failed"
      throw new Error('publish failed')
    }
    return await this.memory.revokeSessions(sub, sids, ttl)
  }

  async revokeUser (sub: string, ttl: number, tokenTtl?: number): Promise<RevocationEvent> {
    if (this.failRevoke) {
      await this.memory.revokeUser(sub, ttl, tokenTtl)
      throw new Error('publish failed')
    }
    return await this.memory.revokeUser(sub, ttl, tokenTtl)
  }

  async logoutIdpSession (iss: string, idpSid: string, ttl: number): Promise<RevocationEvent> {
    if (this.failRevoke) {
      await this.memory.logoutIdpSession(iss, idpSid, ttl)
      throw new Error('publish failed')
    }
    return await this.memory.logoutIdpSession(iss, idpSid, ttl)
  }

  async checkBearer (sub: string, iss: string, idpSid: string | undefined): Promise<BearerCheck> {
    this.bearerChecks++
    const result = await this.memory.checkBearer(sub, iss, idpSid)
    if (this.hold !== undefined) await this.hold
    return result
  }

  async sessionsForIdpSession (iss: string, idpSid: string): Promise<Array<{ sub: string, sid: string }>> { return await this.memory.sessionsForIdpSession(iss, idpSid) }
  async claimOnce (kind: string, id: string, ttl: number): Promise<boolean> { return await this.memory.claimOnce(kind, id, ttl) }
  async wasClaimed (kind: string, id: string): Promise<boolean> { return await this.memory.wasClaimed(kind, id) }
  async tryLock (name: string, ttl: number): Promise<boolean> { return await this.memory.tryLock(name, ttl) }
  async usersForEmail (email: string): Promise<string[]> { return await this.memory.usersForEmail(email) }
  async lease (name: string, holder: string, ttlMs: number): Promise<boolean> { return await this.memory.lease(name, holder, ttlMs) }
  async releaseLease (name: string, holder: string): Promise<void> { await this.memory.releaseLease(name, holder) }
  async putNote (kind: string, id: string, value: string, ttl: number): Promise<void> { await this.memory.putNote(kind, id, value, ttl) }
  async getNote (kind: string, id: string): Promise<string | null> { return await this.memory.getNote(kind, id) }
  subscribe (listener: (event: RevocationEvent) => void): () => void {
    return this.memory.subscribe((e) => { if (this.connected) listener(e) })
  }

  async ping (): Promise<void> { await this.memory.ping() }
  async close (): Promise<void> { await this.memory.close() }
}

function record (sub: string, sid: string, now: number): Omit<SessionRecord, 'version'> {
  return { sid, sub, iss: ISS, createdAt: now, lastSeenAt: now, userAgent: 'ua', ip: '127.0.0.1', rememberMe: false, expiresAt: now + 3_600_000, credHash: `h-${sid}` }
}

/** Lets the MemoryStore's asynchronous publish (setImmediate) reach the listeners. */
const delivered = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

interface Setup { clock: ReturnType<typeof fakeClock>, inner: ControlledStore, cache: NearCacheStore }

function setup (t: Test, opts: { signals?: boolean, maxEntries?: number, maxAgeMs?: number } = {}): Setup {
  const clock = fakeClock()
  const inner = new ControlledStore(clock.now, opts.signals !== undefined ? { signals: opts.signals } : {})
  const cache = new NearCacheStore(inner, {
    now: clock.now,
    ...(opts.maxEntries !== undefined ? { maxEntries: opts.maxEntries } : {}),
    ...(opts.maxAgeMs !== undefined ? { maxAgeMs: opts.maxAgeMs } : {})
  })
  t.teardown(() => cache.close())
  return { clock, inner, cache }
}

// The wrapper keeps every promise of the Store contract, with one documented lag: state the inner store
// expires by TTL (a denylist entry, a lost user version) shows up to maxAgeMs late. The suite's shortest
// TTL is 1 s, so it runs with a shorter maxAgeMs.
await storeSuite(t, 'near cache over memory', async () => {
  const clock = fakeClock()
  const cache = new NearCacheStore(new MemoryStore({ now: clock.now }), { now: clock.now, maxAgeMs: 500 })
  return { store: cache, advance: clock.advance, now: clock.now, cleanup: async () => { await cache.close() } }
})

t.test('a cached verdict is answered without the inner store, and counted', async (t) => {
  const { inner, cache, clock } = setup(t)
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  t.strictSame(await cache.check('u1', 's1'), { denied: false, version: 0 })
  t.strictSame(await cache.check('u1', 's1'), { denied: false, version: 0 })
  t.strictSame(await cache.check('u1', 's1'), { denied: false, version: 0 })
  t.equal(inner.checks, 1, 'one read, then hits')
  t.strictSame(cache.stats, { hits: 2, misses: 1, bypassed: 0 })
  t.strictSame(cache.peek('u1', 's1'), { denied: false, version: 0 }, 'peek answers synchronously')
  t.equal(cache.peek('u1', 'other'), undefined, 'an unknown sid is not guessed')
  t.equal(cache.stats.hits, 3)

  const metrics = createMetrics({ defaults: false, nearCache: cache.stats })
  const text = await metrics.registry.metrics()
  t.match(text, /^sessiongate_near_cache_hits_total 3$/m)
  t.match(text, /^sessiongate_near_cache_misses_total 1$/m)
  await cache.check('u1', 's1')
  t.match(await metrics.registry.metrics(), /^sessiongate_near_cache_hits_total 4$/m, 'scrapes follow the counts')
})

t.test('a revocation published while a verdict is cached is applied', async (t) => {
  const { inner, cache, clock } = setup(t)
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  await cache.createSession(record('u1', 's2', clock.now()), USER_TTL)
  t.equal((await cache.check('u1', 's1')).denied, false)
  t.equal((await cache.check('u1', 's2')).denied, false)
  const reads = inner.checks

  // Another replica revokes s1: this one only learns it from the published event.
  await inner.revokeSessions('u1', ['s1'], DENY_TTL)
  await delivered()
  t.strictSame(await cache.check('u1', 's1'), { denied: true, version: 0 }, 'denied after the event')
  t.strictSame(await cache.check('u1', 's2'), { denied: false, version: 0 }, 'the other session is untouched')
  t.equal(inner.checks, reads, 'both answered from the cache')
})

t.test('a user-wide revocation bumps the cached version', async (t) => {
  const { inner, cache, clock } = setup(t)
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  await cache.check('u1', 's1')
  await cache.check('u1', 'gone') // a cookie whose record expired: not in the event's sids
  const reads = inner.checks

  await inner.revokeUser('u1', DENY_TTL)
  await delivered()
  t.strictSame(await cache.check('u1', 's1'), { denied: true, version: 1 })
  t.strictSame(await cache.check('u1', 'gone'), { denied: false, version: 1 }, 'the version refuses it')
  t.equal(inner.checks, reads, 'answered from the cache')

  // Events of two replicas may arrive out of order: the version never goes back.
  await inner.revokeUser('u1', DENY_TTL)
  await delivered()
  t.equal((await cache.check('u1', 's1')).version, 2)
  const stale: RevocationEvent = { sub: 'u1', sids: [], version: 1, at: clock.now() }
  ;(cache as unknown as { apply: (e: RevocationEvent) => void }).apply(stale)
  t.equal((await cache.check('u1', 's1')).version, 2)
})

t.test('this replica\'s own revocations apply before the event comes back', async (t) => {
  const { inner, cache, clock } = setup(t)
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  await cache.check('u1', 's1')
  inner.connected = false // the published copy never arrives
  await cache.revokeSessions('u1', ['s1'], DENY_TTL)
  t.equal((await cache.check('u1', 's1')).denied, true)
  await cache.revokeUser('u1', DENY_TTL)
  t.equal((await cache.check('u1', 's1')).version, 1)
  t.equal(inner.checks, 1)
})

t.test('a failed revocation drops what it touched', async (t) => {
  const { inner, cache, clock } = setup(t)
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  await cache.check('u1', 's1')
  inner.connected = false
  inner.failRevoke = true
  await t.rejects(cache.revokeSessions('u1', ['s1'], DENY_TTL))
  t.equal((await cache.check('u1', 's1')).denied, true, 'read again: the store has it')
  await t.rejects(cache.revokeUser('u1', DENY_TTL))
  t.equal((await cache.check('u1', 's1')).version, 1)
  t.equal(inner.checks, 3)
})

t.test('an event during a read in flight keeps the older answer out of the cache', async (t) => {
  const { inner, cache, clock } = setup(t)
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  let release!: () => void
  inner.hold = new Promise((resolve) => { release = resolve })
  const pending = cache.check('u1', 's1') // reads "not denied", reply held
  await inner.revokeSessions('u1', ['s1'], DENY_TTL)
  await delivered() // the event arrives before the old reply
  release()
  inner.hold = undefined
  t.equal((await pending).denied, false, 'the caller gets what the store said when asked')
  t.equal((await cache.check('u1', 's1')).denied, true, 'but it was not cached')
  t.equal(inner.checks, 2)
})

t.test('a dropped subscription disables the cache until it is back', async (t) => {
  const { inner, cache, clock } = setup(t, { signals: true })
  t.equal(cache.enabled, true, 'the store said it listens on registration')
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  await cache.check('u1', 's1')
  await cache.check('u1', 's1')
  t.equal(inner.checks, 1)

  inner.setConnected(false)
  t.equal(cache.enabled, false)
  t.equal(cache.size, 0, 'emptied')
  await inner.revokeSessions('u1', ['s1'], DENY_TTL) // its event is lost
  await delivered()
  for (let i = 0; i < 3; i++) t.equal((await cache.check('u1', 's1')).denied, true)
  t.equal(inner.checks, 4, 'every check went to the store')
  t.equal(cache.stats.bypassed, 3)
  t.equal(cache.size, 0, 'nothing cached while bypassed')
  t.equal(cache.peek('u1', 's1'), undefined)

  inner.setConnected(true)
  t.equal(cache.enabled, true)
  t.equal((await cache.check('u1', 's1')).denied, true, 're-primed from the store')
  t.equal((await cache.check('u1', 's1')).denied, true)
  t.equal(inner.checks, 5, 'then cached again')
})

t.test('a subscription drop voids a read in flight', async (t) => {
  const { inner, cache, clock } = setup(t, { signals: true })
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  let release!: () => void
  inner.hold = new Promise((resolve) => { release = resolve })
  const pending = cache.check('u1', 's1')
  inner.setConnected(false)
  inner.setConnected(true)
  release()
  inner.hold = undefined
  await pending
  t.equal(cache.size, 0, 'the read began before the new subscription: not cached')
})

t.test('a store that reports its subscription starts bypassed until it confirms', async (t) => {
  const clock = fakeClock()
  const inner = new ControlledStore(clock.now)
  let report!: (live: boolean) => void
  inner.onSubscriptionChange = (cb) => { report = cb; return () => {} } // silent on registration
  const cache = new NearCacheStore(inner, { now: clock.now })
  t.teardown(() => cache.close())
  await cache.check('u1', 's1')
  await cache.check('u1', 's1')
  t.equal(inner.checks, 2)
  report(true)
  await cache.check('u1', 's1')
  await cache.check('u1', 's1')
  t.equal(inner.checks, 3)
})

t.test('without subscription signals, a silently lost event is bounded by maxAgeMs', async (t) => {
  const { inner, cache, clock } = setup(t, { maxAgeMs: 5000 })
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  await cache.check('u1', 's1')
  inner.connected = false // dropped without anyone noticing
  await inner.revokeSessions('u1', ['s1'], DENY_TTL)
  await delivered()
  t.equal((await cache.check('u1', 's1')).denied, false, 'stale inside the bound (documented)')
  clock.advance(5000)
  t.equal((await cache.check('u1', 's1')).denied, true, 'read again once the entry is maxAgeMs old')
})

t.test('the epoch is cached and forgotten on reconnect or subscription change', async (t) => {
  const { inner, cache, clock } = setup(t, { signals: true })
  const e = await cache.epoch()
  t.equal(await cache.epoch(), e)
  t.equal(cache.peekEpoch(), e)
  t.equal(inner.epochs, 1)
  inner.reconnected()
  t.equal(cache.peekEpoch(), undefined)
  await cache.epoch()
  t.equal(inner.epochs, 2)
  inner.setConnected(false)
  await cache.epoch()
  await cache.epoch()
  t.equal(inner.epochs, 4, 'not cached while bypassed')
  inner.setConnected(true)
  await cache.epoch()
  await cache.epoch()
  t.equal(inner.epochs, 5)
  clock.advance(5000)
  await cache.epoch()
  t.equal(inner.epochs, 6, 'bounded by maxAgeMs')
})

t.test('while the store cannot vouch for its events, nothing cached is used; the entries come back with it', async (t) => {
  const { inner, cache, clock } = setup(t, { signals: true })
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  const epoch = await cache.epoch()
  await cache.check('u1', 's1')
  t.ok(cache.peek('u1', 's1'), 'cached')
  t.equal(inner.checks, 1)

  inner.upToDate = false // a heartbeat unanswered: the link may hang
  t.equal(cache.enabled, false)
  t.equal(cache.peek('u1', 's1'), undefined, 'no cached verdict')
  t.equal(cache.peekEpoch(), undefined, 'no cached epoch')
  await cache.check('u1', 's1')
  await cache.check('u2', 's2')
  t.equal(inner.checks, 3, 'every check went to the store')
  t.equal(cache.stats.bypassed, 2)
  t.equal(cache.size, 2, 'nothing filled meanwhile, nothing dropped either')

  // The reply arrives: every event published before was delivered first, in order, and applied.
  inner.upToDate = true
  t.strictSame(cache.peek('u1', 's1'), { denied: false, version: 0 }, 'used again')
  t.equal(cache.peekEpoch(), epoch)
})

t.test('trouble on a connection of the store empties the cache and voids a read in flight', async (t) => {
  const { inner, cache, clock } = setup(t, { signals: true })
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  await cache.epoch()
  await cache.check('u1', 's1')
  t.equal(cache.size, 2)
  inner.trouble()
  t.equal(cache.size, 0, 'emptied')
  t.equal(cache.peekEpoch(), undefined, 'the epoch too')
  t.equal(cache.enabled, true, 'still used: the subscription itself did not drop')

  let release!: () => void
  inner.hold = new Promise((resolve) => { release = resolve })
  const pending = cache.check('u1', 's1')
  inner.trouble()
  release()
  inner.hold = undefined
  await pending
  t.equal(cache.size, 0, 'a read that spanned the trouble is not cached')
  await cache.check('u1', 's1')
  t.equal(cache.size, 2, 'the next one is')
})

t.test('onResubscribed is the inner store\'s; a store without it never calls back', async (t) => {
  const { inner, cache } = setup(t)
  let calls = 0
  const off = cache.onResubscribed(() => { calls++ })
  t.type(off, 'function')
  off()
  const own: Array<() => void> = []
  ;(inner as unknown as { onResubscribed: (cb: () => void) => () => void }).onResubscribed = (cb) => { own.push(cb); return () => {} }
  cache.onResubscribed(() => { calls++ })
  t.equal(own.length, 1, 'registered on the inner store')
  own[0]!()
  t.equal(calls, 1)
})

t.test('the reconnect signal empties the cache', async (t) => {
  const { inner, cache } = setup(t, { signals: true })
  await cache.check('u1', 's1')
  t.equal(cache.size, 2)
  inner.reconnected()
  t.equal(cache.size, 0)
})

t.test('createSession after lost user state replaces the cached null version', async (t) => {
  const { cache, clock } = setup(t)
  t.strictSame(await cache.check('u1', 's0'), { denied: false, version: null })
  await cache.createSession(record('u1', 's1', clock.now()), USER_TTL)
  t.strictSame(await cache.check('u1', 's1'), { denied: false, version: 0 })
  t.strictSame(await cache.check('u1', 's0'), { denied: false, version: 0 })
})

t.test('the LRU bound holds and keeps the recently used entries', async (t) => {
  const { inner, cache } = setup(t, { maxEntries: 10 })
  await cache.check('hot', 'h1') // 2 entries: version of hot, verdict of h1
  for (let i = 0; i < 20; i++) {
    await cache.check(`u${i}`, 's')
    await cache.check('hot', 'h1') // keeps the hot user recent
    t.ok(cache.size <= 10, `size ${cache.size} <= 10`)
  }
  const reads = inner.checks
  await cache.check('hot', 'h1')
  t.equal(inner.checks, reads, 'the hot entry survived')
  await cache.check('u0', 's')
  t.equal(inner.checks, reads + 1, 'the oldest was evicted')
  t.equal(cache.size, 10)
})

t.test('close unsubscribes and closes the inner store', async (t) => {
  const clock = fakeClock()
  const inner = new ControlledStore(clock.now, { signals: true })
  const cache = new NearCacheStore(inner, { now: clock.now })
  await cache.close()
  await t.rejects(inner.memory.ping(), { code: 'SG_STORE_UNAVAILABLE' })
})

t.test('a shared store without subscription signals is used, with a warning', async (t) => {
  const clock = fakeClock()
  const inner = new ControlledStore(clock.now)
  Object.defineProperty(inner, 'kind', { value: 'redis' })
  const warnings: object[] = []
  const cache = new NearCacheStore(inner, { now: clock.now, logger: { warn: (obj) => { warnings.push(obj) } } })
  t.teardown(() => cache.close())
  t.equal(cache.kind, 'redis')
  t.equal(cache.enabled, true)
  t.strictSame(warnings, [{ maxAgeMs: 5000 }])
})

t.test('bearer verdicts: cached, kept true by revocation and IdP-session events', async (t) => {
  const { inner, cache } = setup(t)
  t.strictSame(await cache.checkBearer('u1', ISS, 'idp-1'), { revokedAt: null, idpLoggedOut: false })
  t.strictSame(await cache.checkBearer('u1', ISS, 'idp-1'), { revokedAt: null, idpLoggedOut: false })
  t.equal(inner.bearerChecks, 1, 'one read, then a hit')
  t.strictSame(cache.peekBearer('u1', ISS, 'idp-1'), { revokedAt: null, idpLoggedOut: false }, 'peekBearer answers synchronously')
  t.equal(cache.peekBearer('u1', ISS, 'idp-2'), undefined, 'an IdP session never read is not guessed')
  t.strictSame(cache.peekBearer('u1', ISS, undefined), { revokedAt: null, idpLoggedOut: false }, 'a token without sid needs only the user')

  // Another replica logs the IdP session out, then revokes the user: this one learns both from events.
  await inner.logoutIdpSession(ISS, 'idp-1', DENY_TTL)
  await delivered()
  t.strictSame(cache.peekBearer('u1', ISS, 'idp-1'), { revokedAt: null, idpLoggedOut: true }, 'the marker event applies')
  const ev = await inner.revokeUser('u1', DENY_TTL, USER_TTL)
  await delivered()
  t.strictSame(cache.peekBearer('u1', ISS, 'idp-1'), { revokedAt: ev.revokedAt, idpLoggedOut: true }, 'the revocation time applies')
  t.equal(inner.bearerChecks, 1, 'all from the cache')

  // Events of two replicas may arrive out of order: the revocation time never goes back.
  ;(cache as unknown as { apply: (e: RevocationEvent) => void }).apply({ sub: 'u1', sids: [], version: 1, revokedAt: ev.revokedAt! - 100, at: 0 })
  t.equal(cache.peekBearer('u1', ISS, undefined)?.revokedAt, ev.revokedAt)
})

t.test('bearer verdicts: own writes apply at once, failed ones are read again, doubt bypasses', async (t) => {
  const { inner, cache } = setup(t, { signals: true })
  await cache.checkBearer('u1', ISS, 'idp-1')
  inner.connected = false // published copies never arrive (the store does not say so yet)
  const ev = await cache.revokeUser('u1', DENY_TTL, USER_TTL)
  await cache.logoutIdpSession(ISS, 'idp-1', DENY_TTL)
  t.strictSame(cache.peekBearer('u1', ISS, 'idp-1'), { revokedAt: ev.revokedAt, idpLoggedOut: true }, 'this replica\'s own writes')
  inner.failRevoke = true
  await t.rejects(cache.logoutIdpSession(ISS, 'idp-2', DENY_TTL))
  await t.rejects(cache.revokeUser('u2', DENY_TTL, USER_TTL))
  inner.failRevoke = false
  t.equal(cache.peekBearer('u2', ISS, 'idp-2'), undefined, 'nothing kept for what a failed write touched')
  t.strictSame(await cache.checkBearer('u2', ISS, 'idp-2'), { revokedAt: (await inner.memory.checkBearer('u2', ISS, undefined)).revokedAt, idpLoggedOut: true }, 'read again: the store has both')

  inner.setConnected(false) // the store says events may be lost
  t.equal(cache.peekBearer('u1', ISS, 'idp-1'), undefined, 'no cached verdict is used')
  const reads = inner.bearerChecks
  await cache.checkBearer('u1', ISS, 'idp-1')
  t.equal(inner.bearerChecks, reads + 1, 'read through')
  t.equal(cache.peekBearer('u1', ISS, 'idp-1'), undefined, 'and not filled while bypassed')
})
