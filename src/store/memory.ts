/**
 * MemoryStore: the embedded Store for one replica (demo, small sites).
 *
 * Same semantics as RedisStore, including TTLs: expired entries are invisible at once (checked against
 * the injected clock) and a periodic sweep frees them, so memory stays bounded by live state.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { MemoryClaims } from './memory-claims.js'
import {
  StoreUnavailableError,
  newEpoch,
  type BearerCheck,
  type RenewDeviceInput,
  type RenewDeviceResult,
  type RevocationEvent,
  type RotateResult,
  type SessionCheck,
  type SessionPatch,
  type SessionRecord,
  type Store
} from './store.js'

/** The pino-like logger the store reports listener failures to. */
export interface MemoryStoreLogger {
  error: (obj: object, msg: string) => void
}

export interface MemoryStoreOptions {
  /** Clock in epoch ms; injectable so tests can fast-forward time. */
  now?: () => number
  /** How often expired entries are freed (ms). Default 60 s. */
  sweepIntervalMs?: number
  logger?: MemoryStoreLogger
}

interface Expiring<T> {
  value: T
  expiresAt: number
}

const EVENT = 'revocation'
// Keys of composite maps: JSON, so no character in a sub or iss can make two pairs collide.
const pair = (a: string, b: string): string => JSON.stringify([a, b])
const unpair = (key: string): [string, string] => JSON.parse(key) as [string, string]

/** Non-positive or fractional TTLs behave like Redis `EX`: at least one whole second. */
const secondsToMs = (ttl: number): number => Math.max(1, Math.ceil(ttl)) * 1000

export class MemoryStore implements Store {
  readonly kind = 'memory'
  private readonly now: () => number
  private readonly logger: MemoryStoreLogger
  private readonly epochValue: string
  private readonly versions = new Map<string, Expiring<number>>()
  private readonly revokedAt = new Map<string, Expiring<number>>() // sub -> epoch seconds
  private readonly idpLogouts = new Map<string, number>() // pair(iss, idpSid) -> expiresAt
  private readonly denied = new Map<string, number>() // pair(sub, sid) -> expiresAt
  private readonly records = new Map<string, Map<string, SessionRecord>>() // sub -> sid -> record
  private readonly owners = new Map<string, string>() // sid -> sub
  private readonly idpIndex = new Map<string, Set<string>>() // pair(iss, idpSid) -> pair(sub, sid)
  private readonly emailIndex = new Map<string, Set<string>>() // lower-cased email -> pair(sub, sid)
  /** Claims, locks, leases and notes (memory-claims.ts). */
  private readonly shared: MemoryClaims
  private readonly events = new EventEmitter()
  private readonly sweeper: NodeJS.Timeout
  private closed = false

  constructor (opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now
    this.epochValue = newEpoch(randomBytes(16).toString('base64url'), this.now())
    this.logger = opts.logger ?? { error: (obj, msg) => console.error(msg, obj) }
    this.shared = new MemoryClaims(this.now, () => this.assertOpen())
    this.events.setMaxListeners(0) // one per near cache / SSE registry; not a leak
    this.sweeper = setInterval(() => this.sweep(), opts.sweepIntervalMs ?? 60_000)
    this.sweeper.unref()
  }

  async epoch (): Promise<string> {
    this.assertOpen()
    return this.epochValue
  }

  async check (sub: string, sid: string): Promise<SessionCheck> {
    this.assertOpen()
    return { denied: this.isDenied(sub, sid), version: this.liveVersion(sub)?.value ?? null }
  }

  /** In-process state is always known for sure: the gate's check needs no async hop. */
  peek (sub: string, sid: string): SessionCheck | undefined {
    if (this.closed) return undefined
    return { denied: this.isDenied(sub, sid), version: this.liveVersion(sub)?.value ?? null }
  }

  peekEpoch (): string | undefined {
    return this.closed ? undefined : this.epochValue
  }

