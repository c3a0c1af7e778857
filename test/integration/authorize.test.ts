/**
 * authorize rules and identity mapping (README section "Who may pass") against the real IdP with Keycloak-shaped
 * claims: each rule kind admits the right user and refuses the wrong one (HTML page, JSON, WebSocket),
 * route rules replace the global ones, mapped headers reach the upstream and client copies do not.
 */
import t from 'tap'
import WebSocket from 'ws'
import type { IncomingMessage } from 'node:http'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'

const api = { accept: 'application/json' }

const CONFIG = {
  authorize: [{ emailDomains: ['example.com'] }],
  identity: { headers: { 'X-Roles': 'realm_access.roles', 'x-dept': 'department' } }
}
const ROUTES = [
  { prefix: '/', upstream: '{upstream}', auth: 'required' },
  { prefix: '/admin', upstream: '{upstream}', auth: 'required', authorize: [{ groups: ['admins'] }, { emails: ['OPS@example.com'] }] },
  { prefix: '/kc', upstream: '{upstream}', auth: 'required', authorize: [{ claims: { 'realm_access.roles': ['kc-admin'] } }] },
  { prefix: '/eng', upstream: '{upstream}', auth: 'required', authorize: [{ subjects: ['kc-eng-admin'], claims: { department: ['eng'] } }] },
  { prefix: '/greek', upstream: '{upstream}', auth: 'optional', authorize: [{ groups: ['beta'] }] },
  { prefix: '/public', upstream: '{upstream}', auth: 'none' }
]

async function signedIn (s: Stack, user: string): Promise<Browser> {
  const b = new Browser()
  await login(b, s.url, user)
  return b
}

async function status (s: Stack, b: Browser, path: string): Promise<number> {
  return (await b.fetch(`${s.url}${path}`, { headers: api })).status
}

