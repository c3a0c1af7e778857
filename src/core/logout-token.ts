/**
 * OpenID Connect Back-Channel Logout 1.0 (with errata 1) logout token validation, with jose.
 * Pure: the key lookup is passed in (a jose JWKS function that refreshes on an unknown `kid`).
 * Rules and their order: docs/conformance.md, section A.
 */
import { errors, jwtVerify, type JWTVerifyGetKey, type JWTPayload } from 'jose'
import { CodedError } from './coded-error.js'

export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/** A logout token that passed every rule. */
export interface LogoutToken {
  iss: string
  sub?: string
  sid?: string
  jti: string
  iat: number
  exp: number
}

/** One code per rule a logout token can break (logged; tests and dashboards match on it). */
export type LogoutTokenErrorCode =
  | 'SG_LOGOUT_TOKEN_MISSING'
  | 'SG_LOGOUT_TOKEN_TOO_LARGE'
  | 'SG_LOGOUT_TOKEN_NOT_JWS'
  | 'SG_LOGOUT_TOKEN_SIGNATURE_ENCODING'
  | 'SG_LOGOUT_TOKEN_ALG_NOT_CONFIGURED'
  | 'SG_LOGOUT_TOKEN_TYP'
  | 'SG_LOGOUT_TOKEN_ISSUER'
  | 'SG_LOGOUT_TOKEN_AUDIENCE'
  | 'SG_LOGOUT_TOKEN_CLAIM_MISSING'
  | 'SG_LOGOUT_TOKEN_CLAIM_INVALID'
  | 'SG_LOGOUT_TOKEN_EXPIRED'
  | 'SG_LOGOUT_TOKEN_ALG'
  | 'SG_LOGOUT_TOKEN_KEY_UNKNOWN'
  | 'SG_LOGOUT_TOKEN_SIGNATURE'
  | 'SG_LOGOUT_TOKEN_MALFORMED'
  | 'SG_LOGOUT_TOKEN_UNSUPPORTED'
  | 'SG_LOGOUT_TOKEN_KEYS_UNAVAILABLE'
  | 'SG_LOGOUT_TOKEN_UNVERIFIED'
  | 'SG_LOGOUT_TOKEN_IAT_FUTURE'
  | 'SG_LOGOUT_TOKEN_IAT_TOO_OLD'
  | 'SG_LOGOUT_TOKEN_JTI_TOO_LONG'
  | 'SG_LOGOUT_TOKEN_EXP_TOO_FAR'
  | 'SG_LOGOUT_TOKEN_EVENTS'
  | 'SG_LOGOUT_TOKEN_EVENT'
  | 'SG_LOGOUT_TOKEN_NONCE'
  | 'SG_LOGOUT_TOKEN_SUBJECT_INVALID'
  | 'SG_LOGOUT_TOKEN_NO_SUBJECT'

/** Why a logout token was refused; `message` is safe to return as error_description. */
export class LogoutTokenError extends CodedError<LogoutTokenErrorCode> {}

export interface LogoutTokenOptions {
  issuer: string
  clientId: string
  /** The IdP's ID token signing algorithm; the only one accepted (never `none`, never HMAC for us). */
  algorithm: string
  keys: JWTVerifyGetKey
  /** Epoch seconds. */
  now: number
  /** Allowed clock skew in seconds (default 60). */
  skew?: number
  /** Oldest acceptable `iat`, in seconds before now (default 600). */
  maxAge?: number
}

/** Three base64url parts (RFC 7515 section 7.1): no padding, no whitespace, nothing else. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** `typ` values that name another kind of token: such a token is never a logout token. */
const FOREIGN_TYP = /^(application\/)?(at\+jwt|secevent\+jwt|dpop\+jwt|token-introspection\+jwt|jwt\+id-token)$/i

/** A logout token is short-lived (the spec suggests minutes); one valid for over a day is not accepted. */
const MAX_EXP_AHEAD = 86_400

