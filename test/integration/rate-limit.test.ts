/**
 * Rate limits per client IP on the endpoints anyone can call without a session: GET /auth/login,
 * GET /auth/callback, POST /auth/backchannel-logout and POST /auth/ssf/* (the Shared Signals push
 * endpoint: the limit comes before its bearer check). 429 with Retry-After and {"error":"rate_limited"}; the
 * client IP is request.ip (X-Forwarded-For only with trustProxy); with Redis, replicas share one budget.
 */
import t, { type Test } from 'tap'
import { startRedis } from '../helpers/redis-server.js'
import { startStack, type Stack } from '../helpers/stack.js'

interface Call { method: string, path: string, headers?: Record<string, string>, body?: string }

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const LIMITED: Call[] = [
  { method: 'GET', path: '/auth/login' },
  { method: 'GET', path: '/auth/callback?code=c&state=s' },
  { method: 'POST', path: '/auth/backchannel-logout', headers: FORM, body: 'logout_token=not-a-jwt' },
  { method: 'POST', path: '/auth/ssf/push', headers: { 'content-type': 'application/secevent+jwt' }, body: 'e30.e30.' }
]

async function call (base: string, c: Call, from?: string): Promise<Response> {
  return await fetch(`${base}${c.path}`, {
    method: c.method,
    redirect: 'manual',
    headers: { ...c.headers, ...(from !== undefined ? { 'x-forwarded-for': from } : {}) },
    ...(c.body !== undefined ? { body: c.body } : {})
  })
}

/** A Shared Signals transmitter, so the push endpoint exists (the calls here carry no bearer: 401). */
const SSF = { transmitters: [{ issuer: 'http://127.0.0.1:9/tx', jwksUri: 'http://127.0.0.1:9/jwks', pushToken: 'push-token-0123456789abcdef' }] }

async function assertLimited (t: Test, res: Response, what: string): Promise<void> {
  t.equal(res.status, 429, `${what}: 429`)
  const retryAfter = Number(res.headers.get('retry-after'))
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `${what}: Retry-After in seconds (${String(res.headers.get('retry-after'))})`)
  t.same(await res.json(), { error: 'rate_limited' }, `${what}: body`)
  t.equal(res.headers.get('cache-control'), 'no-store')
}

t.test('memory store: each limited endpoint answers 429 past its budget, per client IP', async (t) => {
  const s = await startStack(t, {
    config: { trustProxy: true, rateLimit: { enabled: true, perMinute: 2 }, ssf: SSF },
    routes: [{ prefix: '/', upstream: '{upstream}', auth: 'none' }]
  })
  for (const c of LIMITED) {
    const what = `${c.method} ${c.path.split('?')[0]!}`
    for (let i = 0; i < 2; i++) {
      const res = await call(s.url, c, '203.0.113.7')
      t.not(res.status, 429, `${what}: request ${i + 1} of 2 passes (${res.status})`)
      await res.arrayBuffer()
    }
    await assertLimited(t, await call(s.url, c, '203.0.113.7'), what)
    const neighbour = await call(s.url, c, '203.0.113.8')
    t.not(neighbour.status, 429, `${what}: another client IP has its own budget`)
    await neighbour.arrayBuffer()
  }
  for (let i = 0; i < 5; i++) t.equal((await call(s.url, { method: 'GET', path: '/x' }, '203.0.113.7')).status, 200, 'proxied routes carry no limit')
  const session = await call(s.url, { method: 'GET', path: '/auth/session' }, '203.0.113.7')
  t.equal(session.status, 401, 'nor do the other gateway endpoints')
  const logged = s.logs.map((l) => JSON.parse(l) as { msg: string, level: number }).filter((l) => l.msg === 'rate limited')
  t.ok(logged.length > 0 && logged.every((l) => l.level === 20), 'a 429 is logged at debug only (no log flood)')
})

t.test('without trustProxy the budget is the connection\'s address, X-Forwarded-For is ignored', async (t) => {
  const s = await startStack(t, { config: { rateLimit: { enabled: true, perMinute: 1 } } })
  const login = LIMITED[0]!
  t.equal((await call(s.url, login, '198.51.100.1')).status, 302)
  await assertLimited(t, await call(s.url, login, '198.51.100.2'), 'a forged X-Forwarded-For')
})

t.test('rateLimit.enabled: false turns the limiter off', async (t) => {
  const s = await startStack(t, { config: { rateLimit: { enabled: false, perMinute: 1 } } })
  for (let i = 0; i < 3; i++) {
    const res = await call(s.url, LIMITED[0]!)
    t.equal(res.status, 302, `login ${i + 1}`)
    t.equal(res.headers.get('x-ratelimit-limit'), null, 'no rate limit headers')
  }
})

t.test('Redis store: two replicas share one budget; a limiter without Redis lets requests through', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const s = await startStack(t, { redisUrl: redis.url, config: { rateLimit: { enabled: true, perMinute: 3 } } })
  const r = await s.replica()
  const login = LIMITED[0]!
  const bases = [s.url, r.url, s.url]
  for (const [i, base] of bases.entries()) {
    const res = await call(base, login)
    t.equal(res.status, 302, `login ${i + 1} of 3 on replica ${base === s.url ? 'A' : 'B'}`)
    t.equal(res.headers.get('x-ratelimit-remaining'), String(2 - i), 'the remaining budget counts both replicas')
  }
  await assertLimited(t, await call(r.url, login), 'the 4th login, on replica B')
  await assertLimited(t, await call(s.url, login), 'the 5th login, on replica A')
  const back = await call(r.url, LIMITED[2]!)
  t.equal(back.status, 400, 'another endpoint has its own budget (a bad logout token: 400)')

  await redis.stop()
  const res = await call(s.url, login)
  t.equal(res.status, 302, 'Redis down: the limiter cannot count and lets the sign-in through')
})
