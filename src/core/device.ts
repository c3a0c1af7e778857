/**
 * Device credentials, pure part: random ids and secrets, their hashes, and the device cookie format
 * `<sid>.<credential>.<base64url(sub)>.<generation>.<tag>`. The server keeps only the credential's hash, so
 * a store leak cannot mint sessions. The user in the cookie lets renewal go straight to the user's keys
 * (one Redis round trip, one Cluster slot); it is no secret and proves nothing: a wrong one finds no record.
 * The generation counts the device's rotations; the tag (a MAC under the session key ring, made by the
 * session layer: {@link deviceTagData}) proves the gateway issued that credential at that generation, so an
 * older credential that no longer matches the record is recognised as reuse, not as a guess.
 * The previous formats `<sid>.<credential>.<base64url(sub)>` and `<sid>.<credential>` are still read (the
 * latter's owner is looked up) so devices survive an upgrade; a rotation writes the new one.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** The parsed device cookie. */
export interface DeviceCookie {
  /** Gateway session id (also the device id), 128-bit base64url. */
  sid: string
  /** Device secret, 256-bit base64url. */
  credential: string
  /** The user the device belongs to; absent in a cookie of the oldest format. */
  sub?: string
  /** The device's rotation count when this credential was issued, and its tag; absent in older formats. */
  generation?: number
  /** base64url MAC tag (16 bytes) over {@link deviceTagData}; present exactly when `generation` is. */
  tag?: string
}

/** Largest generation a cookie may carry (canonical decimal, at most 15 digits: exact in Lua's doubles). */
export const MAX_GENERATION = 999_999_999_999_999
const GENERATION = /^(?:0|[1-9][0-9]{0,14})$/
/** The tag's bytes: a truncated HMAC-SHA256. */
export const DEVICE_TAG_BYTES = 16
const TAG_LENGTH = 22

const SID_BYTES = 16
const CREDENTIAL_BYTES = 32
// base64url lengths without padding: ceil(bytes * 4 / 3).
const SID_LENGTH = 22
const CREDENTIAL_LENGTH = 43
const B64URL = /^[A-Za-z0-9_-]+$/
/** Longest `sub` a device cookie carries (OIDC: at most 255 ASCII characters); base64url of it. */
export const MAX_SUB_BYTES = 255
const MAX_SUB_LENGTH = Math.ceil(MAX_SUB_BYTES * 4 / 3)

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

/** base64url of a `sub` as the cookie carries it; null when the sub cannot be carried (empty, too long). */
function encodeSub (sub: string): string | null {
  const bytes = Buffer.from(sub, 'utf8')
  if (bytes.length === 0 || bytes.length > MAX_SUB_BYTES || bytes.toString('utf8') !== sub) return null
  return bytes.toString('base64url')
}

/** The `sub` of a cookie part: canonical base64url of well-formed UTF-8 within bounds, else null. */
function decodeSub (part: string): string | null {
  if (part.length === 0 || part.length > MAX_SUB_LENGTH || !B64URL.test(part)) return null
  const bytes = Buffer.from(part, 'base64url')
  if (bytes.toString('base64url') !== part) return null
  const sub = bytes.toString('utf8')
  return encodeSub(sub) === part ? sub : null
}

/** What the device cookie's tag is computed over: `<sid>.<generation>.<hash of the credential>`. */
export function deviceTagData (sid: string, generation: number, credHash: string): string {
  return `${sid}.${generation}.${credHash}`
}

/** True for a generation a cookie may carry: a safe integer in [0, MAX_GENERATION]. */
export function isGeneration (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_GENERATION
}

/** True for a well-formed tag: canonical base64url of exactly 16 bytes. */
export function isDeviceTag (value: unknown): value is string {
  return typeof value === 'string' && isB64url(value, TAG_LENGTH)
}

/**
 * The device cookie value `<sid>.<credential>.<base64url(sub)>.<generation>.<tag>`; throws TypeError when a
 * part is malformed. Without `gen`: `<sid>.<credential>.<base64url(sub)>`; without `sub` (or one too long to
 * carry): `<sid>.<credential>` (the generation needs the user part before it, so it is left out too).
 */
export function formatDeviceCookie (sid: string, credential: string, sub?: string, gen?: { generation: number, tag: string }): string {
  if (!isSessionId(sid)) throw new TypeError('sid is not a session id')
  if (!isCredential(credential)) throw new TypeError('credential is not a device credential')
  if (gen !== undefined && !isGeneration(gen.generation)) throw new TypeError('generation is out of range')
  if (gen !== undefined && !isDeviceTag(gen.tag)) throw new TypeError('tag is not a device tag')
  const user = sub === undefined ? null : encodeSub(sub)
  if (user === null) return `${sid}.${credential}`
  return gen === undefined ? `${sid}.${credential}.${user}` : `${sid}.${credential}.${user}.${gen.generation}.${gen.tag}`
}

/**
 * Parses a device cookie value; null for anything not exactly
 * `<sid>.<credential>[.<base64url(sub)>[.<generation>.<tag>]]` with every part canonical.
 */
export function parseDeviceCookie (value: string | undefined): DeviceCookie | null {
  const head = SID_LENGTH + 1 + CREDENTIAL_LENGTH
  // The longest: head, sub, a 15-digit generation and the tag, each behind a dot.
  if (typeof value !== 'string' || value.length < head || value.length > head + 1 + MAX_SUB_LENGTH + 16 + 1 + TAG_LENGTH) return null
  const sid = value.slice(0, SID_LENGTH)
  const credential = value.slice(SID_LENGTH + 1, head)
  if (value[SID_LENGTH] !== '.' || !isSessionId(sid) || !isCredential(credential)) return null
  if (value.length === head) return { sid, credential }
  if (value[head] !== '.') return null
  const rest = value.slice(head + 1).split('.')
  if (rest.length !== 1 && rest.length !== 3) return null
  const sub = decodeSub(rest[0]!)
  if (sub === null) return null
  if (rest.length === 1) return { sid, credential, sub }
  const [g, tag] = [rest[1]!, rest[2]!]
  if (!GENERATION.test(g) || !isDeviceTag(tag)) return null
  const generation = Number(g)
  return isGeneration(generation) ? { sid, credential, sub, generation, tag } : null
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
