/**
 * Checks the Apache + mod_auth_openidc peer (bench/lib/apache.ts) on its own, then compares it briefly
 * with the bare proxy: `node --import tsx bench/apache-check.ts`. Starts the demo IdP, the bench upstream,
 * the bare proxy and the peer; signs in once; checks that the session cookie gets the upstream's answer
 * and that no cookie (or a made-up one) is sent to the IdP; then 50 connections for 5 s against each.
 * Exits non-zero on any failure; prints "peer skipped" (exit 0) without the Debian packages.
 */
import { randomBytes } from 'node:crypto'
import { startIdp } from '../src/demo/idp.js'
import { NavigatingBrowser } from '../test/helpers/browser.js'
import { freePort } from '../test/helpers/ports.js'
import { startApachePeer, type ApachePeer } from './lib/apache.js'
import { cannon, quantile, type Sample } from './lib/load.js'
import { startChild, type Child } from './lib/procs.js'

const CONNECTIONS = 50
const SECONDS = 5

const cleanups: Array<() => Promise<unknown>> = []
async function cleanup (): Promise<void> {
  for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => { console.error('cleanup:', err) })
  cleanups.length = 0
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void cleanup().finally(() => process.exit(130)) })
}

function assert (ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`)
}

/** One GET that looks like a browser's page navigation (what the module redirects to the IdP). */
async function get (url: string, cookie?: string): Promise<{ status: number, location: string | null, body: string }> {
  const res = await new NavigatingBrowser().fetch(url, { headers: cookie !== undefined ? { cookie } : {} })
  return { status: res.status, location: res.headers.get('location'), body: res.body }
}

async function main (): Promise<number> {
  const port = await freePort()
  const clientSecret = randomBytes(16).toString('hex')
  const idp = await startIdp({
    hostname: '127.0.0.1',
    clients: [{
      client_id: 'apache',
      client_secret: clientSecret,
      redirect_uris: [`http://127.0.0.1:${port}/redirect_uri`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic'
    }]
  })
  cleanups.push(idp.close)
  const upstream = await startChild('upstream')
  cleanups.push(upstream.stop)

  const started = await startApachePeer({ issuer: idp.issuer, clientId: 'apache', clientSecret, upstreamUrl: upstream.url, port })
  if ('skipped' in started) {
    console.log(`peer skipped: ${started.skipped}`)
    return 0
  }
  const apache: ApachePeer = started
  cleanups.push(apache.stop)
  console.log(`apache peer at ${apache.url}, pids ${apache.pids().join(' ')}, dir ${apache.dir}`)

  // ------------------------------------------------------------------ correctness
  const cookie = await apache.login('alice')
  console.log(`logged in: ${cookie.replace(/=([^;]{8})[^;]*/g, '=$1…')}`)
  const authed = await get(`${apache.url}/some/path?x=1`, cookie)
  assert(authed.status === 200 && authed.body === 'ok', `authenticated GET: 200 "ok" from the upstream (got ${authed.status} ${JSON.stringify(authed.body.slice(0, 80))})`)
  const anon = await get(`${apache.url}/some/path`)
  assert(anon.status === 302 && anon.location?.startsWith(`${idp.issuer}/`) === true, `GET without a cookie: 302 to the IdP (got ${anon.status} ${String(anon.location)})`)
  const forged = await get(`${apache.url}/`, 'mod_auth_openidc_session=00000000-0000-0000-0000-000000000000')
  assert(forged.status === 302 && forged.location?.startsWith(`${idp.issuer}/`) === true, `GET with a made-up session id: 302 to the IdP (got ${forged.status})`)
  // fetch() says Sec-Fetch-Mode: cors: the module answers such (non-navigation) requests 401, not 302.
  const xhr = await fetch(`${apache.url}/`, { redirect: 'manual' })
  await xhr.arrayBuffer()
  assert(xhr.status === 401, `fetch() without a cookie (Sec-Fetch-Mode: cors): 401 (got ${xhr.status})`)
  const xhrAuthed = await fetch(`${apache.url}/`, { redirect: 'manual', headers: { cookie } })
  assert(xhrAuthed.status === 200 && await xhrAuthed.text() === 'ok', `fetch() with the cookie: 200 "ok" (got ${xhrAuthed.status})`)
  console.log('checks: authenticated GET 200 "ok"; no cookie and a made-up session 302 to the IdP (401 to fetch())')

  // ------------------------------------------------------------------ load
  const bare: Child = await startChild('bare', { upstream: upstream.url })
  cleanups.push(bare.stop)
  const run = async (name: string, url: string, cpuMs: () => number | null, headers: Record<string, string>): Promise<{ name: string, s: Sample, cpuUs: number | null }> => {
    await cannon({ url, connections: CONNECTIONS, duration: 1, headers }) // warm-up: keep-alive pools, threads
    const cpu0 = cpuMs()
    const s = await cannon({ url, connections: CONNECTIONS, duration: SECONDS, headers })
    const cpu1 = cpuMs()
    return { name, s, cpuUs: cpu0 !== null && cpu1 !== null && s.ok > 0 ? (cpu1 - cpu0) * 1000 / s.ok : null }
  }
  const a = await run('apache + mod_auth_openidc', `${apache.url}/`, () => apache.cpuMs(), { cookie })
  const b = await run('bare @fastify/http-proxy', `${bare.url}/`, () => bare.cpuMs(), {})

  // Every 2xx under load was an authenticated one: a failed check answers 302, counted as non-2xx.
  const after = await get(`${apache.url}/`, cookie)
  assert(after.status === 200 && after.body === 'ok', `authenticated GET after the load: 200 "ok" (got ${after.status})`)

  for (const { name, s, cpuUs } of [a, b]) {
    console.log(`${name.padEnd(28)} ${s.rps.toFixed(0).padStart(7)} req/s  p50 ${quantile(s.latencies, 0.5).toFixed(2)} ms  p99 ${quantile(s.latencies, 0.99).toFixed(2)} ms  ` +
      `2xx ${s.ok}  non-2xx ${s.non2xx}  errors ${s.errors}  cpu ${cpuUs === null ? 'n/a' : `${cpuUs.toFixed(0)} us/req`}`)
  }
  console.log(`apache / bare req/s ratio: ${(a.s.rps / b.s.rps).toFixed(2)}`)
  assert(a.s.non2xx === 0 && a.s.errors === 0 && a.s.ok > 0, `apache under load: only 2xx (non-2xx ${a.s.non2xx}, errors ${a.s.errors})`)
  assert(b.s.non2xx === 0 && b.s.errors === 0 && b.s.ok > 0, `bare proxy under load: only 2xx (non-2xx ${b.s.non2xx}, errors ${b.s.errors})`)
  return 0
}

let code = 1
try {
  code = await main()
} catch (err) {
  console.error(err)
  code = 1
} finally {
  await cleanup()
}
// Keep-alive agents (the IdP's fetches) must not keep the process alive.
process.exit(code)
