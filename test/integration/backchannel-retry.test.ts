/**
 * A back-channel logout that failed half-way must stay retryable: the jti is recorded only after the
 * revocation succeeded. Also: absurd `exp` values are invalid tokens (400, not 500), and the replay
 * guard keeps a jti only as long as a replay could still be accepted.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis-server.js'
import { logoutToken, postLogout } from '../helpers/logout-token.js'

t.test('back-channel logout on Redis: store failure, retry, exp bounds', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  const s = await startStack(t, { redisUrl: redis.url })
  const sign = async (claims: Record<string, unknown>): Promise<string> => await logoutToken(s.idp.signingKey, s.idp.issuer, 'gateway', { claims })
  const alive = async (b: Browser): Promise<boolean> => (await b.fetch(`${s.url}/x`, { headers: { accept: 'application/json' } })).status === 200

  t.test('the revocation step fails: not a success, and the same token succeeds when retried', async (t) => {
    for (const claims of [(idpSid: string) => ({ sid: idpSid }), () => ({ sub: 'rita' })]) {
      const b = new Browser()
      await login(b, s.url, 'rita')
      const me = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
      const idpSid = (await s.gateway.ctx.store.getSession('rita', me.sid))!.idpSid!
      const token = await sign(claims(idpSid))
      // Scripting taken away: the jti check (EXISTS) and the index lookup work, the revocation (Lua) fails.
      await admin.call('ACL', 'SETUSER', 'default', '-@scripting')
      let failed
      try { failed = await postLogout(s.url, token) } finally { await admin.call('ACL', 'SETUSER', 'default', '+@all') }
      t.equal(failed.status, 400)
      t.equal(failed.body.error, 'temporarily_unavailable', 'the IdP is told to retry')
      t.ok(await alive(b), 'nothing was revoked yet')
      const retried = await postLogout(s.url, token)
      t.equal(retried.status, 200, `the retry of the same token is accepted (${JSON.stringify(claims(idpSid))})`)
      t.notOk(await alive(b), 'and the session is gone')
      const replay = await postLogout(s.url, token)
      t.equal(replay.status, 400, 'a replay after success is refused')
      t.match(replay.body.error_description, /replay/)
    }
  })

  t.test('a huge exp is an invalid token, and the jti is kept minutes, not years', async (t) => {
    for (const exp of [1e16, 9.3e15, Number.MAX_SAFE_INTEGER, Math.floor(Date.now() / 1000) + 10 * 365 * 86400]) {
      const res = await postLogout(s.url, await sign({ sub: 'nobody', exp }))
      t.equal(res.status, 400, `exp ${exp}`)
      t.equal(res.body.error, 'invalid_request')
    }
    const jti = `jti-ttl-${Date.now()}`
    const now = Math.floor(Date.now() / 1000)
    t.equal((await postLogout(s.url, await sign({ sub: 'nobody', jti, exp: now + 20 * 3600 }))).status, 200, 'a valid token with a long exp')
    const keys = (await admin.keys('*')).filter((k) => k.includes(jti))
    t.equal(keys.length, 1, 'one replay key')
    const ttl = await admin.ttl(keys[0]!)
    t.ok(ttl > 0 && ttl <= 600 + 3 * 60, `kept until iat + maxAge + skew at most (ttl ${ttl}s)`)
  })
})
