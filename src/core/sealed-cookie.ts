/**
 * Sealed cookie values: AES-256-GCM under a key ring, bound to a purpose, and split into chunks when a
 * value is too large for one browser cookie.
 *
 * Format: `v1.<kid>.<iv>.<ciphertext>.<tag>` (base64url parts). The AAD is `v1.<kid>.<purpose>`, so a
 * value sealed as 'session' never opens as 'login-tx', and the kid picks the key without trial decryption.
 * The plaintext is the payload's JSON or, when the caller asks (`deflate`) and the JSON has COMPRESS_FROM
 * bytes or more, the byte 0x01 followed by its raw DEFLATE (JSON never starts with 0x01): a session with
 * many groups then still fits the cookie budget. Only payloads whose content no attacker chooses may be
 * deflated (the session, the token bundle): with attacker text beside a secret, the compressed length
 * would leak it (CRIME/BREACH). The login transaction carries a caller's `returnTo`, so it is not.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { deflateRawSync, inflateRawSync } from 'node:zlib'

/** Stable codes of {@link SealError}. */
export type SealErrorCode =
  | 'SG_SEAL_MALFORMED' // not shaped like a sealed value, or longer than MAX_SEALED_LENGTH
  | 'SG_SEAL_UNKNOWN_KEY' // its kid names no key in the ring (rotated out, or never ours)
  | 'SG_SEAL_INVALID' // authentication failed: tampered, truncated, wrong key or wrong purpose
  | 'SG_COOKIE_TOO_LARGE' // over MAX_COOKIE_BYTES, or more than MAX_COOKIE_CHUNKS cookies

/** Thrown by {@link unseal} and {@link splitCookie}. Messages are fixed per code: they never echo input. */
export class SealError extends Error {
  /** Stable, machine-readable reason. */
  readonly code: SealErrorCode

  constructor (code: SealErrorCode, message: string) {
    super(message)
    this.name = 'SealError'
    this.code = code
  }
}

/** Longest sealed value {@link unseal} will look at; checked before any decoding. */
export const MAX_SEALED_LENGTH = 64 * 1024

/**
 * Most chunk cookies a value is read from. The writer's limit is MAX_COOKIE_BYTES, which needs at most two;
 * a third is still read (values written before that limit).
 */
export const MAX_COOKIE_CHUNKS = 3

/**
 * Most octets (names and values, over all chunks) one cookie value may take in the `Cookie` header. Many
 * proxies in front refuse a header line over 8 KB (nginx and ingress-nginx, Apache: 8190), so the
 * session keeps well under it and leaves room for the device cookie and the application's own cookies.
 */
export const MAX_COOKIE_BYTES = 6144

/** JSON of this many bytes or more is deflated before sealing, when the caller allows it. */
const COMPRESS_FROM = 1024
const DEFLATED = 0x01
/** Largest plaintext inflate may produce (a sealed value is at most MAX_SEALED_LENGTH characters). */
const MAX_PLAINTEXT = 1024 * 1024

const VERSION = 'v1'
const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16
const KID_LENGTH = 8
const ALG = 'aes-256-gcm'
const B64URL = /^[A-Za-z0-9_-]+$/
// Purposes end the AAD, so any charset is unambiguous; this one keeps them readable in code.
const PURPOSE = /^[A-Za-z0-9_-]{1,64}$/

interface RingKey {
  readonly kid: string
  readonly key: Buffer
}

interface RingState {
  readonly current: RingKey
  readonly byKid: ReadonlyMap<string, RingKey>
}

// Module-private accessor: seal/unseal read the keys; nothing outside this file can (nor can a logger).
let stateOf: (ring: KeyRing) => RingState

/** Session keys: the first seals, every key opens. Keys are copied; each must be exactly 32 bytes. */
export class KeyRing {
  readonly #state: RingState

  static {
    stateOf = (ring) => ring.#state
  }

