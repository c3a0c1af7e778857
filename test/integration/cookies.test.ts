/**
 * Cookie hygiene (README section "Cookies"): the gateway's cookies never reach an upstream and an upstream
 * cannot set them; https names carry `__Host-` and `Secure`; a tampered session cookie is no session.
 */
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import cookie from '@fastify/cookie'
import { CookieJar } from '../../src/http/cookies.js'
import { Browser, login } from '../helpers/browser.js'
import { clears, RecordingBrowser, setCookieLine, setCookieValue } from '../helpers/flow.js'
import { httpCallbackOidc } from '../helpers/https-oidc.js'
import { startStack, type Stack } from '../helpers/stack.js'

const ROUTES = [
  { prefix: '/', upstream: '{upstream}', auth: 'required' },
  { prefix: '/public', upstream: '{upstream}', auth: 'none' }
]

/** Flips one character in the middle of the ciphertext part of a sealed value (`v1.kid.iv.ct.tag`). */
function tamper (sealed: string): string {
  const parts = sealed.split('.')
  const ct = parts[3]!
  const i = Math.floor(ct.length / 2)
  parts[3] = ct.slice(0, i) + (ct[i] === 'A' ? 'B' : 'A') + ct.slice(i + 1)
  return parts.join('.')
}

/** GET as `b`; returns the Cookie header the upstream received. */
async function upstreamCookie (t: Test, s: Stack, b: Browser, path: string): Promise<string | undefined> {
  const before = s.upstream.seen.length
  const res = await b.fetch(`${s.url}${path}`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 200, `${path} reached the upstream`)
  t.equal(s.upstream.seen.length, before + 1)
  const c = s.upstream.seen.at(-1)!.headers.cookie
  return c === undefined ? undefined : String(c)
}

t.test('http publicUrl: the gateway cookies stay between browser and gateway', async (t) => {
  const s = await startStack(t, { routes: ROUTES })
  const b = new Browser()
  await login(b, s.url, 'alice')
  const jar = b.cookies(s.url)
  const session = jar.get('sg')!
  t.ok(session)
  for (const [k, v] of [['app', '1'], ['theme', 'dark'], ['sg-tx', 'junk'], ['sg.0', 'junk0'], ['sg.1', 'junk1'], ['sg-other', '5']] as const) jar.set(k, v)

  t.test('upstream Cookie keeps the app cookies only', async (t) => {
    t.equal(await upstreamCookie(t, s, b, '/page'), 'app=1; theme=dark; sg-other=5')
    t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], 'alice', 'the session still worked')
  })

  t.test('on an auth: none route too; only gateway cookies: no Cookie header at all', async (t) => {
    t.equal(await upstreamCookie(t, s, b, '/public/x'), 'app=1; theme=dark; sg-other=5')
    const onlyOwn = new Browser()
    for (const name of ['sg', 'sg-device', 'sg-tx', 'sg.0', 'sg.1']) onlyOwn.cookies(s.url).set(name, 'v')
    t.equal(await upstreamCookie(t, s, onlyOwn, '/public/y'), undefined)
  })

  t.test('upstream Set-Cookie for a gateway name is dropped, others pass', async (t) => {
    s.upstream.respondWith = { 'set-cookie': ['sg=evil; Path=/', 'sg-device=evil; Path=/', 'sg.0=evil; Path=/', 'sg-tx=evil', 'app=2; Path=/'] }
    t.teardown(() => { s.upstream.respondWith = {} })
    const res = await b.fetch(`${s.url}/page`, { headers: { accept: 'application/json' } })
    t.equal(res.status, 200)
    t.equal(setCookieValue(res.setCookies, 'app'), '2')
    for (const name of ['sg', 'sg-device', 'sg.0', 'sg-tx']) t.equal(setCookieLine(res.setCookies, name), undefined, `no Set-Cookie for ${name}`)
    t.equal(jar.get('sg'), session, 'the browser keeps its session cookie')
    const me = await b.fetch(`${s.url}/auth/session`)
    t.equal(me.status, 200)
  })
})

