/**
 * Logout token rules in isolation (jose, a local key set): what passes and what each rule refuses.
 */
import t from 'tap'
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose'
import { BACKCHANNEL_EVENT, LogoutTokenError, validateLogoutToken } from '../../src/core/logout-token.js'

const now = 1_800_000_000
const { privateKey, publicKey } = await generateKeyPair('RS256')
const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }] })
const opts = { issuer: 'https://idp.example', clientId: 'gw', algorithm: 'RS256', keys: jwks, now }

async function token (claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return await new SignJWT({ iss: 'https://idp.example', aud: 'gw', iat: now, exp: now + 120, jti: 'j1', events: { [BACKCHANNEL_EVENT]: {} }, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header }).sign(privateKey)
}

t.test('a valid token yields its claims; sub and sid may both be present', async (t) => {
  const v = await validateLogoutToken(await token({ sub: 'alice', sid: 'x' }), opts)
  t.same(v, { iss: 'https://idp.example', jti: 'j1', iat: now, exp: now + 120, sub: 'alice', sid: 'x' })
  t.ok(await validateLogoutToken(await token({ sid: 'x' }, { typ: 'logout+jwt' }), opts), 'typ logout+jwt')
  t.ok(await validateLogoutToken(await token({ sid: 'x', extra: 1 }), opts), 'unknown claims ignored')
})

t.test('each rule refuses with a LogoutTokenError', async (t) => {
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['missing', async () => await validateLogoutToken(undefined, opts)],
    ['not a JWS', async () => await validateLogoutToken('a.b', opts)],
    ['HMAC configured', async () => await validateLogoutToken(await token({ sid: 'x' }), { ...opts, algorithm: 'HS256' })],
    ['wrong iss', async () => await validateLogoutToken(await token({ sid: 'x', iss: 'https://evil' }), opts)],
    ['untrusted extra audience', async () => await validateLogoutToken(await token({ sid: 'x', aud: ['gw', 'other'] }), opts)],
    ['iat in the future', async () => await validateLogoutToken(await token({ sid: 'x', iat: now + 600, exp: now + 700 }), opts)],
    ['iat too old', async () => await validateLogoutToken(await token({ sid: 'x', iat: now - 3600, exp: now + 60 }), opts)],
    ['expired', async () => await validateLogoutToken(await token({ sid: 'x', exp: now - 120 }), opts)],
    ['events not an object', async () => await validateLogoutToken(await token({ sid: 'x', events: 'x' }), opts)],
    ['event value null', async () => await validateLogoutToken(await token({ sid: 'x', events: { [BACKCHANNEL_EVENT]: null } }), opts)],
    ['nonce', async () => await validateLogoutToken(await token({ sid: 'x', nonce: 'n' }), opts)],
    ['neither sub nor sid', async () => await validateLogoutToken(await token({}), opts)],
    ['empty sid', async () => await validateLogoutToken(await token({ sid: '' }), opts)],
    ['sub not a string', async () => await validateLogoutToken(await token({ sub: 42 }), opts)],
    ['foreign typ', async () => await validateLogoutToken(await token({ sid: 'x' }, { typ: 'secevent+jwt' }), opts)]
  ]
  for (const [name, run] of cases) await t.rejects(run(), LogoutTokenError, name)
})
