/**
 * Path confusion: a parent route less protected than a child (`/` optional, `/admin` required) on one
 * upstream. No request target may reach the upstream as `/admin/...` without passing the child's rules.
 */
import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { rawRequest } from '../helpers/raw-http.js'

const ROUTES = [
  { prefix: '/', upstream: '{upstream}', auth: 'optional' },
  { prefix: '/admin', upstream: '{upstream}', auth: 'required' },
  { prefix: '/api', upstream: '{upstream}', auth: 'none', csrf: true }
]

t.test('ambiguous targets are refused with 400 before routing, and never reach the upstream', async (t) => {
  const s = await startStack(t, { routes: ROUTES })
  t.equal((await rawRequest(s.url, '/admin/users')).status, 401, 'the child route guards its own path')
  const attacks = [
    '/./admin/users', '/%2e/admin/users', '/%2E/admin/users', '/admin\\users', '/.\\admin/users',
    '/x/../admin/users', '/x/%2e%2e/admin/users', '/x/.%2e/admin/users', '/admin%2fusers', '/%2Fadmin/users',
    '/admin%5cusers', '//admin/users', '/public//admin', '/admin;x/users', '/admin%3bx/users', '/adm%00in/users',
    '/a b', '/admin/users/.', '/admin/users/..', '/%zz', '/%2', '/\u00e9', '/a"b', '/a<b', '/a{b',
    'http://evil.example/admin/users', '*', '/Admin/users', '/ADMIN/users', '/aDmin',
    // read as /admin by Windows names, or by Unicode folding (found by an attacker's review)
    '/admin./users', '/admin../users', '/admin%20/users', '/admin::$DATA/users', '/admin:x/users', '/adm%C4%B1n/users', '/%EF%BD%81dmin/users'
  ]
  for (const target of attacks) {
    const before = s.upstream.seen.length
    const res = await rawRequest(s.url, target, { headers: { accept: 'application/json' } })
    t.ok(res.status === 400, `${JSON.stringify(target)} refused (got ${res.status})`)
    t.equal(s.upstream.seen.length, before, `${JSON.stringify(target)} never reached the upstream`)
  }
  t.match((await rawRequest(s.url, '/./admin/users')).body, /ambiguous request target \(dot_segment\)/, 'the answer names why')
})

t.test('plain targets pass unchanged: what picked the route is what the upstream gets', async (t) => {
  const s = await startStack(t, { routes: ROUTES })
  for (const target of ['/public/a.b/c..d/.e', '/public/%41%62?x=/../admin&y=%2e', '/', '/public/x:y@z!$&\'()*+,=~_-', '/public/[a]|^', '/administrator', '/public/%25']) {
    const res = await rawRequest(s.url, target, { headers: { accept: 'application/json' } })
    t.equal(res.status, 200, JSON.stringify(target))
    t.equal(s.upstream.seen.at(-1)!.url, target, `${JSON.stringify(target)} forwarded byte for byte`)
  }
  t.equal((await rawRequest(s.url, '/adm%69n/users', { headers: { accept: 'application/json' } })).status, 401, 'an encoded letter is decoded by the router: the child route applies')
})

t.test('WebSocket upgrades and the csrf check see the same refusal', async (t) => {
  const s = await startStack(t, { routes: ROUTES })
  const ws = await rawRequest(s.url, '/./admin/ws', {
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', origin: s.url }
  })
  t.equal(ws.status, 400, 'upgrade with a dot segment refused')
  const named = await rawRequest(s.url, '/admin./ws', {
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', origin: s.url }
  })
  t.equal(named.status, 400, 'upgrade to a Windows-style alias of /admin refused')
  t.equal(s.upstream.wsSeen.length, 0, 'no WebSocket reached the upstream')
  const skip = await rawRequest(s.url, '/./api/form', { method: 'POST', body: 'x' })
  t.equal(skip.status, 400, 'a dot segment cannot skip the csrf route')
  const csrf = await rawRequest(s.url, '/api/form', { method: 'POST', body: 'x' })
  t.equal(csrf.status, 403, 'the csrf route still answers 403 without the header')
})
