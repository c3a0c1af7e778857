/**
 * Identity-header hygiene (README section "Proxying"): client-sent identity headers never reach an upstream,
 * the gateway's own values do; Authorization is kept unless the route forwards the access token;
 * longest prefix wins; `auth: optional`; CSRF on unsafe methods.
 */
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { Browser, login } from '../helpers/browser.js'
import { rawGet } from '../helpers/flow.js'
import { startStack, type Stack } from '../helpers/stack.js'
import type { SeenRequest } from '../helpers/upstream.js'

const IDENTITY = ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-preferred-username', 'x-forwarded-groups', 'x-forwarded-access-token']

/** The forged identity headers, in odd cases on purpose. */
const FORGED: Record<string, string> = {
  'X-Forwarded-User': 'mallory',
  'x-forwarded-email': 'mallory@evil.example',
  'X-FORWARDED-PREFERRED-USERNAME': 'mallory',
  'x-Forwarded-Groups': 'admins',
  'X-Forwarded-Access-Token': 'forged-token'
}

const ROUTES = [
  { prefix: '/', upstream: '{upstream}', auth: 'required' },
  { prefix: '/api', upstream: '{upstream}', auth: 'required', forwardAccessToken: true },
  { prefix: '/public', upstream: '{upstream}', auth: 'none' },
  { prefix: '/maybe', upstream: '{upstream}', auth: 'optional' },
  { prefix: '/form', upstream: '{upstream}', auth: 'required', csrf: true }
]

/** GET through the gateway; returns what the upstream saw (fails the test when nothing reached it). */
async function seenFor (t: Test, s: Stack, b: Browser, path: string, headers: Record<string, string> = {}): Promise<SeenRequest> {
  const before = s.upstream.seen.length
  const res = await b.fetch(`${s.url}${path}`, { headers: { accept: 'application/json', ...headers } })
  t.equal(res.status, 200, `${path} reached the upstream`)
  t.equal(s.upstream.seen.length, before + 1)
  return s.upstream.seen.at(-1)!
}

function noIdentity (t: Test, seen: SeenRequest, what: string): void {
  for (const h of IDENTITY) t.equal(seen.headers[h], undefined, `${what}: no ${h}`)
}

