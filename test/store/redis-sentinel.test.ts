/**
 * RedisStore on a real Sentinel setup (master, replica, one sentinel): the shared store suite, a master
 * failover in the middle of a stream of revocations (none that was acknowledged may be lost), and the
 * two outcomes of a revocation that no replica confirmed.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { RedisStore } from '../../src/store/redis.js'
import { StoreUnavailableError, type RevocationEvent } from '../../src/store/store.js'
import { waitUntil, withAdmin } from '../helpers/redis-cluster.js'
import { startRedisSentinel, type RedisSentinel } from '../helpers/redis-sentinel.js'
import { storeSuite } from './suite.js'
import { captureLogger, newPrefix, record, sleep, waitFor } from '../helpers/store-kit.js'

const TIMEOUT_MS = 500
const UNREPLICATED = /no replica confirmed a revocation/



/** A store through the sentinels of `s`, ready (connected and subscribed) when returned. */
async function newStore (s: RedisSentinel, prefix = newPrefix('sgs'), logger = captureLogger()): Promise<RedisStore> {
  const store = new RedisStore({ redis: { sentinel: { name: s.name, nodes: s.sentinels }, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger })
  await waitFor(async () => { await store.ping() }, 10_000)
  return store
}



const sentinel = await startRedisSentinel()
t.teardown(() => sentinel.stop())

await storeSuite(t, 'redis-sentinel', async () => {
  const store = await newStore(sentinel)
  return { store, cleanup: async () => { await store.close() } }
})

t.test('sentinel: revocations wait for the replica', async (t) => {
  const logger = captureLogger()
  const store = await newStore(sentinel, undefined, logger)
  t.teardown(() => store.close())
  const rec = record()
  await store.createSession(rec, 60)
  await store.revokeSessions(rec.sub, [rec.sid], 60)
  await store.revokeUser(rec.sub, 60)
  // The replica has them by the time the calls resolved.
  const master = await sentinel.master()
  const replica = sentinel.dataNodes.find((n) => n.port !== master.port)!
  const ver = await withAdmin(replica.port, async (r) => await r.get(`${(store as unknown as { keys: { ver: (s: string) => string } }).keys.ver(rec.sub)}`))
  t.equal(ver, '1', 'the version bump is on the replica')
  t.same(logger.warns.filter((m) => UNREPLICATED.test(m)), [])
})

t.test('sentinel: a replica that does not confirm in time: accepted with a warning when the sentinel vouches for the master', async (t) => {
  const logger = captureLogger()
  const store = await newStore(sentinel, undefined, logger)
  t.teardown(() => store.close())
  const master = await sentinel.master()
  const replica = sentinel.dataNodes.find((n) => n.port !== master.port)!
  // The replica stalls for a while (as under load or in a long fork): WAIT 1 gets no acknowledgement.
  const stall = withAdmin(replica.port, async (r) => await r.call('DEBUG', 'SLEEP', '0.6')).catch(() => {})
  await sleep(50)
  const rec = record()
  await store.createSession(rec, 60)
  const ev = await store.revokeUser(rec.sub, 60)
  t.equal(ev.version, 1)
  t.equal(logger.warns.filter((m) => UNREPLICATED.test(m)).length, 1, 'warned')
  await store.revokeUser(rec.sub, 60)
  t.equal(logger.warns.filter((m) => UNREPLICATED.test(m)).length, 1, 'the warning is rate-limited')
  await stall
})

t.test('sentinel: a failover in the middle of revocations loses none that was acknowledged', async (t) => {
  const logger = captureLogger()
  const prefix = newPrefix('sgs')
  const writer = await newStore(sentinel, prefix, logger)
  const listener = await newStore(sentinel, prefix)
  t.teardown(async () => { await Promise.all([writer.close(), listener.close()]) })
  const epochBefore = await writer.epoch()
  const masterBefore = await sentinel.master()

  const heard: RevocationEvent[] = []
  listener.subscribe((e) => heard.push(e))

  interface Ack { sub: string, sid: string, version?: number, phase: string }
  const acked: Ack[] = []
  let unavailable = 0
  let slowest = 0
  /** What a client does: retries on StoreUnavailableError; any other error fails the test. */
  const retrying = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      const started = performance.now()
      try {
        return await fn()
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err
        unavailable++
        await sleep(20)
      } finally {
        slowest = Math.max(slowest, performance.now() - started)
      }
    }
  }
  let phase = 'before'
  const revokeOne = async (i: number): Promise<void> => {
    const rec = record()
    await retrying(async () => await writer.createSession(rec, 600))
    await retrying(async () => await writer.createSession(record({ sub: rec.sub }), 600))
    const at = phase
    if (i % 2 === 0) {
      await retrying(async () => await writer.revokeSessions(rec.sub, [rec.sid], 600))
      acked.push({ sub: rec.sub, sid: rec.sid, phase: at })
    } else {
      const ev = await retrying(async () => await writer.revokeUser(rec.sub, 600))
      acked.push({ sub: rec.sub, sid: rec.sid, ...(ev.version !== undefined ? { version: ev.version } : {}), phase: at })
    }
  }

  for (let i = 0; i < 10; i++) await revokeOne(i)
  await waitUntil(async () => heard.length >= 10, 2000, 'the events before the failover')

  // Four clients keep revoking while the master fails over, and for a while after.
  let running = true
  const workers = [0, 1, 2, 3].map(async (w) => {
    for (let i = w; running; i += 4) await revokeOne(i)
  })
  await sleep(200)
  phase = 'during'
  await sentinel.failover()
  phase = 'after'
  // Keep revoking for 2 s after the failover, longer (up to 15 s) on a loaded machine until the new
  // master has acknowledged some: the property under test is that none of them is lost.
  const afterStart = Date.now()
  await sleep(2000)
  await waitUntil(async () => acked.filter((a) => a.phase === 'after').length >= 5, 13_000, 'revocations acknowledged after the failover')
  t.comment(`the new master acknowledged revocations ${Date.now() - afterStart} ms after the failover ended`)
  running = false
  await Promise.all(workers)

  const masterAfter = await sentinel.master()
  t.not(masterAfter.port, masterBefore.port, 'the master changed')
  t.comment(`${acked.length} acknowledged revocations (${acked.filter((a) => a.phase === 'during').length} during the failover), ${unavailable} StoreUnavailableError retried, slowest call ${Math.round(slowest)} ms`)
  t.ok(acked.filter((a) => a.phase === 'during').length > 0, 'revocations were acknowledged during the failover')
  t.ok(acked.filter((a) => a.phase === 'after').length > 0, 'and after it')
  t.ok(slowest < 8 * TIMEOUT_MS, `every call ended in bounded time (slowest ${Math.round(slowest)} ms)`)

  // Every acknowledged revocation is on the new master.
  let lost = 0
  for (const a of acked) {
    const state = await retrying(async () => await writer.check(a.sub, a.sid))
    const rec = await retrying(async () => await writer.getSession(a.sub, a.sid))
    // A session revocation leaves a denylist entry; a user revocation a version at least the acknowledged
    // one (sessions carry the version they were created with, so every older session is refused).
    const ok = rec === null && (a.version === undefined ? state.denied : (state.version ?? -1) >= a.version)
    if (!ok) {
      lost++
      t.fail(`revocation of ${a.sub}/${a.sid} (${a.phase}) lost: ${JSON.stringify(state)}`)
    }
  }
  t.equal(lost, 0, 'no acknowledged revocation was lost')
  t.ok(logger.warns.some((m) => UNREPLICATED.test(m)), 'writes to the new master before it had a replica were accepted with a warning')

  t.equal(await writer.epoch(), epochBefore, 'the epoch survived the failover (the data did not reset)')

  // Events keep flowing to the listener, which followed the failover.
  await waitFor(async () => { await listener.ping() }, 10_000)
  const sub = randomUUID()
  const got = new Promise<RevocationEvent>((resolve) => listener.subscribe((e) => { if (e.sub === sub) resolve(e) }))
  const sent = await retrying(async () => await writer.revokeUser(sub, 60))
  t.same(await Promise.race([got, sleep(2000).then(() => 'timeout')]), sent, 'an event published after the failover reached the listener')
  t.ok(heard.some((e) => acked.some((a) => a.phase === 'after' && a.sub === e.sub)), 'the listener heard events from after the failover')
})

