/**
 * The device record as a Redis hash, kept small (issue #14): one-letter field names, credential hashes
 * as their raw 32 bytes, no `sid`/`sub` (both are in the key), the sealed token bundle in its own key
 * (`tok:{tag}:<sid>`, read only when needed), and every value at most 64 bytes (a longer user agent is
 * split over `u`, `u1`, `u2`...) so the hash stays a listpack (hash-max-listpack-value 64).
 *
 * Records written by the previous layout (long field names, base64url hashes, `tokens` in the hash) are
 * still read: a rolling upgrade keeps everyone signed in. Writes to such a record use the new fields and
 * drop the old ones they replace.
 */
import { StoreCorruptRecordError } from './store-errors.js'
import type { SessionRecord } from './store.js'

/** New field -> the previous layout's name for it. */
export const FIELDS = {
  iss: 'i',
  idpSid: 'd',
  createdAt: 'c',
  lastSeenAt: 'l',
  userAgent: 'u',
  ip: 'a',
  rememberMe: 'r',
  expiresAt: 'e',
  version: 'v',
  credHash: 'h',
  prevCredHash: 'p',
  prevGraceUntil: 'g',
  email: 'm',
  generation: 'n'
} as const

type Field = keyof typeof FIELDS
type Value = string | Buffer

/** Listpack values stay at or under this (Redis' default hash-max-listpack-value). */
const CHUNK = 64
/** A user agent is cut at 256 UTF-16 units (at most 1024 bytes): 16 chunks. */
const UA_CHUNKS = 16
const uaChunk = (i: number): string => (i === 0 ? 'u' : `u${i}`)

/**
 * A credential hash as stored: the raw 32 bytes of canonical base64url SHA-256 (what the gateway makes).
 * Anything else is kept as text; text that is itself 32 bytes long gets a `~` so it cannot pass for raw.
 */
export function encodeHash (hash: string): Value {
  if (hash.length === 43) {
    const raw = Buffer.from(hash, 'base64url')
    if (raw.length === 32 && raw.toString('base64url') === hash) return raw
  }
  return Buffer.byteLength(hash, 'utf8') === 32 ? `~${hash}` : hash
}

export function decodeHash (v: Buffer): string {
  if (v.length === 32) return v.toString('base64url')
  const s = v.toString('utf8')
  return s.length === 33 && s.startsWith('~') ? s.slice(1) : s
}

/** The user agent's fields (each <= 64 bytes) and the chunk fields left over from a longer one. */
export function uaFields (ua: string): { set: Value[], del: string[] } {
  const buf = Buffer.from(ua, 'utf8')
  const n = Math.max(1, Math.ceil(buf.length / CHUNK))
  const set: Value[] = []
  for (let i = 0; i < n; i++) set.push(uaChunk(i), buf.subarray(i * CHUNK, (i + 1) * CHUNK))
  const del: string[] = ['userAgent']
  for (let i = n; i < UA_CHUNKS; i++) del.push(uaChunk(i))
  return { set, del }
}

/**
 * HSET arguments for the defined fields of `rec` (no sid, sub, tokens: they live elsewhere), and the
 * fields to HDEL: the previous layout's names of what is written, and user-agent chunks no longer used.
 */
export function toFields (rec: Partial<SessionRecord>): { set: Value[], del: string[] } {
  const set: Value[] = []
  const del: string[] = []
  for (const [name, short] of Object.entries(FIELDS) as Array<[Field, string]>) {
    const value = rec[name]
    if (value === undefined) continue
    del.push(name)
    if (name === 'userAgent') {
      const ua = uaFields(String(value))
      set.push(...ua.set)
      del.push(...ua.del)
    } else if (name === 'credHash' || name === 'prevCredHash') {
      set.push(short, encodeHash(String(value)))
    } else {
      set.push(short, typeof value === 'boolean' ? (value ? '1' : '0') : String(value))
    }
  }
  return { set, del }
}

const B64URL = /^[A-Za-z0-9_-]*$/
const canonical = (part: string): Buffer | null => {
  if (!B64URL.test(part)) return null
  const raw = Buffer.from(part, 'base64url')
  return raw.toString('base64url') === part ? raw : null
}

/**
 * The sealed token bundle as stored: `v1.<kid>.<iv>.<ciphertext>.<tag>` (src/core/sealed-cookie.ts) as
 * bytes, a quarter smaller than its base64url text (ciphertext does not compress): 0x00, kid length,
 * kid, iv length, iv, tag length, tag, ciphertext. Anything else is kept as text (never starts with 0x00).
 */
