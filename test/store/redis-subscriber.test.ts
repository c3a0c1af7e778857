/**
 * The revocation subscriber when the link misbehaves without closing (issue 10, items 8 and 9), on real
 * redis-servers behind a stalling TCP proxy: a SUBSCRIBE answered after the command timeout, a refused
 * SUBSCRIBE, a hung link, a hung data connection; and a stalled Cluster shard node (SIGSTOP).
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { NearCacheStore } from '../../src/store/near-cache.js'
import { RedisStore } from '../../src/store/redis.js'
import { keySlot } from '../../src/store/redis-keys.js'
import { StoreUnavailableError } from '../../src/store/store.js'
import { startRedisCluster, waitUntil, withAdmin } from '../helpers/redis-cluster.js'
import { startRedis } from '../helpers/redis-server.js'
import { startStallProxy } from '../helpers/stall-proxy.js'
import { captureLogger, newPrefix, ownerOf, record, sleep, waitFor } from '../helpers/store-kit.js'

const TIMEOUT_MS = 500
const SUBSCRIBER = /subscribe/i

/** Records what `onSubscriptionChange` reports. */
function watch (store: RedisStore): { states: boolean[], last: () => boolean | undefined } {
  const states: boolean[] = []
  store.onSubscriptionChange((live) => { states.push(live) })
  return { states, last: () => states[states.length - 1] }
}

/** Resolves with the first event about `sub` this store receives. */
async function eventFor (store: RedisStore, sub: string): Promise<string> {
  return await new Promise((resolve) => store.subscribe((e) => { if (e.sub === sub) resolve(e.sub) }))
}

