/**
 * /readyz follows store.failMode (issue 15 item 3), with a real redis-server stopped during the test:
 * - closed: a store outage makes the pod not ready (503, store "unreachable"): requests with a session
 *   would get 503 there anyway.
 * - open: the pod stays ready (200, store "degraded"): it serves sessions on their cookie alone, and
 *   taking every replica out of the Service would turn a store outage into a total one.
 * Either way the store check is "ok" again once Redis is back.
 */
import t, { type Test } from 'tap'
import { startRedis } from '../helpers/redis-server.js'
import { startStack, type Stack } from '../helpers/stack.js'

interface Readiness { code: number, body: { status: string, checks: Record<string, string> } }

async function readyz (s: Stack): Promise<Readiness> {
  const res = await fetch(`${s.adminUrl}/readyz`)
  return { code: res.status, body: await res.json() as Readiness['body'] }
}

/** Polls /readyz until `done` holds (bounded: 10 s), and returns the last answer. */
async function until (s: Stack, done: (r: Readiness) => boolean): Promise<Readiness> {
  const deadline = Date.now() + 10_000
  let r = await readyz(s)
  while (!done(r) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    r = await readyz(s)
  }
  return r
}

async function stackOnRedis (t: Test, failMode: 'closed' | 'open'): Promise<{ s: Stack, redis: Awaited<ReturnType<typeof startRedis>> }> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const s = await startStack(t, { config: { store: { kind: 'redis', failMode, redis: { url: redis.url, commandTimeout: '300ms' } } } })
  const up = await until(s, (r) => r.code === 200)
  t.equal(up.code, 200, 'ready while Redis is up')
  t.same(up.body, { status: 'ready', checks: { shutdown: 'ok', idp: 'ok', store: 'ok' } })
  return { s, redis }
}

t.test('failMode open: Redis stopped -> still ready, store "degraded"; "ok" again after Redis returns', async (t) => {
  const { s, redis } = await stackOnRedis(t, 'open')
  await redis.kill()
  const down = await until(s, (r) => r.body.checks['store'] !== 'ok')
  t.equal(down.code, 200, 'the pod stays in the Service')
  t.same(down.body, { status: 'ready', checks: { shutdown: 'ok', idp: 'ok', store: 'degraded' } })
  // not a one-off: the next probes say the same while Redis stays down
  for (let i = 0; i < 3; i++) {
    const again = await readyz(s)
    t.equal(again.code, 200, `probe ${i + 1} during the outage: 200`)
    t.equal(again.body.checks['store'], 'degraded')
  }

  await redis.restart()
  const back = await until(s, (r) => r.body.checks['store'] === 'ok')
  t.equal(back.code, 200)
  t.same(back.body.checks, { shutdown: 'ok', idp: 'ok', store: 'ok' }, 'store ok again after Redis returns')
})

t.test('failMode closed: Redis stopped -> not ready (503, store "unreachable"); ready again after Redis returns', async (t) => {
  const { s, redis } = await stackOnRedis(t, 'closed')
  await redis.kill()
  const down = await until(s, (r) => r.body.checks['store'] !== 'ok')
  t.equal(down.code, 503, 'the pod leaves the Service')
  t.same(down.body, { status: 'not ready', checks: { shutdown: 'ok', idp: 'ok', store: 'unreachable' } })

  await redis.restart()
  const back = await until(s, (r) => r.code === 200)
  t.equal(back.code, 200, 'ready again')
  t.same(back.body.checks, { shutdown: 'ok', idp: 'ok', store: 'ok' })
})

t.test('failMode open degrades only the store check: shutdown still makes the pod not ready', async (t) => {
  const { s, redis } = await stackOnRedis(t, 'open')
  await redis.kill()
  t.equal((await until(s, (r) => r.body.checks['store'] === 'degraded')).code, 200)
  s.gateway.ctx.readiness.stop()
  const r = await readyz(s)
  t.equal(r.code, 503, 'shutting down: not ready whatever the store')
  t.same(r.body, { status: 'not ready', checks: { shutdown: 'shutting down', idp: 'ok', store: 'degraded' } })
})