export function encodeTokens (sealed: string): Value {
  const parts = sealed.split('.')
  if (parts.length !== 5 || parts[0] !== 'v1') return sealed
  const kid = Buffer.from(parts[1] ?? '', 'utf8')
  const [iv, ct, tag] = [canonical(parts[2] ?? ''), canonical(parts[3] ?? ''), canonical(parts[4] ?? '')]
  if (iv === null || ct === null || tag === null || kid.length > 255 || iv.length > 255 || tag.length > 255) return sealed
  return Buffer.concat([Buffer.from([0, kid.length]), kid, Buffer.from([iv.length]), iv, Buffer.from([tag.length]), tag, ct])
}

export function decodeTokens (v: Buffer): string {
  if (v.length === 0 || v[0] !== 0) return v.toString('utf8')
  let at = 1
  const take = (): Buffer => {
    const n = v[at] ?? 0
    const out = v.subarray(at + 1, at + 1 + n)
    at += 1 + n
    return out
  }
  const kid = take().toString('utf8')
  const iv = take()
  const tag = take()
  return ['v1', kid, iv.toString('base64url'), v.subarray(at).toString('base64url'), tag.toString('base64url')].join('.')
}

const NUMBERS: Field[] = ['createdAt', 'lastSeenAt', 'expiresAt', 'version']

/**
 * Rebuilds a record from HGETALL (as Buffers) and its token key; null when the hash is gone. A partial
 * hash is corrupt data and throws. Reads the previous layout too (new fields win).
 */
export function fromFields (sub: string, sid: string, h: Record<string, Buffer>, tokens: Buffer | null): SessionRecord | null {
  if (Object.keys(h).length === 0) return null
  const get = (name: Field): Buffer | undefined => h[FIELDS[name]] ?? h[name]
  const text = (name: Field): string | undefined => get(name)?.toString('utf8')
  const rec: Record<string, unknown> = { sid, sub }
  for (const name of ['iss', 'ip'] as const) {
    const v = text(name)
    if (v === undefined) throw new StoreCorruptRecordError(`store: session record lacks ${name}`)
    rec[name] = v
  }
  rec.userAgent = userAgentOf(h)
  for (const name of NUMBERS) rec[name] = toInt(text(name), name)
  rec.rememberMe = text('rememberMe') === '1'
  const cred = get('credHash')
  if (cred === undefined) throw new StoreCorruptRecordError('store: session record lacks credHash')
  rec.credHash = h.h !== undefined ? decodeHash(cred) : cred.toString('utf8')
  const prev = get('prevCredHash')
  if (prev !== undefined) rec.prevCredHash = h.p !== undefined ? decodeHash(prev) : prev.toString('utf8')
  const grace = text('prevGraceUntil')
  if (grace !== undefined) rec.prevGraceUntil = toInt(grace, 'prevGraceUntil')
  // Absent (at login, and in records of the previous layout): generation 0.
  const generation = text('generation')
  if (generation !== undefined) rec.generation = toInt(generation, 'generation')
  const idpSid = text('idpSid')
  if (idpSid !== undefined) rec.idpSid = idpSid
  const tok = tokens ?? h.tokens
  if (tok !== undefined && tok !== null) rec.tokens = decodeTokens(tok)
  const email = text('email')
  if (email !== undefined) rec.email = email
  return rec as unknown as SessionRecord
}

function userAgentOf (h: Record<string, Buffer>): string {
  if (h.u === undefined) {
    if (h.userAgent === undefined) throw new StoreCorruptRecordError('store: session record lacks userAgent')
    return h.userAgent.toString('utf8')
  }
  const parts: Buffer[] = []
  for (let i = 0; i < UA_CHUNKS; i++) {
    const part = h[uaChunk(i)]
    if (part === undefined) break
    parts.push(part)
  }
  return Buffer.concat(parts).toString('utf8')
}

/** A flat [field, value, ...] reply (HGETALL inside a script) as an object. */
export function pairsToObject (flat: unknown[]): Record<string, Buffer> {
  const out: Record<string, Buffer> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = asBuffer(flat[i + 1])
  return out
}

export function asBuffer (v: unknown): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8')
}

export function toInt (value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : Number(Buffer.isBuffer(value) ? value.toString('utf8') : value)
  if (value === undefined || value === null || !Number.isSafeInteger(n)) throw new StoreCorruptRecordError(`store: ${what} is not an integer`)
  return n
}
