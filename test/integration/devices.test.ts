/**
 * Device credentials and remember-me against a real redis-server and the real IdP: silent renewal with
 * rotation, parallel requests in the grace window, reuse detection, no resurrection, own-devices API.
 */
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis-server.js'
import { logoutToken, postLogout } from '../helpers/logout-token.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const api = { accept: 'application/json' }

async function me (s: Stack, b: Browser): Promise<{ sid: string }> {
  return (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
}

t.test('remember-me devices on Redis', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const s = await startStack(t, {
    redisUrl: redis.url,
    config: {
      // session ttl 2 s: the short cookie expires quickly, the device credential renews it
      session: { ttl: '2s', absoluteTtl: '1m', keys: ['${SG_SESSION_KEY}'] },
      rememberMe: { ttl: '1h', rotationGrace: '1s' }
    }
  })

  t.test('an expired session cookie is renewed in the same request and the device credential rotated', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'alice', { remember: true })
    const first = await me(s, b)
    const device0 = b.cookies(s.url).get('sg-device')!
    const cookie0 = b.cookies(s.url).get('sg')!
    await sleep(3000)
    const seenBefore = s.upstream.seen.length
    const res = await b.fetch(`${s.url}/api/after-expiry`, { headers: api })
    t.equal(res.status, 200, 'the request reached the upstream')
    t.equal(s.upstream.seen.length, seenBefore + 1)
    t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], 'alice', 'transparently to the upstream')
    const sg = res.setCookies.find((c) => c.startsWith('sg='))
    const dev = res.setCookies.find((c) => c.startsWith('sg-device='))
    t.ok(sg, 'a new session cookie')
    t.ok(dev, 'a rotated device cookie')
    t.not(b.cookies(s.url).get('sg'), cookie0)
    t.not(b.cookies(s.url).get('sg-device'), device0)
    t.match(dev!, /Max-Age=\d+/, 'still persistent (remember-me)')
    t.equal((await me(s, b)).sid, first.sid, 'same session, same device')
  })

  t.test('parallel requests with the old credential succeed in the grace window; later it is reuse', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'bob', { remember: true })
    const { sid } = await me(s, b)
    const oldDevice = `sg-device=${b.cookies(s.url).get('sg-device')!}`
    await sleep(2100) // the session cookie expired
    // Two requests at once carrying only the device credential (the expired cookie would be ignored)
    const [r1, r2] = await Promise.all([
      fetch(`${s.url}/api/p1`, { headers: { ...api, cookie: oldDevice } }),
      fetch(`${s.url}/api/p2`, { headers: { ...api, cookie: oldDevice } })
    ])
    t.equal(r1.status, 200)
    t.equal(r2.status, 200)
    const rotatedCookies = [...r1.headers.getSetCookie(), ...r2.headers.getSetCookie()].filter((c) => c.startsWith('sg-device='))
    t.equal(rotatedCookies.length, 1, 'exactly one rotation for the two requests')
    const fresh = rotatedCookies[0]!.split(';')[0]!

    await sleep(1200) // past the grace window
    const replay = await fetch(`${s.url}/api/replay`, { headers: { ...api, cookie: oldDevice } })
    t.equal(replay.status, 401, 'the old credential after the grace window is refused')
    t.equal(await s.gateway.ctx.store.getSession('bob', sid), null, 'reuse revoked the whole device')
    const legit = await fetch(`${s.url}/api/legit`, { headers: { ...api, cookie: fresh } })
    t.equal(legit.status, 401, 'even the current credential of that device can no longer renew')
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text()
    t.match(metrics, /sessiongate_device_reuse_detected_total 1/)
  })

  t.test('a guessed credential is refused and revokes nothing', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'gina', { remember: true })
    const { sid } = await me(s, b)
    const forged = `sg-device=${sid}.${'A'.repeat(43)}`
    const res = await fetch(`${s.url}/api/x`, { headers: { ...api, cookie: forged } })
    t.equal(res.status, 401)
    t.ok(await s.gateway.ctx.store.getSession('gina', sid), 'the real device is untouched')
  })

  const deviceOnly = (b: Browser): string => `sg-device=${b.cookies(s.url).get('sg-device')!}`

  t.test('no renewal after a sub-only back-channel logout', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'carl', { remember: true })
    const tok = await logoutToken(s.idp.signingKey, s.idp.issuer, 'gateway', { claims: { sub: 'carl' } })
    t.equal((await postLogout(s.url, tok)).status, 200)
    const res = await fetch(`${s.url}/api/x`, { headers: { ...api, cookie: deviceOnly(b) } })
    t.equal(res.status, 401)
  })

  t.test('no renewal after an admin revoke', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'dora', { remember: true })
    const { sid } = await me(s, b)
    const del = await fetch(`${s.adminUrl}/admin/sessions/${sid}`, { method: 'DELETE', headers: { authorization: `Bearer ${s.adminToken}` } })
    t.equal(del.status, 204)
    const res = await fetch(`${s.url}/api/x`, { headers: { ...api, cookie: deviceOnly(b) } })
    t.equal(res.status, 401)
  })

  t.test('own devices: listed for their owner only, revocable by their owner only', async (t) => {
    const e1 = new Browser('Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0')
    const e2 = new Browser('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1')
    const mallory = new Browser()
    await login(e1, s.url, 'erin', { remember: true })
    await login(e2, s.url, 'erin')
    await login(mallory, s.url, 'mallory')
    const list = (await e1.fetch(`${s.url}/auth/sessions`)).json<Array<{ id: string, current: boolean, rememberMe: boolean, userAgent: string }>>()
    t.equal(list.length, 2, 'both of erin\'s devices')
    t.equal(list.filter((d) => d.current).length, 1, 'this device marked')
    const other = list.find((d) => !d.current)!
    const mine = (await mallory.fetch(`${s.url}/auth/sessions`)).json<Array<{ id: string }>>()
    t.equal(mine.length, 1, 'mallory sees only her own')
    t.notOk(mine.some((d) => d.id === other.id))

    const steal = await mallory.fetch(`${s.url}/auth/sessions/${other.id}`, { method: 'DELETE', headers: { 'x-csrf': '1' } })
    t.equal(steal.status, 404, 'another user\'s device: not found')
    t.equal((await e2.fetch(`${s.url}/api/x`, { headers: api })).status, 200, 'and it is still signed in')

    const noCsrf = await e1.fetch(`${s.url}/auth/sessions/${other.id}`, { method: 'DELETE' })
    t.equal(noCsrf.status, 403, 'X-CSRF required')
    const del = await e1.fetch(`${s.url}/auth/sessions/${other.id}`, { method: 'DELETE', headers: { 'x-csrf': '1' } })
    t.equal(del.status, 204)
    t.equal((await e2.fetch(`${s.url}/api/x`, { headers: api })).status, 401, 'the other device is out')
    t.equal((await e1.fetch(`${s.url}/api/x`, { headers: api })).status, 200, 'this one is not')
  })

  t.test('no renewal after the store lost its data', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'fay', { remember: true })
    const { Redis } = await import('ioredis')
    const cli = new Redis(redis.url)
    await cli.flushall()
    await cli.quit()
    const res = await fetch(`${s.url}/api/x`, { headers: { ...api, cookie: deviceOnly(b) } })
    t.equal(res.status, 401)
    const withCookie = await b.fetch(`${s.url}/api/x`, { headers: api })
    t.equal(withCookie.status, 401, 'nor does the old session cookie work')
  })
})