t.test('sentinel: a revocation no replica confirmed fails when the sentinel names another master', async (t) => {
  const own = await startRedisSentinel()
  t.teardown(() => own.stop())
  const logger = captureLogger()
  const store = await newStore(own, undefined, logger)
  t.teardown(() => store.close())
  const rec = record()
  await store.createSession(rec, 60)
  const master = await own.master()
  const replica = own.dataNodes.find((n) => n.port !== master.port)!
  // The sentinel's view changes under the store (as when the store's master was replaced but the store
  // has not heard of it yet), and the replica does not acknowledge.
  const sentinelPort = own.sentinels[0]!.port
  await withAdmin(sentinelPort, async (r) => {
    await r.call('SENTINEL', 'REMOVE', own.name)
    await r.call('SENTINEL', 'MONITOR', own.name, '127.0.0.1', String(replica.port), '1')
  })
  const stall = withAdmin(replica.port, async (r) => await r.call('DEBUG', 'SLEEP', '0.6')).catch(() => {})
  await sleep(50)
  const started = performance.now()
  await t.rejects(store.revokeUser(rec.sub, 60), StoreUnavailableError, 'the caller is told, and retries')
  t.ok(performance.now() - started < 8 * TIMEOUT_MS, 'in bounded time')
  t.same(logger.warns.filter((m) => UNREPLICATED.test(m)), [], 'not accepted with a warning')
  await stall
})


