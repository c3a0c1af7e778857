/**
 * NearCacheStore: a per-replica cache in front of another Store (`store.nearCache: true`), so the hot-path
 * `check` and `epoch` usually cost no round trip.
 *
 * What it caches, per replica, in one LRU map (insertion order of a Map; a hit moves the entry to the end):
 * - the user's token version, by `sub` (a number, or null when the store holds no state for the user);
 * - the denylist verdict of a gateway session id, by (`sub`, `sid`): denied or known-not-denied;
 * - the store's epoch;
 * - for bearer tokens: the user's revocation time, by `sub`, and whether an IdP session (`iss`, `sid`)
 *   was logged out.
 * Entries are filled on a miss (the inner store's `check` / `checkBearer`) and kept true by the inner
 * store's revocation events: an event for (sub, sids, version, revokedAt) marks those cached sids denied
 * and raises the cached version and revocation time; an IdP-session event marks that session logged out.
 * This replica's own writes apply their returned event at once (before the published copy comes back).
 *
 * Safety rules (a stale "live" verdict lets a revoked session in, so every doubt bypasses the cache):
 * - A fill lands only when no event, write, subscription change or connection trouble happened while its
 *   read was in flight (one global sequence number), so an event can never be overwritten by an older read.
 * - When the inner store says its event subscription dropped (`onSubscriptionChange(false)`), the cache is
 *   emptied and bypassed: every check goes to the inner store until the subscription is live again. It is
 *   then re-primed from reads issued after the subscription was re-established (fill on miss), because
 *   events published during the gap are lost for good.
 * - When the inner store cannot vouch that its events are up to date (`eventsUpToDate()` false: the
 *   subscriber's heartbeat is unanswered, as on a link that hangs without a reset), nothing cached is
 *   used, and nothing is filled, until it can again. The entries are kept: events come in order on the
 *   subscription, so once it answers again every event published before has been applied; if it never
 *   answers, the loss empties the cache.
 * - When a connection of the inner store misbehaves (`onTrouble`: an error, a close, a timeout) or the data
 *   connection comes back (`onReconnect`), the cache is emptied.
 * - Every entry also has a maximum age (`maxAgeMs`, default 5 s). It bounds how long a verdict can be
 *   stale over a store that reports none of this (`maxAgeMs` after the revocation at most).
 * - A write that fails (the revocation may be stored but its event not published) drops what it touched.
 *
 * Hooks the inner store may expose (the optional signals of `RevocationStore`): without them the
 * cache assumes the subscription is live and current (true for MemoryStore, whose events are in-process)
 * and relies on `maxAgeMs` alone.
 */
import type { BearerCheck, RenewDeviceInput, RenewDeviceResult, RevocationEvent, RotateResult, SessionCheck, SessionPatch, SessionRecord, Store, SubscriptionSignals } from './store.js'

/** The inner store's optional signals, declared by `RevocationStore` (kept here under their old name). */
export type { SubscriptionSignals }

/** Counters of the cache (plain numbers; the metrics registry reads them when scraped). */
export interface NearCacheStats {
  /** `check` calls answered from the cache. */
  hits: number
  /** `check` calls that went to the inner store (bypasses included). */
  misses: number
  /** Of the misses, those made while the cache was bypassed (subscription not live). */
  bypassed: number
}

export interface NearCacheOptions {
  /** Most entries kept (versions, sid verdicts); the least recently used go first. Default 100,000. */
  maxEntries?: number
  /** Oldest age of an entry in ms before it is read again from the inner store. Default 5,000. */
  maxAgeMs?: number
  /** Clock in epoch ms (tests). */
  now?: () => number
  logger?: { warn: (obj: object, msg: string) => void }
}

interface Entry<T> {
  value: T
  /** When the value was read (start of the read) or last confirmed by an event, in ms. */
  at: number
}

const DEFAULT_MAX_ENTRIES = 100_000
const DEFAULT_MAX_AGE_MS = 5_000

// Key spaces of the one LRU map. The sub's length makes (sub, sid) pairs unambiguous whatever they contain.
const verKey = (sub: string): string => `v${sub}`
const sidKey = (sub: string, sid: string): string => `s${sub.length}:${sub}${sid}`
const revatKey = (sub: string): string => `r${sub}`
const idpKey = (iss: string, sid: string): string => `i${iss.length}:${iss}${sid}`

