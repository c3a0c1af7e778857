import t from 'tap'
import { allowedAbsoluteUrl, hostMatches } from '../../src/core/hosts.js'
import { routeFor } from '../../src/http/forward-auth.js'
import type { RouteConfig } from '../../src/config/types.js'

const ALLOWED = ['app.example.com', '*.apps.example.com']

t.test('host patterns: exact, wildcard at any depth, never the apex; ports ignored unless named', async (t) => {
  t.ok(hostMatches('app.example.com', 'APP.example.com:8443'))
  t.notOk(hostMatches('app.example.com', 'app.example.com.evil.com'))
  t.ok(hostMatches('*.example.com', 'a.example.com'))
  t.ok(hostMatches('*.example.com', 'a.b.example.com'))
  t.notOk(hostMatches('*.example.com', 'example.com'))
  t.notOk(hostMatches('*.example.com', 'evilexample.com'))
  t.ok(hostMatches('app.example.com:8443', 'app.example.com:8443'))
  t.notOk(hostMatches('app.example.com:8443', 'app.example.com:9443'))
})

t.test('absolute returnTo: only allowed hosts, no open-redirect tricks', async (t) => {
  t.equal(allowedAbsoluteUrl('https://app.example.com/x?y=1#z', ALLOWED, false), 'https://app.example.com/x?y=1#z')
  t.equal(allowedAbsoluteUrl('https://a.apps.example.com', ALLOWED, false), 'https://a.apps.example.com/')
  const refused = [
    'https://evil.com', 'https://app.example.com.evil.com/', 'https://evil.com\\@app.example.com', '//evil.com',
    'https:/\\evil.com', 'https://user:pw@app.example.com/', 'https://app.example.com@evil.com/', 'https://evil.com#@app.example.com',
    'https://evil.com?@app.example.com', 'https://app.example.com\t.evil.com/', 'https://app.example.com/\n', 'https://app.example.com%2f@evil.com/',
    'https://%61pp.example.com/', 'https://apps.example.com/', 'javascript:alert(1)//app.example.com', 'http://app.example.com/',
    'HTTPS://evil.com/', 'https:evil.com', 'https://app.example.com/%0d%0aLocation:%20https://evil.com', 'https://app.example.com/%5c%5cevil.com',
    ' https://app.example.com/', 'https://ａpp.example.com/'
  ]
  for (const u of refused) t.equal(allowedAbsoluteUrl(u, ALLOWED, false), undefined, encodeURIComponent(u))
  t.equal(allowedAbsoluteUrl('http://app.example.com/', ALLOWED, true), 'http://app.example.com/', 'http only when the gateway itself is on http')
})

t.test('routeFor: longest prefix, then exact host over wildcard over none', async (t) => {
  const r = (prefix: string, host?: string): RouteConfig => ({ prefix, auth: 'required', forwardAccessToken: false, csrf: false, bearer: false, ...(host !== undefined ? { host } : {}) })
  const routes = [r('/'), r('/', '*.example.com'), r('/', 'admin.example.com'), r('/api'), r('/api', 'b.example.com')]
  t.equal(routeFor(routes, 'other.org', '/x'), routes[0])
  t.equal(routeFor(routes, 'a.example.com', '/x'), routes[1])
  t.equal(routeFor(routes, 'admin.example.com:443', '/x'), routes[2])
  t.equal(routeFor(routes, 'admin.example.com', '/api/v1'), routes[3], 'a longer prefix wins over a host match')
  t.equal(routeFor(routes, 'b.example.com', '/api'), routes[4])
  t.equal(routeFor([r('/api')], 'x', '/apix'), undefined)
})
