/**
 * The Store interface: the only way core and http touch shared state.
 *
 * The store is split by concern: `RevocationStore` (the hot-path check, revocations, their events),
 * `DeviceStore` (device records and their lookup indexes), `ClaimStore` (one-time claims), `Locks`
 * (short exclusive locks), `CoordinationStore` (leases and notes shared by replicas, for Shared Signals),
 * and `StoreLifecycle`. `Store` is all of them. Two implementations share one contract suite per concern
 * (test/store/suite-*.ts): `MemoryStore` for one replica and `RedisStore` for many; `NearCacheStore`
 * wraps either. Keys of one user live under the `{sub}` hash tag so multi-key changes are atomic
 * in one Cluster slot (see DESIGN.md section 4).
 *
 * Vocabulary: a *session* is one login on one device. Its id (`sid`) is also its device id; the record
 * holds the hash of the device credential, so deleting the record makes the credential useless.
 */

/** A login on one device, as kept server-side. Times are epoch milliseconds. */
export interface SessionRecord {
  sid: string
  sub: string
  iss: string
  /** The IdP's `sid` claim of the ID token, when it sent one. */
  idpSid?: string
  createdAt: number
  lastSeenAt: number
  userAgent: string
  ip: string
  rememberMe: boolean
  /** When the record, and with it the device credential, stops being usable. */
  expiresAt: number
  /** The user's token version when this session was created. */
  version: number
  /** base64url SHA-256 of the current device credential. */
  credHash: string
  /** The credential hash before the last rotation, accepted until `prevGraceUntil`. */
  prevCredHash?: string
  prevGraceUntil?: number
  /**
   * How many times the device credential was rotated (absent: 0, as at login and in records of the
   * previous layout). The device cookie carries it, MAC-tagged, so a credential of an older generation
   * that matches neither hash is recognised as one the gateway issued: reuse.
   */
  generation?: number
  /** Sealed token bundle (refresh token, ID token); opaque to the store. */
  tokens?: string
  /** The user's email claim at login, when the IdP sent one: indexed (case-insensitively) for `usersForEmail`. */
  email?: string
}

/** Published on every revocation; every replica applies it. `at` is the publish time (ms). */
export interface RevocationEvent {
  /** The user; '' for an IdP-session logout marker (`idpSession`), which names no user. */
  sub: string
  /** Revoked gateway session ids (may be empty for a user-wide revocation of a user with no records). */
  sids: string[]
  /** The user's new token version when the whole user was revoked. */
  version?: number
  /** With `version`: the user's revocation time (epoch seconds); bearer tokens issued until then are refused. */
  revokedAt?: number
  /** An IdP session was logged out (`logoutIdpSession`): bearer tokens carrying its `sid` are refused. */
  idpSession?: { iss: string, sid: string }
  at: number
}

/** Result of the hot-path check: one round trip. */
export interface SessionCheck {
  denied: boolean
  /** The user's current token version; null when the store holds no state for the user (lost data). */
  version: number | null
}

/** Revocation state of a bearer access token (Store.checkBearer). */
export interface BearerCheck {
  /** When the user was last revoked as a whole (epoch seconds), or null when not within the kept window. */
  revokedAt: number | null
  /** True when the token's IdP session (`iss`, `sid`) was logged out within the kept window. */
  idpLoggedOut: boolean
}

export type RotateResult =
  | 'rotated' // expected hash was current: now the new hash is current, the old one is in grace, generation + 1
  | 'grace' // expected hash is the previous one and the grace window is still open
  | 'reuse' // expected hash is the previous one after the grace window: a stolen copy; the caller revokes
  | 'unknown' // matches neither: refused, but revokes nothing (a guessed credential must not sign anyone out)
  | 'missing' // no such session record

/** Input of `Store.renewDevice`: one device renewal from its credential. */
export interface RenewDeviceInput {
  sub: string
  sid: string
  /** Hash of the credential the device presented, and of the one that replaces it on rotation. */
  presentedHash: string
  newHash: string
  nowMs: number
  /** The presented credential stays good until then once rotated away (parallel requests). */
  graceUntil: number
  /** Written to the record on success (the device was seen). */
  touch: { ip: string, userAgent: string }
  /** Reuse revokes the device: its denylist entry lives this long (seconds), as `revokeSessions`. */
  denyTtl: number
  /**
   * The generation the presented cookie claims, only when its MAC tag verified (the gateway issued that
   * credential at that generation). When the credential matches neither hash and this is below the
   * record's generation, the credential was rotated away more than once: reuse, as for the previous hash,
   * once the last rotation's grace window is over (inside it, a request may have been in flight all along).
   */
  issuedGeneration?: number
}

/** What a renewal may be refused for, before any credential check ('missing': no such record). */
export type RenewRefusal = 'missing' | 'expired' | 'denied' | 'state_lost' | 'version' | 'unknown'

export type RenewDeviceResult =
  /** The device may mint a session: `record` is after rotation and touch; `version`, `epoch` read with it. */
  | { outcome: 'rotated' | 'grace', record: SessionRecord, version: number, epoch: string }
  | { outcome: RenewRefusal }
  /** The presented credential was rotated away before the grace window: the device is revoked (and announced). */
  | { outcome: 'reuse', event: RevocationEvent }

