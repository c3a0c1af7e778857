/**
 * Forward-auth behind a real nginx configured like ingress-nginx (auth_request to /auth/check,
 * auth_request_set for identity headers and Set-Cookie, 401 to the sign-in URL), with one session across
 * subdomains (session.cookieDomain): sign-in, identity headers, back-channel logout, sliding, and a rule
 * per host. Then the Traefik and Envoy header shapes, and what a disabled endpoint answers.
 */
import t, { type Test } from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { HostBrowser } from '../helpers/host-browser.js'
import { rawRequest } from '../helpers/raw-http.js'
import { nginxBinary, startNginx, type Nginx } from '../helpers/nginx.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { logoutToken, postLogout } from '../helpers/logout-token.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const ROUTES = [
  { prefix: '/', auth: 'required' },
  { prefix: '/', host: 'admin.example.test', auth: 'required', authorize: [{ groups: ['admins'] }] },
  { prefix: '/public', auth: 'none' },
  { prefix: '/maybe', auth: 'optional' }
]

async function setup (t: Test): Promise<{ s: Stack, nginx: Nginx, gw: string, app: (host: string, path: string) => string }> {
  const s = await startStack(t, {
    publicHost: 'auth.example.test',
    routes: ROUTES,
    config: {
      forwardAuth: { enabled: true, allowedHosts: ['*.example.test'] },
      session: { ttl: '4s', absoluteTtl: '1h', keys: ['${SG_SESSION_KEY}'], cookieDomain: 'example.test' }
    }
  })
  const gwPort = new URL(s.url).port
  const nginx = await startNginx({ gateway: s.url, upstream: s.upstream.url, signin: `http://auth.example.test:${gwPort}/auth/login` })
  t.teardown(() => nginx.stop())
  return { s, nginx, gw: `http://auth.example.test:${gwPort}`, app: (host, path) => `http://${host}:${nginx.port}${path}` }
}

