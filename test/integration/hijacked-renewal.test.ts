/**
 * Replies the gateway hands over (an event stream, a WebSocket 101) still carry the cookies of a
 * renewal made for them: otherwise the rotated device credential never reaches the browser, and its
 * next request after the grace window counts as reuse and signs the device out. And WebSocket upgrades
 * from foreign origins are refused.
 */
import t from 'tap'
import WebSocket from 'ws'
import type { IncomingMessage } from 'node:http'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const CONFIG = { session: { ttl: '1s', absoluteTtl: '1h', keys: ['${SG_SESSION_KEY}'] }, rememberMe: { ttl: '1h', rotationGrace: '1s' } }

/** Opens a WebSocket with the browser's cookies; resolves with the 101's Set-Cookie lines once open. */
async function openWs (s: Stack, b: Browser, headers: Record<string, string | undefined> = {}): Promise<{ ws: WebSocket, setCookies: string[] }> {
  const all = Object.entries({ cookie: b.cookieHeader(s.url), origin: s.url, ...headers }).filter((e): e is [string, string] => e[1] !== undefined)
  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/live`, { headers: Object.fromEntries(all) })
  const setCookies = await new Promise<string[]>((resolve, reject) => {
    ws.once('upgrade', (res: IncomingMessage) => resolve([res.headers['set-cookie'] ?? []].flat()))
    ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`upgrade answered ${res.statusCode}`)))
    ws.once('error', reject)
  })
  await new Promise((resolve) => ws.once('message', resolve))
  return { ws, setCookies }
}

async function alive (s: Stack, b: Browser): Promise<number> {
  return (await b.fetch(`${s.url}/x`, { headers: { accept: 'application/json' } })).status
}

t.test('a renewal on a WebSocket upgrade sends the rotated device credential in the 101', async (t) => {
  const s = await startStack(t, { config: CONFIG })
  const b = new Browser()
  await login(b, s.url, 'wendy', { remember: true })
  const before = b.cookies(s.url).get('sg-device')
  await sleep(1200) // the session cookie expired: the upgrade renews from the device credential
  const { ws, setCookies } = await openWs(s, b)
  t.ok(setCookies.some((c) => c.startsWith('sg-device=') && !c.startsWith(`sg-device=${before};`)), 'the 101 carries the rotated device credential')
  t.ok(setCookies.some((c) => c.startsWith('sg=') && !c.startsWith('sg=;')), 'and a new session cookie')
  b.absorb(s.url, setCookies)
  ws.close()
  await sleep(2300) // past the session cookie's life and the rotation grace window
  t.equal(await alive(s, b), 200, 'the next request renews with the credential from the 101: no reuse')
  t.equal(s.logs.filter((l) => l.includes('reuse detected')).length, 0, 'no reuse was detected')
})

t.test('a renewal on /auth/events sends the rotated device credential in the stream\'s head', async (t) => {
  const s = await startStack(t, { config: CONFIG })
  const b = new Browser()
  await login(b, s.url, 'evan', { remember: true })
  await sleep(1200)
  const ac = new AbortController()
  const res = await fetch(`${s.url}/auth/events`, { headers: { cookie: b.cookieHeader(s.url) }, signal: ac.signal })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const lines = res.headers.getSetCookie()
  t.ok(lines.some((c) => c.startsWith('sg-device=')), 'the stream\'s head carries the rotated device credential')
  b.absorb(s.url, lines)
  ac.abort()
  await sleep(2300)
  t.equal(await alive(s, b), 200, 'the next request renews with it')
  t.equal(s.logs.filter((l) => l.includes('reuse detected')).length, 0, 'no reuse was detected')
})

t.test('WebSocket upgrades: the public origin and configured origins pass, others get 403', async (t) => {
  const s = await startStack(t, { config: { websocket: { allowedOrigins: ['https://console.example.com'] } } })
  const b = new Browser()
  await login(b, s.url, 'olga')
  const own = await openWs(s, b)
  own.ws.close()
  const listed = await openWs(s, b, { origin: 'https://console.example.com' })
  listed.ws.close()
  const port = Number(new URL(s.url).port)
  for (const origin of [`http://127.0.0.1:${port + 1}`, 'https://evil.example', 'null', '', `http://localhost:${port}`, 'https://console.example.com.evil.example']) {
    const before = s.upstream.wsSeen.length
    await t.rejects(openWs(s, b, { origin }), /upgrade answered 403/, origin)
    t.equal(s.upstream.wsSeen.length, before, `${origin}: nothing reached the upstream`)
  }
  // Browsers always send Origin on an upgrade; a client without one (a CLI, a server) is not a browser
  // that a foreign page could drive, so it is judged by its cookies alone.
  const cli = await openWs(s, b, { origin: undefined })
  cli.ws.close()
  t.equal(s.upstream.wsSeen.at(-1)?.['x-forwarded-user'], 'olga', 'an upgrade without Origin passes')
})
