/**
 * RedisStore's signals for a cache in front of it (`onSubscriptionChange`, `onReconnect`), on a real
 * standalone redis-server (killed and restarted), plus a NearCacheStore over it; then the same signals on
 * a Cluster (the shard feed moving with its slot) and through Sentinel (a failover). Also: auto-pipelining
 * is on for the data client and off for every subscriber connection.
 */
import { randomUUID } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import t from 'tap'
import { NearCacheStore } from '../../src/store/near-cache.js'
import { RedisStore } from '../../src/store/redis.js'
import { keySlot } from '../../src/store/redis-keys.js'
import { StoreUnavailableError } from '../../src/store/store.js'
import { startRedisCluster, waitUntil } from '../helpers/redis-cluster.js'
import { startRedisSentinel } from '../helpers/redis-sentinel.js'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { captureLogger, migrateSlot, newPrefix, ownerOf, record, sleep, tagOf, usersOn, waitFor } from '../helpers/store-kit.js'

const TIMEOUT_MS = 500




/** A store on a standalone server, not yet waited for. */
function standalone (server: RedisServer, prefix = newPrefix('sgh'), logger = captureLogger()): RedisStore {
  return new RedisStore({ redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger })
}

/** Records what `onSubscriptionChange` reports, with the time of each report. */
function watch (store: RedisStore): { states: boolean[], at: number[], last: () => boolean | undefined, off: () => void } {
  const states: boolean[] = []
  const at: number[] = []
  const off = store.onSubscriptionChange((live) => {
    states.push(live)
    at.push(performance.now())
  })
  return { states, at, last: () => states[states.length - 1], off }
}

/** Internals the tests look at: the data client and the feed's subscriber connection. */
function internals (store: RedisStore): { client: Redis | Cluster, subscriber: () => Redis | undefined } {
  const s = store as unknown as { client: Redis | Cluster, feed: { conn: Redis | undefined } }
  return { client: s.client, subscriber: () => s.feed.conn }
}


t.test('standalone: subscription state on registration, on a crash and after the restart; onReconnect', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const store = standalone(server)
  t.teardown(() => store.close())

  const early = watch(store)
  t.same(early.states, [false], 'registered before the SUBSCRIBE is confirmed: false, synchronously')
  await store.ping()
  t.same(early.states, [false, true], 'then true once subscribed')

  const w = watch(store)
  t.same(w.states, [true], 'registered while subscribed: true, synchronously')
  let reconnects = 0
  store.onReconnect(() => { reconnects++ })
  t.equal(reconnects, 0, 'the first ready is not a reconnect')

  await server.kill()
  const killedAt = performance.now()
  await waitUntil(async () => w.last() === false, 2000, 'false after the crash')
  const ms = (w.at[1] ?? Infinity) - killedAt
  t.ok(ms < 1000, `false ${Math.round(ms)} ms after the crash`)
  t.same(w.states, [true, false], 'reported once')
  await t.rejects(store.check('u', 's'), StoreUnavailableError)

  await server.restart()
  await waitUntil(async () => w.last() === true, 10_000, 'true after the restart')
  t.same(w.states, [true, false, true], 'subscribed again')
  t.same(early.states, [false, true, false, true], 'every listener is told')
  await waitUntil(async () => reconnects > 0, 10_000, 'onReconnect after the restart')
  t.equal(reconnects, 1, 'one reconnect of the data connection')
  await store.ping()

  // Events flow again: true meant it.
  const got = new Promise<string>((resolve) => store.subscribe((e) => resolve(e.sub)))
  await store.revokeUser('after-restart', 60)
  t.equal(await got, 'after-restart')
})

t.test('standalone: a malformed event pulses false then true', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const prefix = newPrefix('sgh')
  const logger = captureLogger()
  const store = standalone(server, prefix, logger)
  t.teardown(() => store.close())
  await store.ping()
  const raw = new Redis(server.port, '127.0.0.1')
  t.teardown(() => raw.quit())
  const w = watch(store)
  t.same(w.states, [true])

  await raw.publish(`${prefix}revocations`, 'not json')
  await waitUntil(async () => w.states.length >= 3, 2000, 'the pulse')
  t.same(w.states, [true, false, true], 'false, then true at once (still subscribed)')
  t.equal(logger.warns.length, 1, 'and the warning')

  await raw.publish(`${prefix}revocations`, JSON.stringify({ sub: 1, sids: [] }))
  await raw.publish(`${prefix}other`, 'not json') // another channel: not ours, nothing to report
  await store.revokeUser('good', 60)
  await sleep(100)
  t.same(w.states, [true, false, true, false, true], 'one pulse per malformed event, none for a good one')
})