t.test('identity headers and Authorization per route', async (t) => {
  const s = await startStack(t, { routes: ROUTES })
  const anon = new Browser()

  t.test('auth: none without a session: forged identity headers are removed', async (t) => {
    const seen = await seenFor(t, s, anon, '/public/x', FORGED)
    noIdentity(t, seen, 'anonymous')
    t.equal(seen.url, '/public/x')
  })

  t.test('repeated and mixed-case names on the wire are all removed', async (t) => {
    const before = s.upstream.seen.length
    const res = await rawGet(`${s.url}/public/raw`, [
      ['X-Forwarded-User', 'mallory'], ['x-forwarded-user', 'eve'], ['X-FORWARDED-EMAIL', 'm@evil'],
      ['x-Forwarded-Groups', 'admins'], ['X-Forwarded-Access-Token', 'forged'], ['X-Forwarded-Preferred-Username', 'm'],
      ['X-Other', 'a'], ['x-other', 'b']
    ])
    t.equal(res.status, 200)
    t.equal(s.upstream.seen.length, before + 1)
    const seen = s.upstream.seen.at(-1)!
    noIdentity(t, seen, 'raw')
    t.equal(seen.headers['x-other'], 'a, b', 'control: repeated headers do reach the upstream')
  })

  t.test('underscore spellings of identity headers are removed too', async (t) => {
    const before = s.upstream.seen.length
    await rawGet(`${s.url}/public/underscore`, [['X_Forwarded_User', 'mallory'], ['x_forwarded_email', 'm@evil']])
    t.equal(s.upstream.seen.length, before + 1)
    const seen = s.upstream.seen.at(-1)!
    t.equal(seen.headers.x_forwarded_user, undefined)
    t.equal(seen.headers.x_forwarded_email, undefined)
  })

  t.test('auth: optional passes without a session, with no identity headers', async (t) => {
    const seen = await seenFor(t, s, anon, '/maybe/page', FORGED)
    noIdentity(t, seen, 'optional, anonymous')
  })

  const b = new Browser()
  await login(b, s.url, 'alice')

  t.test('with a session the upstream sees the gateway values, not the forged ones', async (t) => {
    const seen = await seenFor(t, s, b, '/app/page', FORGED)
    t.equal(seen.headers['x-forwarded-user'], 'alice')
    t.equal(seen.headers['x-forwarded-email'], 'alice@example.com')
    t.equal(seen.headers['x-forwarded-preferred-username'], 'alice')
    t.equal(seen.headers['x-forwarded-groups'], 'demo-users,staff')
    t.equal(seen.headers['x-forwarded-access-token'], undefined, 'route without forwardAccessToken: no token, forged one removed')
  })

  t.test('auth: optional with a session forwards the identity', async (t) => {
    const seen = await seenFor(t, s, b, '/maybe/page', FORGED)
    t.equal(seen.headers['x-forwarded-user'], 'alice')
    t.equal(seen.headers['x-forwarded-groups'], 'demo-users,staff')
  })

  t.test('auth: none with a session forwards no identity', async (t) => {
    noIdentity(t, await seenFor(t, s, b, '/public/y', FORGED), 'none, signed in')
  })

  t.test('Authorization from the client is kept on a route without forwardAccessToken', async (t) => {
    const seen = await seenFor(t, s, b, '/app/data', { authorization: 'Bearer client-own-token' })
    t.equal(seen.headers.authorization, 'Bearer client-own-token')
  })

  t.test('forwardAccessToken replaces Authorization with the IdP access token', async (t) => {
    const seen = await seenFor(t, s, b, '/api/x', { authorization: 'Bearer client-own-token', ...FORGED })
    const at = seen.headers['x-forwarded-access-token']
    t.type(at, 'string')
    t.not(at, 'forged-token')
    t.equal(seen.headers.authorization, `Bearer ${String(at)}`)
    t.equal(seen.headers['x-forwarded-user'], 'alice')
    // it is the real token: the IdP's userinfo endpoint accepts it for alice
    const meta = await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json() as { userinfo_endpoint: string }
    const me = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${String(at)}` } })
    t.equal(me.status, 200)
    t.equal((await me.json() as { sub: string }).sub, 'alice')
  })

  t.test('longest prefix wins: /api/x and /api go to the api route, /apix does not', async (t) => {
    t.match((await seenFor(t, s, b, '/api')).headers.authorization, /^Bearer (?!client-own-token)/)
    const apix = await seenFor(t, s, b, '/apix', { authorization: 'Bearer client-own-token' })
    t.equal(apix.headers.authorization, 'Bearer client-own-token', '/apix is the / route: Authorization kept')
    t.equal(apix.headers['x-forwarded-access-token'], undefined)
    t.equal(apix.url, '/apix')
  })

  t.test('WebSocket upgrades get the same hygiene', async (t) => {
    for (const [path, user] of [['/public/ws', undefined], ['/ws', 'alice']] as const) {
      const ws = new WebSocket(`${s.url.replace('http:', 'ws:')}${path}`, { headers: { ...FORGED, cookie: `${b.cookieHeader(s.url)}; app=1` } })
      t.teardown(() => ws.terminate())
      const hello = await new Promise<string>((resolve, reject) => { ws.once('message', (m) => resolve(String(m))); ws.once('error', reject) })
      t.same(JSON.parse(hello), { hello: user ?? null }, `${path}: upstream greeted ${String(user)}`)
      const seen = s.upstream.wsSeen.at(-1)!
      t.equal(seen['x-forwarded-user'], user, `${path}: x-forwarded-user`)
      t.equal(seen['x-forwarded-access-token'], undefined)
      t.equal(seen['x-forwarded-groups'], user === undefined ? undefined : 'demo-users,staff')
      t.equal(seen.cookie, 'app=1', `${path}: only the app cookie`)
      ws.close()
    }
  })

  t.test('csrf route: unsafe methods need X-CSRF: 1', async (t) => {
    const before = s.upstream.seen.length
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const refused = await b.fetch(`${s.url}/form/save`, { method, headers: { 'content-type': 'text/plain' }, ...(method === 'DELETE' ? {} : { body: 'x' }) })
      t.equal(refused.status, 403, `${method} without X-CSRF`)
      t.equal(refused.json<{ error: string }>().error, 'csrf')
    }
    const wrong = await b.fetch(`${s.url}/form/save`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-csrf': '0' }, body: 'x' })
    t.equal(wrong.status, 403, 'X-CSRF must be 1')
    t.equal(s.upstream.seen.length, before, 'nothing refused reached the upstream')

    const ok = await b.fetch(`${s.url}/form/save`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-csrf': '1' }, body: 'payload' })
    t.equal(ok.status, 200)
    const seen = s.upstream.seen.at(-1)!
    t.equal(seen.method, 'POST')
    t.equal(seen.body, 'payload')
    t.equal(seen.headers['x-forwarded-user'], 'alice')
    const get = await b.fetch(`${s.url}/form/view`)
    t.equal(get.status, 200, 'GET needs no CSRF header')
  })

  t.test('a route without csrf accepts a POST without the header', async (t) => {
    const res = await b.fetch(`${s.url}/app/save`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })
    t.equal(res.status, 200)
  })
})