export class NearCacheStore implements Store {
  readonly kind: Store['kind']
  readonly stats: NearCacheStats = { hits: 0, misses: 0, bypassed: 0 }
  private readonly inner: Store
  private readonly entries = new Map<string, Entry<number | null | boolean>>()
  private readonly maxEntries: number
  private readonly maxAgeMs: number
  private readonly now: () => number
  private epochEntry: Entry<string> | undefined
  /** Bumped by every event, write and subscription change: a read that saw a change is not cached. */
  private seq = 0
  private live: boolean
  /** The inner store's `eventsUpToDate`, when it has one. */
  private readonly upToDate: (() => boolean) | undefined
  private readonly unhook: Array<() => void> = []

  constructor (inner: Store, opts: NearCacheOptions = {}) {
    this.inner = inner
    this.kind = inner.kind
    this.maxEntries = Math.max(2, opts.maxEntries ?? DEFAULT_MAX_ENTRIES)
    this.maxAgeMs = Math.max(0, opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS)
    this.now = opts.now ?? Date.now
    // Registered first, so the cache is already up to date when the gateway's own listeners run.
    this.unhook.push(inner.subscribe((event) => this.apply(event)))
    if (typeof inner.onSubscriptionChange === 'function') {
      this.live = false // until the store confirms it listens (normally at once, during registration)
      this.unhook.push(inner.onSubscriptionChange((live) => this.setLive(live)))
    } else {
      this.live = true
      if (inner.kind !== 'memory') {
        opts.logger?.warn({ maxAgeMs: this.maxAgeMs }, 'near cache: the store does not report its event subscription; cached verdicts are bounded by maxAgeMs only')
      }
    }
    if (typeof inner.onReconnect === 'function') this.unhook.push(inner.onReconnect(() => this.invalidateAll()))
    if (typeof inner.onTrouble === 'function') this.unhook.push(inner.onTrouble(() => this.invalidateAll()))
    this.upToDate = typeof inner.eventsUpToDate === 'function' ? () => inner.eventsUpToDate!() : undefined
  }

  /** True while cached verdicts may be used (the event subscription is live and up to date). */
  get enabled (): boolean { return this.usable() }

  /** Number of cached versions and sid verdicts. */
  get size (): number { return this.entries.size }

  async epoch (): Promise<string> {
    const cached = this.peekEpoch()
    if (cached !== undefined) return cached
    const seq = this.seq
    const at = this.now()
    const value = await this.inner.epoch()
    if (seq === this.seq && this.usable()) this.epochEntry = { value, at }
    return value
  }

  /** The cached epoch, without a round trip or an async hop; undefined when it must be read. */
  peekEpoch (): string | undefined {
    const e = this.epochEntry
    if (e === undefined || !this.usable()) return undefined
    if (this.now() - e.at >= this.maxAgeMs) {
      this.epochEntry = undefined
      return undefined
    }
    return e.value
  }

  async check (sub: string, sid: string): Promise<SessionCheck> {
    const cached = this.peek(sub, sid)
    if (cached !== undefined) return cached
    return await this.load(sub, sid)
  }

  /**
   * The cached verdict for (sub, sid), counted as a hit, or undefined (nothing counted: call `check`).
   * Synchronous, so a caller can skip the promise of `check` on the hot path.
   */
  peek (sub: string, sid: string): SessionCheck | undefined {
    if (!this.usable()) return undefined
    const now = this.now()
    const ver = this.fresh(verKey(sub), now)
    if (ver === undefined) return undefined
    const denied = this.fresh(sidKey(sub, sid), now)
    if (denied === undefined) return undefined
    this.stats.hits++
    return { denied: denied.value as boolean, version: ver.value as number | null }
  }

