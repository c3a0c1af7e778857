/**
 * Device credentials, pure part: random ids and secrets, their hashes, and the device cookie format
 * `<sid>.<credential>`. The server keeps only the credential's hash, so a store leak cannot mint sessions.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** The parsed device cookie. */
export interface DeviceCookie {
  /** Gateway session id (also the device id), 128-bit base64url. */
  sid: string
  /** Device secret, 256-bit base64url. */
  credential: string
}

const SID_BYTES = 16
const CREDENTIAL_BYTES = 32
// base64url lengths without padding: ceil(bytes * 4 / 3).
const SID_LENGTH = 22
const CREDENTIAL_LENGTH = 43
const B64URL = /^[A-Za-z0-9_-]+$/

/** A new device credential: 256 random bits, base64url (43 characters). */
export function newCredential (): string {
  return randomBytes(CREDENTIAL_BYTES).toString('base64url')
}

/** base64url SHA-256 of a credential: what the store keeps instead of the credential. */
export function hashCredential (credential: string): string {
  return createHash('sha256').update(credential, 'utf8').digest('base64url')
}

/** A new gateway session id: 128 random bits, base64url (22 characters). */
export function newSessionId (): string {
  return randomBytes(SID_BYTES).toString('base64url')
}

/** Constant-time string equality; both sides are hashed first so neither content nor length leaks. */
export function safeEqual (a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest()
  const db = createHash('sha256').update(b, 'utf8').digest()
  return timingSafeEqual(da, db)
}

/** True when `value` is canonical base64url of exactly `length` characters. */
function isB64url (value: string, length: number): boolean {
  // The round trip rejects non-canonical trailing bits, so each secret has exactly one spelling.
  return value.length === length && B64URL.test(value) && Buffer.from(value, 'base64url').toString('base64url') === value
}

/** True for a well-formed session id (as made by {@link newSessionId}). */
export function isSessionId (value: unknown): value is string {
  return typeof value === 'string' && isB64url(value, SID_LENGTH)
}

/** True for a well-formed device credential (as made by {@link newCredential}). */
export function isCredential (value: unknown): value is string {
  return typeof value === 'string' && isB64url(value, CREDENTIAL_LENGTH)
}

/** The device cookie value `<sid>.<credential>`; throws TypeError when either part is malformed. */
export function formatDeviceCookie (sid: string, credential: string): string {
  if (!isSessionId(sid)) throw new TypeError('sid is not a session id')
  if (!isCredential(credential)) throw new TypeError('credential is not a device credential')
  return `${sid}.${credential}`
}

/** Parses a device cookie value; null for anything not exactly `<sid>.<credential>`. */
export function parseDeviceCookie (value: string | undefined): DeviceCookie | null {
  if (typeof value !== 'string' || value.length !== SID_LENGTH + 1 + CREDENTIAL_LENGTH) return null
  const sid = value.slice(0, SID_LENGTH)
  const credential = value.slice(SID_LENGTH + 1)
  if (value[SID_LENGTH] !== '.' || !isSessionId(sid) || !isCredential(credential)) return null
  return { sid, credential }
}

/** Why a device may not mint a new session (null: it may). Pure: the caller read the record and state. */
export type RenewalRefusal = 'expired' | 'denied' | 'state_lost' | 'version'

/**
 * Renewal never resurrects: it refuses when the device's lifetime ended, the session id was denylisted,
 * the store lost the user's state, or the user's version moved past the device's.
 */
export function renewalRefusal (
  rec: { expiresAt: number, version: number },
  state: { denied: boolean, version: number | null },
  nowMs: number
): RenewalRefusal | null {
  if (nowMs >= rec.expiresAt) return 'expired'
  if (state.denied) return 'denied'
  if (state.version === null) return 'state_lost'
  if (rec.version < state.version) return 'version'
  return null
}