  constructor (keys: readonly Uint8Array[]) {
    if (!Array.isArray(keys) || keys.length === 0) throw new TypeError('KeyRing needs at least one key')
    const byKid = new Map<string, RingKey>()
    const all = keys.map((raw, i) => {
      if (!(raw instanceof Uint8Array) || raw.byteLength !== KEY_BYTES) {
        throw new TypeError(`KeyRing key ${i} must be exactly ${KEY_BYTES} bytes`)
      }
      const key = Buffer.from(raw) // copy: later changes to the caller's buffer must not change the ring
      const entry: RingKey = { kid: kidOf(key), key }
      const seen = byKid.get(entry.kid)
      // Two distinct keys with one kid would make unseal pick the wrong one; 48 bits make it near impossible.
      if (seen !== undefined && !seen.key.equals(key)) throw new TypeError(`KeyRing key ${i} collides with another key's kid`)
      if (seen === undefined) byKid.set(entry.kid, entry)
      return entry
    })
    this.#state = { current: all[0] as RingKey, byKid }
  }

  /** Key id of the key that seals new values. */
  get currentKid (): string {
    return this.#state.current.kid
  }

  /** Key ids of all keys, the sealing key first (duplicates removed). */
  get kids (): string[] {
    const { current, byKid } = this.#state
    return [current.kid, ...[...byKid.keys()].filter((kid) => kid !== current.kid)]
  }
}

/** Key id: first 8 chars of base64url(SHA-256(key)). Public by design; it only names the key. */
function kidOf (key: Uint8Array): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, KID_LENGTH)
}

function aad (kid: string, purpose: string): Buffer {
  return Buffer.from(`${VERSION}.${kid}.${purpose}`, 'utf8')
}

function assertPurpose (purpose: string): void {
  if (typeof purpose !== 'string' || !PURPOSE.test(purpose)) throw new TypeError('purpose must match [A-Za-z0-9_-]{1,64}')
}

/** Strict base64url: our charset, no padding, canonical (so one value has exactly one encoding). */
function decodePart (part: string): Buffer | undefined {
  if (!B64URL.test(part)) return undefined
  const bytes = Buffer.from(part, 'base64url')
  return bytes.toString('base64url') === part ? bytes : undefined
}

/**
 * Encrypts `payload` (JSON) for `purpose` with the ring's first key; `deflate` compresses a large one (see
 * the top of this file for when that is safe). Throws TypeError for non-JSON payloads.
 */
export function seal (ring: KeyRing, purpose: string, payload: unknown, opts: { deflate?: boolean } = {}): string {
  assertPurpose(purpose)
  const json: string | undefined = JSON.stringify(payload)
  if (json === undefined) throw new TypeError('payload is not JSON-serialisable')
  const { kid, key } = stateOf(ring).current
  // Random 96-bit IVs: safe up to ~2^32 seals per key; key rotation keeps us far below that.
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv(ALG, key, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad(kid, purpose))
  const ciphertext = Buffer.concat([cipher.update(opts.deflate === true ? plaintextOf(json) : Buffer.from(json, 'utf8')), cipher.final()])
  const sealed = [VERSION, kid, iv.toString('base64url'), ciphertext.toString('base64url'),
    cipher.getAuthTag().toString('base64url')].join('.')
  // Never produce what unseal would refuse.
  if (sealed.length > MAX_SEALED_LENGTH) throw new RangeError(`sealed value exceeds ${MAX_SEALED_LENGTH} characters`)
  return sealed
}

/**
 * Opens a value made by {@link seal} for the same `purpose` with a key still in the ring.
 * Throws {@link SealError}; never returns data that did not authenticate.
 */
export function unseal (ring: KeyRing, purpose: string, sealed: string): unknown {
  assertPurpose(purpose)
  if (typeof sealed !== 'string' || sealed.length > MAX_SEALED_LENGTH) throw malformed()
  const parts = sealed.split('.')
  if (parts.length !== 5) throw malformed()
  const [version, kid, ivPart, ctPart, tagPart] = parts as [string, string, string, string, string]
  if (version !== VERSION || kid.length !== KID_LENGTH || !B64URL.test(kid)) throw malformed()
  const iv = decodePart(ivPart)
  const ciphertext = decodePart(ctPart)
  const tag = decodePart(tagPart)
  if (iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || ciphertext === undefined) throw malformed()

  const entry = stateOf(ring).byKid.get(kid)
  if (entry === undefined) throw new SealError('SG_SEAL_UNKNOWN_KEY', 'sealed with a key that is not in the key ring')

  let plaintext: Buffer
  try {
    const decipher = createDecipheriv(ALG, entry.key, iv, { authTagLength: TAG_BYTES })
    decipher.setAuthTag(tag)
    decipher.setAAD(aad(kid, purpose))
    // final() authenticates; nothing from update() is used unless it succeeds.
    plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()])
  } catch {
    throw invalid()
  }
  try {
    if (plaintext[0] === DEFLATED) plaintext = inflateRawSync(plaintext.subarray(1), { maxOutputLength: MAX_PLAINTEXT })
    return JSON.parse(plaintext.toString('utf8')) as unknown
  } catch {
    throw invalid() // authentic but not (deflated) JSON: only a foreign sealer with our key could do this
  }
}

