/**
 * OpenTelemetry traces, exported over OTLP/HTTP to a receiver in this process: a real sign-in at the
 * real IdP and a proxied request yield the request, gate, store, IdP and upstream spans, nested, and
 * the upstream gets the W3C traceparent of its span. A caller's traceparent is continued only behind a
 * trusted proxy. Without `tracing`, no OpenTelemetry SDK module is loaded.
 */
import t from 'tap'
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { Browser, login } from '../helpers/browser.js'
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js'
import { startRedis } from '../helpers/redis-server.js'
import { startStack } from '../helpers/stack.js'
import { freePort } from '../helpers/ports.js'

const SDK_MODULES = /@opentelemetry[/\\](sdk-trace|sdk-trace-base|exporter-trace-otlp-http|otlp-exporter-base)[/\\]/
const sdkLoaded = (): string[] => Object.keys(createRequire(import.meta.url).cache).filter((p) => SDK_MODULES.test(p))

const SERVER = 2
const CLIENT = 3

/** The spans of one trace under `parent` (direct children). */
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] =>
  spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId)

/** A random W3C traceparent, as a tracing proxy in front would send. */
function foreignTraceparent (): { header: string, traceId: string, parentId: string } {
  const traceId = randomBytes(16).toString('hex')
  const parentId = randomBytes(8).toString('hex')
  return { header: `00-${traceId}-${parentId}-01`, traceId, parentId }
}

t.test('tracing off: the OpenTelemetry SDK is never loaded', async (t) => {
  const s = await startStack(t)
  const b = new Browser()
  await login(b, s.url, 'alice')
  t.equal((await b.fetch(`${s.url}/x`)).status, 200)
  t.same(sdkLoaded(), [], 'no SDK module in the module cache')
})

t.test('a sign-in and a proxied request: request, gate, store, IdP and upstream spans over OTLP/HTTP', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const otlp = await startOtlpReceiver()
  const s = await startStack(t, { redisUrl: redis.url, config: { tracing: { otlpEndpoint: otlp.url, serviceName: 'sg-test' } } })
  // after the stack's own teardown (tap runs them in order): the last spans are flushed on close
  t.teardown(() => otlp.close())
  t.ok(sdkLoaded().length > 0, 'the SDK is loaded once tracing is configured')

  const b = new Browser()
  await login(b, s.url, 'alice')
  const foreign = foreignTraceparent()
  const res = await b.fetch(`${s.url}/reports/q1`, { headers: { traceparent: foreign.header } })
  t.equal(res.status, 200)
  const seen = s.upstream.seen.at(-1)!
  t.equal(seen.url, '/reports/q1')

  const spans = await otlp.waitFor((all) => all.some((x) => x.name === 'upstream GET /' && all.some((p) => p.spanId === x.parentSpanId && p.attributes['url.path'] === '/reports/q1')) &&
    all.some((x) => x.name === 'idp code_exchange') && all.some((x) => x.name === 'idp discovery'))
  t.same(otlp.rejected, [], 'every export was valid OTLP/JSON on /v1/traces')
  t.ok(spans.every((x) => x.service === 'sg-test'), 'service.name from tracing.serviceName')

  // the proxied request
  const server = spans.find((x) => x.kind === SERVER && x.attributes['url.path'] === '/reports/q1')!
  t.equal(server.name, 'GET /', 'the server span is named by the configured route prefix')
  t.equal(server.attributes['http.route'], '/')
  t.equal(server.attributes['http.response.status_code'], 200)
  t.equal(server.parentSpanId, '', 'a client traceparent is not continued without trustProxy')
  t.not(server.traceId, foreign.traceId)
  const kids = childrenOf(spans, server)
  const gate = kids.find((x) => x.name === 'gate')
  t.ok(gate, 'gate span under the request')
  const check = gate === undefined ? undefined : childrenOf(spans, gate).find((x) => x.name === 'store check')
  t.ok(check, 'the store check under the gate')
  t.equal(check?.kind, CLIENT)
  t.equal(check?.attributes['db.system.name'], 'redis')
  const upstream = kids.find((x) => x.name === 'upstream GET /')
  t.ok(upstream, 'upstream span under the request')
  t.equal(upstream?.kind, CLIENT)
  t.equal(upstream?.attributes['http.response.status_code'], 200)
  t.equal(seen.headers.traceparent, `00-${server.traceId}-${upstream?.spanId}-01`, 'the upstream got the traceparent of its span')
  t.equal(seen.headers['x-request-id'], server.attributes['sessiongate.request_id'], 'the request id is on the span and upstream')

  // the sign-in: IdP and store calls under the callback's request span
  const callback = spans.find((x) => x.kind === SERVER && x.name === 'GET /auth/callback')!
  t.ok(callback, 'callback request span')
  const names = childrenOf(spans, callback).map((x) => x.name)
  for (const n of ['idp code_exchange', 'idp userinfo', 'store wasClaimed', 'store claimOnce', 'store createSession']) t.ok(names.includes(n), `${n} under the callback`)
  const exchange = childrenOf(spans, callback).find((x) => x.name === 'idp code_exchange')
  t.equal(exchange?.kind, CLIENT)
  t.equal(exchange?.attributes['http.response.status_code'], 200)
  const login1 = spans.find((x) => x.kind === SERVER && x.name === 'GET /auth/login')
  t.ok(login1, 'login request span')
  // discovery runs at start-up, outside any request: a trace of its own
  t.equal(spans.find((x) => x.name === 'idp discovery')?.parentSpanId, '', 'discovery is a root span')
  t.notOk(JSON.stringify(spans).includes('code='), 'no query string (authorization code) in any span')
})

