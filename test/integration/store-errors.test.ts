/**
 * A store outage that ends a request in the error handler (503 store_unavailable) is counted in
 * sessiongate_store_errors_total, once per failure, with its code on the log line. Real redis-server,
 * stopped during the test.
 */
import t from 'tap'
import { startRedis } from '../helpers/redis-server.js'
import { startStack } from '../helpers/stack.js'

const storeErrors = async (metricsText: string): Promise<number> => Number(/^sessiongate_store_errors_total (\d+)/m.exec(metricsText)?.[1] ?? NaN)

t.test('an admin call while Redis is down: 503, counted once, logged with its code', async (t) => {
  const redis = await startRedis()
  let stopped = false
  t.teardown(async () => { if (!stopped) await redis.stop() })
  const s = await startStack(t, { config: { store: { kind: 'redis', failMode: 'closed', redis: { url: redis.url, commandTimeout: '300ms' } } } })
  const admin = { authorization: `Bearer ${s.adminToken}` }
  const metrics = async (): Promise<number> => await storeErrors(await s.gateway.ctx.metrics.registry.metrics())

  const ok = await fetch(`${s.adminUrl}/admin/users/alice/sessions`, { headers: admin })
  t.equal(ok.status, 200, 'control: answered while Redis is up')
  const before = await metrics()
  t.equal(before, 0, 'no store error yet')

  await redis.stop()
  stopped = true
  for (let i = 1; i <= 2; i++) {
    const res = await fetch(`${s.adminUrl}/admin/users/alice/sessions`, { headers: admin })
    t.equal(res.status, 503, `call ${i}: 503`)
    t.same(await res.json(), { error: 'store_unavailable' })
    t.equal(await metrics(), before + i, `call ${i}: counted once`)
  }
  // The request's line (the store logs its own connection loss under the same message, without reqId).
  const line = s.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'store unavailable' && l.reqId !== undefined)
  t.equal(line?.code, 'SG_STORE_UNAVAILABLE', 'the log line names the code')
  t.ok(Array.isArray(line?.causes) && (line.causes as unknown[]).length > 0, 'and why (its causes)')
})