export { StoreError, StoreUnavailableError, StoreCorruptRecordError, StoreBadReplyError, StoreConfigError, type StoreErrorCode } from './store-errors.js'

/**
 * When a store epoch was created (epoch seconds), for epochs that say so (`<random>.<seconds>`); older
 * epochs (a plain random value) say nothing. A bearer token issued before its store's epoch may have been
 * revoked in the state the store lost, so it is refused.
 */
export function epochCreatedAt (epoch: string): number | undefined {
  const dot = epoch.lastIndexOf('.')
  if (dot < 0) return undefined
  const n = Number(epoch.slice(dot + 1))
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/** A new epoch value: random, with its creation time (epoch seconds). */
export function newEpoch (random: string, nowMs: number): string {
  return `${random}.${Math.floor(nowMs / 1000)}`
}

/** What every store has, whatever it stores. */
export interface StoreLifecycle {
  readonly kind: 'memory' | 'redis'

  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping (): Promise<void>

  close (): Promise<void>
}

/**
 * Revocation state: the hot-path check, the store epoch, revocations of sessions, users and IdP
 * sessions, the bearer check, and the revocation events every replica hears.
 *
 * The subscription signals (optional: a store whose events are in-process, the memory store, never
 * misses one and has none) let a cache in front of the store (NearCacheStore) know when events may have
 * been missed; `onResubscribed` is the gateway's own.
 */
export interface RevocationStore {
  /** The store's epoch: created on first use; a store that lost its data answers a new one. */
  epoch (): Promise<string>

  /** Hot path: denylist entry for `sid` and the user's version, in one round trip (one slot). */
  check (sub: string, sid: string): Promise<SessionCheck>

  /** Optional, synchronous: what `check` would answer, when this replica knows it for sure (a cache hit). */
  peek? (sub: string, sid: string): SessionCheck | undefined

  /** Optional, synchronous: the epoch, when known for sure without a round trip. */
  peekEpoch? (): string | undefined

  /**
   * Revokes these sessions of one user: denylists each sid for `denyTtl` seconds, deletes their records
   * (and so their device credentials), then publishes one event. Atomic per user.
   */
  revokeSessions (sub: string, sids: string[], denyTtl: number): Promise<RevocationEvent>

  /**
   * Revokes every session of the user: bumps the version, deletes all records, records the revocation
   * time for bearer tokens (epoch seconds, never moved back, kept max(denyTtl, tokenTtl) seconds), and
   * publishes one event carrying `version` and `revokedAt`. Atomic per user.
   */
  revokeUser (sub: string, denyTtl: number, tokenTtl?: number): Promise<RevocationEvent>

  /**
   * Records that an IdP session was logged out, for `ttl` seconds (as long as an access token lives),
   * whether or not a gateway session was created under it, and publishes an event with `idpSession`.
   */
  logoutIdpSession (iss: string, idpSid: string, ttl: number): Promise<RevocationEvent>

  /**
   * Bearer hot path: the user's revocation time and, when the token names one, whether its IdP session
   * was logged out. One round trip (two keys of two slots in a Cluster: pipelined).
   */
  checkBearer (sub: string, iss: string, idpSid: string | undefined): Promise<BearerCheck>

  /** Optional, synchronous: what `checkBearer` would answer, when this replica knows it for sure. */
  peekBearer? (sub: string, iss: string, idpSid: string | undefined): BearerCheck | undefined

  /** Listens to revocation events from every replica (including this one). Returns an unsubscribe. */
  subscribe (listener: (event: RevocationEvent) => void): () => void

  /**
   * Optional: registers `cb`, called each time the store listens to revocation events again after a
   * period in which it did not (a lost subscription, start-up). Events published meanwhile never reach
   * `subscribe` listeners: whoever acts on them re-checks against the store. A store without it never
   * misses an event (the memory store). Returns an unregister.
   */
  onResubscribed? (cb: () => void): () => void

  /**
   * Optional: registers `cb`, called with `true` each time the subscription to the revocation channel is
   * confirmed (after every reconnect) and with `false` as soon as it may have dropped (subscriber
   * connection closed, errored or a re-subscribe failed). Calls `cb` with the current state on
   * registration. Returns an unregister.
   */
  onSubscriptionChange? (cb: (live: boolean) => void): () => void

  /**
   * Optional, synchronous, on every cached answer: false while the store cannot vouch that every
   * revocation event acknowledged more than a short lease ago has reached this replica (a heartbeat
   * unanswered too long).
   */
  eventsUpToDate? (): boolean

  /** Optional: registers `cb`, called each time the data connection is re-established (data may have been lost). */
  onReconnect? (cb: () => void): () => void

  /** Optional: registers `cb`, called as soon as a connection of the store misbehaves (error, close, timeout). */
  onTrouble? (cb: () => void): () => void
}

/** The subscription signals of a `RevocationStore` (what NearCacheStore listens to). */
export type SubscriptionSignals = Pick<RevocationStore, 'onSubscriptionChange' | 'eventsUpToDate' | 'onReconnect' | 'onTrouble' | 'onResubscribed'>

/** The fields `DeviceStore.updateSession` may change. */
export type SessionPatch = Partial<Pick<SessionRecord, 'lastSeenAt' | 'userAgent' | 'ip' | 'tokens'>>

/**
 * Device records (one per session: the device credential's hash, its token bundle) and their lookup
 * indexes: owner by sid, sessions by IdP session, users by email.
 */
export interface DeviceStore {
  /**
   * Creates the session record (TTL until `rec.expiresAt`), adds it to the user's set, the IdP-session
   * index and the sid->sub index, and makes sure the user's version key exists and lives at least
   * `userStateTtl` seconds. Returns the user's current version, which the new session carries.
   */
  createSession (rec: Omit<SessionRecord, 'version'>, userStateTtl: number): Promise<number>

  getSession (sub: string, sid: string): Promise<SessionRecord | null>

  /** The owner (`sub`) of a gateway session id, or null. */
  findOwner (sid: string): Promise<string | null>

  /** The user's live session records, newest first, without their tokens (read only where needed). */
  listSessions (sub: string): Promise<SessionRecord[]>

  /** Updates a few fields of an existing record (no-op when it is gone). */
  updateSession (sub: string, sid: string, patch: SessionPatch): Promise<void>

  /**
   * Compare-and-swap rotation of the device credential, atomically:
   * current == expected -> rotated (prev = expected, grace until `graceUntil`);
   * prev == expected -> grace inside the window, reuse after it (the caller revokes); else unknown.
   */
  rotateCredential (sub: string, sid: string, expectedHash: string, newHash: string, now: number, graceUntil: number): Promise<RotateResult>

  /**
   * Renewal from a device credential, atomically and in one round trip: reads the record, refuses an
   * expired, denylisted, lost-state or outdated-version device, then compares the presented hash:
   * current -> rotated (the generation goes up by one); previous inside the grace window -> grace;
   * previous after it, or neither while `issuedGeneration` is below the record's generation and the last
   * rotation's grace window is over -> reuse, and
   * the device is revoked exactly as `revokeSessions` would (denylisted, record gone, event published);
   * anything else -> unknown (a guessed or forged credential signs nobody out). On success the record is touched
   * (lastSeenAt, ip, userAgent) and returned with the user's version and the store epoch.
   */
  renewDevice (input: RenewDeviceInput): Promise<RenewDeviceResult>

  /** The gateway sessions created under one IdP session. */
  sessionsForIdpSession (iss: string, idpSid: string): Promise<Array<{ sub: string, sid: string }>>

  /**
   * The users that have a live session created under this email address (compared case-insensitively).
   * The index is written by `createSession` (the record's `email`) and loses a session when it is revoked
   * or expires. Shared Signals subjects of format `email` are resolved with it.
   */
  usersForEmail (email: string): Promise<string[]>
}

/** One-time claims: replay guards (logout-token and SET `jti`, login `state`). */
export interface ClaimStore {
  /**
   * True the first time (kind, id) is claimed within `ttl` seconds; false on every repeat (replay).
   * A replay guard claims only after the work it guards succeeded (checking `wasClaimed` before), so a
   * failed attempt never burns the id that its retry needs.
   */
  claimOnce (kind: string, id: string, ttl: number): Promise<boolean>

  /** True while (kind, id) is claimed; changes nothing. */
  wasClaimed (kind: string, id: string): Promise<boolean>
}

/** Short exclusive locks among replicas (one access-token refresh per device at a time). */
export interface Locks {
  /**
   * Takes the lock `name` for `ttl` seconds: true when taken, false while anyone (this caller included)
   * holds it. Nobody releases it early: it lapses after `ttl`, so a crashed holder blocks no one for long.
   * In Redis a lock lives beside the claims (`jti:<name>`), so the claim a previous release took as the
   * refresh lock (`claimOnce('refresh', sid)`) and `tryLock('refresh:<sid>')` exclude each other.
   */
  tryLock (name: string, ttl: number): Promise<boolean>
}

/** Leases and notes shared by replicas (Shared Signals: one poller per transmitter, status for /admin/ssf). */
export interface CoordinationStore {
  /**
   * A lease on `name` for `ttlMs`: true when `holder` holds it now (taken when free or lapsed, extended
   * when already its own), false while another holder has it. One poller per transmitter among replicas.
   */
  lease (name: string, holder: string, ttlMs: number): Promise<boolean>

  /** Gives the lease on `name` up when `holder` has it (else nothing). */
  releaseLease (name: string, holder: string): Promise<void>

  /** A small shared value (a status every replica can show), kept `ttl` seconds; replaces the previous one. */
  putNote (kind: string, id: string, value: string, ttl: number): Promise<void>

  /** The value of a note, or null. */
  getNote (kind: string, id: string): Promise<string | null>
}

/** The whole store: every concern. Callers that need one concern may ask for just that interface. */
export type Store = StoreLifecycle & RevocationStore & DeviceStore & ClaimStore & Locks & CoordinationStore