t.test('a tampered or foreign session cookie is no session, and is cleared', async (t) => {
  const s = await startStack(t, { routes: ROUTES })
  const b = new RecordingBrowser()
  await login(b, s.url, 'alice')
  const good = b.cookies(s.url).get('sg')!
  const tx = setCookieValue(b.setCookieLog, 'sg-tx')!
  t.match(tx, /^v1\./, 'captured the login transaction cookie')
  const before = s.upstream.seen.length

  const cases: Array<[string, string]> = [
    ['tampered ciphertext', tamper(good)],
    ['truncated', good.slice(0, -4)],
    ['sealed for another purpose (the login transaction)', tx],
    ['garbage', 'not-a-sealed-value']
  ]
  for (const [what, value] of cases) {
    const cookieHeader = `sg=${value}; app=1`
    const html = await b.fetch(`${s.url}/reports?x=1`, { headers: { accept: 'text/html', cookie: cookieHeader } })
    t.equal(html.status, 302, `${what}: HTML GET goes to login`)
    t.equal(html.headers.get('location'), `/auth/login?returnTo=${encodeURIComponent('/reports?x=1')}`)
    t.ok(clears(html.setCookies, 'sg'), `${what}: sg cleared (HTML)`)
    const api = await b.fetch(`${s.url}/api/data`, { headers: { accept: 'application/json', cookie: cookieHeader } })
    t.equal(api.status, 401, `${what}: API 401`)
    t.same(api.json(), { error: 'unauthenticated' })
    t.ok(clears(api.setCookies, 'sg'), `${what}: sg cleared (API)`)
    const me = await b.fetch(`${s.url}/auth/session`, { headers: { cookie: cookieHeader } })
    t.equal(me.status, 401, `${what}: /auth/session 401`)
  }
  t.equal(s.upstream.seen.length, before, 'nothing reached the upstream')
  const ok = await b.fetch(`${s.url}/api/data`, { headers: { cookie: `sg=${good}` } })
  t.equal(ok.status, 200, 'control: the untouched cookie still works')
})

t.test('https publicUrl: __Host- names, Secure, and the same hygiene', async (t) => {
  let stack: Stack | undefined
  const s = stack = await startStack(t, {
    routes: ROUTES,
    config: { publicUrl: 'https://127.0.0.1' },
    deps: { oidc: httpCallbackOidc(() => stack!) }
  })
  const b = new Browser()
  const start = await b.fetch(`${s.url}/auth/login`)
  t.equal(start.status, 302)
  const txLine = setCookieLine(start.setCookies, '__Host-sg-tx')
  t.ok(txLine, 'login transaction cookie is __Host-sg-tx')
  t.match(txLine, /; Secure/i)
  t.match(txLine, /; Path=\//)
  t.notMatch(txLine, /Domain=/i)
  t.equal(setCookieLine(start.setCookies, 'sg-tx'), undefined)

  const cb = await login(b, s.url, 'alice', { stopAtCallback: true })
  t.equal(cb.status, 302)
  for (const name of ['__Host-sg', '__Host-sg-device']) {
    const line = setCookieLine(cb.setCookies, name)
    t.ok(line, `${name} set`)
    t.match(line, /HttpOnly/i)
    t.match(line, /Secure/i)
    t.match(line, /Path=\//)
    t.match(line, /SameSite=Lax/i)
    t.notMatch(line, /Domain=/i)
  }
  t.ok(clears(cb.setCookies, '__Host-sg-tx'), 'login transaction cleared')
  t.equal(setCookieLine(cb.setCookies, 'sg'), undefined, 'no plain sg cookie')

  const jar = b.cookies(s.url)
  jar.set('app', '1')
  jar.set('__Host-sg.0', 'junk')
  jar.set('__Host-sg-tx', 'junk')
  t.equal(await upstreamCookie(t, s, b, '/page'), 'app=1')
  t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], 'alice')

  s.upstream.respondWith = { 'set-cookie': ['__Host-sg=evil; Path=/; Secure', '__Host-sg-device=evil; Path=/; Secure', '__Host-sg.1=x; Path=/; Secure', 'app=2; Path=/'] }
  const res = await b.fetch(`${s.url}/page`)
  s.upstream.respondWith = {}
  t.same(res.setCookies.map((l) => l.split('=', 1)[0]), ['app'], 'only the app cookie passes')

  const bad = await b.fetch(`${s.url}/api/x`, { headers: { cookie: `__Host-sg=${tamper(jar.get('__Host-sg')!)}` } })
  t.equal(bad.status, 401)
  const cleared = setCookieLine(bad.setCookies, '__Host-sg')!
  t.ok(clears(bad.setCookies, '__Host-sg'))
  t.match(cleared, /Secure/i, 'the clearing cookie is Secure too (else the browser ignores it)')
})