/**
 * How long a logout token's `jti` must be remembered: until a replay would be refused anyway, by `exp`
 * or by `iat` being older than `maxAge`, whichever comes first (so never a 10-year key per token).
 */
export function replayWindow (token: Pick<LogoutToken, 'iat' | 'exp'>, now: number, opts: { skew?: number, maxAge?: number } = {}): number {
  const skew = opts.skew ?? 60
  const until = Math.min(token.exp + skew, token.iat + (opts.maxAge ?? 600) + skew)
  return Math.max(60, Math.ceil(until - now) + skew)
}

/** Validates a logout token; resolves with its claims or rejects with LogoutTokenError. */
export async function validateLogoutToken (token: unknown, opts: LogoutTokenOptions): Promise<LogoutToken> {
  if (typeof token !== 'string' || token === '') throw new LogoutTokenError('SG_LOGOUT_TOKEN_MISSING', 'logout_token is missing')
  if (token.length > 16_384) throw new LogoutTokenError('SG_LOGOUT_TOKEN_TOO_LARGE', 'logout_token is too large')
  if (!COMPACT_JWS.test(token)) throw new LogoutTokenError('SG_LOGOUT_TOKEN_NOT_JWS', 'logout_token must be a signed JWT (JWS compact serialization)')
  // jose decodes the signature with atob, which skips whitespace and ignores unused trailing bits: one
  // signature, many spellings. RFC 7515 allows one (base64url, no padding, no whitespace).
  const signature = token.slice(token.lastIndexOf('.') + 1)
  if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) {
    throw new LogoutTokenError('SG_LOGOUT_TOKEN_SIGNATURE_ENCODING', 'logout_token signature is not canonical base64url')
  }
  if (/^HS/.test(opts.algorithm) || opts.algorithm === 'none') throw new LogoutTokenError('SG_LOGOUT_TOKEN_ALG_NOT_CONFIGURED', 'no asymmetric algorithm configured for logout tokens')
  const skew = opts.skew ?? 60

  let payload: JWTPayload
  try {
    const verified = await jwtVerify(token, opts.keys, {
      algorithms: [opts.algorithm],
      issuer: opts.issuer,
      audience: opts.clientId,
      currentDate: new Date(opts.now * 1000),
      clockTolerance: skew,
      requiredClaims: ['iss', 'aud', 'iat', 'exp', 'jti']
    })
    payload = verified.payload
    const typ = verified.protectedHeader.typ
    if (typ !== undefined && FOREIGN_TYP.test(typ)) throw new LogoutTokenError('SG_LOGOUT_TOKEN_TYP', `typ "${typ}" is not a logout token`)
  } catch (err) {
    if (err instanceof LogoutTokenError) throw err
    throw joseError(err)
  }

  // Every audience must be us: a token also meant for another party is not trusted (Core 3.1.3.7).
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud]
  if (aud.some((a) => a !== opts.clientId)) throw new LogoutTokenError('SG_LOGOUT_TOKEN_AUDIENCE', 'aud contains an audience other than this client')
  if (typeof payload.iat !== 'number') throw new LogoutTokenError('SG_LOGOUT_TOKEN_CLAIM_MISSING', 'iat is required')
  if (payload.iat > opts.now + skew) throw new LogoutTokenError('SG_LOGOUT_TOKEN_IAT_FUTURE', 'iat is in the future')
  if (payload.iat < opts.now - (opts.maxAge ?? 600) - skew) throw new LogoutTokenError('SG_LOGOUT_TOKEN_IAT_TOO_OLD', 'iat is too old')
  if (typeof payload.jti !== 'string' || payload.jti === '') throw new LogoutTokenError('SG_LOGOUT_TOKEN_CLAIM_MISSING', 'jti is required')
  if (payload.jti.length > 256) throw new LogoutTokenError('SG_LOGOUT_TOKEN_JTI_TOO_LONG', 'jti is too long')
  // jose checks exp against now, not its size: a number no store can keep as a TTL is not a real token.
  if (!Number.isSafeInteger(Math.floor(payload.exp!)) || payload.exp! > opts.now + MAX_EXP_AHEAD) throw new LogoutTokenError('SG_LOGOUT_TOKEN_EXP_TOO_FAR', 'exp is too far in the future')

  const events = payload.events
  if (typeof events !== 'object' || events === null || Array.isArray(events)) throw new LogoutTokenError('SG_LOGOUT_TOKEN_EVENTS', 'events must be a JSON object')
  const event = (events as Record<string, unknown>)[BACKCHANNEL_EVENT]
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new LogoutTokenError('SG_LOGOUT_TOKEN_EVENT', `events must contain ${BACKCHANNEL_EVENT} with a JSON object value`)
  }
  if ('nonce' in payload) throw new LogoutTokenError('SG_LOGOUT_TOKEN_NONCE', 'a logout token must not contain nonce')

  const sub = payload.sub
  const sid = payload.sid
  if (sub !== undefined && (typeof sub !== 'string' || sub === '')) throw new LogoutTokenError('SG_LOGOUT_TOKEN_SUBJECT_INVALID', 'sub must be a non-empty string')
  if (sid !== undefined && (typeof sid !== 'string' || sid === '')) throw new LogoutTokenError('SG_LOGOUT_TOKEN_SUBJECT_INVALID', 'sid must be a non-empty string')
  if (sub === undefined && sid === undefined) throw new LogoutTokenError('SG_LOGOUT_TOKEN_NO_SUBJECT', 'sub or sid is required')

  return {
    iss: payload.iss!,
    jti: payload.jti,
    iat: payload.iat,
    exp: payload.exp!,
    ...(sub !== undefined ? { sub } : {}),
    ...(sid !== undefined ? { sid: sid as string } : {})
  }
}

