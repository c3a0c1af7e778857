/**
 * The main path, for real: login through oidc-provider with a cookie-jar client, then a proxied request
 * that reaches a real upstream with the identity headers and without the gateway's cookies.
 */
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'

t.test('full login through the real IdP reaches the upstream with identity headers', async (t) => {
  const s = await startStack(t)
  const b = new Browser()

  // Before login: an HTML GET is sent to login with returnTo; an API call gets 401 JSON
  const html = await b.fetch(`${s.url}/reports/q3?x=1`, { headers: { accept: 'text/html' } })
  t.equal(html.status, 302)
  t.equal(html.headers.get('location'), `/auth/login?returnTo=${encodeURIComponent('/reports/q3?x=1')}`)
  const api = await b.fetch(`${s.url}/api/data`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 401)
  t.same(api.json(), { error: 'unauthenticated' })
  t.equal(s.upstream.seen.length, 0, 'nothing reached the upstream unauthenticated')

  const res = await login(b, s.url, 'alice', { returnTo: '/reports/q3?x=1' })
  t.equal(res.status, 200, 'landed on the upstream page')
  t.equal(new URL(res.url).pathname, '/reports/q3')
  const seen = s.upstream.seen.at(-1)!
  t.equal(seen.url, '/reports/q3?x=1', 'returnTo honoured, path forwarded unchanged')
  t.equal(seen.headers['x-forwarded-user'], 'alice')
  t.equal(seen.headers['x-forwarded-email'], 'alice@example.com', 'profile claims from userinfo')
  t.equal(seen.headers['x-forwarded-preferred-username'], 'alice')
  t.equal(seen.headers['x-forwarded-groups'], 'demo-users,staff')
  t.notOk(seen.headers.cookie, 'no gateway cookie reached the upstream')

  const sessionCookie = b.cookies(s.url).get('sg')
  t.ok(sessionCookie, 'session cookie set')
  t.ok(b.cookies(s.url).get('sg-device'), 'device cookie set')
  t.notOk(b.cookies(s.url).get('sg-tx'), 'login transaction cookie cleared')

  const me = await b.fetch(`${s.url}/auth/session`)
  t.equal(me.status, 200)
  const body = me.json<{ sub: string, sid: string, claims: Record<string, unknown>, rememberMe: boolean, expiresAt: string }>()
  t.equal(body.sub, 'alice')
  t.equal(body.claims.email, 'alice@example.com')
  t.equal(body.rememberMe, false)
  t.ok(Date.parse(body.expiresAt) > Date.now())
})

t.test('login cookies carry the right attributes; remember-me makes the device cookie persistent', async (t) => {
  const s = await startStack(t)
  const res = await login(new Browser(), s.url, 'bob', { remember: true, stopAtCallback: true })
  t.match(res.url, /\/auth\/callback\?/)
  t.equal(res.status, 302)
  const sg = res.setCookies.find((c) => c.startsWith('sg='))!
  const dev = res.setCookies.find((c) => c.startsWith('sg-device='))!
  t.match(sg, /HttpOnly/i)
  t.match(sg, /SameSite=Lax/i)
  t.match(sg, /Path=\//)
  t.notMatch(sg, /Secure/i, 'http publicUrl: not Secure')
  t.match(dev, /HttpOnly/i)
  t.match(dev, /Max-Age=2592000/, 'remember-me: device cookie persists rememberMe.ttl')
})

t.test('without remember-me the device cookie is a browser-session cookie', async (t) => {
  const s = await startStack(t)
  const res = await login(new Browser(), s.url, 'carol', { stopAtCallback: true })
  t.equal(res.status, 302)
  const dev = res.setCookies.find((c) => c.startsWith('sg-device='))!
  t.ok(dev)
  t.notMatch(dev, /Max-Age|Expires/i)
})
