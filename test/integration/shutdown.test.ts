/**
 * SIGTERM under load: the real CLI process stops accepting, finishes every in-flight request (no
 * connection reset), and exits 0.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { freePort } from '../helpers/ports.js'
import { startSlowUpstream } from '../helpers/upstream.js'
import { TS_LOADER } from '../helpers/ts-loader.js'
import { waitForHttp } from '../helpers/wait-http.js'

t.test('SIGTERM during in-flight requests: all complete, process exits 0', async (t) => {
  // A slow upstream: every answer takes 600 ms, so requests are in flight when the signal arrives
  const upstream = await startSlowUpstream(t, 600)
  const [port, adminPort, deadIdp] = [await freePort(), await freePort(), await freePort()]
  const dir = await mkdtemp(join(tmpdir(), 'sg-shutdown-'))
  const file = join(dir, 'config.yaml')
  await writeFile(file, `publicUrl: http://127.0.0.1:${port}
listen: { host: 127.0.0.1, port: ${port} }
admin: { listen: { host: 127.0.0.1, port: ${adminPort} }, token: \${SG_ADMIN_TOKEN} }
logLevel: warn
oidc: { issuer: "http://127.0.0.1:${deadIdp}", clientId: gw, clientSecret: x, allowInsecureHttp: true }
session: { keys: [\${SG_SESSION_KEY}] }
routes:
  - { prefix: /, upstream: "${upstream.url}", auth: none }
`)
  const child = spawn(process.execPath, [...TS_LOADER, 'src/cli.ts', 'serve'], {
    env: { ...process.env, SG_CONFIG: file, SG_ADMIN_TOKEN: randomBytes(16).toString('hex'), SG_SESSION_KEY: randomBytes(32).toString('base64url') },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  const up = await waitForHttp(`http://127.0.0.1:${adminPort}/healthz`, { exited: () => child.exitCode !== null })
  t.ok(up, 'the gateway started', { stderr })

  const inflight = Array.from({ length: 30 }, async (_, i) => {
    const res = await fetch(`http://127.0.0.1:${port}/work/${i}`)
    return { status: res.status, body: await res.text() }
  })
  // Every request in flight (reached the upstream) before the signal, however slow the machine is.
  for (let i = 0; i < 200 && upstream.arrived() < 30; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  t.equal(upstream.arrived(), 30, 'all 30 requests in flight')
  child.kill('SIGTERM')
  const results = await Promise.allSettled(inflight)
  const failed = results.filter((r) => r.status === 'rejected')
  t.equal(failed.length, 0, `no in-flight request was reset (${failed.map((f) => String((f as PromiseRejectedResult).reason?.cause?.code ?? (f as PromiseRejectedResult).reason)).join(', ')})`)
  for (const r of results) if (r.status === 'fulfilled') t.same(r.value, { status: 200, body: 'slow ok' })
  t.equal(await exited, 0, `exit code 0 (stderr: ${stderr.slice(-300)})`)
  const refused = await fetch(`http://127.0.0.1:${port}/after`).then(() => 'answered', () => 'refused')
  t.equal(refused, 'refused', 'no longer accepting')
})

t.test('on shutdown, proxied WebSockets close with 1001 and readiness turns 503 first', async (t) => {
  const { startStack } = await import('../helpers/stack.js')
  const { Browser, login } = await import('../helpers/browser.js')
  const { default: WebSocket } = await import('ws')
  const s = await startStack(t)
  const b = new Browser()
  await login(b, s.url, 'alice')
  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/live`, { headers: { cookie: b.cookieHeader(s.url) } })
  await new Promise<void>((resolve, reject) => { ws.once('message', () => resolve()); ws.once('error', reject) })
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const stopping = s.gateway.close({ drainMs: 2000 })
  t.equal(await closed, 1001, 'going away')
  await stopping
  t.equal(s.gateway.ctx.accepting, false, 'marked not ready')
})