  async checkBearer (sub: string, iss: string, idpSid: string | undefined): Promise<BearerCheck> {
    const cached = this.peekBearer(sub, iss, idpSid)
    if (cached !== undefined) return cached
    this.stats.misses++
    if (!this.usable()) {
      this.stats.bypassed++
      return await this.inner.checkBearer(sub, iss, idpSid)
    }
    const seq = this.seq
    const at = this.now()
    const result = await this.inner.checkBearer(sub, iss, idpSid)
    if (seq === this.seq && this.usable()) {
      this.put(revatKey(sub), result.revokedAt, at)
      if (idpSid !== undefined) this.put(idpKey(iss, idpSid), result.idpLoggedOut, at)
    }
    return result
  }

  /** The cached bearer verdict, counted as a hit, or undefined (call `checkBearer`). Synchronous. */
  peekBearer (sub: string, iss: string, idpSid: string | undefined): BearerCheck | undefined {
    if (!this.usable()) return undefined
    const now = this.now()
    const revokedAt = this.fresh(revatKey(sub), now)
    if (revokedAt === undefined) return undefined
    let idpLoggedOut = false
    if (idpSid !== undefined) {
      const marker = this.fresh(idpKey(iss, idpSid), now)
      if (marker === undefined) return undefined
      idpLoggedOut = marker.value as boolean
    }
    this.stats.hits++
    return { revokedAt: revokedAt.value as number | null, idpLoggedOut }
  }

  async createSession (rec: Omit<SessionRecord, 'version'>, userStateTtl: number): Promise<number> {
    this.seq++
    try {
      return await this.inner.createSession(rec, userStateTtl)
    } finally {
      // A lost version (null) is 0 now; a reused sid must not keep an old verdict.
      this.drop(verKey(rec.sub), sidKey(rec.sub, rec.sid))
    }
  }

  async getSession (sub: string, sid: string): Promise<SessionRecord | null> { return await this.inner.getSession(sub, sid) }
  async findOwner (sid: string): Promise<string | null> { return await this.inner.findOwner(sid) }
  async listSessions (sub: string): Promise<SessionRecord[]> { return await this.inner.listSessions(sub) }

  async updateSession (sub: string, sid: string, patch: SessionPatch): Promise<void> {
    await this.inner.updateSession(sub, sid, patch)
  }

  /** Rotation changes no revocation state ('reuse' makes the caller revoke, which passes through here). */
  async rotateCredential (sub: string, sid: string, expectedHash: string, newHash: string, now: number, graceUntil: number): Promise<RotateResult> {
    return await this.inner.rotateCredential(sub, sid, expectedHash, newHash, now, graceUntil)
  }

  /** Reads revocation state in the store itself (never the cache); a reuse revokes, as revokeSessions. */
  async renewDevice (input: RenewDeviceInput): Promise<RenewDeviceResult> {
    try {
      const result = await this.inner.renewDevice(input)
      if (result.outcome === 'reuse') this.apply(result.event)
      return result
    } catch (err) {
      this.drop(sidKey(input.sub, input.sid)) // maybe revoked, maybe not: read it again
      throw err
    }
  }

  async revokeSessions (sub: string, sids: string[], denyTtl: number): Promise<RevocationEvent> {
    let event: RevocationEvent
    try {
      event = await this.inner.revokeSessions(sub, sids, denyTtl)
    } catch (err) {
      this.drop(...sids.map((sid) => sidKey(sub, sid))) // maybe stored, maybe not: read it again
      throw err
    }
    this.apply(event)
    return event
  }

  async revokeUser (sub: string, denyTtl: number, tokenTtl?: number): Promise<RevocationEvent> {
    let event: RevocationEvent
    try {
      event = await this.inner.revokeUser(sub, denyTtl, tokenTtl)
    } catch (err) {
      this.drop(verKey(sub), revatKey(sub))
      throw err
    }
    this.apply(event)
    return event
  }

  async logoutIdpSession (iss: string, idpSid: string, ttl: number): Promise<RevocationEvent> {
    let event: RevocationEvent
    try {
      event = await this.inner.logoutIdpSession(iss, idpSid, ttl)
    } catch (err) {
      this.drop(idpKey(iss, idpSid))
      throw err
    }
    this.apply(event)
    return event
  }

  async sessionsForIdpSession (iss: string, idpSid: string): Promise<Array<{ sub: string, sid: string }>> {
    return await this.inner.sessionsForIdpSession(iss, idpSid)
  }