/** A LogoutTokenError for a jose verification failure: the rule's code, a short token-free message. */
function joseError (err: unknown): LogoutTokenError {
  const fail = (code: LogoutTokenErrorCode, message: string): LogoutTokenError => new LogoutTokenError(code, message, { cause: err })
  if (err instanceof errors.JWTClaimValidationFailed) {
    const message = `claim "${err.claim}" ${err.reason === 'missing' ? 'is required' : 'is invalid'}`
    if (err.reason === 'missing') return fail('SG_LOGOUT_TOKEN_CLAIM_MISSING', message)
    if (err.claim === 'iss') return fail('SG_LOGOUT_TOKEN_ISSUER', message)
    if (err.claim === 'aud') return fail('SG_LOGOUT_TOKEN_AUDIENCE', message)
    return fail('SG_LOGOUT_TOKEN_CLAIM_INVALID', message)
  }
  if (err instanceof errors.JWTExpired) return fail('SG_LOGOUT_TOKEN_EXPIRED', 'the logout token has expired')
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('SG_LOGOUT_TOKEN_ALG', 'alg is not the one the IdP uses for ID tokens')
  if (err instanceof errors.JWKSNoMatchingKey) return fail('SG_LOGOUT_TOKEN_KEY_UNKNOWN', 'no IdP key matches the token (unknown kid)')
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('SG_LOGOUT_TOKEN_SIGNATURE', 'signature verification failed')
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return fail('SG_LOGOUT_TOKEN_MALFORMED', 'malformed JWT')
  if (err instanceof errors.JOSENotSupported) return fail('SG_LOGOUT_TOKEN_UNSUPPORTED', 'unsupported JOSE algorithm or key')
  if (err instanceof errors.JWKSTimeout) return fail('SG_LOGOUT_TOKEN_KEYS_UNAVAILABLE', 'the IdP key set could not be fetched in time')
  return fail('SG_LOGOUT_TOKEN_UNVERIFIED', 'the logout token could not be verified')
}
