/**
 * Several workers (README section "Workers"), as the real CLI runs them: the primary forks two workers that
 * share the public port, owns the admin port (metrics added up, readiness of all, admin API handed to a
 * worker), restarts a crashed worker, and drains every worker on SIGTERM. Each worker keeps its own near
 * cache, kept true by the revocation events.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { stringify } from 'yaml'
import WebSocket from 'ws'
import { startIdp } from '../../src/demo/idp.js'
import { Browser, login } from '../helpers/browser.js'
import { freePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis-server.js'
import { startSlowUpstream, startUpstream } from '../helpers/upstream.js'
import { TS_LOADER } from '../helpers/ts-loader.js'
import { freshRequest } from '../helpers/raw-http.js'
import { waitForHttp } from '../helpers/wait-http.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** A GET on a connection of its own: the primary hands each new connection to the next worker. */
async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string }> {
  return await freshRequest(url, { headers })
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

/** Sum of a counter's samples whose labels include every `match` pair. */
function metricSum (text: string, name: string, match: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (!Object.entries(match).every(([k, v]) => line.includes(`${k}="${v}"`))) continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

t.test('two workers behind one port', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  // A slow upstream: requests are still in flight when SIGTERM arrives.
  const slow = await startSlowUpstream(t, 800)
  const slowUrl = slow.url
  const [port, adminPort] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${port}`
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const clientSecret = randomBytes(24).toString('base64url')
  const adminToken = randomBytes(24).toString('base64url')
  const idp = await startIdp({
    hostname: '127.0.0.1',
    clients: [{
      client_id: 'gateway',
      client_secret: clientSecret,
      redirect_uris: [`${url}/auth/callback`],
      post_logout_redirect_uris: [`${url}/`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic'
    }]
  })
  t.teardown(() => idp.close())
  const dir = await mkdtemp(join(tmpdir(), 'sg-workers-'))
  const file = join(dir, 'config.yaml')
  await writeFile(file, stringify({
    publicUrl: url,
    workers: 2,
    listen: { host: '127.0.0.1', port },
    admin: { listen: { host: '127.0.0.1', port: adminPort }, token: '${SG_ADMIN_TOKEN}' },
    logLevel: 'info',
    oidc: { issuer: idp.issuer, clientId: 'gateway', clientSecret: '${SG_CLIENT_SECRET}', allowInsecureHttp: true, prompt: 'consent' },
    session: { keys: ['${SG_SESSION_KEY}'] },
    store: { kind: 'redis', nearCache: true, redis: { url: redis.url } },
    rateLimit: { enabled: false },
    routes: [{ prefix: '/slow', upstream: slowUrl, auth: 'none' }, { prefix: '/', upstream: upstream.url, auth: 'required' }]
  }))
  const child: ChildProcess = spawn(process.execPath, [...TS_LOADER, 'src/cli.ts', 'serve', file], {
    env: { ...process.env, SG_ADMIN_TOKEN: adminToken, SG_CLIENT_SECRET: clientSecret, SG_SESSION_KEY: randomBytes(32).toString('base64url') },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: Array<Record<string, unknown>> = []
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l.startsWith('{')) lines.push(JSON.parse(l) as Record<string, unknown>)
  })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const pids = (): number[] => lines.filter((l) => l.msg === 'worker serving').map((l) => Number(l.pid))
  t.teardown(() => { for (const pid of [child.pid!, ...pids()]) if (alive(pid)) process.kill(pid, 'SIGKILL') })

  const ready = await waitForHttp(`${adminUrl}/readyz`, { exited: () => child.exitCode !== null })
  t.ok(ready, `ready (stderr: ${stderr.slice(-300)})`)
  const serving = lines.filter((l) => l.msg === 'worker serving')
  t.same(serving.map((l) => l.worker).sort(), [1, 2], 'two workers serve')
  t.not(serving[0]!.pid, serving[1]!.pid, 'in two processes')
  t.not(serving[0]!.pid, child.pid, 'neither is the primary')

  const b = new Browser()
  await login(b, url, 'alice')
  const cookie = b.cookieHeader(url)

  await t.test('every request is served, and /metrics adds up the workers', async (t) => {
    const before = metricSum((await get(`${adminUrl}/metrics`)).body, 'sessiongate_http_requests_total', { route: '/', status: '200' })
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await get(`${url}/page/${i}`, { cookie })))
    t.same(results.map((r) => r.status), Array(20).fill(200), 'all 20 answered by the upstream')
    const metrics = (await get(`${adminUrl}/metrics`)).body
    t.equal(metricSum(metrics, 'sessiongate_http_requests_total', { route: '/', status: '200' }) - before, 20, 'the sum over the workers counts each request once')
    t.equal(metricSum(metrics, 'sessiongate_workers_ready'), 2, 'workers ready gauge')
    const ready = JSON.parse((await get(`${adminUrl}/readyz`)).body) as { status: string, checks: Record<string, string> }
    t.same({ status: ready.status, checks: ready.checks }, { status: 'ready', checks: { shutdown: 'ok', idp: 'ok', store: 'ok', workers: 'ok' } })
  })

  await t.test('the admin API answers through the primary, with its token check', async (t) => {
    t.equal((await get(`${adminUrl}/admin/users/alice/sessions`)).status, 401, 'no token')
    const listed = await get(`${adminUrl}/admin/users/alice/sessions`, { authorization: `Bearer ${adminToken}` })
    t.equal(listed.status, 200)
    t.equal((JSON.parse(listed.body) as unknown[]).length, 1, 'alice has one session')
  })

  await t.test('a revocation reaches every worker: near caches emptied, WebSockets closed', async (t) => {
    // Warm both workers' near caches with the session's verdict.
    for (let i = 0; i < 10; i++) t.equal((await get(`${url}/warm/${i}`, { cookie })).status, 200)
    const sockets = await Promise.all([0, 1, 2, 3].map(async () => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/live`, { headers: { cookie }, agent: undefined })
      await new Promise<void>((resolve, reject) => { ws.once('message', () => resolve()); ws.once('error', reject) })
      return { ws, closed: new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))) }
    }))
    const revoked = (await freshRequest(`${adminUrl}/admin/users/alice/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` } })).status
    t.equal(revoked, 204)
    const codes = await Promise.all(sockets.map(async (s) => await Promise.race([s.closed, sleep(3000).then(() => -1)])))
    t.same(codes, [1008, 1008, 1008, 1008], 'every open WebSocket closed, whichever worker held it')
    let statuses: number[] = []
    for (let i = 0; i < 20; i++) {
      statuses = await Promise.all(Array.from({ length: 10 }, async (_, j) => (await get(`${url}/after/${j}`, { cookie })).status))
      if (statuses.every((s) => s !== 200)) break
      await sleep(50)
    }
    t.ok(statuses.every((s) => s !== 200), `no worker serves the revoked session (${statuses.join(',')})`)
  })

  await t.test('a crashed worker is restarted; the other serves meanwhile', async (t) => {
    const victim = pids()[0]!
    process.kill(victim, 'SIGKILL')
    let restarted = false
    for (let i = 0; i < 300 && !restarted; i++) {
      restarted = pids().length === 3 && (await get(`${adminUrl}/readyz`).then((r) => r.status === 200, () => false))
      if (!restarted) await sleep(100)
    }
    t.ok(restarted, 'a new worker serves and the cluster is ready again')
    t.ok(lines.some((l) => l.msg === 'worker exited: restarting it' && l.pid === victim && l.signal === 'SIGKILL'), 'the crash is logged')
    const statuses = await Promise.all(Array.from({ length: 6 }, async (_, i) => (await get(`${url}/auth/login?n=${i}`)).status))
    t.same(statuses, Array(6).fill(302), 'every connection answered')
    t.equal(metricSum((await get(`${adminUrl}/metrics`)).body, 'sessiongate_worker_restarts_total'), 1)
  })

  await t.test('SIGTERM drains every worker: in-flight requests complete, the primary exits 0', async (t) => {
    const workerPids = pids().filter(alive)
    t.equal(workerPids.length, 2)
    const inflight = Array.from({ length: 10 }, async (_, i) => await get(`${url}/slow/${i}`))
    for (let i = 0; i < 200 && slow.arrived() < 10; i++) await sleep(25)
    t.equal(slow.arrived(), 10, 'all 10 in flight, on both workers')
    child.kill('SIGTERM')
    const results = await Promise.allSettled(inflight)
    t.same(results.map((r) => r.status === 'fulfilled' ? r.value : String(r.reason)), Array(10).fill({ status: 200, body: 'slow ok' }), 'every in-flight request completed')
    t.equal(await exited, 0, `exit 0 (stderr: ${stderr.slice(-300)})`)
    for (const pid of workerPids) t.notOk(alive(pid), `worker ${pid} gone`)
    t.equal(await get(`${url}/after-exit`).then(() => 'answered', () => 'refused'), 'refused')
  })
})

t.test('a worker that cannot start stops the whole start with its reason', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  // The public port is taken: every worker's listen fails.
  const { createServer } = await import('node:net')
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const port = (taken.address() as { port: number }).port
  const dir = await mkdtemp(join(tmpdir(), 'sg-workers-'))
  const file = join(dir, 'config.yaml')
  await writeFile(file, stringify({
    publicUrl: `http://127.0.0.1:${port}`,
    workers: 2,
    listen: { host: '127.0.0.1', port },
    admin: { listen: { host: '127.0.0.1', port: await freePort() }, token: 'admin-token-0123456789' },
    logLevel: 'warn',
    oidc: { issuer: `http://127.0.0.1:${await freePort()}`, clientId: 'gw', clientSecret: 'x', allowInsecureHttp: true },
    session: { keys: [randomBytes(32).toString('base64url')] },
    store: { kind: 'redis', redis: { url: redis.url } },
    routes: [{ prefix: '/', upstream: 'http://127.0.0.1:9', auth: 'none' }]
  }))
  const child = spawn(process.execPath, [...TS_LOADER, 'src/cli.ts', 'serve', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  t.equal(code, 1, 'exit 1')
  t.match(stderr, /EADDRINUSE/, `says why (${stderr.slice(-200)})`)
})
