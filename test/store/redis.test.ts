import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisStore } from '../../src/store/redis.js'
import { StoreUnavailableError } from '../../src/store/store.js'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { storeSuite } from './suite.js'
import { captureLogger, nearCacheOver, waitFor } from '../helpers/store-kit.js'

const TIMEOUT_MS = 500

/** A store with its own key prefix on `server`, ready (connected and subscribed) when returned. */
async function newStore (server: RedisServer, prefix = `sgt${randomBytes(4).toString('hex')}:`, logger = captureLogger()): Promise<RedisStore> {
  const store = new RedisStore({ redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: TIMEOUT_MS }, logger })
  await store.ping()
  return store
}

const server = await startRedis()
t.teardown(() => server.stop())
const raw = new Redis(server.port, '127.0.0.1')
t.teardown(() => raw.quit())

await storeSuite(t, 'redis', async () => {
  const store = await newStore(server)
  return { store, cleanup: async () => { await store.close() } }
})

await storeSuite(t, 'near cache over redis', nearCacheOver(async () => {
  const store = await newStore(server)
  return { store, cleanup: async () => { await store.close() } }
}))

t.test('redis: a lock shares the claims\' keys, so the refresh lock excludes a replica of the previous release', async (t) => {
  const store = await newStore(server)
  t.teardown(() => store.close())
  const sid = randomUUID()
  t.equal(await store.claimOnce('refresh', sid, 60), true, 'the previous release took the refresh lock as a claim')
  t.equal(await store.tryLock(`refresh:${sid}`, 60), false, 'this release sees it held')
  const other = randomUUID()
  t.equal(await store.tryLock(`refresh:${other}`, 60), true)
  t.equal(await store.claimOnce('refresh', other, 60), false, 'and the previous release sees this one\'s lock')
})

t.test('redis: keys carry the prefix and the user hash tag', async (t) => {
  const prefix = `sgk${randomBytes(4).toString('hex')}:`
  const store = await newStore(server, prefix)
  t.teardown(() => store.close())
  const sub = 'user@example.test'
  const sid = randomUUID()
  const now = Date.now()
  await store.createSession({ sid, sub, iss: 'https://idp', idpSid: 'isid', createdAt: now, lastSeenAt: now, userAgent: 'ua', ip: 'ip', rememberMe: true, expiresAt: now + 60_000, credHash: 'h', email: 'User@Example.test' }, 60)
  await store.lease('ssf-poll:x', 'me', 60_000)
  await store.putNote('ssf-stream', 'x', '{}', 60)
  await store.epoch()
  await store.claimOnce('jti', 'abc', 60)
  await store.revokeSessions(sub, [randomUUID()], 60)
  const tag = `{${Buffer.from(sub).toString('base64url')}}`
  const keys = (await raw.keys(`${prefix}*`)).sort()
  for (const key of keys) t.ok(key.startsWith(prefix), `${key} has the prefix`)
  t.ok(keys.includes(`${prefix}ver:${tag}`))
  t.ok(keys.includes(`${prefix}dev:${tag}:${sid}`))
  t.ok(keys.includes(`${prefix}devs:${tag}`))
  t.ok(keys.some((k) => k.startsWith(`${prefix}deny:${tag}:`)))
  t.ok(keys.includes(`${prefix}idpsid:https://idp:isid`))
  t.ok(keys.includes(`${prefix}sidx:${sid}`))
  t.ok(keys.includes(`${prefix}jti:jti:abc`))
  t.ok(keys.includes(`${prefix}email:user@example.test`), 'the email index: its own key, lower-cased, no user tag')
  t.same(await raw.hgetall(`${prefix}email:user@example.test`), { [sid]: sub }, 'a small hash: sid -> sub')
  t.same(await raw.hgetall(`${prefix}idpsid:https://idp:isid`), { [sid]: sub })
  t.same(await raw.hgetall(`${prefix}devs:${tag}`), { [sid]: '' })
  for (const kind of ['email:user@example.test', 'idpsid:https://idp:isid', `devs:${tag}`]) t.equal(await raw.object('ENCODING', `${prefix}${kind}`), 'listpack', `${kind} is a listpack`)
  t.ok(await raw.pttl(`${prefix}email:user@example.test`) > 50_000, 'it lives as long as the session')
  t.ok(keys.includes(`${prefix}lease:ssf-poll:x`))
  t.ok(keys.includes(`${prefix}note:ssf-stream:x`))
  t.ok(keys.includes(`${prefix}epoch`))
  t.equal(await raw.type(`${prefix}dev:${tag}:${sid}`), 'hash')
  const recordTtl = await raw.pttl(`${prefix}dev:${tag}:${sid}`)
  t.ok(recordTtl > 50_000 && recordTtl <= 60_000, 'the record expires at expiresAt')
  t.ok(await raw.pttl(`${prefix}sidx:${sid}`) > 50_000, 'the sid index lives as long as the record')
})

