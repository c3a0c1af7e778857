/**
 * OidcError: every failure of the gateway's IdP side, with a stable code (as panva's libraries
 * give `err.code`) and the library error kept as `cause`. Callers branch on the code, never on
 * openid-client's classes, so only src/oidc/ depends on them.
 */
import * as oc from 'openid-client'
import { CodedError } from '../core/coded-error.js'

export type OidcErrorCode =
  /** An http:// issuer without oidc.allowInsecureHttp. */
  | 'SG_OIDC_INSECURE'
  | 'SG_OIDC_DISCOVERY'
  | 'SG_OIDC_PAR'
  /** The code exchange or the ID token it returned failed. */
  | 'SG_OIDC_CALLBACK'
  | 'SG_OIDC_USERINFO'
  | 'SG_OIDC_CLIENT_KEY'
  | 'SG_OIDC_NO_JWKS'
  | 'SG_OIDC_JWKS'
  /** The IdP answered a grant with `invalid_grant`: the refresh token is dead (revoked, expired, reused). */
  | 'SG_OIDC_INVALID_GRANT'
  /** The IdP answered with another OAuth error (invalid_client, unauthorized_client, ...): a setup problem. */
  | 'SG_OIDC_REFUSED'
  /** The IdP's answer was not a valid response (malformed, unexpected, a bad ID token). */
  | 'SG_OIDC_INVALID_RESPONSE'
  /** The IdP could not be reached or failed (network, timeout, 5xx, temporarily_unavailable): try later. */
  | 'SG_OIDC_UNAVAILABLE'

export class OidcError extends CodedError<OidcErrorCode> {}

/** True for an OidcError, with `code` when given (narrows `err` for the caller). */
export function isOidcError (err: unknown, code?: OidcErrorCode): err is OidcError {
  return err instanceof OidcError && (code === undefined || err.code === code)
}

/** OAuth error codes that mean the IdP is there but cannot serve now. */
const TRANSIENT = new Set(['temporarily_unavailable', 'server_error'])

/**
 * Wraps a failed grant (refresh, code exchange) in an OidcError whose code says what the caller
 * should do; `what` starts the message ("refresh failed"). An OidcError is returned as it is.
 */
export function grantError (err: unknown, what: string): OidcError {
  if (err instanceof OidcError) return err
  const message = `${what}: ${describe(err)}`
  if (err instanceof oc.ResponseBodyError) {
    if (err.error === 'invalid_grant') return new OidcError('SG_OIDC_INVALID_GRANT', message, { cause: err })
    if (err.status >= 500 || TRANSIENT.has(err.error)) return new OidcError('SG_OIDC_UNAVAILABLE', message, { cause: err })
    return new OidcError('SG_OIDC_REFUSED', message, { cause: err })
  }
  if (err instanceof oc.WWWAuthenticateChallengeError) return new OidcError('SG_OIDC_REFUSED', message, { cause: err })
  // openid-client's own checks of the answer (OAUTH_INVALID_RESPONSE, OAUTH_JWT_..., ...): the IdP answered, wrongly.
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code.startsWith('OAUTH_') && code !== 'OAUTH_TIMEOUT') return new OidcError('SG_OIDC_INVALID_RESPONSE', message, { cause: err })
  return new OidcError('SG_OIDC_UNAVAILABLE', message, { cause: err })
}

/**
 * A log-safe description of an openid-client error: its code and message and those of its causes
 * (a failed code exchange says why: the IdP's error, a TLS failure, a refused connection), never a token.
 */
export function describe (err: unknown, depth = 0): string {
  let text: string
  if (err instanceof oc.ResponseBodyError) text = `${err.error}${err.error_description !== undefined ? ` (${err.error_description})` : ''}`
  else if (err instanceof oc.WWWAuthenticateChallengeError) {
    // The OAuth error is in the WWW-Authenticate challenge (its `cause`), e.g. invalid_client on a 401.
    const said = err.cause.map(c => [c.parameters.error, c.parameters.error_description].filter(v => v !== undefined).join(' ')).filter(v => v !== '')
    return `HTTP ${err.status} ${said.length > 0 ? said.join('; ') : err.message}`
  }
  else if (err instanceof Error) text = `${(err as Error & { code?: string }).code ?? err.name}: ${err.message}`
  else return 'unknown error'
  const cause = (err as { cause?: unknown }).cause
  return cause instanceof Error && depth < 3 ? `${text}; cause: ${describe(cause, depth + 1)}` : text
}
