/**
 * JWT access tokens (RFC 9068) as a resource server checks them, with jose: signature by the IdP's keys
 * with an asymmetric algorithm only (never `none`, never HMAC: a client secret must not mint tokens),
 * `typ` `at+jwt` or `JWT`, `iss` exact, `aud` one of ours, `exp`/`nbf`/`iat` with a clock skew, `sub`.
 * Pure: the key lookup is passed in. A token older than `maxAge` (by `iat`) is refused, because the
 * revocation markers it could be checked against are kept only that long.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'

/** Asymmetric JWS algorithms; anything else (none, HS*) is refused before a key is looked up. */
export const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const

/** Longest token looked at (a JWT with many roles stays far below; junk is refused before parsing). */
export const MAX_TOKEN_LENGTH = 16 * 1024

/** Why a bearer token was refused; `reason` is safe to log (it never holds the token or its claims). */
export class BearerTokenError extends Error {
  readonly code = 'SG_BEARER_INVALID'
  constructor (readonly reason: string, options?: { cause?: unknown }) {
    super(`invalid bearer token: ${reason}`, options)
    this.name = 'BearerTokenError'
  }
}

export interface AccessTokenOptions {
  issuer: string
  /** `aud` must hold one of these. */
  audience: readonly string[]
  keys: JWTVerifyGetKey
  /** Epoch seconds. */
  now: number
  /** Clock skew in seconds allowed on exp, nbf and iat (default 60). */
  skew?: number
  /** Oldest acceptable token in seconds (by `iat`): `oidc.accessTokenMaxAge`. */
  maxAge: number
}

/** A token that passed every check. Times are epoch seconds. */
export interface AccessToken {
  sub: string
  iss: string
  iat: number
  exp: number
  nbf?: number
  /** The IdP session the token was issued under, when the IdP says. */
  sid?: string
  /** Every claim, for identity mapping and rules. */
  claims: JWTPayload
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
/** RFC 9068 `at+jwt` (also as a media type), or plain `JWT` as many IdPs still send (Keycloak, Entra ID). */
const ACCEPTED_TYP = new Set(['at+jwt', 'jwt'])

/** The `typ` header normalised as RFC 7515 says (case-insensitive, `application/` optional). */
function normalisedTyp (typ: unknown): string | undefined {
  if (typeof typ !== 'string') return undefined
  const t = typ.toLowerCase()
  return t.startsWith('application/') ? t.slice('application/'.length) : t
}

/** Verifies one access token; throws BearerTokenError when it must be refused. Key-fetch failures pass through. */
export async function verifyAccessToken (token: string, opts: AccessTokenOptions): Promise<AccessToken> {
  const skew = opts.skew ?? 60
  if (token.length > MAX_TOKEN_LENGTH) throw new BearerTokenError('token too long')
  if (!COMPACT_JWS.test(token)) throw new BearerTokenError('not a signed JWT (compact JWS)')
  let header
  try {
    header = decodeProtectedHeader(token)
  } catch (err) {
    throw new BearerTokenError('unreadable JWS header', { cause: err })
  }
  const typ = normalisedTyp(header.typ)
  if (typ === undefined || !ACCEPTED_TYP.has(typ)) throw new BearerTokenError('typ is not at+jwt or JWT')
  if (typeof header.alg !== 'string' || !(ASYMMETRIC_ALGS as readonly string[]).includes(header.alg)) {
    throw new BearerTokenError('alg is not an asymmetric signature algorithm')
  }
  let payload: JWTPayload
  try {
    ({ payload } = await jwtVerify(token, opts.keys, {
      algorithms: [...ASYMMETRIC_ALGS],
      issuer: opts.issuer,
      audience: [...opts.audience],
      clockTolerance: skew,
      currentDate: new Date(opts.now * 1000),
      maxTokenAge: opts.maxAge,
      requiredClaims: ['sub', 'iat', 'exp']
    }))
  } catch (err) {
    throw refusal(err)
  }
  const { sub, iss, iat, exp, nbf, sid } = payload
  if (typeof sub !== 'string' || sub === '') throw new BearerTokenError('sub is missing or empty')
  if (sid !== undefined && (typeof sid !== 'string' || sid === '')) throw new BearerTokenError('sid is not a non-empty string')
  return {
    sub,
    iss: iss!,
    iat: iat!,
    exp: exp!,
    ...(nbf !== undefined ? { nbf } : {}),
    ...(typeof sid === 'string' ? { sid } : {}),
    claims: payload
  }
}

/**
 * The time checks again, for a token verified earlier (a cache hit): undefined when it is still within
 * its time window at `now`, else why not. Same rules as jose's with the same skew.
 */
export function timeProblem (t: Pick<AccessToken, 'iat' | 'exp' | 'nbf'>, now: number, maxAge: number, skew = 60): string | undefined {
  if (t.exp <= now - skew) return 'expired'
  if (t.nbf !== undefined && t.nbf > now + skew) return 'not yet valid (nbf)'
  if (now - t.iat - skew > maxAge) return 'older than oidc.accessTokenMaxAge'
  if (now - t.iat < -skew) return 'issued in the future (iat)'
  return undefined
}

/** jose errors that say the token is bad: a refusal. Anything else (the key fetch failed) is rethrown. */
const TOKEN_ERRORS = new Set([
  'ERR_JWT_CLAIM_VALIDATION_FAILED', 'ERR_JWT_EXPIRED', 'ERR_JOSE_ALG_NOT_ALLOWED', 'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWS_INVALID', 'ERR_JWT_INVALID', 'ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
])

function refusal (err: unknown): unknown {
  if (!(err instanceof errors.JOSEError) || !TOKEN_ERRORS.has(err.code)) return err
  if (err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired) {
    return new BearerTokenError(`${err.claim} check failed (${err.reason})`, { cause: err })
  }
  if (err instanceof errors.JWKSNoMatchingKey) return new BearerTokenError('no IdP key matches the token (unknown kid)', { cause: err })
  if (err instanceof errors.JWSSignatureVerificationFailed) return new BearerTokenError('signature verification failed', { cause: err })
  return new BearerTokenError(err.code.toLowerCase().replace(/^err_/, ''), { cause: err })
}