/** The bytes to encrypt: the JSON, deflated behind a marker byte when that is worth it. */
function plaintextOf (json: string): Buffer {
  const raw = Buffer.from(json, 'utf8')
  if (raw.length < COMPRESS_FROM) return raw
  const deflated = deflateRawSync(raw)
  return deflated.length + 1 < raw.length ? Buffer.concat([Buffer.of(DEFLATED), deflated]) : raw
}

/** True when `sealed` was sealed with the ring's current key (else an older key should re-seal it). */
export function sealedWithCurrentKey (ring: KeyRing, sealed: string): boolean {
  return sealed.startsWith(`${VERSION}.${stateOf(ring).current.kid}.`)
}

/** Shortest MAC {@link mac} makes and {@link verifyMac} accepts (bytes): a truncated HMAC keeps 128 bits. */
const MIN_TAG_BYTES = 16

/**
 * HMAC-SHA256 of `data` under the ring's current key, for `label` (base64url), truncated to `bytes` (16 to
 * 32). For tokens bound to a session, such as a form's CSRF token: the key never leaves this file.
 */
export function mac (ring: KeyRing, label: string, data: string, bytes = 32): string {
  assertPurpose(label)
  if (!Number.isInteger(bytes) || bytes < MIN_TAG_BYTES || bytes > 32) throw new RangeError(`a MAC keeps ${MIN_TAG_BYTES} to 32 bytes`)
  return hmacOf(stateOf(ring).current.key, label, data).subarray(0, bytes).toString('base64url')
}

function hmacOf (key: Buffer, label: string, data: string): Buffer {
  return createHmac('sha256', key).update(`${label}:${data}`).digest()
}

/**
 * True when `tag` (canonical base64url) is {@link mac} of `data` for `label`, truncated to the tag's
 * length (16 to 32 bytes), under ANY key of the ring: a value tagged before a key rotation still
 * verifies while its key is in the ring. Every key is tried, each compared in constant time, whatever
 * matched first: how long it takes says nothing about which key (if any) made the tag.
 */
export function verifyMac (ring: KeyRing, label: string, data: string, tag: string): boolean {
  assertPurpose(label)
  if (typeof tag !== 'string' || typeof data !== 'string') return false
  const want = decodePart(tag)
  if (want === undefined || want.length < MIN_TAG_BYTES || want.length > 32) return false
  let ok = false
  // byKid holds every key once, the current one included.
  for (const entry of stateOf(ring).byKid.values()) {
    const got = hmacOf(entry.key, label, data).subarray(0, want.length)
    // No early exit: every key costs the same.
    ok = timingSafeEqual(got, want) || ok
  }
  return ok
}

function malformed (): SealError {
  return new SealError('SG_SEAL_MALFORMED', 'not a sealed value')
}

function invalid (): SealError {
  return new SealError('SG_SEAL_INVALID', 'sealed value failed authentication')
}

// ---------------------------------------------------------------------------------------------------
// Chunking. Browsers cap name + value at 4096 octets per cookie (RFC 6265bis); the default budget of 3800
// leaves room for the attributes some browsers count too.

