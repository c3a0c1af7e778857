/**
 * Property-based fuzzing of POST /auth/backchannel-logout on a real gateway (real IdP keys, memory
 * store): mutated logout tokens never get a 5xx, an invalid one never gets 200, a valid one gets 200
 * (or 400 replay when its jti was already used), and the body never changes form.
 */
import t from 'tap'
import assert from 'node:assert/strict'
import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import fc from 'fast-check'
import { startStack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis-server.js'
import { property } from '../helpers/fuzz.js'
import { buildToken, criticalSpecs, tokenSpec, type TokenContext } from '../helpers/logout-token-fuzz.js'

const FILE = 'test/fuzz/backchannel.test.ts'

for (const store of ['memory', 'redis'] as const) {
t.test(`back-channel logout endpoint, ${store} store`, async (t) => {
  let redisUrl: string | undefined
  if (store === 'redis') {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    redisUrl = redis.url
  }
  const s = await startStack(t, redisUrl !== undefined ? { redisUrl } : {})
  const ctx: TokenContext = {
    issuer: s.idp.issuer,
    clientId: 'gateway',
    kid: s.idp.signingKey.kid,
    key: createPrivateKey({ key: s.idp.signingKey, format: 'jwk' }),
    otherKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    skew: 60,
    maxAge: 600,
    // The gateway reads its own clock: stay this many seconds away from each time limit.
    margin: 3
  }
  const used = new Set<string>()
  let n = 0

  await property(t, FILE, `backchannel.mutated-tokens.${store}`, fc.asyncProperty(tokenSpec(ctx), async (spec) => {
    const built = buildToken(spec, ctx, Math.floor(Date.now() / 1000), `fuzz-${process.pid}-${n++}`)
    const res = await fetch(`${s.url}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: built.token }).toString()
    })
    const text = await res.text()
    const why = `oracle: ${built.verdict} (${built.reasons.join('; ') || 'no rule broken'}); answer ${res.status} ${text.slice(0, 300)}`
    assert.ok(res.status < 500, `5xx; ${why}`)
    assert.equal(res.headers.get('cache-control'), 'no-store', `cache-control; ${why}`)
    const claims = built.claims as Record<string, unknown>
    const replayKey = `${String(claims?.['iss'])}|${String(claims?.['jti'])}`
    if (built.verdict === 'invalid') {
      assert.equal(res.status, 400, `an invalid token was not refused; ${why}`)
      assert.equal((JSON.parse(text) as { error?: string }).error, 'invalid_request', why)
      return
    }
    if (built.verdict === 'valid' && used.has(replayKey)) {
      assert.equal(res.status, 400, `a replayed jti was accepted; ${why}`)
      return
    }
    if (built.verdict === 'valid') assert.equal(res.status, 200, `a valid token was refused; ${why}`)
    else assert.ok(res.status === 200 || res.status === 400, why)
    if (res.status === 200) used.add(replayKey)
  }), 0.5, criticalSpecs(ctx).map((spec) => [spec]))
})
}