  async createSession (rec: Omit<SessionRecord, 'version'>, userStateTtl: number): Promise<number> {
    this.assertOpen()
    const now = this.now()
    const until = now + secondsToMs(userStateTtl)
    let ver = this.liveVersion(rec.sub)
    if (ver === undefined) {
      ver = { value: 0, expiresAt: until }
      this.versions.set(rec.sub, ver)
    } else {
      ver.expiresAt = Math.max(ver.expiresAt, until) // never shorten
    }
    const full: SessionRecord = { ...stripUndefined(rec), version: ver.value }
    this.deleteRecord(rec.sub, rec.sid) // a re-used sid must not leave a stale idp index entry
    let mine = this.records.get(rec.sub)
    if (mine === undefined) {
      mine = new Map()
      this.records.set(rec.sub, mine)
    }
    mine.set(rec.sid, full)
    this.owners.set(rec.sid, rec.sub)
    if (rec.idpSid !== undefined) {
      const key = pair(rec.iss, rec.idpSid)
      const set = this.idpIndex.get(key) ?? new Set<string>()
      set.add(pair(rec.sub, rec.sid))
      this.idpIndex.set(key, set)
    }
    if (rec.email !== undefined) {
      const key = rec.email.toLowerCase()
      const set = this.emailIndex.get(key) ?? new Set<string>()
      set.add(pair(rec.sub, rec.sid))
      this.emailIndex.set(key, set)
    }
    return ver.value
  }

  async getSession (sub: string, sid: string): Promise<SessionRecord | null> {
    this.assertOpen()
    const rec = this.liveRecord(sub, sid)
    return rec === undefined ? null : { ...rec }
  }

  async findOwner (sid: string): Promise<string | null> {
    this.assertOpen()
    const sub = this.owners.get(sid)
    return sub !== undefined && this.liveRecord(sub, sid) !== undefined ? sub : null
  }

  async listSessions (sub: string): Promise<SessionRecord[]> {
    this.assertOpen()
    const now = this.now()
    const live = [...(this.records.get(sub)?.values() ?? [])].filter((r) => r.expiresAt > now)
    return live.sort((a, b) => b.createdAt - a.createdAt).map(({ tokens: _t, ...r }) => r)
  }

  async updateSession (sub: string, sid: string, patch: SessionPatch): Promise<void> {
    this.assertOpen()
    const rec = this.liveRecord(sub, sid)
    if (rec !== undefined) Object.assign(rec, stripUndefined(patch))
  }

  async rotateCredential (sub: string, sid: string, expectedHash: string, newHash: string, now: number, graceUntil: number): Promise<RotateResult> {
    this.assertOpen()
    const rec = this.liveRecord(sub, sid)
    if (rec === undefined) return 'missing'
    if (rec.credHash === expectedHash) {
      rec.prevCredHash = expectedHash
      rec.prevGraceUntil = graceUntil
      rec.credHash = newHash
      rec.generation = (rec.generation ?? 0) + 1
      return 'rotated'
    }
    if (rec.prevCredHash === expectedHash) return now <= (rec.prevGraceUntil ?? 0) ? 'grace' : 'reuse'
    return 'unknown'
  }

  async renewDevice (i: RenewDeviceInput): Promise<RenewDeviceResult> {
    this.assertOpen()
    const rec = this.liveRecord(i.sub, i.sid)
    if (rec === undefined) return { outcome: 'missing' }
    if (i.nowMs >= rec.expiresAt) return { outcome: 'expired' }
    if (this.isDenied(i.sub, i.sid)) return { outcome: 'denied' }
    const ver = this.liveVersion(i.sub)
    if (ver === undefined) return { outcome: 'state_lost' }
    if (rec.version < ver.value) return { outcome: 'version' }
    let rotated = await this.rotateCredential(i.sub, i.sid, i.presentedHash, i.newHash, i.nowMs, i.graceUntil)
    // An authentic credential of an older generation, rotated away more than once: reuse too.
    // (Once the last rotation's grace window is over: before, it may be a request in flight all along.)
    if (rotated === 'unknown' && i.issuedGeneration !== undefined && i.issuedGeneration < (rec.generation ?? 0) && i.nowMs > (rec.prevGraceUntil ?? 0)) rotated = 'reuse'
    if (rotated === 'reuse') return { outcome: 'reuse', event: await this.revokeSessions(i.sub, [i.sid], i.denyTtl) }
    if (rotated !== 'rotated' && rotated !== 'grace') return { outcome: rotated }
    Object.assign(rec, { lastSeenAt: i.nowMs, ip: i.touch.ip, userAgent: i.touch.userAgent })
    return { outcome: rotated, record: { ...rec }, version: ver.value, epoch: this.epochValue }
  }

