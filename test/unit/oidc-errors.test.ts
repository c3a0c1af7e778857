/**
 * The coded OidcError wrapper (src/oidc/errors.ts) on real failures: a refresh at the real
 * oidc-provider with a dead refresh token, with a wrong client secret, and with the IdP gone.
 */
import t from 'tap'
import { discoverOidc, grantError, isOidcError, OidcError, type OidcErrorCode } from '../../src/oidc/client.js'
import { startIdp } from '../../src/demo/idp.js'
import type { Config } from '../../src/config/types.js'

const idp = await startIdp({
  clients: [{ client_id: 'gw', client_secret: 'right-secret', redirect_uris: ['http://127.0.0.1:1/auth/callback'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }]
})
t.teardown(() => idp.close())

function oidcConfig (clientSecret: string): Config['oidc'] {
  return { issuer: idp.issuer, clientId: 'gw', clientSecret, scopes: ['openid'], allowInsecureHttp: true, audience: [], accessTokenMaxAge: 3600, tokenEndpointAuthMethod: 'client_secret_basic', par: 'never' }
}

async function refreshError (clientSecret: string, before?: () => Promise<void>): Promise<OidcError> {
  const client = await discoverOidc(oidcConfig(clientSecret))
  await before?.()
  try {
    await client.refresh('not-a-refresh-token-this-idp-issued')
  } catch (err) {
    return grantError(err, 'refresh failed')
  }
  throw new Error('the refresh was expected to fail')
}

t.test('a dead refresh token is SG_OIDC_INVALID_GRANT, with the library error as cause', async (t) => {
  const e = await refreshError('right-secret')
  t.equal(e.code, 'SG_OIDC_INVALID_GRANT')
  t.ok(isOidcError(e, 'SG_OIDC_INVALID_GRANT'), 'the guard narrows on the code')
  t.notOk(isOidcError(e, 'SG_OIDC_UNAVAILABLE'), 'and refuses another code')
  t.match(e.message, /^refresh failed: invalid_grant/, 'the message says what the IdP said')
  t.ok(e.cause instanceof Error, 'cause kept')
  t.notMatch(e.message, /not-a-refresh-token/, 'never the token')
  t.equal(grantError(e, 'again'), e, 'an OidcError is not wrapped twice')
})

t.test('a client the IdP does not accept is SG_OIDC_REFUSED (a setup problem, not a dead grant)', async (t) => {
  const e = await refreshError('wrong-secret')
  t.equal(e.code, 'SG_OIDC_REFUSED')
  t.match(e.message, /invalid_client/)
})

t.test('an IdP that cannot be reached is SG_OIDC_UNAVAILABLE', async (t) => {
  const other = await startIdp({ clients: [{ client_id: 'gw', client_secret: 'right-secret', redirect_uris: ['http://127.0.0.1:1/cb'], grant_types: ['authorization_code', 'refresh_token'] }] })
  const client = await discoverOidc({ ...oidcConfig('right-secret'), issuer: other.issuer })
  await other.close()
  const e = await client.refresh('x').then(() => undefined, (err: unknown) => grantError(err, 'refresh failed'))
  t.equal(e?.code, 'SG_OIDC_UNAVAILABLE')
})

t.test('the guard', async (t) => {
  t.notOk(isOidcError(new Error('x')), 'a plain Error is not an OidcError')
  t.notOk(isOidcError(undefined))
  const codes: OidcErrorCode[] = ['SG_OIDC_DISCOVERY', 'SG_OIDC_CALLBACK']
  for (const code of codes) t.ok(isOidcError(new OidcError(code, 'm'), code), code)
})
