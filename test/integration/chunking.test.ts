/**
 * A session too large for one cookie (150 groups) is split into numbered chunks, joined back on every
 * request, never forwarded upstream, and a missing chunk means no session.
 */
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'

t.test('a large session travels in chunks', async (t) => {
  const s = await startStack(t)
  const b = new Browser()
  const res = await login(b, s.url, 'many-groups-ann', { stopAtCallback: true })
  const chunks = res.setCookies.filter((c) => /^sg\.\d=/.test(c))
  t.ok(chunks.length >= 2, `${chunks.length} chunks`)
  t.notOk(res.setCookies.some((c) => c.startsWith('sg=') && !c.startsWith('sg=;')), 'no unchunked sg cookie with a value')
  for (const c of chunks) t.ok(c.split(';')[0]!.length <= 4096, 'each chunk within 4 KB')
  await b.go(new URL(res.headers.get('location')!, res.url).href)
  const header = b.cookieHeader(s.url)
  t.ok(header.length <= 7168, `the whole Cookie header (${header.length} bytes) stays well under the 8 KB line of the proxies in front`)

  const api = await b.fetch(`${s.url}/api/who`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 200)
  const seen = s.upstream.seen.at(-1)!
  t.equal(seen.headers['x-forwarded-user'], 'many-groups-ann')
  t.equal((seen.headers['x-forwarded-groups'] as string).split(',').length, 150, 'all groups forwarded')
  t.notOk(seen.headers.cookie, 'no chunk reached the upstream')

  // Drop the middle chunk: the cookie is refused, not half-read; the device credential mints a new one
  const device = b.cookies(s.url).get('sg-device')!
  b.cookies(s.url).delete('sg.1')
  const renewed = await b.fetch(`${s.url}/api/who`, { headers: { accept: 'application/json' } })
  t.equal(renewed.status, 200, 'renewed from the device credential')
  t.ok(renewed.setCookies.some((c) => /^sg\.1=./.test(c)), 'with fresh chunks')
  t.not(b.cookies(s.url).get('sg-device'), device, 'and a rotated device credential')
  // Without a device credential a missing chunk means no session
  b.cookies(s.url).delete('sg-device')
  b.cookies(s.url).delete('sg.1')
  const broken = await b.fetch(`${s.url}/api/who`, { headers: { accept: 'application/json' } })
  t.equal(broken.status, 401)
})

t.test('a session too large for the cookie chunks is refused with a reason, not a stack trace', async (t) => {
  const s = await startStack(t)
  const res = await login(new Browser(), s.url, 'huge-groups-bob', { stopAtCallback: true })
  t.equal(res.status, 500)
  t.same(res.json(), { error: 'session_too_large' })
  t.notOk(res.setCookies.some((c) => /^sg(\.\d)?=./.test(c)), 'no partial session cookie')
  t.match(s.logs.join(''), /trim the groups claim/)
  t.same(await s.gateway.ctx.store.listSessions('huge-groups-bob'), [], 'no device left behind that no browser holds')
})