t.test('standalone: a SUBSCRIBE answered after the command timeout, on a connection that stays open, is retried', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const proxy = await startStallProxy({ port: server.port })
  t.teardown(() => proxy.close())
  const prefix = newPrefix('sgs')
  const store = new RedisStore({ redis: { url: proxy.url, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  t.teardown(() => store.close())
  await waitFor(async () => { await store.ping() }, 5000)
  const w = watch(store)
  let resubscribed = 0
  store.onResubscribed(() => { resubscribed++ })

  // The subscriber reconnects; its SUBSCRIBE reaches Redis 750 ms late: after the 500 ms command
  // timeout, before the 1 s socket timeout, so nothing closes the connection.
  proxy.hold(SUBSCRIBER, { ms: 750, once: true })
  t.equal(proxy.reset(SUBSCRIBER), 1, 'the subscriber connection dropped')
  await waitUntil(async () => w.last() === false, 2000, 'the loss to be reported')
  await waitUntil(async () => w.last() === true, 5000, 'subscribed again after the late reply')
  await store.ping()
  t.equal(resubscribed, 1, 'onResubscribed: once, when listening again')

  const other = new RedisStore({ redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  t.teardown(() => other.close())
  const sub = randomUUID()
  const got = eventFor(store, sub)
  await other.revokeUser(sub, 60)
  t.equal(await got, sub, 'events flow again')
})

t.test('standalone: a refused SUBSCRIBE is retried until it succeeds', async (t) => {
  // ACL: this user may run data commands but not subscribe to the channel, until granted.
  const server = await startRedis({ args: ['--user', 'app', 'on', '>pw', '~*', 'resetchannels', '&nothing', '+@all'] })
  t.teardown(() => server.stop())
  const store = new RedisStore({ redis: { url: `redis://app:pw@127.0.0.1:${server.port}`, keyPrefix: newPrefix('sgs'), commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  t.teardown(() => store.close())
  const w = watch(store)
  await t.rejects(store.ping(), StoreUnavailableError, 'not subscribed: not ready')
  t.notOk(w.states.includes(true))

  await withAdmin(server.port, async (r) => await r.call('ACL', 'SETUSER', 'app', 'allchannels'))
  await waitUntil(async () => w.last() === true, 5000, 'subscribed once allowed')
  await store.ping()
})

t.test('standalone: a hung link (no reset) stops cached verdicts well under a second after a revocation elsewhere', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const proxy = await startStallProxy({ port: server.port })
  t.teardown(() => proxy.close())
  const prefix = newPrefix('sgs')
  // Replica A goes through the proxy; replica B talks to Redis directly.
  const inner = new RedisStore({ redis: { url: proxy.url, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  await waitFor(async () => { await inner.ping() }, 5000)
  const a = new NearCacheStore(inner)
  t.teardown(() => a.close())
  const b = new RedisStore({ redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  t.teardown(() => b.close())

  const rec = record()
  await b.createSession(rec, 60)
  await a.check(rec.sub, rec.sid)
  t.same(a.peek(rec.sub, rec.sid), { denied: false, version: 0 }, 'cached on A')

  proxy.stall() // A's connections hang, nothing is reset
  await b.revokeSessions(rec.sub, [rec.sid], 60)
  const acknowledged = performance.now()
  // The gate's hot path answers from peek() when it can: sample it until it stops vouching for the session.
  let lastStale = -Infinity
  while (performance.now() - acknowledged < 3000) {
    const v = a.peek(rec.sub, rec.sid)
    if (v !== undefined && !v.denied) lastStale = performance.now()
    await sleep(5)
  }
  const staleMs = Math.max(0, lastStale - acknowledged)
  t.comment(`stale window after the revocation: ${Math.round(staleMs)} ms`)
  t.ok(staleMs < 1000, `A answered the revoked session from its cache for ${Math.round(staleMs)} ms (well under 1 s)`)

  proxy.resume()
  await waitUntil(async () => {
    await a.check(rec.sub, rec.sid).catch(() => {}) // fills the cache once it is usable again
    return a.peek(rec.sub, rec.sid)?.denied === true
  }, 10_000, 'A to answer "denied" from its cache once the link is back')
  t.equal(a.enabled, true)
})

t.test('standalone: a command timeout on the data connection drops the cached verdicts', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const proxy = await startStallProxy({ port: server.port })
  t.teardown(() => proxy.close())
  const inner = new RedisStore({ redis: { url: proxy.url, keyPrefix: newPrefix('sgs'), commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  await waitFor(async () => { await inner.ping() }, 5000)
  const cache = new NearCacheStore(inner)
  t.teardown(() => cache.close())
  const rec = record()
  await cache.createSession(rec, 60)
  await cache.check(rec.sub, rec.sid)
  t.ok(cache.peek(rec.sub, rec.sid), 'cached')

  proxy.stall(SUBSCRIBER) // the data connection hangs; the subscriber is fine
  await t.rejects(cache.check('someone-else', 'x'), StoreUnavailableError, 'a read times out')
  t.equal(cache.peek(rec.sub, rec.sid), undefined, 'what was cached is not vouched for any more')
  t.equal(cache.size, 0, 'dropped')
  proxy.resume()
})

t.test('cluster: a stalled shard node is noticed by the heartbeat; the feed subscribes again after it resumes', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  const prefix = newPrefix('sgs')
  const store = new RedisStore({ redis: { cluster: { nodes: cluster.nodes }, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  t.teardown(() => store.close())
  await waitFor(async () => { await store.ping() }, 10_000)
  const w = watch(store)

  const port = await ownerOf(cluster, keySlot(`${prefix}revocations`))
  const pid = await withAdmin(port, async (r) => Number(/process_id:(\d+)/.exec(await r.info('server'))?.[1]))
  t.ok(pid > 0, 'the shard node\'s pid')
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  const resume = (): void => { if (!resumed) { resumed = true; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  try {
    await waitUntil(async () => w.last() === false, 2500, 'the stall to be reported as a loss')
  } finally {
    await sleep(300)
    resume()
  }
  await waitUntil(async () => w.last() === true, 15_000, 'subscribed again')
  await waitFor(async () => { await store.ping() }, 10_000)

  const other = new RedisStore({ redis: { cluster: { nodes: cluster.nodes }, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  t.teardown(() => other.close())
  const sub = randomUUID()
  const got = eventFor(store, sub)
  await waitFor(async () => { await other.revokeUser(sub, 60) }, 10_000)
  t.equal(await got, sub, 'events flow again')
})