/** One cookie to set: a name and its value. */
export interface CookiePart {
  name: string
  value: string
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/ // RFC 7230 token
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/ // RFC 6265 cookie-octet*
const CHUNK_INDEX = /^(?:0|[1-9][0-9]*)$/
const BROWSER_LIMIT = 4096
// Chunk names add ".N" with N < MAX_COOKIE_CHUNKS <= 10: always two characters.
const SUFFIX_LENGTH = 2

/**
 * How many cookies `value` takes under `name` (1: whole, more: chunks), or 0 when the chunks' names and
 * values would take more than MAX_COOKIE_BYTES (or more than MAX_COOKIE_CHUNKS cookies). TypeError or
 * RangeError on bad input.
 */
function cookieCount (name: string, value: string, maxChunk: number): number {
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) throw new TypeError('cookie name is not a token')
  if (typeof value !== 'string' || !COOKIE_VALUE.test(value)) throw new TypeError('cookie value has characters a cookie cannot carry')
  const room = maxChunk - name.length - SUFFIX_LENGTH
  if (!Number.isInteger(maxChunk) || maxChunk > BROWSER_LIMIT || room < 1) {
    throw new RangeError(`maxChunk must be an integer above name length + ${SUFFIX_LENGTH} and at most ${BROWSER_LIMIT}`)
  }
  if (name.length + value.length <= maxChunk) return 1
  const count = Math.ceil(value.length / room)
  return count > MAX_COOKIE_CHUNKS || value.length + count * (name.length + SUFFIX_LENGTH) > MAX_COOKIE_BYTES ? 0 : count
}

/**
 * Splits a cookie whose name + value exceeds `maxChunk` into `name.0`, `name.1`, ...; otherwise returns it
 * whole. Throws SealError 'SG_COOKIE_TOO_LARGE' when the chunks' names and values would take more than
 * MAX_COOKIE_BYTES (or more than MAX_COOKIE_CHUNKS cookies), TypeError/RangeError on bad input.
 */
export function splitCookie (name: string, value: string, maxChunk = 3800): CookiePart[] {
  const count = cookieCount(name, value, maxChunk)
  if (count === 0) throw new SealError('SG_COOKIE_TOO_LARGE', `cookie needs more than ${MAX_COOKIE_BYTES} bytes of the Cookie header`)
  if (count === 1) return [{ name, value }]
  const size = Math.ceil(value.length / count) // even chunks rather than a tiny last one
  return Array.from({ length: count }, (_, i) => ({ name: `${name}.${i}`, value: value.slice(i * size, (i + 1) * size) }))
}

/** True when {@link splitCookie} would write `value` under `name` (it fits the cookie budget), without splitting it. */
export function cookieFits (name: string, value: string, maxChunk = 3800): boolean {
  return cookieCount(name, value, maxChunk) > 0
}

/** Index of chunk cookie `key` of `name` (`name.<n>`, canonical decimal), else undefined. */
function chunkIndex (key: string, name: string): number | undefined {
  if (key.length <= name.length + 1 || !key.startsWith(name) || key[name.length] !== '.') return undefined
  const suffix = key.slice(name.length + 1)
  return CHUNK_INDEX.test(suffix) ? Number(suffix) : undefined
}

/**
 * Reassembles the value of `name` from the plain cookie (preferred when present and non-empty) or from its
 * chunks. A gap, an empty chunk or more than MAX_COOKIE_CHUNKS chunks yields undefined.
 */
export function joinCookie (cookies: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const plain = Object.hasOwn(cookies, name) ? cookies[name] : undefined
  if (plain !== undefined && plain !== '') return plain
  const chunks: Array<string | undefined> = []
  for (const key of Object.keys(cookies)) {
    const i = chunkIndex(key, name)
    if (i === undefined) continue
    const value = cookies[key]
    if (i >= MAX_COOKIE_CHUNKS || value === undefined || value === '') return undefined
    chunks[i] = value
  }
  if (chunks.length === 0) return undefined
  // The array is sparse where a chunk is missing: reject rather than join a hole.
  for (let i = 0; i < chunks.length; i++) if (chunks[i] === undefined) return undefined
  return chunks.join('')
}

/** Names of present cookies for `name` (plain or chunk) not in `keep`: the caller clears them with Max-Age=0. */
export function staleChunkNames (cookies: Readonly<Record<string, string | undefined>>, name: string, keep: readonly string[]): string[] {
  return Object.keys(cookies).filter((key) =>
    cookies[key] !== undefined && (key === name || chunkIndex(key, name) !== undefined) && !keep.includes(key))
}
