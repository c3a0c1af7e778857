/**
 * What an operator reads on /metrics besides the contract's counters: store, IdP and upstream latency
 * histograms, open WebSockets and event streams, login outcomes, and the `route` label as the configured
 * prefix. And X-Request-ID: kept from a trusted proxy (when well-formed), else generated; returned,
 * logged as reqId and forwarded upstream.
 */
import t from 'tap'
import { WebSocket } from 'ws'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'

/** The value of one sample (`name{labels}`, labels in any order), or undefined when absent. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3])
  }
  return undefined
}

async function metrics (s: Stack): Promise<string> {
  return await (await fetch(`${s.adminUrl}/metrics`)).text()
}

/** Polls /metrics until `pred` holds (a gauge follows a close asynchronously); fails after 10 s. */
async function metricsUntil (s: Stack, pred: (text: string) => boolean): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const text = await metrics(s)
    if (pred(text)) return text
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error('metrics did not reach the expected state')
}

/** A fresh login transaction cookie in `b` (GET /auth/login, not followed to the IdP). */
async function startLogin (b: Browser, s: Stack): Promise<void> {
  const res = await b.fetch(`${s.url}/auth/login`)
  if (res.status !== 302) throw new Error(`/auth/login answered ${res.status}`)
}

t.test('histograms, connection gauges, login outcomes and the route label on /metrics', async (t) => {
  const s = await startStack(t, {
    routes: [
      { prefix: '/', upstream: '{upstream}', auth: 'required' },
      { prefix: '/api', upstream: '{upstream}', auth: 'required' }
    ]
  })
  const b = new Browser()
  await login(b, s.url, 'alice')
  t.equal((await b.fetch(`${s.url}/api/items/7`)).status, 200)
  t.equal((await b.fetch(`${s.url}/reports`)).status, 200)

  // failed callbacks, one per outcome
  const other = new Browser()
  t.equal((await other.fetch(`${s.url}/auth/callback?code=c&state=s`)).status, 400, 'no login transaction')
  await startLogin(other, s)
  t.equal((await other.fetch(`${s.url}/auth/callback?code=c&state=forged`)).status, 400, 'state mismatch')
  await startLogin(other, s)
  t.equal((await other.fetch(`${s.url}/auth/callback?error=access_denied`)).status, 400, 'the IdP refused')

  // one event stream and one WebSocket, held open
  const ac = new AbortController()
  t.teardown(() => ac.abort())
  const events = await fetch(`${s.url}/auth/events`, { headers: { cookie: b.cookieHeader(s.url) }, signal: ac.signal })
  t.equal(events.status, 200)
  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/api/live`, { headers: { cookie: b.cookieHeader(s.url), origin: s.url } })
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once('message', resolve); ws.once('error', reject) })

  const text = await metricsUntil(s, (x) => sample(x, 'sessiongate_open_connections', { kind: 'websocket' }) === 1)
  t.equal(sample(text, 'sessiongate_open_connections', { kind: 'websocket' }), 1, 'one open WebSocket')
  t.equal(sample(text, 'sessiongate_open_connections', { kind: 'event_stream' }), 1, 'one open event stream')

  t.equal(sample(text, 'sessiongate_logins_total', { result: 'success' }), 1, 'logins: success')
  t.equal(sample(text, 'sessiongate_logins_total', { result: 'expired' }), 1, 'logins: expired (no transaction)')
  t.equal(sample(text, 'sessiongate_logins_total', { result: 'state_mismatch' }), 1, 'logins: state_mismatch')
  t.equal(sample(text, 'sessiongate_logins_total', { result: 'idp_error' }), 1, 'logins: idp_error')
  t.equal(sample(text, 'sessiongate_logins_total', { result: 'replay' }), 0, 'outcomes not seen yet are exposed as 0')

  for (const op of ['createSession', 'claimOnce', 'wasClaimed']) {
    t.ok((sample(text, 'sessiongate_store_duration_seconds_count', { op }) ?? 0) >= 1, `store op ${op} timed`)
  }
  for (const op of ['discovery', 'code_exchange', 'userinfo']) {
    t.ok((sample(text, 'sessiongate_idp_duration_seconds_count', { op }) ?? 0) >= 1, `IdP op ${op} timed`)
  }
  t.ok((sample(text, 'sessiongate_idp_duration_seconds_bucket', { op: 'code_exchange', le: '+Inf' }) ?? 0) >= 1, 'a histogram with buckets')
  t.equal(sample(text, 'sessiongate_upstream_duration_seconds_count', { route: '/api' }), 1, 'upstream timed for /api')
  t.ok((sample(text, 'sessiongate_upstream_duration_seconds_count', { route: '/' }) ?? 0) >= 2, 'and for / (the sign-in landing, /reports)')

  // the route label: configured prefixes, the gateway's own paths, never Fastify's wildcard pattern
  t.equal(sample(text, 'sessiongate_http_requests_total', { route: '/api', method: 'GET', status: '200' }), 1, 'route="/api"')
  t.ok((sample(text, 'sessiongate_http_requests_total', { route: '/', method: 'GET', status: '200' }) ?? 0) >= 2, 'route="/"')
  t.equal(sample(text, 'sessiongate_http_requests_total', { route: '/auth/callback', method: 'GET', status: '400' }), 3, 'route="/auth/callback"')
  t.notOk(/route="[^"]*\/\*"/.test(text.split('\n').filter((l) => !l.includes('route="/auth/*"')).join('\n')), 'no wildcard pattern as a route label')

  ws.close()
  ac.abort()
  const after = await metricsUntil(s, (x) => sample(x, 'sessiongate_open_connections', { kind: 'websocket' }) === 0 && sample(x, 'sessiongate_open_connections', { kind: 'event_stream' }) === 0)
  t.equal(sample(after, 'sessiongate_open_connections', { kind: 'websocket' }), 0, 'the WebSocket gauge follows the close')
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

t.test('X-Request-ID without trustProxy: replaced, returned, logged and forwarded', async (t) => {
  const s = await startStack(t, { routes: [{ prefix: '/open', upstream: '{upstream}', auth: 'none' }] })
  const res = await fetch(`${s.url}/open/x`, { headers: { 'x-request-id': 'client-chosen-id' } })
  t.equal(res.status, 200)
  const id = res.headers.get('x-request-id') ?? ''
  t.match(id, UUID, 'a generated id is returned')
  t.equal(s.upstream.seen.at(-1)!.headers['x-request-id'], id, 'the upstream gets the same id, not the client\'s')
  t.ok(s.logs.some((l) => JSON.parse(l).reqId === id), 'the log lines carry it as reqId')
  t.notOk(s.logs.some((l) => l.includes('client-chosen-id')), 'the client\'s id is nowhere')
  const gw = await fetch(`${s.url}/auth/session`, { headers: { 'x-request-id': 'client-chosen-id' } })
  t.match(gw.headers.get('x-request-id') ?? '', UUID, 'the gateway\'s own endpoints return one too')
})

t.test('X-Request-ID behind a trusted proxy: kept when well-formed', async (t) => {
  const s = await startStack(t, { config: { trustProxy: true }, routes: [{ prefix: '/open', upstream: '{upstream}', auth: 'none' }] })
  const kept = 'edge-4f1c:req=42;a/b'
  const res = await fetch(`${s.url}/open/x`, { headers: { 'x-request-id': kept } })
  t.equal(res.headers.get('x-request-id'), kept, 'returned as received')
  t.equal(s.upstream.seen.at(-1)!.headers['x-request-id'], kept, 'forwarded as received')
  t.ok(s.logs.some((l) => JSON.parse(l).reqId === kept), 'logged as reqId')
  for (const bad of ['has space', 'x'.repeat(129), 'naïve']) {
    const r = await fetch(`${s.url}/open/x`, { headers: { 'x-request-id': bad } })
    const id = r.headers.get('x-request-id') ?? ''
    t.match(id, UUID, `${JSON.stringify(bad.slice(0, 20))} replaced`)
    t.equal(s.upstream.seen.at(-1)!.headers['x-request-id'], id)
  }
  const events = await fetch(`${s.url}/auth/events`, { headers: { 'x-request-id': kept } })
  t.equal(events.headers.get('x-request-id'), kept, 'also on an error answer of the events endpoint')
  const upstreamSays = s.upstream
  upstreamSays.respondWith = { 'x-request-id': 'upstream-own' }
  const r = await fetch(`${s.url}/open/y`, { headers: { 'x-request-id': kept } })
  t.equal(r.headers.get('x-request-id'), kept, 'the gateway\'s id wins over one the upstream sets')
})
