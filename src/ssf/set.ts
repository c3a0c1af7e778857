/**
 * Security Event Token validation (RFC 8417 as profiled by SSF 1.0), with jose. Pure: the transmitter's
 * key lookup is passed in. Rules: docs/conformance.md section H, README section "Shared Signals".
 *
 * A SET is a JWS (never unsigned, never HMAC) typed `secevent+jwt`, from the configured issuer, for our
 * audience, with `iat` (not in the future), `jti`, no `sub` (the subject is in `sub_id`), and exactly one
 * event in `events`. `exp` is not required (SETs do not expire), but one in the past is refused.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'

/** The `err` codes of RFC 8935 section 2.4 a bad SET is answered with. */
export type SetErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience'

/** One code per rule a SET can break (logged); `err` is the coarser RFC 8935 answer. */
export type SetRuleCode =
  | 'SG_SET_NOT_A_SET' | 'SG_SET_TOO_LARGE' | 'SG_SET_ENCRYPTED' | 'SG_SET_NOT_JWS' | 'SG_SET_MALFORMED'
  | 'SG_SET_UNSIGNED' | 'SG_SET_ALG' | 'SG_SET_TYP'
  | 'SG_SET_ISSUER' | 'SG_SET_AUDIENCE' | 'SG_SET_CLAIM_MISSING' | 'SG_SET_CLAIM_INVALID' | 'SG_SET_EXPIRED'
  | 'SG_SET_KEY_UNKNOWN' | 'SG_SET_KEY_AMBIGUOUS' | 'SG_SET_SIGNATURE' | 'SG_SET_UNSUPPORTED' | 'SG_SET_UNVERIFIED'
  | 'SG_SET_IAT_FUTURE' | 'SG_SET_IAT_TOO_OLD' | 'SG_SET_JTI_TOO_LONG' | 'SG_SET_SUB'
  | 'SG_SET_EVENTS' | 'SG_SET_EVENT_COUNT' | 'SG_SET_EVENT' | 'SG_SET_EVENT_TYPE_TOO_LONG'

/** Why a SET was refused; `message` is safe to return as `description` (never the token). */
export class SetError extends Error {
  constructor (readonly err: SetErrorCode, readonly code: SetRuleCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SetError'
  }
}

/** The transmitter's keys could not be read (its JWKS or configuration is unreachable): retry later. */
export class KeysUnavailableError extends Error {
  readonly code = 'SG_SSF_KEYS_UNAVAILABLE'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KeysUnavailableError'
  }
}

/** A SET that passed every rule. */
export interface SecurityEvent {
  iss: string
  jti: string
  iat: number
  /** The event type URI (the one member of `events`). */
  type: string
  /** The event's own claims. */
  payload: Record<string, unknown>
  /** The subject identifier: top-level `sub_id` (SSF 1.0), else the event's `sub_id` or `subject`. */
  subject?: unknown
}

export interface SetOptions {
  issuer: string
  audience: string
  keys: JWTVerifyGetKey
  /** Epoch seconds. */
  now: number
  /** Allowed clock skew in seconds (default 60). */
  skew?: number
  /** Oldest acceptable `iat`, in seconds before now (default one day): bounds how long a `jti` is kept. */
  maxAge?: number
}

/** Asymmetric JWS algorithms only: a SET signed with a shared secret proves nothing about its issuer. */
export const SET_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']

export const MAX_SET_LENGTH = 64 * 1024
const DEFAULT_MAX_AGE = 86_400
const TYP = 'secevent+jwt'