t.test('forward-auth behind nginx', { skip: nginxBinary === undefined ? 'nginx is not installed (apt-get install nginx)' : false }, async (t) => {
  const { s, nginx, app } = await setup(t)

  t.test('sign-in through nginx, identity headers upstream, forged ones replaced', async (t) => {
    const b = new HostBrowser()
    const first = await b.fetch(app('app.example.test', '/hello'))
    t.equal(first.status, 302, 'no session: nginx sends the browser to sign in')
    t.match(String(first.headers.location), /^http:\/\/auth\.example\.test:\d+\/auth\/login\?rd=http:\/\/app\.example\.test:\d+\/hello$/)
    const res = await b.signIn(app('app.example.test', '/hello'), 'alice')
    t.equal(res.status, 200, 'back at the app after the IdP')
    t.equal(res.url, app('app.example.test', '/hello'), 'returned to the absolute URL on the allowed host')
    t.ok(b.cookies.some((c) => c.name === 'sg' && c.domain === 'example.test' && !c.hostOnly), 'the session cookie is shared by the subdomains')
    const again = await b.fetch(app('other.example.test', '/x'), { headers: { 'x-forwarded-user': 'root' } })
    t.equal(again.status, 200, 'the same session on a sibling subdomain')
    const seen = s.upstream.seen.at(-1)!
    t.equal(seen.headers['x-forwarded-user'], 'alice', 'identity from the check answer, the forged header replaced')
    t.equal(seen.headers['x-forwarded-email'], 'alice@example.com')
    t.equal(seen.url, '/x')
  })

  t.test('a back-channel logout makes the next request through nginx go to sign-in within 1 s', async (t) => {
    const b = new HostBrowser()
    await b.signIn(app('app.example.test', '/a'), 'bob')
    t.equal((await b.fetch(app('app.example.test', '/a'))).status, 200)
    const me = (await s.gateway.ctx.store.listSessions('bob'))[0]!
    const token = await logoutToken(s.idp.signingKey, s.idp.issuer, 'gateway', { claims: { sid: me.idpSid, sub: 'bob' } })
    t.equal((await postLogout(s.url, token)).status, 200)
    const started = Date.now()
    let status = 200
    while (status === 200 && Date.now() - started < 1000) status = (await b.fetch(app('app.example.test', '/a'))).status
    t.equal(status, 302, 'sent to sign in')
  })

  t.test('a sliding renewal\'s cookie reaches the browser through nginx', async (t) => {
    const b = new HostBrowser()
    await b.signIn(app('app.example.test', '/s'), 'carol')
    const before = b.get('sg')
    await sleep(2300) // past half of session.ttl (4 s)
    const res = await b.fetch(app('app.example.test', '/s'))
    t.equal(res.status, 200)
    t.ok(res.setCookies.some((c) => c.startsWith('sg=') && /Domain=example\.test/i.test(c)), 'nginx relayed the slid cookie')
    t.not(b.get('sg'), before, 'the browser holds the new cookie')
    await sleep(2300) // the first cookie would have expired by now; the slid one has not
    t.equal((await b.fetch(app('app.example.test', '/s'))).status, 200)
  })

  t.test('an expired session cookie with a device credential renews at the sign-in URL, without the IdP', async (t) => {
    const b = new HostBrowser()
    await b.signIn(app('app.example.test', '/r'), 'dave')
    b.cookies.splice(b.cookies.findIndex((c) => c.name === 'sg'), 1) // the short cookie expired
    const res = await b.go(app('app.example.test', '/r'))
    t.equal(res.status, 200, 'back at the app')
    t.notOk(res.url.includes(new URL(s.idp.issuer).host), 'never went to the IdP')
    t.ok(b.get('sg') !== undefined, 'a new session cookie')
  })

  t.test('a rule per host: 403 through nginx', async (t) => {
    const bob = new HostBrowser()
    await bob.signIn(app('app.example.test', '/'), 'eve')
    t.equal((await bob.fetch(app('app.example.test', '/'))).status, 200, 'no rule on app.')
    t.equal((await bob.fetch(app('admin.example.test', '/'))).status, 403, 'admins only on admin.')
    const admin = new HostBrowser()
    await admin.signIn(app('admin.example.test', '/'), 'admin')
    t.equal((await admin.fetch(app('admin.example.test', '/'))).status, 200)
  })

  t.test('auth: none and optional routes; ambiguous targets refused', async (t) => {
    const anon = new HostBrowser()
    t.equal((await anon.fetch(app('app.example.test', '/public/x'))).status, 200)
    t.equal((await anon.fetch(app('app.example.test', '/maybe/x'))).status, 200)
    t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], undefined)
    const dotted = await rawRequest(`http://127.0.0.1:${nginx.port}`, '/public/../secret', { headers: { Host: `app.example.test:${nginx.port}` } })
    t.equal(dotted.status, 403, 'a dot segment is not judged as /public')
    const eve = new HostBrowser()
    await eve.signIn(app('app.example.test', '/'), 'eve2')
    const before = s.upstream.seen.length
    const trailing = await rawRequest(`http://127.0.0.1:${nginx.port}`, '/secret', { headers: { Host: `admin.example.test.:${nginx.port}`, cookie: eve.cookieHeader(app('app.example.test', '/')) } })
    t.equal(trailing.status, 403, 'Host with a trailing dot is the admin host: its rule applies')
    t.equal(s.upstream.seen.length, before, 'nothing reached the upstream')
  })
})

