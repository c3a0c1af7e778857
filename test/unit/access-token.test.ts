/**
 * The pure access-token rules (src/bearer/access-token.ts) on keys made here: algorithms beyond RS256,
 * header rules jose would let through, the time checks repeated on cached tokens, and header parsing.
 */
import t from 'tap'
import { webcrypto } from 'node:crypto'
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, type JWK } from 'jose'
import { BearerTokenError, timeProblem, verifyAccessToken } from '../../src/bearer/access-token.js'
import { bearerToken } from '../../src/bearer/bearer-check.js'

const ISS = 'https://idp.example.test'
const AUD = 'https://api.example.test'
const now = Math.floor(Date.now() / 1000)

interface Pair { sign: (claims: Record<string, unknown>, header?: Record<string, unknown>) => Promise<string>, jwk: JWK, privateKey: webcrypto.CryptoKey }

async function keyPair (alg: string, kid: string): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg }
  return {
    jwk,
    privateKey,
    sign: async (claims, header = {}) => await new SignJWT({ iss: ISS, aud: AUD, sub: 'u1', iat: now, exp: now + 300, ...claims })
      .setProtectedHeader({ alg, kid, typ: 'at+jwt', ...header }).sign(privateKey)
  }
}

const [rs, es, ed] = await Promise.all([keyPair('RS256', 'rs'), keyPair('ES256', 'es'), keyPair('EdDSA', 'ed')])
const keys = createLocalJWKSet({ keys: [rs.jwk, es.jwk, ed.jwk] })
const verify = async (token: string): Promise<unknown> => await verifyAccessToken(token, { issuer: ISS, audience: [AUD], keys, now, maxAge: 3600 })

t.test('asymmetric algorithms other than RS256 verify', async (t) => {
  for (const k of [rs, es, ed]) t.match(await verify(await k.sign({ sid: 'idp-1' })), { sub: 'u1', iss: ISS, sid: 'idp-1' })
})

/** RS256 by hand, for headers jose refuses to sign. */
async function handSigned (header: Record<string, unknown>, claims: Record<string, unknown>): Promise<string> {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const input = `${enc({ alg: 'RS256', kid: 'rs', typ: 'at+jwt', ...header })}.${enc({ iss: ISS, aud: AUD, sub: 'u1', iat: now, exp: now + 300, ...claims })}`
  const sig = await webcrypto.subtle.sign('RSASSA-PKCS1-v1_5', rs.privateKey, new TextEncoder().encode(input))
  return `${input}.${Buffer.from(sig).toString('base64url')}`
}

t.test('refusals beyond a plain jwtVerify', async (t) => {
  t.match(await verify(await handSigned({}, {})), { sub: 'u1' }, 'control: the hand signer makes valid tokens')
  const cases: Array<[string, Promise<string> | string]> = [
    ['an unknown critical header', handSigned({ crit: ['x-unknown'], 'x-unknown': 1 }, {})],
    ['sid that is not a string', rs.sign({ sid: 42 })],
    ['empty sub', rs.sign({ sub: '' })],
    ['a JWS with whitespace', rs.sign({}).then((s) => s.replace('.', ' .'))],
    ['too long', `${'a'.repeat(17_000)}.b.c`],
    ['typ of an ID token profile', rs.sign({}, { typ: 'id_token+jwt' })]
  ]
  for (const [name, token] of cases) {
    await t.rejects(verify(await token), BearerTokenError, name)
  }
})

t.test('time checks on a cached token match the verification window', async (t) => {
  const tok = { iat: now, exp: now + 300 }
  t.equal(timeProblem(tok, now, 3600), undefined)
  t.equal(timeProblem(tok, now + 300 + 59, 3600), undefined, 'exp with 60 s skew')
  t.equal(timeProblem(tok, now + 300 + 60, 3600), 'expired')
  t.equal(timeProblem({ ...tok, nbf: now + 61 }, now, 3600), 'not yet valid (nbf)')
  t.equal(timeProblem({ iat: now - 3661, exp: now + 300 }, now, 3600), 'older than oidc.accessTokenMaxAge')
  t.equal(timeProblem({ iat: now + 61, exp: now + 300 }, now, 3600), 'issued in the future (iat)')
})

t.test('Authorization header parsing (RFC 6750 section 2.1)', async (t) => {
  t.equal(bearerToken('Bearer abc.def-_~+/ghi=='), 'abc.def-_~+/ghi==')
  t.equal(bearerToken('bearer  abc'), 'abc', 'case-insensitive scheme, several spaces')
  for (const bad of [undefined, '', 'Bearer', 'Bearer ', 'Basic YTpi', 'Bearer a b', 'Bearer a=b', 'Bearerabc', ' Bearer abc']) {
    t.equal(bearerToken(bad), undefined, JSON.stringify(bad))
  }
})