t.test('redis: a sub with braces keeps its keys in one tag', async (t) => {
  const prefix = `sgb${randomBytes(4).toString('hex')}:`
  const store = await newStore(server, prefix)
  t.teardown(() => store.close())
  const sub = 'a{b}c}{'
  const sid = randomUUID()
  const now = Date.now()
  await store.createSession({ sid, sub, iss: 'i', createdAt: now, lastSeenAt: now, userAgent: 'ua', ip: 'ip', rememberMe: false, expiresAt: now + 60_000, credHash: 'h' }, 60)
  t.equal((await store.getSession(sub, sid))?.sub, sub)
  t.same(await store.check(sub, sid), { denied: false, version: 0 })
  t.match(await store.revokeUser(sub, 60), { sids: [sid], version: 1 })
  t.same(await store.check(sub, sid), { denied: true, version: 1 })
  for (const key of await raw.keys(`${prefix}*{*`)) {
    t.match(key, /^[^{}]*\{[A-Za-z0-9_-]+\}[^{}]*$/, `${key} has exactly one base64url tag`)
  }
})

t.test('redis: a malformed event is ignored with a warning', async (t) => {
  const prefix = `sgm${randomBytes(4).toString('hex')}:`
  const logger = captureLogger()
  const store = await newStore(server, prefix, logger)
  t.teardown(() => store.close())
  const got: string[] = []
  store.subscribe((e) => got.push(e.sub))
  await raw.publish(`${prefix}revocations`, 'not json')
  await raw.publish(`${prefix}revocations`, JSON.stringify({ sub: 1, sids: [] }))
  await store.revokeUser('good', 60)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(got, ['good'])
  t.equal(logger.warns.length, 2)
})

t.test('redis: outage is reported in bounded time, then the store recovers with a new epoch', async (t) => {
  const own = await startRedis()
  t.teardown(() => own.stop())
  const logger = captureLogger()
  const store = await newStore(own, undefined, logger)
  t.teardown(() => store.close())
  const sub = randomUUID()
  const sid = randomUUID()
  const now = Date.now()
  await store.createSession({ sid, sub, iss: 'i', createdAt: now, lastSeenAt: now, userAgent: 'ua', ip: 'ip', rememberMe: false, expiresAt: now + 60_000, credHash: 'h' }, 60)
  const before = await store.epoch()

  await own.kill()
  const started = performance.now()
  await t.rejects(store.check(sub, sid), StoreUnavailableError)
  const elapsed = performance.now() - started
  t.ok(elapsed < 2000, `check failed after ${Math.round(elapsed)} ms`)
  await t.rejects(store.revokeUser(sub, 60), { code: 'SG_STORE_UNAVAILABLE' })
  await t.rejects(store.ping(), StoreUnavailableError)
  t.equal(logger.errors.filter((m) => m === 'store unavailable').length, 1, 'one log line per burst')

  await own.restart()
  await waitFor(async () => { await store.ping() }, 10_000)
  t.ok(logger.warns.includes('store available again'))
  t.not(await store.epoch(), before, 'a store that lost its data has a new epoch')
  t.same(await store.check(sub, sid), { denied: false, version: null }, 'lost state reads as null')
  const got = new Promise<string>((resolve) => store.subscribe((e) => resolve(e.sub)))
  await store.revokeUser(sub, 60)
  t.equal(await got, sub, 'events flow again after the subscriber reconnected')
})

t.test('redis: unreachable at start-up fails in bounded time', async (t) => {
  const dead = await startRedis()
  await dead.stop()
  const store = new RedisStore({ redis: { url: dead.url, keyPrefix: 'sgd:', commandTimeoutMs: TIMEOUT_MS }, logger: captureLogger() })
  t.teardown(() => store.close())
  const started = performance.now()
  await t.rejects(store.check('u', 's'), StoreUnavailableError)
  await t.rejects(store.epoch(), StoreUnavailableError)
  t.ok(performance.now() - started < 2500)
})