t.test('standalone: close reports false; unregistered listeners hear nothing; registration after close', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const store = standalone(server)
  await store.ping()
  const w = watch(store)
  const gone = watch(store)
  gone.off()
  let reconnects = 0
  const offReconnect = store.onReconnect(() => { reconnects++ })
  offReconnect()
  const throwing = store.onSubscriptionChange(() => { throw new Error('listener bug (expected by the test)') })
  t.type(throwing, 'function', 'a throwing listener does not break registration')

  await store.close()
  t.same(w.states, [true, false], 'false on close')
  t.same(gone.states, [true], 'an unregistered listener is not told')
  const late = watch(store)
  t.same(late.states, [false], 'a closed store reports false')
  await sleep(50)
  t.same(w.states, [true, false], 'nothing after close')
  t.equal(reconnects, 0)
})

t.test('standalone: a failed SUBSCRIBE reports false and readiness fails', async (t) => {
  // ACL: this user may run data commands but not subscribe to the channel.
  const server = await startRedis({ args: ['--user', 'app', 'on', '>pw', '~*', 'resetchannels', '&nothing', '+@all'] })
  t.teardown(() => server.stop())
  const logger = captureLogger()
  const store = new RedisStore({ redis: { url: `redis://app:pw@127.0.0.1:${server.port}`, keyPrefix: newPrefix('sgh'), commandTimeoutMs: TIMEOUT_MS }, logger })
  t.teardown(() => store.close())
  const w = watch(store)
  await t.rejects(store.ping(), StoreUnavailableError, 'not subscribed: not ready')
  t.same(await store.check('u', 's'), { denied: false, version: null }, 'the data connection works')
  t.notOk(w.states.includes(true), 'never reported as subscribed')
  t.equal(w.last(), false)
})

t.test('standalone: auto-pipelining on the data client only', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const store = standalone(server)
  t.teardown(() => store.close())
  await store.ping()
  const { client, subscriber } = internals(store)
  t.equal(client.options.enableAutoPipelining, true, 'data client')
  t.equal(subscriber()?.options.enableAutoPipelining, false, 'subscriber')
  // Concurrent hot-path checks share a write and all answer.
  const checks = await Promise.all(Array.from({ length: 50 }, async (_, i) => await store.check(`u${i}`, 's')))
  t.equal(checks.length, 50)
  t.ok(checks.every((c) => c.version === null && !c.denied))
})

t.test('near cache over redis: bypassed while the subscription is down, cached again after', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const prefix = newPrefix('sgh')
  const inner = standalone(server, prefix)
  await inner.ping()
  const cache = new NearCacheStore(inner)
  t.teardown(() => cache.close())
  t.equal(cache.enabled, true, 'the store confirmed its subscription on registration')

  const rec = record()
  await cache.createSession(rec, 60)
  t.same(await cache.check(rec.sub, rec.sid), { denied: false, version: 0 })
  t.same(await cache.check(rec.sub, rec.sid), { denied: false, version: 0 })
  t.equal(cache.stats.hits, 1, 'the second check was answered from the cache')
  const epoch = await cache.epoch()

  await server.kill()
  await waitUntil(async () => !cache.enabled, 2000, 'the cache to be bypassed')
  t.equal(cache.size, 0, 'emptied')
  t.equal(cache.peekEpoch(), undefined, 'the epoch is forgotten')
  await t.rejects(cache.check(rec.sub, rec.sid), StoreUnavailableError, 'the check went to Redis, not to the cache')
  t.equal(cache.stats.bypassed, 1)
  t.equal(cache.stats.hits, 1)

  await server.restart()
  await waitUntil(async () => cache.enabled, 10_000, 'the cache to be used again')
  await waitFor(async () => { await inner.ping() }, 10_000)
  // The restarted server lost everything: what the cache had said is not what it says now.
  t.same(await cache.check(rec.sub, rec.sid), { denied: false, version: null }, 'read from Redis')
  t.same(await cache.check(rec.sub, rec.sid), { denied: false, version: null }, 'then cached')
  t.equal(cache.stats.hits, 2)
  t.not(await cache.epoch(), epoch, 'the new epoch, not the cached one')

  // And events keep it true again.
  const again = record()
  await cache.createSession(again, 60)
  await cache.check(again.sub, again.sid)
  const other = standalone(server, prefix)
  t.teardown(() => other.close())
  await other.revokeSessions(again.sub, [again.sid], 60) // another replica's revocation
  await waitUntil(async () => cache.peek(again.sub, again.sid)?.denied === true, 2000, 'the event to reach the cache')
})