t.test('Traefik and Envoy header shapes', async (t) => {
  const s = await startStack(t, {
    routes: ROUTES,
    config: { forwardAuth: { enabled: true, allowedHosts: ['*.example.test'] } }
  })
  const b = new Browser()
  await login(b, s.url, 'frank') // signed in at the gateway itself; it lands on a path nothing proxies
  t.ok(b.cookies(s.url).get('sg') !== undefined, 'signed in')
  const cookie = b.cookieHeader(s.url)
  const check = async (path: string, headers: Record<string, string>): Promise<Response> => await fetch(`${s.url}${path}`, { headers: { cookie, ...headers } })
  // Traefik forwardAuth
  const traefik = await check('/auth/check', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.test', 'x-forwarded-uri': '/reports?q=1', 'x-forwarded-method': 'GET' })
  t.equal(traefik.status, 200)
  t.equal(traefik.headers.get('x-forwarded-user'), 'frank')
  t.equal((await check('/auth/check', { 'x-forwarded-host': 'admin.example.test', 'x-forwarded-uri': '/', 'x-forwarded-method': 'GET' })).status, 403, 'the admin host rule')
  t.equal((await fetch(`${s.url}/auth/check`, { headers: { 'x-forwarded-host': 'app.example.test', 'x-forwarded-uri': '/x' } })).status, 401, 'no cookie: 401')
  // Envoy ext_authz HTTP with path_prefix /auth/check: the original path follows, the Host is the original
  const envoy = await check('/auth/check/reports/q3', { 'x-forwarded-host': 'app.example.test' })
  t.equal(envoy.status, 200)
  t.equal(envoy.headers.get('x-forwarded-user'), 'frank')
  t.equal((await check('/auth/check', {})).status, 403, 'no original request named: refused')

  // Found by an attacker's review: hosts a controller reads one way and the check another, and a client
  // adding the other header set (nginx and Traefik pass client headers into the check request).
  for (const host of ['admin.example.test.', 'ADMIN.example.test.:8443']) {
    t.equal((await check('/auth/check', { 'x-original-url': `https://${host}/secret` })).status, 403, `${host}: a trailing dot is the same host (admins only)`)
    t.equal((await check('/auth/check', { 'x-forwarded-host': host, 'x-forwarded-uri': '/secret' })).status, 403, `${host} as X-Forwarded-Host too`)
  }
  for (const url of ['https://admin.example.test@app.example.test/x', 'https://app.example.test,admin.example.test/x']) {
    t.equal((await check('/auth/check', { 'x-original-url': url })).status, 403, `malformed host refused: ${url}`)
  }
  for (const host of ['admin.example.test:1:2', 'app.example.test, admin.example.test', 'app.example.test admin']) {
    t.equal((await check('/auth/check', { 'x-forwarded-host': host, 'x-forwarded-uri': '/x' })).status, 403, `malformed X-Forwarded-Host refused: ${host}`)
  }
  const injected = await check('/auth/check', { 'x-forwarded-host': 'admin.example.test', 'x-forwarded-uri': '/secret', 'x-forwarded-method': 'GET', 'x-original-url': 'https://app.example.test/secret' })
  t.equal(injected.status, 403, 'X-Original-URL disagreeing with X-Forwarded-Host: refused, whichever the controller forwards')
  t.equal((await check('/auth/check', { 'x-forwarded-host': 'admin.example.test', 'x-forwarded-uri': '/public/x', 'x-original-url': 'https://admin.example.test/secret' })).status, 403, 'disagreeing paths: refused')
  t.equal((await check('/auth/check', { 'x-original-url': 'https://app.example.test/x', 'x-original-method': 'GET', 'x-forwarded-method': 'POST' })).status, 403, 'disagreeing methods: refused')
  t.equal((await check('/auth/check', { 'x-original-url': 'https://app.example.test/x', 'x-forwarded-host': 'APP.example.test', 'x-forwarded-uri': '/x' })).status, 200, 'agreeing header sets pass')
})

t.test('the check endpoint is 404 when forward-auth is off', async (t) => {
  const s = await startStack(t)
  const res = await fetch(`${s.url}/auth/check`, { headers: { 'x-original-url': `${s.url}/x` } })
  t.equal(res.status, 404)
})

t.test('bearer tokens on /auth/check, on bearer routes', async (t) => {
  const { signedAccessToken } = await import('../helpers/access-token.js')
  const s = await startStack(t, {
    routes: [{ prefix: '/api', auth: 'required', bearer: true }, { prefix: '/', auth: 'required' }],
    oidc: { audience: ['https://api.example.test'] },
    config: { forwardAuth: { enabled: true, allowedHosts: ['*.example.test'] } }
  })
  const token = await signedAccessToken(s.idp.signingKey, s.idp.issuer, 'https://api.example.test', { claims: { sub: 'api-user' } })
  const check = async (uri: string, authorization?: string): Promise<Response> => await fetch(`${s.url}/auth/check`, {
    headers: { 'x-forwarded-host': 'app.example.test', 'x-forwarded-uri': uri, ...(authorization !== undefined ? { authorization } : {}) }
  })
  const ok = await check('/api/orders', `Bearer ${token}`)
  t.equal(ok.status, 200)
  t.equal(ok.headers.get('x-forwarded-user'), 'api-user', 'identity from the token')
  const bad = await check('/api/orders', 'Bearer not.a.jwt')
  t.equal(bad.status, 401)
  t.equal(bad.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  t.equal((await check('/other', `Bearer ${token}`)).status, 401, 'a route without bearer: the token is not a session')
})
