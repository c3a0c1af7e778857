/**
 * The Store interface: the only way core and http touch shared state.
 *
 * Two implementations share one test suite (test/store/suite.ts): `MemoryStore` for one replica and
 * `RedisStore` for many. Keys of one user live under the `{sub}` hash tag so multi-key changes are atomic
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
  /** Sealed token bundle (refresh token, ID token); opaque to the store. */
  tokens?: string
}

/** Published on every revocation; every replica applies it. `at` is the publish time (ms). */
export interface RevocationEvent {
  sub: string
  /** Revoked gateway session ids (may be empty for a user-wide revocation of a user with no records). */
  sids: string[]
  /** The user's new token version when the whole user was revoked. */
  version?: number
  at: number
}

/** Result of the hot-path check: one round trip. */
export interface SessionCheck {
  denied: boolean
  /** The user's current token version; null when the store holds no state for the user (lost data). */
  version: number | null
}

export type RotateResult =
  | 'rotated' // expected hash was current: now the new hash is current, the old one is in grace
  | 'grace' // expected hash is the previous one and the grace window is still open
  | 'reuse' // expected hash is the previous one after the grace window: a stolen copy; the caller revokes
  | 'unknown' // matches neither: refused, but revokes nothing (a guessed credential must not sign anyone out)
  | 'missing' // no such session record

/** Thrown (or rejected) when the store cannot be reached in time. Stable code for callers. */
export class StoreUnavailableError extends Error {
  readonly code = 'SG_STORE_UNAVAILABLE'
  constructor (message = 'store unavailable', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreUnavailableError'
  }
}

export interface Store {
  readonly kind: 'memory' | 'redis'

  /** The store's epoch: created on first use; a store that lost its data answers a new one. */
  epoch (): Promise<string>

  /** Hot path: denylist entry for `sid` and the user's version, in one round trip (one slot). */
  check (sub: string, sid: string): Promise<SessionCheck>

  /** Optional, synchronous: what `check` would answer, when this replica knows it for sure (a cache hit). */
  peek? (sub: string, sid: string): SessionCheck | undefined

  /** Optional, synchronous: the epoch, when known for sure without a round trip. */
  peekEpoch? (): string | undefined

  /**
   * Creates the session record (TTL until `rec.expiresAt`), adds it to the user's set, the IdP-session
   * index and the sid->sub index, and makes sure the user's version key exists and lives at least
   * `userStateTtl` seconds. Returns the user's current version, which the new session carries.
   */
  createSession (rec: Omit<SessionRecord, 'version'>, userStateTtl: number): Promise<number>

  getSession (sub: string, sid: string): Promise<SessionRecord | null>

  /** The owner (`sub`) of a gateway session id, or null. */
  findOwner (sid: string): Promise<string | null>

  /** The user's live session records, newest first. */
  listSessions (sub: string): Promise<SessionRecord[]>

  /** Updates a few fields of an existing record (no-op when it is gone). */
  updateSession (sub: string, sid: string, patch: Partial<Pick<SessionRecord, 'lastSeenAt' | 'userAgent' | 'ip' | 'tokens'>>): Promise<void>

  /**
   * Compare-and-swap rotation of the device credential, atomically:
   * current == expected -> rotated (prev = expected, grace until `graceUntil`);
   * prev == expected -> grace inside the window, reuse after it (the caller revokes); else unknown.
   */
  rotateCredential (sub: string, sid: string, expectedHash: string, newHash: string, now: number, graceUntil: number): Promise<RotateResult>

  /**
   * Revokes these sessions of one user: denylists each sid for `denyTtl` seconds, deletes their records
   * (and so their device credentials), then publishes one event. Atomic per user.
   */
  revokeSessions (sub: string, sids: string[], denyTtl: number): Promise<RevocationEvent>

  /** Revokes every session of the user: bumps the version, deletes all records, publishes one event. */
  revokeUser (sub: string, denyTtl: number): Promise<RevocationEvent>

  /** The gateway sessions created under one IdP session. */
  sessionsForIdpSession (iss: string, idpSid: string): Promise<Array<{ sub: string, sid: string }>>

  /**
   * True the first time (kind, id) is claimed within `ttl` seconds; false on every repeat (replay).
   * A replay guard claims only after the work it guards succeeded (checking `wasClaimed` before), so a
   * failed attempt never burns the id that its retry needs.
   */
  claimOnce (kind: string, id: string, ttl: number): Promise<boolean>

  /** True while (kind, id) is claimed; changes nothing. */
  wasClaimed (kind: string, id: string): Promise<boolean>

  /** Listens to revocation events from every replica (including this one). Returns an unsubscribe. */
  subscribe (listener: (event: RevocationEvent) => void): () => void

  /**
   * Optional: registers `cb`, called each time the store listens to revocation events again after a
   * period in which it did not (a lost subscription, start-up). Events published meanwhile never reach
   * `subscribe` listeners: whoever acts on them re-checks against the store. A store without it never
   * misses an event (the memory store). Returns an unregister.
   */
  onResubscribed? (cb: () => void): () => void

  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping (): Promise<void>

  close (): Promise<void>
}
