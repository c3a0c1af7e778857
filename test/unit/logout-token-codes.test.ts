/**
 * Every LogoutTokenError code, each from a token that breaks exactly that rule. The cases are a Record
 * over LogoutTokenErrorCode: a new code without a case here does not compile.
 */
import t from 'tap'
import { CompactSign, SignJWT, createLocalJWKSet, errors, exportJWK, generateKeyPair } from 'jose'
import { BACKCHANNEL_EVENT, LogoutTokenError, validateLogoutToken, type LogoutTokenErrorCode } from '../../src/core/logout-token.js'

const now = 1_800_000_000
const { privateKey, publicKey } = await generateKeyPair('RS256')
const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] })
const opts = { issuer: 'https://idp.example', clientId: 'gw', algorithm: 'RS256', keys: jwks, now }

async function token (claims: Record<string, unknown>, header: Record<string, unknown> = {}, crit?: Record<string, boolean>): Promise<string> {
  return await new SignJWT({ iss: 'https://idp.example', aud: 'gw', iat: now, exp: now + 120, jti: 'j1', sid: 's1', events: { [BACKCHANNEL_EVENT]: {} }, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header }).sign(privateKey, crit === undefined ? undefined : { crit })
}
const without = async (claim: string): Promise<string> => {
  const claims: Record<string, unknown> = { iss: 'https://idp.example', aud: 'gw', iat: now, exp: now + 120, jti: 'j1', sid: 's1', events: { [BACKCHANNEL_EVENT]: {} } }
  delete claims[claim]
  return await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey)
}
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

const cases: Record<LogoutTokenErrorCode, () => Promise<unknown>> = {
  SG_LOGOUT_TOKEN_MISSING: async () => await validateLogoutToken(undefined, opts),
  SG_LOGOUT_TOKEN_TOO_LARGE: async () => await validateLogoutToken(`${'a'.repeat(10_000)}.${'b'.repeat(10_000)}.c`, opts),
  SG_LOGOUT_TOKEN_NOT_JWS: async () => await validateLogoutToken('a.b', opts),
  SG_LOGOUT_TOKEN_SIGNATURE_ENCODING: async () => {
    // A 256-byte RSA signature leaves 4 unused bits in its last character: set one, same bytes.
    const jws = await token({})
    const last = jws.at(-1)!
    return await validateLogoutToken(jws.slice(0, -1) + B64[B64.indexOf(last) ^ 1], opts)
  },
  SG_LOGOUT_TOKEN_ALG_NOT_CONFIGURED: async () => await validateLogoutToken(await token({}), { ...opts, algorithm: 'HS256' }),
  SG_LOGOUT_TOKEN_TYP: async () => await validateLogoutToken(await token({}, { typ: 'at+jwt' }), opts),
  SG_LOGOUT_TOKEN_ISSUER: async () => await validateLogoutToken(await token({ iss: 'https://idp.exampleINVALID' }), opts),
  SG_LOGOUT_TOKEN_AUDIENCE: async () => await validateLogoutToken(await token({ aud: ['gw', 'other'] }), opts),
  SG_LOGOUT_TOKEN_CLAIM_MISSING: async () => await validateLogoutToken(await without('jti'), opts),
  SG_LOGOUT_TOKEN_CLAIM_INVALID: async () => await validateLogoutToken(await token({ nbf: now + 3600 }), opts),
  SG_LOGOUT_TOKEN_EXPIRED: async () => await validateLogoutToken(await token({ exp: now - 600 }), opts),
  SG_LOGOUT_TOKEN_ALG: async () => {
    // The suite's wrong-alg case: ES256 when the IdP signs ID tokens with RS256.
    const es = await generateKeyPair('ES256')
    const jws = await new SignJWT({ iss: 'https://idp.example', aud: 'gw', iat: now, exp: now + 120, jti: 'j1', sid: 's1', events: { [BACKCHANNEL_EVENT]: {} } })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(es.privateKey)
    return await validateLogoutToken(jws, opts)
  },
  SG_LOGOUT_TOKEN_KEY_UNKNOWN: async () => await validateLogoutToken(await token({}, { kid: 'k2' }), opts),
  SG_LOGOUT_TOKEN_SIGNATURE: async () => {
    const [h, p] = (await token({ sid: 'other' })).split('.')
    const sig = (await token({})).split('.')[2]
    return await validateLogoutToken(`${h}.${p}.${sig}`, opts)
  },
  SG_LOGOUT_TOKEN_MALFORMED: async () => {
    const jws = await new CompactSign(new TextEncoder().encode('not json')).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey)
    return await validateLogoutToken(jws, opts)
  },
  SG_LOGOUT_TOKEN_UNSUPPORTED: async () => await validateLogoutToken(await token({}, { crit: ['x-ext'], 'x-ext': 1 }, { 'x-ext': true }), opts),
  SG_LOGOUT_TOKEN_KEYS_UNAVAILABLE: async () => await validateLogoutToken(await token({}), { ...opts, keys: async () => { throw new errors.JWKSTimeout() } }),
  SG_LOGOUT_TOKEN_UNVERIFIED: async () => await validateLogoutToken(await token({}), { ...opts, keys: async () => { throw new Error('the key lookup broke') } }),
  SG_LOGOUT_TOKEN_IAT_FUTURE: async () => await validateLogoutToken(await token({ iat: now + 600, exp: now + 700 }), opts),
  SG_LOGOUT_TOKEN_IAT_TOO_OLD: async () => await validateLogoutToken(await token({ iat: now - 3600, exp: now + 60 }), opts),
  SG_LOGOUT_TOKEN_JTI_TOO_LONG: async () => await validateLogoutToken(await token({ jti: 'j'.repeat(257) }), opts),
  SG_LOGOUT_TOKEN_EXP_TOO_FAR: async () => await validateLogoutToken(await token({ exp: now + 2 * 86_400 }), opts),
  SG_LOGOUT_TOKEN_EVENTS: async () => await validateLogoutToken(await token({ events: 'x' }), opts),
  SG_LOGOUT_TOKEN_EVENT: async () => await validateLogoutToken(await token({ events: { 'http://schemas.openid.net/event/foobar': {} } }), opts),
  SG_LOGOUT_TOKEN_NONCE: async () => await validateLogoutToken(await token({ nonce: 'n' }), opts),
  SG_LOGOUT_TOKEN_SUBJECT_INVALID: async () => await validateLogoutToken(await token({ sub: 42 }), opts),
  SG_LOGOUT_TOKEN_NO_SUBJECT: async () => await validateLogoutToken(await token({ sid: undefined }), opts)
}

t.test('the control: a token breaking no rule passes', async (t) => {
  t.ok(await validateLogoutToken(await token({}), opts))
})

for (const [code, run] of Object.entries(cases)) {
  t.test(code, async (t) => {
    let err: unknown
    try { await run() } catch (e) { err = e }
    t.ok(err instanceof LogoutTokenError, 'a LogoutTokenError')
    t.equal((err as LogoutTokenError).code, code)
    t.notMatch((err as Error).message, /eyJ/, 'the message holds no token')
  })
}