/** How long a SET's `jti` must be remembered: until its `iat` is too old for the SET to be accepted again. */
export function setReplayWindow (iat: number, now: number, opts: { skew?: number, maxAge?: number } = {}): number {
  const skew = opts.skew ?? 60
  return Math.max(60, Math.ceil(iat + (opts.maxAge ?? DEFAULT_MAX_AGE) + skew - now) + skew)
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Validates a SET; resolves with its event or rejects with SetError (or KeysUnavailableError). */
export async function validateSet (token: unknown, opts: SetOptions): Promise<SecurityEvent> {
  if (typeof token !== 'string' || token.trim() === '') throw new SetError('invalid_request', 'SG_SET_NOT_A_SET', 'the body is not a SET')
  const jws = token.trim()
  if (jws.length > MAX_SET_LENGTH) throw new SetError('invalid_request', 'SG_SET_TOO_LARGE', 'the SET is too large')
  const parts = jws.split('.').length
  if (parts === 5) throw new SetError('invalid_request', 'SG_SET_ENCRYPTED', 'encrypted SETs are not accepted')
  if (parts !== 3) throw new SetError('invalid_request', 'SG_SET_NOT_JWS', 'the SET must be a signed JWT (JWS compact serialization)')
  const skew = opts.skew ?? 60

  let header
  try {
    header = decodeProtectedHeader(jws)
  } catch (err) {
    throw new SetError('invalid_request', 'SG_SET_MALFORMED', 'malformed JWT header', { cause: err })
  }
  if (header.alg === undefined || header.alg === 'none') throw new SetError('invalid_request', 'SG_SET_UNSIGNED', 'the SET is not signed (alg none)')
  if (!SET_ALGORITHMS.includes(header.alg)) throw new SetError('invalid_key', 'SG_SET_ALG', `alg ${header.alg.slice(0, 20)} is not accepted (asymmetric signatures only)`)
  if (typeof header.typ !== 'string' || header.typ.toLowerCase().replace(/^application\//, '') !== TYP) {
    throw new SetError('invalid_request', 'SG_SET_TYP', `typ must be ${TYP}`)
  }

  let payload: JWTPayload
  try {
    payload = (await jwtVerify(jws, opts.keys, {
      algorithms: SET_ALGORITHMS,
      issuer: opts.issuer,
      audience: opts.audience,
      currentDate: new Date(opts.now * 1000),
      clockTolerance: skew,
      requiredClaims: ['iss', 'aud', 'iat', 'jti']
    })).payload
  } catch (err) {
    if (err instanceof KeysUnavailableError) throw err
    throw joseError(err)
  }

  const iat = payload.iat
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new SetError('invalid_request', 'SG_SET_CLAIM_MISSING', 'iat is required')
  if (iat > opts.now + skew) throw new SetError('invalid_request', 'SG_SET_IAT_FUTURE', 'iat is in the future')
  if (iat < opts.now - (opts.maxAge ?? DEFAULT_MAX_AGE) - skew) throw new SetError('invalid_request', 'SG_SET_IAT_TOO_OLD', 'iat is too old')
  if (typeof payload.jti !== 'string' || payload.jti === '') throw new SetError('invalid_request', 'SG_SET_CLAIM_MISSING', 'jti is required')
  if (payload.jti.length > 256) throw new SetError('invalid_request', 'SG_SET_JTI_TOO_LONG', 'jti is too long')
  if ('sub' in payload) throw new SetError('invalid_request', 'SG_SET_SUB', 'a SET must not carry sub; the subject goes in sub_id')

  const events = payload.events
  if (!isObj(events)) throw new SetError('invalid_request', 'SG_SET_EVENTS', 'events must be a JSON object')
  const types = Object.keys(events)
  if (types.length !== 1) throw new SetError('invalid_request', 'SG_SET_EVENT_COUNT', `events must hold exactly one event (got ${types.length})`)
  const type = types[0]!
  const event = events[type]
  if (!isObj(event)) throw new SetError('invalid_request', 'SG_SET_EVENT', 'the event must be a JSON object')
  if (type.length > 512) throw new SetError('invalid_request', 'SG_SET_EVENT_TYPE_TOO_LONG', 'the event type is too long')

  const subject = payload.sub_id ?? event.sub_id ?? event.subject
  return { iss: payload.iss!, jti: payload.jti, iat, type, payload: event, ...(subject !== undefined ? { subject } : {}) }
}

/** A SetError with the RFC 8935 code for a jose failure; its message names no token content. */
function joseError (err: unknown): SetError {
  const fail = (code: SetErrorCode, rule: SetRuleCode, message: string): SetError => new SetError(code, rule, message, { cause: err })
  if (err instanceof errors.JWTClaimValidationFailed) {
    const missing = err.reason === 'missing'
    if (err.claim === 'iss') return missing ? fail('invalid_request', 'SG_SET_CLAIM_MISSING', 'iss is required') : fail('invalid_issuer', 'SG_SET_ISSUER', 'iss is not this transmitter')
    if (err.claim === 'aud') return missing ? fail('invalid_request', 'SG_SET_CLAIM_MISSING', 'aud is required') : fail('invalid_audience', 'SG_SET_AUDIENCE', 'aud does not name this receiver')
    return fail('invalid_request', missing ? 'SG_SET_CLAIM_MISSING' : 'SG_SET_CLAIM_INVALID', `claim "${err.claim}" ${missing ? 'is required' : 'is invalid'}`)
  }
  if (err instanceof errors.JWTExpired) return fail('invalid_request', 'SG_SET_EXPIRED', 'the SET has expired (exp)')
  if (err instanceof errors.JWKSNoMatchingKey) return fail('invalid_key', 'SG_SET_KEY_UNKNOWN', 'no key of the transmitter matches the SET (unknown kid)')
  if (err instanceof errors.JWKSMultipleMatchingKeys) return fail('invalid_key', 'SG_SET_KEY_AMBIGUOUS', 'several keys of the transmitter match; the SET needs a kid')
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('invalid_key', 'SG_SET_SIGNATURE', 'signature verification failed')
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('invalid_key', 'SG_SET_ALG', 'alg is not accepted')
  if (err instanceof errors.JOSENotSupported || err instanceof errors.JWKInvalid) return fail('invalid_key', 'SG_SET_UNSUPPORTED', 'the key or algorithm is not supported')
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return fail('invalid_request', 'SG_SET_MALFORMED', 'malformed JWT')
  return fail('invalid_request', 'SG_SET_UNVERIFIED', 'the SET could not be verified')
}
