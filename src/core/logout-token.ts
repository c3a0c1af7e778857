/**
 * OpenID Connect Back-Channel Logout 1.0 (with errata 1) logout token validation, with jose.
 * Pure: the key lookup is passed in (a jose JWKS function that refreshes on an unknown `kid`).
 * Rules and their order: ../../shared/SPEC-CHECKLIST.md section A.
 */
import { errors, jwtVerify, type JWTVerifyGetKey, type JWTPayload } from 'jose'

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

/** Why a logout token was refused; `message` is safe to return as error_description. */
export class LogoutTokenError extends Error {
  readonly code = 'SG_LOGOUT_TOKEN_INVALID'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'LogoutTokenError'
  }
}

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
  if (typeof token !== 'string' || token === '') throw new LogoutTokenError('logout_token is missing')
  if (token.length > 16_384) throw new LogoutTokenError('logout_token is too large')
  if (!COMPACT_JWS.test(token)) throw new LogoutTokenError('logout_token must be a signed JWT (JWS compact serialization)')
  // jose decodes the signature with atob, which skips whitespace and ignores unused trailing bits: one
  // signature, many spellings. RFC 7515 allows one (base64url, no padding, no whitespace).
  const signature = token.slice(token.lastIndexOf('.') + 1)
  if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) {
    throw new LogoutTokenError('logout_token signature is not canonical base64url')
  }
  if (/^HS/.test(opts.algorithm) || opts.algorithm === 'none') throw new LogoutTokenError('no asymmetric algorithm configured for logout tokens')
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
    if (typ !== undefined && FOREIGN_TYP.test(typ)) throw new LogoutTokenError(`typ "${typ}" is not a logout token`)
  } catch (err) {
    if (err instanceof LogoutTokenError) throw err
    throw new LogoutTokenError(describeJoseError(err), { cause: err })
  }

  // Every audience must be us: a token also meant for another party is not trusted (Core 3.1.3.7).
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud]
  if (aud.some((a) => a !== opts.clientId)) throw new LogoutTokenError('aud contains an audience other than this client')
  if (typeof payload.iat !== 'number') throw new LogoutTokenError('iat is required')
  if (payload.iat > opts.now + skew) throw new LogoutTokenError('iat is in the future')
  if (payload.iat < opts.now - (opts.maxAge ?? 600) - skew) throw new LogoutTokenError('iat is too old')
  if (typeof payload.jti !== 'string' || payload.jti === '') throw new LogoutTokenError('jti is required')
  if (payload.jti.length > 256) throw new LogoutTokenError('jti is too long')
  // jose checks exp against now, not its size: a number no store can keep as a TTL is not a real token.
  if (!Number.isSafeInteger(Math.floor(payload.exp!)) || payload.exp! > opts.now + MAX_EXP_AHEAD) throw new LogoutTokenError('exp is too far in the future')

  const events = payload.events
  if (typeof events !== 'object' || events === null || Array.isArray(events)) throw new LogoutTokenError('events must be a JSON object')
  const event = (events as Record<string, unknown>)[BACKCHANNEL_EVENT]
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new LogoutTokenError(`events must contain ${BACKCHANNEL_EVENT} with a JSON object value`)
  }
  if ('nonce' in payload) throw new LogoutTokenError('a logout token must not contain nonce')

  const sub = payload.sub
  const sid = payload.sid
  if (sub !== undefined && (typeof sub !== 'string' || sub === '')) throw new LogoutTokenError('sub must be a non-empty string')
  if (sid !== undefined && (typeof sid !== 'string' || sid === '')) throw new LogoutTokenError('sid must be a non-empty string')
  if (sub === undefined && sid === undefined) throw new LogoutTokenError('sub or sid is required')

  return {
    iss: payload.iss!,
    jti: payload.jti,
    iat: payload.iat,
    exp: payload.exp!,
    ...(sub !== undefined ? { sub } : {}),
    ...(sid !== undefined ? { sid: sid as string } : {})
  }
}

/** A short, token-free description of a jose verification failure. */
function describeJoseError (err: unknown): string {
  if (err instanceof errors.JWTClaimValidationFailed) return `claim "${err.claim}" ${err.reason === 'missing' ? 'is required' : 'is invalid'}`
  if (err instanceof errors.JWTExpired) return 'the logout token has expired'
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg is not the one the IdP uses for ID tokens'
  if (err instanceof errors.JWKSNoMatchingKey) return 'no IdP key matches the token (unknown kid)'
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature verification failed'
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed JWT'
  if (err instanceof errors.JOSENotSupported) return 'unsupported JOSE algorithm or key'
  if (err instanceof errors.JWKSTimeout) return 'the IdP key set could not be fetched in time'
  return 'the logout token could not be verified'
}
