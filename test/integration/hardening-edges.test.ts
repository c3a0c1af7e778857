/**
 * Edges an attacker reached for: a logout CSRF through the cookie-only front-channel form, identity
 * values that upstream parsers would collapse into another user, and slow clients holding connections.
 */
import t from 'tap'
import { connect } from 'node:net'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'

const api = { accept: 'application/json' }

t.test('front-channel logout without iss/sid revokes only for a request from this site or the IdP', async (t) => {
  const s = await startStack(t)
  const b = new Browser()
  await login(b, s.url, 'fiona')
  const url = `${s.url}/auth/frontchannel-logout`
  const foreign: Array<Record<string, string>> = [
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'cross-site', referer: 'https://evil.example/page' },
    { 'sec-fetch-site': 'same-site', referer: `http://localhost:${new URL(s.url).port}/x` },
    { origin: 'null' },
    {}
  ]
  for (const headers of foreign) {
    const res = await b.fetch(url, { headers })
    t.equal(res.status, 200, `answers 200 (${JSON.stringify(headers)})`)
    t.equal((await b.fetch(`${s.url}/api/x`, { headers: api })).status, 200, `still signed in after ${JSON.stringify(headers)}`)
  }
  const fromIdp = await b.fetch(url, { headers: { 'sec-fetch-site': 'cross-site', referer: `${s.idp.issuer}/session/end/success` } })
  t.equal(fromIdp.status, 200)
  t.equal((await b.fetch(`${s.url}/api/x`, { headers: api })).status, 401, 'the IdP\'s page signs the browser out')

  const c = new Browser()
  await login(c, s.url, 'fiona')
  await c.fetch(url, { headers: { 'sec-fetch-site': 'same-origin' } })
  t.equal((await c.fetch(`${s.url}/api/x`, { headers: api })).status, 401, 'a same-origin request signs the browser out')
})

t.test('identity values with control characters or edge whitespace are refused at login', async (t) => {
  const s = await startStack(t)
  for (const user of [' admin', 'admin\t', 'admin ', 'ad\u0000min', 'x'.repeat(1025)]) {
    const b = new Browser()
    const res = await login(b, s.url, user)
    t.equal(res.status, 400, `${JSON.stringify(user.slice(0, 12))}: sign-in refused`)
    t.match(res.body, /sub/, 'the page names the claim')
    t.equal(b.cookies(s.url).get('sg'), undefined, 'no session cookie')
  }
  t.ok(s.logs.some((l) => l.includes('login refused: an identity claim cannot be forwarded safely') && l.includes('"claim":"sub"')), 'logged with the claim name')
  t.equal(s.upstream.seen.filter((r) => r.headers['x-forwarded-user'] === 'admin').length, 0, 'nobody reached the upstream as admin')
  const ok = new Browser()
  await login(ok, s.url, 'ad min')
  t.equal((await ok.fetch(`${s.url}/x`, { headers: api })).status, 200, 'inner spaces are fine')
  t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], 'ad min')
})

/** Sends the head, then one body byte every `everyMs`; resolves with when (ms) and what the server answered. */
async function trickle (url: string, path: string, everyMs: number, maxMs: number, extra = ''): Promise<{ ms: number, answer: string }> {
  const u = new URL(url)
  const started = Date.now()
  return await new Promise((resolve) => {
    let answer = ''
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(`${path.includes(' ') ? path : `POST ${path}`} HTTP/1.1\r\nHost: ${u.host}\r\n${extra.includes('Content-Type') ? '' : 'Content-Type: application/x-www-form-urlencoded\r\n'}Content-Length: 30000\r\n${extra}\r\n`)
    })
    const timer = setInterval(() => {
      if (Date.now() - started > maxMs) { clearInterval(timer); sock.destroy() } else sock.write('a')
    }, everyMs)
    sock.on('data', (c: Buffer) => { answer += c.toString() })
    sock.on('error', () => {})
    sock.on('close', () => { clearInterval(timer); resolve({ ms: Date.now() - started, answer }) })
  })
}

t.test('a body trickling in is cut at timeouts.request on both ports', async (t) => {
  const s = await startStack(t, { routes: [{ prefix: '/', upstream: '{upstream}', auth: 'none' }], config: { timeouts: { headers: '1s', request: '2s' } } })
  const auth = `Authorization: Bearer ${s.adminToken}\r\nContent-Type: application/json\r\n`
  for (const [url, path, extra] of [[s.url, '/auth/backchannel-logout', ''], [s.url, '/upload', ''], [s.adminUrl, 'DELETE /admin/users/x/sessions', auth]] as const) {
    const r = await trickle(url, path, 200, 15_000, extra)
    t.ok(r.ms < 15_000, `${path}: the server closed the connection before the client gave up (${r.ms} ms)`)
    t.match(r.answer, /^HTTP\/1\.1 408/, `${path}: 408 Request Timeout`)
  }
  t.equal(s.upstream.seen.filter((r) => r.url === '/upload').length, 0, 'the trickled body never completed upstream')
})

t.test('timeouts: config errors name the key', async (t) => {
  const { parseConfig } = await import('../../src/config/loader.js')
  const base = 'publicUrl: https://a.example\nadmin: { token: 0123456789abcdef }\noidc: { issuer: https://idp.example, clientId: x }\nsession: { keys: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] }\nroutes: [{ prefix: /, upstream: http://127.0.0.1:1 }]\n'
  t.same(parseConfig(base).timeouts, { headers: 10, request: 60 }, 'defaults')
  t.throws(() => parseConfig(`${base}timeouts: { headers: 10s, request: 5s }\n`), /timeouts\.request: must be at least timeouts\.headers/)
  t.throws(() => parseConfig(`${base}timeouts: { header: 10s }\n`), /timeouts\.header: unknown key/)
  t.throws(() => parseConfig(`${base}websocket: { allowedOrigins: [https://a.example/path] }\n`), /websocket\.allowedOrigins\[0\]: must be an origin/)
})
