/**
 * Property-based fuzzing of logout-token validation (src/core/logout-token.ts) on a fixed clock:
 * mutations of a valid token are refused unless they keep it valid by the rules (an independent oracle,
 * test/helpers/logout-token-fuzz.ts), a valid one is accepted with its claims, and nothing but a
 * LogoutTokenError is ever thrown.
 */
import t from 'tap'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import fc from 'fast-check'
import { createLocalJWKSet, type JWK } from 'jose'
import { LogoutTokenError, validateLogoutToken, type LogoutTokenOptions } from '../../src/core/logout-token.js'
import { property } from '../helpers/fuzz.js'
import { buildToken, criticalSpecs, tokenSpec, type TokenContext } from '../helpers/logout-token-fuzz.js'

const FILE = 'test/fuzz/logout-token.test.ts'
const now = 1_800_000_000
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ctx: TokenContext = {
  issuer: 'https://idp.example', clientId: 'gw', kid: 'k1', key: privateKey, otherKey: other.privateKey, skew: 60, maxAge: 600, margin: 0
}
const jwks = createLocalJWKSet({ keys: [{ ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'k1', alg: 'RS256', use: 'sig' }] })
const opts: LogoutTokenOptions = { issuer: ctx.issuer, clientId: ctx.clientId, algorithm: 'RS256', keys: jwks, now }

async function outcome (token: unknown): Promise<{ ok: true, value: unknown } | { ok: false, err: unknown }> {
  try {
    return { ok: true, value: await validateLogoutToken(token, opts) }
  } catch (err) {
    return { ok: false, err }
  }
}

t.test('logout token validation', async (t) => {
  await property(t, FILE, 'logout-token.mutations', fc.asyncProperty(tokenSpec(ctx), async (spec) => {
    const built = buildToken(spec, ctx, now, 'jti-1')
    const o = await outcome(built.token)
    const why = `oracle: ${built.verdict} (${built.reasons.join('; ') || 'no rule broken'})`
    if (!o.ok) {
      assert.ok(o.err instanceof LogoutTokenError, `threw ${String(o.err)}, not a LogoutTokenError; ${why}`)
      assert.notEqual(built.verdict, 'valid', `a valid token was refused: ${o.err.message}; ${why}`)
      return
    }
    assert.notEqual(built.verdict, 'invalid', `an invalid token was accepted: ${JSON.stringify(o.value)}; ${why}`)
    // Accepted: the claims handed on are the token's.
    const c = built.claims as Record<string, unknown>
    const expected: Record<string, unknown> = { iss: c['iss'], jti: c['jti'], iat: c['iat'], exp: c['exp'] }
    if (c['sub'] !== undefined) expected['sub'] = c['sub']
    if (c['sid'] !== undefined) expected['sid'] = c['sid']
    assert.deepEqual(o.value, expected)
  }), 3, criticalSpecs(ctx).map((s) => [s]))

  await property(t, FILE, 'logout-token.any-input', fc.asyncProperty(
    fc.oneof(fc.anything(), fc.string({ unit: 'binary', maxLength: 300 }),
      fc.array(fc.string({ unit: fc.constantFrom(...'eyJAa0_-.=+/ '), maxLength: 40 }), { maxLength: 4 }).map((p) => p.join('.'))),
    async (input) => {
      const o = await outcome(input)
      assert.ok(!o.ok, `accepted ${JSON.stringify(input)}`)
      assert.ok(o.err instanceof LogoutTokenError, `threw ${String(o.err)}, not a LogoutTokenError`)
    }))
})
