/**
 * Sliding expiry of the session cookie (README section "Configuration", session.ttl / absoluteTtl): only the
 * gateway's clock moves (deps.now); the IdP keeps real time.
 */
import t, { type Test } from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { clears, sessionOf, setCookieLine, setCookieValue } from '../helpers/flow.js'
import { startStack, type Stack } from '../helpers/stack.js'

const TTL = 300
const ABSOLUTE = 600

/** expiresAt of /auth/session, in epoch seconds. */
async function expiresAt (b: Browser, s: Stack): Promise<number> {
  return Date.parse((await sessionOf(b, s.url)).expiresAt) / 1000
}

/** One API request through the gateway; returns the Set-Cookie lines after checking the status. */
async function hit (t: Test, s: Stack, b: Browser, status: number, what: string, headers: Record<string, string> = {}): Promise<string[]> {
  const res = await b.fetch(`${s.url}/api/x`, { headers: { accept: 'application/json', ...headers } })
  t.equal(res.status, status, what)
  return res.setCookies
}

t.test('session cookie slides past half its life, never past absoluteTtl', async (t) => {
  const t0 = Math.floor(Date.now() / 1000)
  let clock = t0
  const s = await startStack(t, {
    config: { session: { ttl: '5m', absoluteTtl: '10m', keys: ['${SG_SESSION_KEY}'] } },
    deps: { now: () => clock }
  })
  const b = new Browser()
  await login(b, s.url, 'alice')
  const jar = b.cookies(s.url)
  const first = jar.get('sg')!
  t.equal(await expiresAt(b, s), t0 + TTL, 'a new cookie lives ttl')

  clock = t0 + 60
  let lines = await hit(t, s, b, 200, '+1 min: live')
  t.equal(setCookieLine(lines, 'sg'), undefined, '+1 min: not past half, no new cookie')
  t.equal(jar.get('sg'), first)

  clock = t0 + 180
  lines = await hit(t, s, b, 200, '+3 min: live')
  const slid = setCookieValue(lines, 'sg')
  t.ok(slid, '+3 min: past half, a new sg cookie')
  t.not(slid, first)
  t.match(setCookieLine(lines, 'sg'), new RegExp(`Max-Age=${TTL}\\b`))
  t.match(setCookieLine(lines, 'sg'), /HttpOnly/i)
  t.equal(await expiresAt(b, s), t0 + 180 + TTL, 'expiry moved to now + ttl')
  await hit(t, s, new Browser(), 200, 'the new cookie alone works', { cookie: `sg=${slid!}` })

  clock = t0 + 360
  lines = await hit(t, s, b, 200, '+6 min: live (the first cookie would have expired)')
  t.match(setCookieLine(lines, 'sg'), new RegExp(`Max-Age=${ABSOLUTE - 360}\\b`), 'slid, capped at the absolute end')
  t.equal(await expiresAt(b, s), t0 + ABSOLUTE)
  // a separate browser: the answer clears the cookie, which must not touch b's jar
  await hit(t, s, new Browser(), 401, 'the first cookie alone is expired by now', { cookie: `sg=${first}` })

  clock = t0 + 540
  lines = await hit(t, s, b, 200, '+9 min: live')
  t.equal(setCookieLine(lines, 'sg'), undefined, 'at the absolute cap: no new cookie')
  t.ok(await expiresAt(b, s) <= t0 + ABSOLUTE, 'never past login + absoluteTtl')

  clock = t0 + 660
  lines = await hit(t, s, b, 401, '+11 min: refused (past absoluteTtl)')
  t.ok(clears(lines, 'sg'), 'and its cookie cleared')
  t.equal((await b.fetch(`${s.url}/page`, { headers: { accept: 'text/html' } })).status, 302, 'HTML: to login')
  t.equal((await b.fetch(`${s.url}/auth/session`)).status, 401)
})

t.test('a cookie left idle past ttl is expired', async (t) => {
  const t0 = Math.floor(Date.now() / 1000)
  let clock = t0
  const s = await startStack(t, { deps: { now: () => clock } })
  const b = new Browser()
  await login(b, s.url, 'bob')
  const only = `sg=${b.cookies(s.url).get('sg')!}`
  clock = t0 + TTL - 1
  await hit(t, s, b, 200, 'one second before ttl: live', { cookie: only })
  clock = t0 + TTL
  const lines = await hit(t, s, b, 401, 'at ttl: expired', { cookie: only })
  t.ok(clears(lines, 'sg'))
})
