/**
 * The cluster primary's admin port under a review's edge cases: a worker whose IPC channel closed before
 * its process exited (a worker dying, or draining after losing the channel), and readiness asked in
 * another spelling than `GET /readyz`. The primary runs in this process (runPrimary, as the CLI calls
 * it); the workers are the real gateway (src/main.ts) forked by node:cluster.
 */
import t from 'tap'
import cluster from 'node:cluster'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { stringify } from 'yaml'
import pino from 'pino'
import { startIdp } from '../../src/demo/idp.js'
import { loadConfig } from '../../src/config/loader.js'
import { runPrimary } from '../../src/cluster/primary.js'
import { freePort } from '../helpers/ports.js'
import { startSlowUpstream } from '../helpers/upstream.js'
import { freshRequest, rawRequest } from '../helpers/raw-http.js'
import { waitForHttp } from '../helpers/wait-http.js'
import { startRedis } from '../helpers/redis-server.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function call (url: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number, body: string }> {
  return await freshRequest(url, { method, headers })
}

t.test('the primary with two real workers', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  // A slow upstream holds requests in flight, so a worker told to stop stays alive while it drains.
  const slowUrl = (await startSlowUpstream(t, 2500)).url
  const [port, adminPort] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${port}`
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const adminToken = randomBytes(24).toString('base64url')
  const idp = await startIdp({
    hostname: '127.0.0.1',
    clients: [{ client_id: 'gateway', client_secret: 'secret-0123456789', redirect_uris: [`${url}/auth/callback`], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }]
  })
  t.teardown(() => idp.close())
  const dir = await mkdtemp(join(tmpdir(), 'sg-workers-admin-'))
  const file = join(dir, 'config.yaml')
  await writeFile(file, stringify({
    publicUrl: url,
    workers: 2,
    listen: { host: '127.0.0.1', port },
    admin: { listen: { host: '127.0.0.1', port: adminPort }, token: adminToken },
    logLevel: 'warn',
    oidc: { issuer: idp.issuer, clientId: 'gateway', clientSecret: 'secret-0123456789', allowInsecureHttp: true },
    session: { keys: [randomBytes(32).toString('base64url')] },
    store: { kind: 'redis', redis: { url: redis.url } },
    rateLimit: { enabled: false },
    routes: [{ prefix: '/slow', upstream: slowUrl, auth: 'none' }, { prefix: '/', upstream: slowUrl, auth: 'required' }]
  }))
  process.env.SG_CONFIG = file
  cluster.setupPrimary({ exec: 'src/main.ts', silent: true })
  // An error nobody listens for on the primary (a worker's 'error') is fatal to the real CLI.
  const uncaught: Error[] = []
  const onUncaught = (err: Error): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.teardown(() => { process.off('uncaughtException', onUncaught) })
  const primary = await runPrimary(loadConfig(file), pino({ level: 'silent' }))
  t.teardown(async () => await primary.close({ drainMs: 3000 }))
  const ready = await waitForHttp(`${adminUrl}/readyz`, { timeoutMs: 30_000 })
  t.ok(ready, 'both workers ready')

  await t.test('readiness asked with HEAD (or another spelling) is the cluster\'s, not one worker\'s', async (t) => {
    const workers = Object.values(cluster.workers ?? {})
    t.equal(workers.length, 2)
    // Requests in flight on both workers (the primary hands connections round-robin).
    const inflight = Array.from({ length: 4 }, async (_, i) => await call(`${url}/slow/${i}`).catch((err: Error) => ({ status: 0, body: err.message })))
    await sleep(300)
    // One worker is told to stop: it drains (its own /readyz says "shutting down") while the other serves.
    process.kill(workers[0]!.process.pid!, 'SIGTERM')
    await sleep(200)
    const get = await call(`${adminUrl}/readyz`)
    t.equal(get.status, 503, `GET /readyz: not ready (${get.body})`)
    const heads = [await call(`${adminUrl}/readyz`, 'HEAD'), await call(`${adminUrl}/readyz`, 'HEAD')]
    t.same(heads.map((r) => r.status), [503, 503], 'HEAD /readyz: not ready either, whichever worker is asked')
    const absolute = [await rawRequest(adminUrl, `${adminUrl}/readyz`), await rawRequest(adminUrl, `${adminUrl}/readyz`)]
    t.same(absolute.map((r) => r.status), [503, 503], 'absolute-form /readyz: a worker would route it to /readyz, so the cluster answers')
    await Promise.allSettled(inflight)
    let back = false
    for (let i = 0; i < 300 && !back; i++) {
      back = (await call(`${adminUrl}/readyz`)).status === 200
      if (!back) await sleep(100)
    }
    t.ok(back, 'the stopped worker was replaced')
  })

  await t.test('a worker whose channel closed before it exited does not take the primary down', async (t) => {
    const inflight = Array.from({ length: 4 }, async (_, i) => await call(`${url}/slow/after-${i}`).catch((err: Error) => ({ status: 0, body: err.message })))
    await sleep(300)
    const worker = Object.values(cluster.workers ?? {}).find((w) => w !== undefined && w.isConnected())!
    // The channel closes first; the worker (it drains on 'disconnect') exits only once its requests are done.
    worker.process.disconnect()
    const replies = await Promise.all([
      call(`${adminUrl}/readyz`),
      ...Array.from({ length: 4 }, async () => await call(`${adminUrl}/admin/ssf`, 'GET', { authorization: `Bearer ${adminToken}` }))
    ])
    t.equal(replies[0]!.status, 503, `readiness: one worker is gone (${replies[0]!.body})`)
    t.ok(replies.slice(1).every((r) => r.status === 200), `every admin request answered by the worker still connected (${replies.map((r) => r.status).join(',')})`)
    await Promise.allSettled(inflight)
    await sleep(200)
    t.same(uncaught.map((e) => e.message), [], 'no uncaught error on the primary')
    t.equal((await call(`${adminUrl}/healthz`)).status, 200, 'the primary still serves')
  })
})
