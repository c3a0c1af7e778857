/**
 * The gateway's side of OpenID Connect, on openid-client: discovery, the authorization code flow with
 * PKCE (S256), state and nonce, code exchange with ID token validation, userinfo, refresh, RP-initiated
 * logout URL and RFC 7009 token revocation. Nothing here knows about HTTP frameworks or cookies.
 */
import { createPrivateKey, type webcrypto } from 'node:crypto'
import * as oc from 'openid-client'
import { calculateJwkThumbprint, exportJWK, importJWK, importPKCS8, type JWK } from 'jose'
import { idpFetch } from './fetch.js'
import type { Config } from '../config/types.js'
import type { IdpFetchWrap } from '../obs/observe.js'
import { describe, OidcError } from './errors.js'

export { describe, grantError, isOidcError, OidcError, type OidcErrorCode } from './errors.js'

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
  const clientAuth = await clientAuthentication(cfg)
  const caFetch = idpFetch(cfg.ca) as unknown as oc.CustomFetch | undefined
  // opts.fetch (metrics, traces) wraps whichever fetch reaches the IdP; it names calls by the metadata.
  let discovered: oc.ServerMetadata | undefined
  // The cast: openid-client hands fetch its CustomFetchOptions (`body: undefined` when there is none),
  // which the platform's RequestInit typing refuses under exactOptionalPropertyTypes; fetch accepts it.
  const fetchImpl = opts.fetch !== undefined ? opts.fetch(caFetch ?? (fetch as oc.CustomFetch), () => discovered) : caFetch
  let config: oc.Configuration
  try {
    config = await oc.discovery(issuerUrl, cfg.clientId, cfg.clientSecret, clientAuth, {
      execute,
      timeout: opts.timeoutSeconds ?? 5,
      ...(fetchImpl !== undefined ? { [oc.customFetch]: fetchImpl } : {})
    })
  } catch (err) {
    throw new OidcError('SG_OIDC_DISCOVERY', `discovery of ${cfg.issuer} failed: ${describe(err)}`, { cause: err })
  }
  if (fetchImpl !== undefined) config[oc.customFetch] = fetchImpl
  const metadata = config.serverMetadata()
  discovered = metadata
  const usePar = cfg.par !== 'never' && metadata.pushed_authorization_request_endpoint !== undefined
  const algs = metadata.id_token_signing_alg_values_supported
  const idTokenAlg = algs !== undefined && algs.length > 0 && !algs.includes('RS256') ? algs[0]! : 'RS256'

  return {
    issuer: metadata.issuer,
    clientId: cfg.clientId,
    metadata,
    idTokenAlg,
    newChecks: () => ({ state: oc.randomState(), nonce: oc.randomNonce(), codeVerifier: oc.randomPKCECodeVerifier() }),
    async authorizationUrl (checks, redirectUri, scopes) {
      const params: Record<string, string> = {
        redirect_uri: redirectUri,
        scope: scopes.join(' '),
        response_type: 'code',
        state: checks.state,
        nonce: checks.nonce,
        code_challenge: await oc.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
        // Only when configured: IdPs differ (LemonLDAP::NG shows a consent page at every login with it).
        ...(cfg.prompt !== undefined ? { prompt: cfg.prompt } : {})
      }
      // RFC 9126: the parameters go to the IdP server to server; the browser carries only a request_uri.
      if (usePar) {
        try {
          return (await oc.buildAuthorizationUrlWithPAR(config, params)).href
        } catch (err) {
          throw new OidcError('SG_OIDC_PAR', `pushed authorization request failed: ${describe(err)}`, { cause: err })
        }
      }
      return oc.buildAuthorizationUrl(config, params).href
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
    // Throws what openid-client throws; grantError (./errors.ts) turns it into a coded OidcError.
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

/** The token endpoint authentication of `oidc.tokenEndpointAuthMethod`. */
async function clientAuthentication (cfg: Config['oidc']): Promise<oc.ClientAuth> {
  switch (cfg.tokenEndpointAuthMethod) {
    case 'client_secret_basic': return oc.ClientSecretBasic(cfg.clientSecret)
    case 'client_secret_post': return oc.ClientSecretPost(cfg.clientSecret)
    case 'private_key_jwt': return oc.PrivateKeyJwt(await importClientKey(cfg.privateKey!))
    case 'none': return oc.None()
  }
}

/**
 * The client's private key for private_key_jwt (RFC 7523): a JWK (JSON) or a PKCS#8 PEM. The JWS
 * algorithm follows the key (RSA RS256, P-256/384/521 ES256/384/512, Ed25519 EdDSA) unless a JWK names one.
 */
export async function importClientKey (text: string): Promise<{ key: webcrypto.CryptoKey, kid?: string }> {
  try {
    if (text.trim().startsWith('{')) {
      const jwk = JSON.parse(text) as JWK
      const alg = jwk.alg ?? algFor(jwk.kty, jwk.crv)
      const key = await importJWK(jwk, alg)
      if (key instanceof Uint8Array || key.type !== 'private') throw new Error('the JWK is not a private key')
      return { key, ...(jwk.kid !== undefined ? { kid: jwk.kid } : {}) }
    }
    const pem = createPrivateKey(text)
    const details = pem.asymmetricKeyDetails
    const alg = algFor(pem.asymmetricKeyType === 'rsa' ? 'RSA' : pem.asymmetricKeyType === 'ec' ? 'EC' : 'OKP', details?.namedCurve === 'prime256v1' ? 'P-256' : details?.namedCurve === 'secp384r1' ? 'P-384' : details?.namedCurve === 'secp521r1' ? 'P-521' : 'Ed25519')
    const key = await importPKCS8(pem.export({ format: 'pem', type: 'pkcs8' }).toString(), alg, { extractable: true })
    // A key id the IdP can find the public key by: the RFC 7638 thumbprint, as most registrations use.
    const kid = await calculateJwkThumbprint(await exportJWK(key))
    return { key, kid }
  } catch (err) {
    throw new OidcError('SG_OIDC_CLIENT_KEY', `oidc.privateKey cannot be used: ${(err as Error).message}`, { cause: err })
  }
}

function algFor (kty: string | undefined, crv: string | undefined): string {
  if (kty === 'RSA') return 'RS256'
  if (kty === 'EC') return crv === 'P-384' ? 'ES384' : crv === 'P-521' ? 'ES512' : 'ES256'
  if (kty === 'OKP') return 'EdDSA'
  throw new Error(`unsupported key type ${String(kty)}`)
}