  async claimOnce (kind: string, id: string, ttl: number): Promise<boolean> { return await this.inner.claimOnce(kind, id, ttl) }

  async wasClaimed (kind: string, id: string): Promise<boolean> { return await this.inner.wasClaimed(kind, id) }

  async tryLock (name: string, ttl: number): Promise<boolean> { return await this.inner.tryLock(name, ttl) }
  async usersForEmail (email: string): Promise<string[]> { return await this.inner.usersForEmail(email) }
  async lease (name: string, holder: string, ttlMs: number): Promise<boolean> { return await this.inner.lease(name, holder, ttlMs) }
  async releaseLease (name: string, holder: string): Promise<void> { await this.inner.releaseLease(name, holder) }
  async putNote (kind: string, id: string, value: string, ttl: number): Promise<void> { await this.inner.putNote(kind, id, value, ttl) }
  async getNote (kind: string, id: string): Promise<string | null> { return await this.inner.getNote(kind, id) }

  subscribe (listener: (event: RevocationEvent) => void): () => void { return this.inner.subscribe(listener) }

  /** The inner store's signal; a store without one never loses its events. */
  onResubscribed (cb: () => void): () => void { return this.inner.onResubscribed?.(cb) ?? (() => {}) }

  async ping (): Promise<void> { await this.inner.ping() }

  async close (): Promise<void> {
    for (const off of this.unhook.splice(0)) off()
    this.invalidateAll()
    await this.inner.close()
  }

  /** Applies a revocation event (from any replica, or the result of this replica's own write). */
  private apply (event: RevocationEvent): void {
    this.seq++
    const now = this.now()
    // Only entries already cached are updated: a missing one is read on demand, never guessed.
    for (const sid of event.sids) {
      const key = sidKey(event.sub, sid)
      if (this.entries.has(key)) this.put(key, true, now)
    }
    if (event.version !== undefined) {
      const key = verKey(event.sub)
      const cur = this.entries.get(key)
      // max(): events of two replicas' INCRs may arrive out of order; versions only grow.
      if (cur !== undefined && (cur.value === null || (cur.value as number) < event.version)) this.put(key, event.version, now)
    }
    if (event.revokedAt !== undefined) {
      const key = revatKey(event.sub)
      const cur = this.entries.get(key)
      // max() again: revocation times only grow.
      if (cur !== undefined && (cur.value === null || (cur.value as number) < event.revokedAt)) this.put(key, event.revokedAt, now)
    }
    if (event.idpSession !== undefined) {
      const key = idpKey(event.idpSession.iss, event.idpSession.sid)
      if (this.entries.has(key)) this.put(key, true, now)
    }
  }

  /** Reads through to the inner store and fills the cache unless something changed meanwhile. */
  private async load (sub: string, sid: string): Promise<SessionCheck> {
    this.stats.misses++
    if (!this.usable()) {
      this.stats.bypassed++
      return await this.inner.check(sub, sid)
    }
    const seq = this.seq
    const at = this.now()
    const result = await this.inner.check(sub, sid)
    if (seq === this.seq && this.usable()) {
      this.put(verKey(sub), result.version, at)
      this.put(sidKey(sub, sid), result.denied, at)
    }
    return result
  }

  /** A fresh entry (moved to the most recently used end), or undefined; a stale one is removed. */
  private fresh (key: string, now: number): Entry<number | null | boolean> | undefined {
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    this.entries.delete(key)
    if (now - e.at >= this.maxAgeMs) return undefined
    this.entries.set(key, e)
    return e
  }

  private put (key: string, value: number | null | boolean, at: number): void {
    this.entries.delete(key)
    this.entries.set(key, { value, at })
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string)
    }
  }

  private drop (...keys: string[]): void {
    this.seq++
    for (const key of keys) this.entries.delete(key)
  }

  /** Cached verdicts may be used and filled: subscribed, and the store vouches for its events. */
  private usable (): boolean {
    return this.live && (this.upToDate === undefined || this.upToDate())
  }

  private setLive (live: boolean): void {
    this.invalidateAll()
    this.live = live
  }

  /** Forgets everything (epoch included) and voids the reads in flight. */
  private invalidateAll (): void {
    this.seq++
    this.entries.clear()
    this.epochEntry = undefined
  }
}
