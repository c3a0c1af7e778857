/**
 * The gateway's side of OpenID Connect, on openid-client: discovery, the authorization code flow with
 * PKCE (S256), state and nonce, code exchange with ID token validation, userinfo, refresh, RP-initiated
 * logout URL and RFC 7009 token revocation. Nothing here knows about HTTP frameworks or cookies.
 */
import * as oc from 'openid-client'
import type { Config } from '../config/types.js'
import type { IdpFetchWrap } from '../obs/observe.js'

/** What a finished login yields. `idClaims` are the validated ID token claims. */
export interface LoginResult {
  idToken: string
  idClaims: oc.IDToken
  accessToken: string
  /** Absolute expiry of the access token, epoch seconds, when the IdP said. */
  accessTokenExp?: number
  refreshToken?: string
  /** Profile claims from the userinfo endpoint (empty when the IdP has none). */
  userinfo: Record<string, unknown>
}

/** Per-login secrets the browser round-trips in the sealed login-transaction cookie. */
export interface LoginChecks {
  state: string
  nonce: string
  codeVerifier: string
}

export class OidcError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'OidcError'
    this.code = code
  }
}

export interface OidcClient {
  readonly issuer: string
  readonly clientId: string
  readonly metadata: oc.ServerMetadata
  /** Fresh state, nonce and PKCE verifier for one login. */
  newChecks (): LoginChecks
  authorizationUrl (checks: LoginChecks, redirectUri: string, scopes: string[]): Promise<string>
  /** Exchanges the code in `callbackUrl` and validates the ID token against `checks`. */
  finishLogin (callbackUrl: URL, checks: LoginChecks): Promise<LoginResult>
  refresh (refreshToken: string): Promise<{ accessToken: string, accessTokenExp?: number, refreshToken?: string, idToken?: string }>
  /** The end-session URL, or null when the IdP has no end_session_endpoint. */
  endSessionUrl (idTokenHint: string | undefined, postLogoutRedirectUri: string): string | null
  /** RFC 7009: revokes a refresh token when the IdP has a revocation endpoint. Returns false when it has none. */
  revokeRefreshToken (refreshToken: string): Promise<boolean>
  /** The IdP's ID token signing algorithm for this client (logout tokens use the same). */
  readonly idTokenAlg: string
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** Discovers the IdP and returns a ready client; throws OidcError on an http issuer unless allowed. */
export async function discoverOidc (cfg: Config['oidc'], opts: { timeoutSeconds?: number, fetch?: IdpFetchWrap } = {}): Promise<OidcClient> {
  const issuerUrl = new URL(cfg.issuer)
  if (issuerUrl.protocol !== 'https:' && !cfg.allowInsecureHttp) {
    throw new OidcError('SG_OIDC_INSECURE', `oidc.issuer ${cfg.issuer} is not https; set oidc.allowInsecureHttp only for local development`)
  }
  const execute = cfg.allowInsecureHttp ? [oc.allowInsecureRequests] : []
  const clientAuth = cfg.clientSecret !== undefined ? oc.ClientSecretBasic(cfg.clientSecret) : oc.None()
  let config: oc.Configuration
  // Every HTTP call to the IdP goes through this fetch (discovery assigns it to the configuration).
  let discovered: oc.ServerMetadata | undefined
  const customFetch = opts.fetch?.(fetch, () => discovered)
  try {
    config = await oc.discovery(issuerUrl, cfg.clientId, cfg.clientSecret, clientAuth, { execute, timeout: opts.timeoutSeconds ?? 5, ...(customFetch !== undefined ? { [oc.customFetch]: customFetch } : {}) })
  } catch (err) {
    throw new OidcError('SG_OIDC_DISCOVERY', `discovery of ${cfg.issuer} failed: ${(err as Error).message}`, { cause: err })
  }
  const metadata = config.serverMetadata()
  discovered = metadata
  const algs = metadata.id_token_signing_alg_values_supported
  const idTokenAlg = algs !== undefined && algs.length > 0 && !algs.includes('RS256') ? algs[0]! : 'RS256'

  return {
    issuer: metadata.issuer,
    clientId: cfg.clientId,
    metadata,
    idTokenAlg,
    newChecks: () => ({ state: oc.randomState(), nonce: oc.randomNonce(), codeVerifier: oc.randomPKCECodeVerifier() }),
    async authorizationUrl (checks, redirectUri, scopes) {
      const url = oc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: scopes.join(' '),
        response_type: 'code',
        state: checks.state,
        nonce: checks.nonce,
        code_challenge: await oc.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
        // offline_access needs consent at most IdPs
        ...(scopes.includes('offline_access') ? { prompt: 'consent' } : {})
      })
      return url.href
    },
    async finishLogin (callbackUrl, checks) {
      let tokens: Awaited<ReturnType<typeof oc.authorizationCodeGrant>>
      try {
        tokens = await oc.authorizationCodeGrant(config, callbackUrl, {
          pkceCodeVerifier: checks.codeVerifier,
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          idTokenExpected: true
        })
      } catch (err) {
        throw new OidcError('SG_OIDC_CALLBACK', `code exchange failed: ${describe(err)}`, { cause: err })
      }
      const idClaims = tokens.claims()
      if (idClaims === undefined || tokens.id_token === undefined) throw new OidcError('SG_OIDC_CALLBACK', 'the IdP returned no ID token')
      let userinfo: Record<string, unknown> = {}
      if (metadata.userinfo_endpoint !== undefined) {
        try {
          userinfo = await oc.fetchUserInfo(config, tokens.access_token, idClaims.sub)
        } catch (err) {
          throw new OidcError('SG_OIDC_USERINFO', `userinfo failed: ${describe(err)}`, { cause: err })
        }
      }
      const expiresIn = tokens.expiresIn()
      return {
        idToken: tokens.id_token,
        idClaims,
        accessToken: tokens.access_token,
        ...(expiresIn !== undefined ? { accessTokenExp: nowSeconds() + expiresIn } : {}),
        ...(tokens.refresh_token !== undefined ? { refreshToken: tokens.refresh_token } : {}),
        userinfo
      }
    },
    async refresh (refreshToken) {
      const tokens = await oc.refreshTokenGrant(config, refreshToken)
      const expiresIn = tokens.expiresIn()
      return {
        accessToken: tokens.access_token,
        ...(expiresIn !== undefined ? { accessTokenExp: nowSeconds() + expiresIn } : {}),
        ...(tokens.refresh_token !== undefined ? { refreshToken: tokens.refresh_token } : {}),
        ...(tokens.id_token !== undefined ? { idToken: tokens.id_token } : {})
      }
    },
    endSessionUrl (idTokenHint, postLogoutRedirectUri) {
      if (metadata.end_session_endpoint === undefined) return null
      const params: Record<string, string> = { post_logout_redirect_uri: postLogoutRedirectUri, client_id: cfg.clientId }
      if (idTokenHint !== undefined) params.id_token_hint = idTokenHint
      return oc.buildEndSessionUrl(config, params).href
    },
    async revokeRefreshToken (refreshToken) {
      if (metadata.revocation_endpoint === undefined) return false
      await oc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' })
      return true
    }
  }
}

/** A log-safe description of an openid-client error: its code and message, never a token. */
function describe (err: unknown): string {
  if (err instanceof oc.ResponseBodyError) return `${err.error}${err.error_description !== undefined ? ` (${err.error_description})` : ''}`
  if (err instanceof Error) return `${(err as Error & { code?: string }).code ?? err.name}: ${err.message}`
  return 'unknown error'
}