t.test('CookieJar: names, attributes, chunking and clearing', async (t) => {
  const http = new CookieJar('http://localhost:8080')
  const https = new CookieJar('https://app.example.com')
  t.same(http.names, { session: 'sg', device: 'sg-device', tx: 'sg-tx' })
  t.same(https.names, { session: '__Host-sg', device: '__Host-sg-device', tx: '__Host-sg-tx' })
  t.same(http.options(10), { path: '/', httpOnly: true, secure: false, sameSite: 'lax', maxAge: 10 })
  t.same(https.options(), { path: '/', httpOnly: true, secure: true, sameSite: 'lax' })
  t.equal(https.stripOwn('__Host-sg=a; __Host-sg.0=b; __Host-sg.12=c; __Host-sg-device=d; __Host-sg-tx=e; a=1; __Host-sg.x=2'), 'a=1; __Host-sg.x=2')
  t.equal(http.stripOwn('sg=a; sg.0=b'), undefined)
  t.same(https.filterSetCookie(['__Host-sg=x', ' __Host-sg.0=y', 'b=2']), ['b=2'])
  t.equal(https.filterSetCookie('__Host-sg-device=x'), undefined)

  const app = Fastify()
  await app.register(cookie)
  app.get('/write', async (req, reply) => { https.writeSession(req, reply, 'v'.repeat(5000), 300); return 'ok' })
  app.get('/clear', async (req, reply) => { https.clearAll(req, reply); return 'ok' })
  t.teardown(() => app.close())

  const written = await app.inject({ url: '/write', headers: { cookie: '__Host-sg=old; __Host-sg.2=stale' } })
  const lines = ([] as string[]).concat(written.headers['set-cookie'] ?? [])
  t.ok(setCookieValue(lines, '__Host-sg.0'), 'chunk 0')
  t.ok(setCookieValue(lines, '__Host-sg.1'), 'chunk 1')
  t.equal(setCookieValue(lines, '__Host-sg.0')! + setCookieValue(lines, '__Host-sg.1')!, 'v'.repeat(5000))
  t.match(setCookieLine(lines, '__Host-sg.0'), /Max-Age=300/)
  t.ok(clears(lines, '__Host-sg'), 'the plain cookie the request carried is cleared')
  t.ok(clears(lines, '__Host-sg.2'), 'a stale chunk is cleared')
  for (const l of lines) t.match(l, /Secure/i)

  const cleared = await app.inject({ url: '/clear', headers: { cookie: '__Host-sg.0=a; __Host-sg.1=b' } })
  const c = ([] as string[]).concat(cleared.headers['set-cookie'] ?? [])
  for (const name of ['__Host-sg', '__Host-sg.0', '__Host-sg.1', '__Host-sg-device']) t.ok(clears(c, name), `${name} cleared`)
})