t.test('authorize rules', async (t) => {
  const s = await startStack(t, { config: CONFIG, routes: ROUTES })

  t.test('groups and emails (any rule admits)', async (t) => {
    t.equal(await status(s, await signedIn(s, 'admin'), '/admin/x'), 200, 'admins group')
    t.equal(await status(s, await signedIn(s, 'ops'), '/admin/x'), 200, 'listed email, case-insensitive')
    const bob = await signedIn(s, 'bob')
    const res = await bob.fetch(`${s.url}/admin/x`, { headers: api })
    t.equal(res.status, 403, 'neither rule admits bob')
    t.same(res.json(), { error: 'forbidden' })
    t.equal(await status(s, bob, '/other'), 200, 'the global rule admits bob elsewhere')
    const page = await bob.fetch(`${s.url}/admin/x`, { headers: { accept: 'text/html' } })
    t.equal(page.status, 403)
    t.match(page.body, /signed in as <strong>bob<\/strong>/, 'the page says who is signed in')
    t.match(page.body, /action="\/auth\/logout"/, 'and offers to sign out')
    t.equal(page.headers.get('x-frame-options'), 'DENY')
    t.equal(s.upstream.seen.filter((r) => r.url === '/admin/x' && r.headers['x-forwarded-user'] === 'bob').length, 0, 'nothing reached the upstream for bob')
  })

  t.test('nested claim paths and subjects', async (t) => {
    t.equal(await status(s, await signedIn(s, 'kc-admin'), '/kc/x'), 200, 'realm_access.roles has kc-admin')
    t.equal(await status(s, await signedIn(s, 'kc-user'), '/kc/x'), 403, 'realm_access.roles lacks kc-admin')
    t.equal(await status(s, await signedIn(s, 'kc-eng-admin'), '/eng/x'), 200, 'subject and claim both match')
    t.equal(await status(s, await signedIn(s, 'kc-sales-admin'), '/eng/x'), 403, 'subject listed? no; department? no')
  })

  t.test('groups as one string; optional routes refuse a signed-in user no rule admits', async (t) => {
    const g = await signedIn(s, 'strgroups-one')
    t.equal(await status(s, g, '/greek/x'), 200, '"alpha beta,gamma" holds beta')
    t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-groups'], 'alpha,beta,gamma')
    t.equal(await status(s, await signedIn(s, 'bob'), '/greek/x'), 403)
    t.equal((await fetch(`${s.url}/greek/x`, { headers: api })).status, 200, 'anonymous still passes an optional route')
    t.equal(await status(s, await signedIn(s, 'bob'), '/public/x'), 200, 'auth: none ignores rules')
  })

  t.test('an unverified email never matches an email rule', async (t) => {
    t.equal(await status(s, await signedIn(s, 'unverified-carl'), '/x'), 403)
  })

  t.test('mapped headers reach the upstream; client-sent copies never do', async (t) => {
    const kc = await signedIn(s, 'kc-eng-admin')
    const res = await kc.fetch(`${s.url}/x`, { headers: { ...api, 'x-roles': 'forged', 'X_Dept': 'forged', 'x-forwarded-user': 'root' } })
    t.equal(res.status, 200)
    const seen = s.upstream.seen.at(-1)!
    t.match(seen.headers['x-roles'], /^realm-role-00,realm-role-01,.*,kc-admin$/, 'roles joined with commas')
    t.equal(seen.headers['x-dept'], 'eng')
    t.equal(seen.headers['x-forwarded-user'], 'kc-eng-admin')
    t.notOk(Object.keys(seen.headers).includes('x_dept'), 'the underscore spelling is stripped too')
    const anon = await fetch(`${s.url}/public/x`, { headers: { 'x-roles': 'forged' } })
    t.equal(anon.status, 200)
    t.equal(s.upstream.seen.at(-1)!.headers['x-roles'], undefined, 'stripped on auth: none routes as well')
  })

  t.test('a Keycloak-sized token with 50 roles keeps the session cookie small', async (t) => {
    const kc = await signedIn(s, 'kc-admin')
    const cookie = kc.cookies(s.url).get('sg')!
    t.comment(`session cookie with 50 realm roles kept for rules and headers: ${cookie.length} bytes`)
    t.ok(cookie.length < 3800, `one cookie, no chunks (${cookie.length} bytes)`)
    t.equal(kc.cookies(s.url).get('sg.0'), undefined)
  })

  t.test('WebSocket upgrades get 403 from the rules', async (t) => {
    const bob = await signedIn(s, 'bob')
    const code = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${s.url.replace('http', 'ws')}/admin/live`, { headers: { cookie: bob.cookieHeader(s.url), origin: s.url } })
      ws.once('unexpected-response', (_req, res: IncomingMessage) => resolve(res.statusCode ?? 0))
      ws.once('open', () => { ws.close(); resolve(101) })
      ws.once('error', reject)
    })
    t.equal(code, 403)
  })

  t.test('metrics and logs', async (t) => {
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text()
    t.match(metrics, /sessiongate_authz_decisions_total\{route="\/admin",result="denied"\} [1-9]/)
    t.match(metrics, /sessiongate_authz_decisions_total\{route="\/admin",result="allowed"\} [1-9]/)
    const denials = s.logs.filter((l) => l.includes('access denied by authorize rules'))
    t.ok(denials.length > 0, 'one line per denial')
    t.ok(denials.every((l) => l.includes('"route":') && l.includes('"rules":')), 'with the route and the rule count')
    t.ok(denials.every((l) => !l.includes('realm-role') && !l.includes('example.com') && !l.includes('staff')), 'never the claims')
  })
})

t.test('identity.user maps X-Forwarded-User to another claim', async (t) => {
  const s = await startStack(t, { config: { identity: { user: 'email' } } })
  const b = await signedIn(s, 'dora')
  t.equal(await status(s, b, '/x'), 200)
  t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], 'dora@example.com')
})
