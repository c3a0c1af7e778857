/**
 * Subject identifiers of Security Event Tokens (RFC 9493, SSF 1.0 section 3) mapped to what the gateway
 * knows: users by `sub` or email, and IdP sessions by `sid`. Pure.
 *
 * - `iss_sub`: the user `sub` at the IdP; only when `iss` is the IdP the gateway signs in with.
 * - `email`: every user with a session created under that address (the store's email index).
 * - `opaque`: `id` is taken as the user's `sub`.
 * - `complex` (SSF 1.0): `user` names the user, `session` the IdP session (its `sid`, as `opaque` `id`).
 * - `aliases` (RFC 9493): several identifiers of the same user.
 * Older transmitters (RISC drafts) write `subject_type` for `format` and `iss-sub` for `iss_sub`.
 * Any other format (phone_number, account, did, uri, ...) is valid but names nothing the gateway holds.
 */

/** A user the event names: by `sub`, or by email (resolved through the store). */
export type UserRef = { sub: string } | { email: string }

/** What a subject names, as far as the gateway can tell. */
export type Target =
  | { kind: 'known', users: UserRef[], session?: string }
  | { kind: 'unsupported', reason: string }

/** A subject that is not a well-formed identifier: the SET is invalid (`invalid_request`). */
export class SubjectError extends Error {
  readonly code = 'SG_SSF_SUBJECT_INVALID'
  constructor (message: string) {
    super(message)
    this.name = 'SubjectError'
  }
}

const MAX_VALUE = 1024
const MAX_ALIASES = 20

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The format of an identifier: `format`, or the older `subject_type`, with `-` read as `_`. */
function formatOf (id: Obj, where: string): string {
  const f = id.format ?? id.subject_type
  if (typeof f !== 'string' || f === '') throw new SubjectError(`${where} has no format`)
  return f.replace(/-/g, '_')
}

function member (id: Obj, name: string, where: string): string {
  const v = id[name]
  if (typeof v !== 'string' || v === '') throw new SubjectError(`${where} (${String(id.format ?? id.subject_type)}) needs a non-empty string "${name}"`)
  if (v.length > MAX_VALUE) throw new SubjectError(`${where}: "${name}" is too long`)
  return v
}

/** One simple identifier as a user, or why it names none. */
function simpleUser (raw: unknown, idpIssuer: string, where: string): UserRef | string {
  if (!isObj(raw)) throw new SubjectError(`${where} must be a JSON object`)
  const format = formatOf(raw, where)
  switch (format) {
    case 'iss_sub': {
      const iss = member(raw, 'iss', where)
      const sub = member(raw, 'sub', where)
      return iss === idpIssuer ? { sub } : `${where} names a subject of another issuer`
    }
    case 'email': {
      const email = member(raw, 'email', where)
      if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw new SubjectError(`${where}: "email" is not an email address`)
      return { email: email.toLowerCase() }
    }
    case 'opaque':
      return { sub: member(raw, 'id', where) }
    case 'complex':
    case 'aliases':
      throw new SubjectError(`${where} cannot be ${format} here`)
    default:
      return `${where} has format ${format.slice(0, 40)}, which names no user the gateway keeps`
  }
}

/** The IdP session a `session` member names: `opaque` `id`, or `iss_sub` of the IdP with the sid as `sub`. */
function sessionOf (raw: unknown, idpIssuer: string): string | undefined {
  if (!isObj(raw)) throw new SubjectError('sub_id.session must be a JSON object')
  const format = formatOf(raw, 'sub_id.session')
  if (format === 'opaque') return member(raw, 'id', 'sub_id.session')
  if (format === 'iss_sub') {
    const iss = member(raw, 'iss', 'sub_id.session')
    const sid = member(raw, 'sub', 'sub_id.session')
    return iss === idpIssuer ? sid : undefined
  }
  return undefined
}

/**
 * Maps a subject identifier; `idpIssuer` is the IdP whose `sub` and `sid` values the gateway keeps.
 * Throws SubjectError for a malformed identifier.
 */
export function parseSubject (raw: unknown, idpIssuer: string): Target {
  if (raw === undefined) return { kind: 'unsupported', reason: 'the event has no subject' }
  if (!isObj(raw)) throw new SubjectError('sub_id must be a JSON object')
  const format = formatOf(raw, 'sub_id')
  if (format === 'complex') {
    const users: UserRef[] = []
    if (raw.user !== undefined) {
      const user = simpleUser(raw.user, idpIssuer, 'sub_id.user')
      if (typeof user === 'string') return { kind: 'unsupported', reason: user }
      users.push(user)
    }
    const session = raw.session === undefined ? undefined : sessionOf(raw.session, idpIssuer)
    if (raw.session !== undefined && session === undefined) return { kind: 'unsupported', reason: 'sub_id.session names no IdP session the gateway keeps' }
    if (users.length === 0 && session === undefined) return { kind: 'unsupported', reason: 'a complex subject without user or session' }
    return { kind: 'known', users, ...(session !== undefined ? { session } : {}) }
  }
  if (format === 'aliases') {
    const list = raw.identifiers
    if (!Array.isArray(list) || list.length === 0) throw new SubjectError('sub_id.identifiers must be a non-empty array')
    if (list.length > MAX_ALIASES) throw new SubjectError(`sub_id.identifiers has more than ${MAX_ALIASES} entries`)
    const users = list.map((a, i) => simpleUser(a, idpIssuer, `sub_id.identifiers[${i}]`)).filter((u): u is UserRef => typeof u !== 'string')
    return users.length > 0 ? { kind: 'known', users } : { kind: 'unsupported', reason: 'no alias names a user the gateway keeps' }
  }
  const user = simpleUser(raw, idpIssuer, 'sub_id')
  return typeof user === 'string' ? { kind: 'unsupported', reason: user } : { kind: 'known', users: [user] }
}