t.test('cluster', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  const clusterStore = async (prefix = newPrefix('sgh')): Promise<RedisStore> => {
    const store = new RedisStore({ redis: { cluster: { nodes: cluster.nodes }, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
    await waitFor(async () => { await store.ping() }, 10_000)
    return store
  }

  t.test('the shard feed moving with its slot reports false then true; auto-pipelining', async (t) => {
    const prefix = newPrefix('sgh')
    const store = await clusterStore(prefix)
    t.teardown(() => store.close())
    const { client, subscriber } = internals(store)
    t.equal((client as Cluster).options.enableAutoPipelining, true, 'data client')
    t.equal(subscriber()?.options.enableAutoPipelining, false, 'shard subscriber')
    const w = watch(store)
    t.same(w.states, [true])
    let reconnects = 0
    store.onReconnect(() => { reconnects++ })

    const slot = keySlot(`${prefix}revocations`)
    const from = await ownerOf(cluster, slot)
    const to = cluster.nodes.find((n) => n.port !== from)!.port
    await migrateSlot(slot, from, to, cluster)
    await waitUntil(async () => w.states.length >= 3, 10_000, 'the feed to move')
    t.same(w.states.slice(0, 3), [true, false, true], 'false when it moved, true once subscribed on the new owner')
    t.equal(w.last(), true)
    t.equal(subscriber()?.options.port, to, 'on the new owner')
    t.equal(subscriber()?.options.enableAutoPipelining, false, 'the new shard subscriber too')
    t.equal(reconnects, 0, 'a slot move is no node change')

    await store.close()
    t.equal(w.last(), false, 'false on close')
  })

  t.test('a redirection ioredis does not follow in an auto-pipelined batch is StoreUnavailableError', async (t) => {
    const store = await clusterStore()
    t.teardown(() => store.close())
    // Two users in different slots of one master; one slot moves behind the store's back (stale slot map).
    const node = cluster.nodes[0]!.port
    const [a, b] = await usersOn(cluster, [node, node])
    const [ra, rb] = [record({ sub: a! }), record({ sub: b! })]
    await store.createSession(ra, 60)
    await store.createSession(rb, 60)
    const to = cluster.nodes[1]!.port
    await migrateSlot(keySlot(tagOf(a!)), node, to, cluster)

    // Both writes go out in one batch to the old owner: b's runs, a's gets MOVED.
    const results = await Promise.allSettled([store.revokeSessions(a!, [ra.sid], 60), store.revokeSessions(b!, [rb.sid], 60)])
    for (const r of results) {
      if (r.status === 'rejected') t.type(r.reason, StoreUnavailableError, `rejected as unavailable: ${String(r.reason)}`)
    }
    t.equal(results[1]!.status, 'fulfilled', 'the user on the unmoved slot is revoked')
    t.comment(`the moved user's revocation: ${results[0]!.status}`)
    // The slot map is refreshed: the moved user's writes reach the new owner.
    await waitFor(async () => { await store.revokeSessions(a!, [ra.sid], 60) }, 5000)
    t.same(await store.check(a!, ra.sid), { denied: true, version: 0 })
    t.same(await store.check(b!, rb.sid), { denied: true, version: 0 })
  })

  t.test('a crashed node: false while the feed has no node, true after; onReconnect on node changes', async (t) => {
    const own = await startRedisCluster()
    t.teardown(() => own.stop())
    const prefix = newPrefix('sgh')
    const store = new RedisStore({ redis: { cluster: { nodes: own.nodes }, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
    t.teardown(() => store.close())
    await waitFor(async () => { await store.ping() }, 10_000)
    const w = watch(store)
    let reconnects = 0
    store.onReconnect(() => { reconnects++ })
    const victim = await ownerOf(own, keySlot(`${prefix}revocations`))
    await own.kill(victim)
    await waitUntil(async () => w.last() === false, 2000, 'false after the crash')
    await own.restart(victim)
    await waitUntil(async () => w.last() === true, 15_000, 'true after the restart')
    await waitUntil(async () => reconnects > 0, 15_000, 'onReconnect')
    t.ok(reconnects > 0, `${reconnects} reconnect signals`)
    t.same(w.states.slice(0, 2), [true, false])
  })
})

t.test('sentinel: a failover reports false then true, and a reconnect', async (t) => {
  const sentinel = await startRedisSentinel()
  t.teardown(() => sentinel.stop())
  const store = new RedisStore({ redis: { sentinel: { name: sentinel.name, nodes: sentinel.sentinels }, keyPrefix: newPrefix('sgh'), commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  t.teardown(() => store.close())
  await waitFor(async () => { await store.ping() }, 10_000)
  const { client, subscriber } = internals(store)
  t.equal(client.options.enableAutoPipelining, true, 'data client')
  t.equal(subscriber()?.options.enableAutoPipelining, false, 'subscriber')
  const w = watch(store)
  let reconnects = 0
  store.onReconnect(() => { reconnects++ })
  const before = await sentinel.master()
  await sentinel.failover()
  await waitUntil(async () => w.states.length >= 3 && w.last() === true && reconnects > 0, 15_000, 'resubscribed and reconnected')
  t.same(w.states.slice(0, 2), [true, false])
  t.not((await sentinel.master()).port, before.port)
  const sub = randomUUID()
  const got = new Promise<string>((resolve) => store.subscribe((e) => { if (e.sub === sub) resolve(e.sub) }))
  await waitFor(async () => { await store.revokeUser(sub, 60) }, 10_000)
  t.equal(await got, sub, 'events flow from the new master')
})





