/**
 * The IdP's signing keys for bearer access tokens: the key set at discovery's `jwks_uri`, fetched and
 * cached by jose. A token naming an unknown `kid` makes it fetch the set again at most once per
 * `cooldownMs` (a minute), so a stream of junk tokens cannot make the gateway hammer the IdP. The set is
 * also refreshed every 10 minutes (a key the IdP withdrew stops working); when that refresh fails, the
 * keys fetched last keep verifying, so an IdP outage does not stop API traffic.
 */
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey } from 'jose'
import { OidcError } from './client.js'
import { fetchOption } from './fetch.js'

/** At most one refetch of the key set per minute for unknown `kid`s. */
export const JWKS_COOLDOWN_MS = 60_000
/** A cached key set is fetched again after this long even when every `kid` is known (IdP key rotation). */
const JWKS_MAX_AGE_MS = 10 * 60_000
const JWKS_TIMEOUT_MS = 3000
/** jose errors that judge the token (no key matches it), not the fetch of the key set. */
const TOKEN_ERRORS = new Set(['ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'ERR_JOSE_NOT_SUPPORTED', 'ERR_JWS_INVALID'])

/** What the key source needs of the discovered IdP (an `OidcSource`). */
export interface JwksUriSource {
  current (): { metadata: { jwks_uri?: string } } | undefined
  get (): Promise<{ metadata: { jwks_uri?: string } }>
}

/**
 * A jose key lookup over the IdP's current `jwks_uri` (one remote set per URI, rebuilt only if discovery
 * names another). Fails with OidcError when the IdP publishes no `jwks_uri`.
 */
export function createIdpKeys (source: JwksUriSource, opts: { cooldownMs?: number, fetch?: typeof fetch } = {}): JWTVerifyGetKey {
  let set: { uri: string, get: ReturnType<typeof createRemoteJWKSet> } | undefined
  let stale: { keys: object, get: JWTVerifyGetKey } | undefined
  return async (header, token) => {
    const uri = (source.current() ?? await source.get()).metadata.jwks_uri
    if (uri === undefined) throw new OidcError('SG_OIDC_NO_JWKS', 'the IdP publishes no jwks_uri')
    if (set?.uri !== uri) {
      set = {
        uri,
        get: createRemoteJWKSet(new URL(uri), {
          cooldownDuration: opts.cooldownMs ?? JWKS_COOLDOWN_MS,
          cacheMaxAge: JWKS_MAX_AGE_MS,
          timeoutDuration: JWKS_TIMEOUT_MS,
          // A private CA for the IdP (oidc.caFile) applies to its key set too.
          ...(opts.fetch !== undefined ? { [customFetch]: opts.fetch } : {})
        })
      }
    }
    try {
      return await set.get(header, token)
    } catch (err) {
      // Not about the token (a timeout, an unreachable IdP, a bad answer): fall back to the last keys fetched.
      if (err instanceof errors.JOSEError && TOKEN_ERRORS.has(err.code)) throw err
      const last = set.get.jwks()
      if (last === undefined) throw new OidcError('SG_OIDC_JWKS', `the IdP key set could not be fetched: ${(err as Error).message}`, { cause: err })
      if (stale?.keys !== last) stale = { keys: last, get: createLocalJWKSet(last) }
      return await stale.get(header, token)
    }
  }
}

/** How often an unknown `kid` in a logout token may refetch the key set: logout tokens are rare, and a key rotation should not delay a logout long. */
const LOGOUT_TOKEN_COOLDOWN_MS = 30_000

/** The IdP's key set for back-channel logout tokens (`ca`: a private CA for the IdP, oidc.caFile). */
export function createLogoutTokenKeys (source: JwksUriSource, ca: Buffer | undefined): JWTVerifyGetKey {
  return createIdpKeys(source, { cooldownMs: LOGOUT_TOKEN_COOLDOWN_MS, ...fetchOption(ca) })
}

/** The IdP's key set for bearer access tokens (unknown `kid`s refetch at most every JWKS_COOLDOWN_MS). */
export function createAccessTokenKeys (source: JwksUriSource, ca: Buffer | undefined): JWTVerifyGetKey {
  return createIdpKeys(source, { ...fetchOption(ca) })
}