  async revokeSessions (sub: string, sids: string[], denyTtl: number): Promise<RevocationEvent> {
    this.assertOpen()
    const until = this.now() + secondsToMs(denyTtl)
    for (const sid of sids) {
      this.denied.set(pair(sub, sid), until)
      this.deleteRecord(sub, sid)
    }
    return this.publish({ sub, sids: [...sids], at: this.now() })
  }

  async revokeUser (sub: string, denyTtl: number, tokenTtl = 0): Promise<RevocationEvent> {
    this.assertOpen()
    const now = this.now()
    const until = now + secondsToMs(denyTtl)
    // Never moved back, never shortened: a later revocation of another replica may have landed first.
    const prev = this.liveRevokedAt(sub)
    const revokedAt = Math.max(prev?.value ?? 0, Math.floor(now / 1000))
    this.revokedAt.set(sub, { value: revokedAt, expiresAt: Math.max(prev?.expiresAt ?? 0, now + secondsToMs(Math.max(denyTtl, tokenTtl))) })
    const sids = [...(this.records.get(sub)?.values() ?? [])].filter((r) => r.expiresAt > now).map((r) => r.sid)
    for (const sid of [...(this.records.get(sub)?.keys() ?? [])]) this.deleteRecord(sub, sid)
    for (const sid of sids) this.denied.set(pair(sub, sid), until)
    // Like Redis INCR: a lost version restarts at 1; it must outlive every cookie issued under the old one.
    const ver = this.liveVersion(sub) ?? { value: 0, expiresAt: until }
    ver.value += 1
    ver.expiresAt = Math.max(ver.expiresAt, until)
    this.versions.set(sub, ver)
    return this.publish({ sub, sids, version: ver.value, revokedAt, at: now })
  }

  async logoutIdpSession (iss: string, idpSid: string, ttl: number): Promise<RevocationEvent> {
    this.assertOpen()
    const key = pair(iss, idpSid)
    const until = this.now() + secondsToMs(ttl)
    this.idpLogouts.set(key, Math.max(this.idpLogouts.get(key) ?? 0, until))
    return this.publish({ sub: '', sids: [], idpSession: { iss, sid: idpSid }, at: this.now() })
  }

  async checkBearer (sub: string, iss: string, idpSid: string | undefined): Promise<BearerCheck> {
    this.assertOpen()
    return this.bearerState(sub, iss, idpSid)
  }

  peekBearer (sub: string, iss: string, idpSid: string | undefined): BearerCheck | undefined {
    return this.closed ? undefined : this.bearerState(sub, iss, idpSid)
  }

  async sessionsForIdpSession (iss: string, idpSid: string): Promise<Array<{ sub: string, sid: string }>> {
    this.assertOpen()
    const out: Array<{ sub: string, sid: string }> = []
    for (const member of this.idpIndex.get(pair(iss, idpSid)) ?? []) {
      const [sub, sid] = unpair(member)
      if (this.liveRecord(sub, sid) !== undefined) out.push({ sub, sid })
    }
    return out
  }

  async claimOnce (kind: string, id: string, ttl: number): Promise<boolean> { return await this.shared.claimOnce(kind, id, ttl) }
  async wasClaimed (kind: string, id: string): Promise<boolean> { return await this.shared.wasClaimed(kind, id) }
  async tryLock (name: string, ttl: number): Promise<boolean> { return await this.shared.tryLock(name, ttl) }

  async usersForEmail (email: string): Promise<string[]> {
    this.assertOpen()
    const subs = new Set<string>()
    for (const member of this.emailIndex.get(email.toLowerCase()) ?? []) {
      const [sub, sid] = unpair(member)
      if (this.liveRecord(sub, sid) !== undefined) subs.add(sub)
    }
    return [...subs]
  }

