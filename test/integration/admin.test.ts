/**
 * The admin port (README section "Admin port"): health and readiness, bearer-token auth on /admin/*, listing a
 * user's sessions, revoking one session or all of a user's.
 */
import t, { type Test } from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { adminCall, clears, sessionOf } from '../helpers/flow.js'
import { startStack, type Stack } from '../helpers/stack.js'

interface AdminSession { id: string, createdAt: string, lastSeenAt: string, userAgent: string, ip: string, rememberMe: boolean }

/** A browser signed in as `user`; returns it with its sid. */
async function signedIn (s: Stack, user: string, ua: string, remember = false): Promise<{ b: Browser, sid: string }> {
  const b = new Browser(ua)
  await login(b, s.url, user, { remember })
  return { b, sid: (await sessionOf(b, s.url)).sid }
}

/** Asserts this browser's session is refused: API 401 with its cookies cleared, HTML 302 to login. */
async function assertRefused (t: Test, s: Stack, b: Browser, what: string): Promise<void> {
  const cookie = b.cookieHeader(s.url)
  const api = await b.fetch(`${s.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 401, `${what}: API 401`)
  t.ok(clears(api.setCookies, 'sg'), `${what}: session cookie cleared`)
  t.ok(clears(api.setCookies, 'sg-device'), `${what}: device cookie cleared`)
  t.equal(b.cookies(s.url).size, 0, `${what}: the browser holds no gateway cookie`)
  // the same cookies again, as an HTML navigation
  const html = await new Browser().fetch(`${s.url}/page`, { headers: { accept: 'text/html', cookie } })
  t.equal(html.status, 302, `${what}: HTML 302`)
  t.match(html.headers.get('location'), /^\/auth\/login\?returnTo=/)
}

async function assertLive (t: Test, s: Stack, b: Browser, what: string): Promise<void> {
  t.equal((await b.fetch(`${s.url}/api/x`)).status, 200, `${what}: still signed in`)
}

t.test('health and readiness', async (t) => {
  const s = await startStack(t)
  const health = await fetch(`${s.adminUrl}/healthz`)
  t.equal(health.status, 200)
  // discovery starts at boot; wait for it (bounded) instead of sleeping
  let ready = await fetch(`${s.adminUrl}/readyz`)
  for (let i = 0; i < 50 && ready.status !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    ready = await fetch(`${s.adminUrl}/readyz`)
  }
  t.equal(ready.status, 200, 'ready once the IdP metadata is loaded')
  t.match(await ready.json(), { checks: { idp: 'ok', store: 'ok' } })
  t.equal((await fetch(`${s.url}/healthz`)).status, 401, 'not on the public port (proxied, needs a session)')
})

t.test('readyz is 503 while the IdP metadata cannot be loaded', async (t) => {
  const s = await startStack(t, { config: { oidc: { issuer: 'http://127.0.0.1:9/', clientId: 'gateway', clientSecret: '${SG_CLIENT_SECRET}', allowInsecureHttp: true } } })
  const res = await fetch(`${s.adminUrl}/readyz`)
  t.equal(res.status, 503)
  t.match(await res.json(), { checks: { idp: 'metadata not loaded' } })
  t.equal((await fetch(`${s.adminUrl}/healthz`)).status, 200, 'healthz does not depend on the IdP')
})

t.test('/admin/* needs the bearer token', async (t) => {
  const s = await startStack(t)
  const { sid } = await signedIn(s, 'alice', 'ua-alice-1')
  const path = '/admin/users/alice/sessions'
  for (const [what, token] of [['no token', null], ['wrong token', 'nope'], ['empty', ''], ['token with a suffix', `${s.adminToken}x`], ['token prefix', s.adminToken.slice(0, -1)]] as const) {
    const res = await adminCall(s, 'GET', path, token)
    t.equal(res.status, 401, `${what}: 401`)
    t.notMatch(res.body, sid, `${what}: nothing listed`)
  }
  const basic = await fetch(`${s.adminUrl}${path}`, { headers: { authorization: `Basic ${s.adminToken}` } })
  t.equal(basic.status, 401, 'Basic scheme: 401')
  for (const [method, p] of [['DELETE', '/admin/sessions/whatever'], ['DELETE', path]] as const) {
    t.equal((await adminCall(s, method, p, 'nope')).status, 401, `${method} ${p} without the token: 401`)
  }

  const res = await adminCall(s, 'GET', path)
  t.equal(res.status, 200)
  const list = res.json<AdminSession[]>()
  t.equal(list.length, 1)
  const one = list[0]!
  t.equal(one.id, sid)
  t.equal(one.userAgent, 'ua-alice-1')
  t.equal(one.ip, '127.0.0.1')
  t.equal(one.rememberMe, false)
  t.ok(Date.parse(one.createdAt) <= Date.now() && Date.parse(one.createdAt) > Date.now() - 60_000, 'createdAt is an ISO time of now')
  t.ok(Date.parse(one.lastSeenAt) >= Date.parse(one.createdAt))
  t.notOk('credHash' in one || 'tokens' in one, 'no credential hash, no tokens')
  t.same((await adminCall(s, 'GET', '/admin/users/nobody/sessions')).json(), [], 'unknown user: empty list')
})

t.test('DELETE /admin/sessions/:id revokes that session only', async (t) => {
  const s = await startStack(t)
  const one = await signedIn(s, 'alice', 'ua-1')
  const two = await signedIn(s, 'alice', 'ua-2', true)
  t.equal((await adminCall(s, 'GET', '/admin/users/alice/sessions')).json<AdminSession[]>().length, 2)

  const del = await adminCall(s, 'DELETE', `/admin/sessions/${one.sid}`)
  t.equal(del.status, 204)
  t.equal(del.body, '')
  await assertRefused(t, s, one.b, 'revoked session')
  await assertLive(t, s, two.b, 'the other device')
  t.same((await adminCall(s, 'GET', '/admin/users/alice/sessions')).json<AdminSession[]>().map((x) => x.id), [two.sid])
  t.equal((await adminCall(s, 'DELETE', '/admin/sessions/no-such-session')).status, 404, 'unknown id: 404')
})

t.test('DELETE /admin/users/:sub/sessions revokes all of that user, nobody else', async (t) => {
  const s = await startStack(t)
  const a1 = await signedIn(s, 'alice', 'ua-1')
  const a2 = await signedIn(s, 'alice', 'ua-2', true)
  const bob = await signedIn(s, 'bob', 'ua-bob')

  const del = await adminCall(s, 'DELETE', '/admin/users/alice/sessions')
  t.equal(del.status, 204)
  await assertRefused(t, s, a1.b, 'alice 1')
  await assertRefused(t, s, a2.b, 'alice 2 (remember-me)')
  await assertLive(t, s, bob.b, 'bob')
  t.same((await adminCall(s, 'GET', '/admin/users/alice/sessions')).json(), [])
  t.equal((await adminCall(s, 'GET', '/admin/users/bob/sessions')).json<AdminSession[]>().length, 1)
  t.equal((await adminCall(s, 'DELETE', '/admin/users/nobody/sessions')).status, 204, 'a user without sessions: 204')

  // alice can sign in again afterwards
  const again = await signedIn(s, 'alice', 'ua-3')
  await assertLive(t, s, again.b, 'alice after a new login')
})
