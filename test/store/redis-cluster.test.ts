/**
 * RedisStore on a real 3-master Redis Cluster: the shared store suite, one-slot scripts, sharded
 * pub/sub across stores and slots, a slot migration of the revocation channel, and a node crash.
 */
import { randomUUID } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import t from 'tap'
import { RedisStore } from '../../src/store/redis.js'
import { keySlot } from '../../src/store/redis-keys.js'
import { isUnavailable } from '../../src/store/redis-connect.js'
import { StoreUnavailableError, type RevocationEvent } from '../../src/store/store.js'
import { startRedisCluster, waitUntil, withAdmin, type RedisCluster } from '../helpers/redis-cluster.js'
import { storeSuite } from './suite.js'
import { captureLogger, migrateSlot, newPrefix, ownerOf, record, tagOf, usersOn, waitFor } from '../helpers/store-kit.js'

const TIMEOUT_MS = 500



/** A store on `cluster`, ready (connected and subscribed) when returned. */
async function newStore (cluster: RedisCluster, prefix = newPrefix('sgc'), logger = captureLogger()): Promise<RedisStore> {
  const store = new RedisStore({ redis: { cluster: { nodes: cluster.nodes }, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger })
  await waitFor(async () => { await store.ping() }, 10_000)
  return store
}





const cluster = await startRedisCluster()
t.teardown(() => cluster.stop())

await storeSuite(t, 'redis-cluster', async () => {
  const store = await newStore(cluster)
  return { store, cleanup: async () => { await store.close() } }
})

t.test('cluster: keySlot agrees with CLUSTER KEYSLOT', async (t) => {
  const keys = ['', 'a', 'foo', '{user1000}.following', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}', `x${tagOf('ü@example')}y`, randomUUID()]
  const server = await withAdmin(cluster.nodes[0]!.port, async (r) => await Promise.all(keys.map(async (k) => await r.cluster('KEYSLOT', k))))
  t.same(keys.map((k) => keySlot(k)), server.map(Number))
})

t.test('cluster: every script runs on keys of one slot, spread over all masters', async (t) => {
  const store = await newStore(cluster)
  t.teardown(() => store.close())
  // Record what each EVALSHA/EVAL is asked to touch: its KEYS, plus the ARGV key bases of REVOKE_USER.
  const client = (store as unknown as { client: Cluster }).client
  const calls: Array<{ keys: string[], args: string[] }> = []
  for (const name of ['evalsha', 'eval'] as const) {
    const original = client[name].bind(client) as (...a: unknown[]) => Promise<unknown>
    Object.defineProperty(client, name, {
      configurable: true,
      value: async (...a: unknown[]) => {
        const n = Number(a[1])
        calls.push({ keys: a.slice(2, 2 + n).map(String), args: a.slice(2 + n).map(String) })
        return await original(...a)
      }
    })
  }
  const ports = cluster.nodes.map((n) => n.port)
  const subs = await usersOn(cluster, ports)
  for (const sub of subs) {
    const a = record({ sub, idpSid: 'idp-1', email: `${sub}@example.test` })
    const b = record({ sub, email: `${sub}@example.test` })
    await store.createSession(a, 60)
    await store.createSession(b, 60)
    await store.lease(`poll:${sub}`, 'me', 1000)
    await store.releaseLease(`poll:${sub}`, 'me')
    await store.updateSession(sub, a.sid, { ip: '192.0.2.9' })
    await store.rotateCredential(sub, a.sid, a.credHash, 'next', Date.now(), Date.now() + 1000)
    await store.revokeSessions(sub, [a.sid, randomUUID()], 60)
    await store.revokeUser(sub, 60)
  }
  t.ok(calls.length >= subs.length * 6, `${calls.length} script calls`)
  for (const { keys, args } of calls) {
    const slots = new Set(keys.map((k) => keySlot(k)))
    t.equal(slots.size, 1, `one slot for ${keys.join(' ')}`)
    // REVOKE_USER reaches each session's keys through ARGV bases: they carry the same tag.
    for (const base of args.filter((x) => x.includes('{'))) t.ok(slots.has(keySlot(`${base}some-sid`)), `${base} is in the slot of KEYS`)
  }
  const used = new Set(await Promise.all(calls.map(async ({ keys }) => await ownerOf(cluster, keySlot(keys[0]!)))))
  t.equal(used.size, 3, 'the users\' slots are served by all three masters')
})

t.test('cluster: events cross stores, from users on every master, over sharded pub/sub', async (t) => {
  const prefix = newPrefix('sgc')
  const a = await newStore(cluster, prefix)
  const b = await newStore(cluster, prefix)
  t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
  const subs = await usersOn(cluster, [...cluster.nodes.map((n) => n.port), ...cluster.nodes.map((n) => n.port)])
  const seenByB: RevocationEvent[] = []
  const seenByA: RevocationEvent[] = []
  b.subscribe((e) => seenByB.push(e))
  a.subscribe((e) => seenByA.push(e))
  const sent: RevocationEvent[] = []
  for (const [i, sub] of subs.entries()) {
    const rec = record({ sub })
    await a.createSession(rec, 60)
    sent.push(i % 2 === 0 ? await a.revokeSessions(sub, [rec.sid], 60) : await a.revokeUser(sub, 60))
  }
  await waitUntil(async () => seenByB.length >= sent.length && seenByA.length >= sent.length, 3000, 'every event on both stores')
  t.same(seenByB, sent, 'the other store heard every event, in order')
  t.same(seenByA, sent, 'the publishing store heard its own events')

  // The channel is a shard channel: SUBSCRIBE (classic) on the same name hears nothing.
  const classic = new Redis({ host: '127.0.0.1', port: await ownerOf(cluster, keySlot(`${prefix}revocations`)) })
  t.teardown(() => { classic.disconnect() })
  const classicGot: string[] = []
  classic.on('message', (_ch: string, m: string) => classicGot.push(m))
  await classic.subscribe(`${prefix}revocations`)
  const extra = record()
  await a.createSession(extra, 60)
  const last = await a.revokeUser(extra.sub, 60)
  await waitUntil(async () => seenByB.includes(last) || seenByB.some((e) => e.sub === extra.sub), 2000, 'the last event')
  t.same(classicGot, [], 'SPUBLISH does not reach classic subscribers')
})

t.test('cluster: the subscriber follows the revocation channel when its slot migrates', async (t) => {
  const prefix = newPrefix('sgc')
  const channel = `${prefix}revocations`
  const slot = keySlot(channel)
  const logger = captureLogger()
  const a = await newStore(cluster, prefix, logger)
  const b = await newStore(cluster, prefix)
  t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
  const from = await ownerOf(cluster, slot)
  const to = cluster.nodes.find((n) => n.port !== from)!.port
  const shardSubscribers = async (port: number): Promise<number> =>
    await withAdmin(port, async (r) => Number((await r.call('PUBSUB', 'SHARDNUMSUB', channel) as [string, number])[1]))
  t.equal(await shardSubscribers(from), 2, 'both stores listen on the slot\'s master')
  await migrateSlot(slot, from, to, cluster)
  t.equal(await ownerOf(cluster, slot), to, 'the channel\'s slot moved')
  await waitUntil(async () => await shardSubscribers(to) === 2, 5000, 'both stores to re-subscribe on the new owner')
  t.equal(await shardSubscribers(from), 0, 'nobody listens on the old owner')

  const got: string[] = []
  b.subscribe((e) => got.push(e.sub))
  // Redis unsubscribes the shard channel's subscribers on the old owner; the store re-subscribes on the new one.
  const sub = randomUUID()
  await waitFor(async () => {
    await a.revokeUser(sub, 60)
    await waitUntil(async () => got.includes(sub), 300, 'the event')
  }, 10_000)
  t.ok(got.includes(sub), 'events flow after the slot moved')
  await b.ping()
})

t.test('cluster: a crashed master means bounded StoreUnavailableError, then recovery', async (t) => {
  const own = await startRedisCluster()
  t.teardown(() => own.stop())
  const prefix = newPrefix('sgc')
  const logger = captureLogger()
  const store = await newStore(own, prefix, logger)
  const listener = await newStore(own, prefix)
  t.teardown(async () => { await Promise.all([store.close(), listener.close()]) })
  // Crash the master that serves the revocation channel, so the subscriber has to move too.
  const victim = await ownerOf(own, keySlot(`${prefix}revocations`))
  const survivor = own.nodes.find((n) => n.port !== victim)!.port
  const [onVictim, onSurvivor] = await usersOn(own, [victim, survivor])
  for (const sub of [onVictim!, onSurvivor!]) await store.createSession(record({ sub }), 60)

  await own.kill(victim)
  const timed = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    const started = performance.now()
    await t.rejects(fn(), StoreUnavailableError, what)
    const ms = performance.now() - started
    t.ok(ms < 3 * TIMEOUT_MS, `${what}: failed after ${Math.round(ms)} ms`)
  }
  await timed('a user on the crashed master', async () => await store.check(onVictim!, randomUUID()))
  await timed('a revocation on the crashed master', async () => await store.revokeUser(onVictim!, 60))
  // Once the other masters agree the node is gone (node timeout 2 s) the whole cluster is down.
  await waitUntil(async () => /cluster_state:fail/.test(await withAdmin(survivor, async (r) => await r.cluster('INFO'))), 10_000, 'cluster_state:fail')
  await timed('a user on a surviving master during CLUSTERDOWN', async () => await store.check(onSurvivor!, randomUUID()))
  await timed('ping', async () => await store.ping())
  t.ok(logger.errors.includes('store unavailable'))

  await own.restart(victim)
  await waitFor(async () => { await store.ping(); await listener.ping() }, 15_000)
  t.same(await store.check(onSurvivor!, randomUUID()), { denied: false, version: 0 }, 'the survivors kept their data')
  t.same(await store.check(onVictim!, randomUUID()), { denied: false, version: null }, 'the restarted master lost its data')
  const got: string[] = []
  listener.subscribe((e) => got.push(e.sub))
  const sub = randomUUID()
  await waitFor(async () => {
    await store.revokeUser(sub, 60)
    await waitUntil(async () => got.includes(sub), 300, 'the event')
  }, 10_000)
  t.ok(got.includes(sub), 'events flow again')
  t.ok(logger.warns.includes('store available again'))
})

t.test('cluster: error classification', async (t) => {
  const reply = (message: string): Error => Object.assign(new Error(message), { name: 'ReplyError' })
  t.ok(isUnavailable(reply('CLUSTERDOWN The cluster is down')))
  t.ok(isUnavailable(reply('TRYAGAIN Multiple keys request during rehashing of slot')))
  t.ok(isUnavailable(new Error('Too many Cluster redirections. Last error: ReplyError: MOVED 1 127.0.0.1:1')), 'a MOVED storm')
  t.ok(isUnavailable(new Error('Connection is closed.')))
  t.ok(isUnavailable(new Error('no reply within 500 ms')))
  t.notOk(isUnavailable(reply('CROSSSLOT Keys in request don\'t hash to the same slot')), 'a bug, not an outage')
  t.notOk(isUnavailable(reply('MOVED 3999 127.0.0.1:6381')), 'a standalone URL pointing at a Cluster node is a misconfiguration')
  t.notOk(isUnavailable(reply('ERR Error running script')))
  t.throws(() => new RedisStore({ redis: { cluster: { nodes: cluster.nodes }, keyPrefix: 'sg{x}:', commandTimeoutMs: TIMEOUT_MS } }), /keyPrefix/)
})