  async lease (name: string, holder: string, ttlMs: number): Promise<boolean> { return await this.shared.lease(name, holder, ttlMs) }
  async releaseLease (name: string, holder: string): Promise<void> { await this.shared.releaseLease(name, holder) }
  async putNote (kind: string, id: string, value: string, ttl: number): Promise<void> { await this.shared.putNote(kind, id, value, ttl) }
  async getNote (kind: string, id: string): Promise<string | null> { return await this.shared.getNote(kind, id) }

  subscribe (listener: (event: RevocationEvent) => void): () => void {
    // A throwing listener must not break delivery to the others, nor go unnoticed.
    const safe = (event: RevocationEvent): void => {
      try {
        listener(event)
      } catch (err) {
        this.logger.error({ err }, 'revocation listener failed')
      }
    }
    this.events.on(EVENT, safe)
    return () => { this.events.off(EVENT, safe) }
  }

  async ping (): Promise<void> {
    this.assertOpen()
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.sweeper)
    this.events.removeAllListeners()
  }

  /** Frees every expired entry; runs on a timer, callable from tests. */
  sweep (): void {
    const now = this.now()
    for (const [key, v] of this.versions) if (v.expiresAt <= now) this.versions.delete(key)
    for (const [key, v] of this.revokedAt) if (v.expiresAt <= now) this.revokedAt.delete(key)
    for (const [key, at] of this.idpLogouts) if (at <= now) this.idpLogouts.delete(key)
    for (const [key, at] of this.denied) if (at <= now) this.denied.delete(key)
    this.shared.sweep(now)
    for (const [sub, mine] of this.records) {
      for (const rec of [...mine.values()]) if (rec.expiresAt <= now) this.deleteRecord(sub, rec.sid)
    }
  }

  private publish (event: RevocationEvent): RevocationEvent {
    // Asynchronous like pub/sub: listeners never run inside the revoking call; each gets its own copy.
    setImmediate(() => this.events.emit(EVENT, { ...event, sids: [...event.sids], ...(event.idpSession !== undefined ? { idpSession: { ...event.idpSession } } : {}) }))
    return event
  }

  private bearerState (sub: string, iss: string, idpSid: string | undefined): BearerCheck {
    return {
      revokedAt: this.liveRevokedAt(sub)?.value ?? null,
      idpLoggedOut: idpSid !== undefined && (this.idpLogouts.get(pair(iss, idpSid)) ?? 0) > this.now()
    }
  }

  private liveRevokedAt (sub: string): Expiring<number> | undefined {
    const v = this.revokedAt.get(sub)
    return v !== undefined && v.expiresAt > this.now() ? v : undefined
  }

  private deleteRecord (sub: string, sid: string): void {
    const mine = this.records.get(sub)
    const rec = mine?.get(sid)
    if (mine === undefined || rec === undefined) return
    mine.delete(sid)
    if (mine.size === 0) this.records.delete(sub)
    if (this.owners.get(sid) === sub) this.owners.delete(sid)
    if (rec.idpSid !== undefined) {
      const key = pair(rec.iss, rec.idpSid)
      const set = this.idpIndex.get(key)
      set?.delete(pair(sub, sid))
      if (set?.size === 0) this.idpIndex.delete(key)
    }
    if (rec.email !== undefined) {
      const key = rec.email.toLowerCase()
      const set = this.emailIndex.get(key)
      set?.delete(pair(sub, sid))
      if (set?.size === 0) this.emailIndex.delete(key)
    }
  }

  private liveRecord (sub: string, sid: string): SessionRecord | undefined {
    const rec = this.records.get(sub)?.get(sid)
    return rec !== undefined && rec.expiresAt > this.now() ? rec : undefined
  }

  private liveVersion (sub: string): Expiring<number> | undefined {
    const v = this.versions.get(sub)
    return v !== undefined && v.expiresAt > this.now() ? v : undefined
  }

  private isDenied (sub: string, sid: string): boolean {
    return (this.denied.get(pair(sub, sid)) ?? 0) > this.now()
  }

  private assertOpen (): void {
    if (this.closed) throw new StoreUnavailableError('memory store closed')
  }
}

/** Drops keys whose value is undefined, so records compare and serialise like the Redis ones. */
function stripUndefined<T extends object> (obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T
}
