/**
 * The main path on the Redis store, and what a request with a session gets when Redis dies:
 * failMode closed answers 503 store_unavailable quickly; failMode open forwards on the cookie alone.
 */
import t, { type Test } from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { adminCall, clears, sessionOf } from '../helpers/flow.js'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { startStack, type Stack } from '../helpers/stack.js'

async function redisFor (t: Test): Promise<RedisServer> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  return redis
}

/** A Redis-backed stack with this failMode, and alice signed in. */
async function signedInOnRedis (t: Test, failMode: 'closed' | 'open'): Promise<{ s: Stack, b: Browser, redis: RedisServer }> {
  const redis = await redisFor(t)
  const s = await startStack(t, { config: { store: { kind: 'redis', failMode, redis: { url: redis.url } } } })
  const b = new Browser()
  await login(b, s.url, 'alice')
  t.equal((await b.fetch(`${s.url}/api/x`)).status, 200, 'signed in while Redis is up')
  return { s, b, redis }
}

t.test('login, proxied request, logout on Redis', async (t) => {
  const redis = await redisFor(t)
  const s = await startStack(t, { redisUrl: redis.url })
  t.equal(s.gateway.ctx.store.kind, 'redis')
  const b = new Browser()
  const res = await login(b, s.url, 'alice', { returnTo: '/reports' })
  t.equal(res.status, 200)
  const seen = s.upstream.seen.at(-1)!
  t.equal(seen.url, '/reports')
  t.equal(seen.headers['x-forwarded-user'], 'alice')
  t.notOk(seen.headers.cookie)

  const me = await sessionOf(b, s.url)
  t.equal(me.sub, 'alice')
  const record = await s.gateway.ctx.store.getSession('alice', me.sid)
  t.equal(record?.sid, me.sid, 'the session record is in Redis')
  t.same((await adminCall(s, 'GET', '/admin/users/alice/sessions')).json<Array<{ id: string }>>().map((x) => x.id), [me.sid])

  const cookie = b.cookieHeader(s.url)
  const out = await b.fetch(`${s.url}/auth/logout?sid=${me.sid}`)
  t.equal(out.status, 302)
  t.ok(clears(out.setCookies, 'sg'))
  t.ok(clears(out.setCookies, 'sg-device'))
  t.equal(await s.gateway.ctx.store.getSession('alice', me.sid), null, 'record gone')
  const replay = await new Browser().fetch(`${s.url}/api/x`, { headers: { cookie } })
  t.equal(replay.status, 401, 'the old cookie is refused after logout')
})

t.test('failMode closed: Redis down -> 503 store_unavailable within 2 s', async (t) => {
  const { s, b, redis } = await signedInOnRedis(t, 'closed')
  await redis.kill()
  const started = Date.now()
  const res = await b.fetch(`${s.url}/api/x`, { headers: { accept: 'application/json' } })
  const elapsed = Date.now() - started
  t.equal(res.status, 503)
  t.same(res.json(), { error: 'store_unavailable' })
  t.ok(elapsed < 2000, `answered in ${elapsed} ms`)
  t.equal(res.headers.get('cache-control'), 'no-store')
  t.ok(b.cookies(s.url).get('sg'), 'the session cookie is not cleared for an outage')

  const html = await b.fetch(`${s.url}/page`, { headers: { accept: 'text/html' } })
  t.equal(html.status, 503, 'HTML too: no redirect to login for an outage')
  const anon = await new Browser().fetch(`${s.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(anon.status, 401, 'no cookie: no store needed, plain 401')
  t.equal((await fetch(`${s.adminUrl}/readyz`)).status, 503, 'not ready')

  await redis.restart()
  // the restarted Redis is empty: the store lost its state, so the old session must not come back as live
  let after = await b.fetch(`${s.url}/api/x`)
  for (let i = 0; i < 40 && after.status === 503; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    after = await b.fetch(`${s.url}/api/x`)
  }
  t.equal(after.status, 401, 'after a data loss the session is refused, not admitted')
})

t.test('failMode open: Redis down -> the request is forwarded on the cookie alone', async (t) => {
  const { s, b, redis } = await signedInOnRedis(t, 'open')
  await redis.kill()
  const before = s.upstream.seen.length
  const started = Date.now()
  const res = await b.fetch(`${s.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 200)
  t.ok(Date.now() - started < 2000, 'without hanging')
  t.equal(s.upstream.seen.length, before + 1)
  t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], 'alice')
  const good = b.cookies(s.url).get('sg')!
  // Change the GCM tag's last two characters, always to something else
  const bad = `${good.slice(0, -2)}${good.endsWith('AA') ? 'QA' : 'AA'}`
  const tampered = await new Browser().fetch(`${s.url}/api/x`, { headers: { cookie: `sg=${bad}` } })
  t.equal(tampered.status, 401, 'open does not mean unchecked: a bad cookie is still refused')
})