t.test('behind a trusted proxy the caller\'s traceparent is continued', async (t) => {
  const otlp = await startOtlpReceiver()
  const s = await startStack(t, { config: { trustProxy: true, tracing: { otlpEndpoint: `${otlp.url}/v1/traces` } }, routes: [{ prefix: '/open', upstream: '{upstream}', auth: 'none' }] })
  t.teardown(() => otlp.close())
  const foreign = foreignTraceparent()
  const res = await fetch(`${s.url}/open/x`, { headers: { traceparent: foreign.header } })
  t.equal(res.status, 200)
  const spans = await otlp.waitFor((all) => all.some((x) => x.name === 'upstream GET /open'))
  const server = spans.find((x) => x.name === 'GET /open')!
  t.equal(server.traceId, foreign.traceId, 'same trace')
  t.equal(server.parentSpanId, foreign.parentId, 'the caller\'s span is the parent')
  t.equal(server.service, 'sessiongate', 'default service.name')
  const upstream = spans.find((x) => x.name === 'upstream GET /open')!
  t.equal(s.upstream.seen.at(-1)!.headers.traceparent, `00-${foreign.traceId}-${upstream.spanId}-01`)
})

t.test('a failing upstream ends its span as an error', async (t) => {
  const otlp = await startOtlpReceiver()
  const s = await startStack(t, { config: { tracing: { otlpEndpoint: otlp.url } }, routes: [{ prefix: '/down', upstream: 'http://127.0.0.1:9', auth: 'none' }] })
  t.teardown(() => otlp.close())
  const res = await fetch(`${s.url}/down/x`)
  t.ok(res.status >= 500, `answered ${res.status}`)
  const spans = await otlp.waitFor((all) => all.some((x) => x.name === 'GET /down'))
  const upstream = spans.find((x) => x.name === 'upstream GET /down')
  t.ok(upstream, 'upstream span')
  t.equal(upstream?.status, 2, 'error status')
  t.equal(spans.find((x) => x.name === 'GET /down')?.status, 2, 'the request span too')
})

t.test('an unreachable collector is reported in the log, and requests are unaffected', async (t) => {
  const port = await freePort()
  const s = await startStack(t, { config: { tracing: { otlpEndpoint: `http://127.0.0.1:${port}` } }, routes: [{ prefix: '/open', upstream: '{upstream}', auth: 'none' }] })
  t.equal((await fetch(`${s.url}/open/x`)).status, 200)
  let line: { level: number, msg: string, reason?: string } | undefined
  for (let i = 0; i < 300 && line === undefined; i++) {
    line = s.logs.map((l) => JSON.parse(l) as { level: number, msg: string, reason?: string }).find((l) => l.msg === 'trace export failed')
    if (line === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(line, 'logged')
  t.equal(line?.level, 40, 'at warn')
  t.equal(s.logs.filter((l) => l.includes('trace export failed')).length, 1, 'once')
})
