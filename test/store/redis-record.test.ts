/**
 * The compact device record (src/store/redis-record.ts) and the rolling upgrade: records written in the
 * previous layout (long field names, base64url hashes, tokens inside the hash), made here with raw Redis
 * commands exactly as the previous RedisStore wrote them, keep working through the new code: read,
 * renewed (rotated to the new layout), updated, detected as reused, logged out.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisStore, parseRedisUrl } from '../../src/store/redis.js'
import type { RenewDeviceInput, SessionRecord } from '../../src/store/store.js'
import { startRedis } from '../helpers/redis-server.js'
import { captureLogger, tagOf } from '../helpers/store-kit.js'

const server = await startRedis()
t.teardown(() => server.stop())
const raw = new Redis(server.port, '127.0.0.1')
t.teardown(() => raw.quit())

const ISS = 'https://idp.example.test'
const hashOf = (credential: string): string => createHash('sha256').update(credential).digest('base64url')

async function setup (t: Test): Promise<{ store: RedisStore, prefix: string }> {
  const prefix = `sgr${randomBytes(4).toString('hex')}:`
  const store = new RedisStore({ redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: 1000 }, logger: captureLogger() })
  await store.ping()
  t.teardown(() => store.close())
  return { store, prefix }
}

/** Writes a record, its indexes and the user's version as the previous RedisStore did (createSession). */
async function writeOld (prefix: string, rec: SessionRecord): Promise<void> {
  const tag = tagOf(rec.sub)
  const px = rec.expiresAt - Date.now()
  const member = JSON.stringify([rec.sub, rec.sid])
  const fields: string[] = ['version', String(rec.version)]
  for (const [k, v] of Object.entries(rec)) if (k !== 'version' && v !== undefined) fields.push(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v))
  await raw.set(`${prefix}ver:${tag}`, String(rec.version), 'PX', 3_600_000)
  await raw.hset(`${prefix}dev:${tag}:${rec.sid}`, ...fields)
  await raw.pexpireat(`${prefix}dev:${tag}:${rec.sid}`, rec.expiresAt)
  await raw.sadd(`${prefix}devs:${tag}`, rec.sid)
  await raw.set(`${prefix}sidx:${rec.sid}`, rec.sub, 'PX', px)
  if (rec.idpSid !== undefined) await raw.sadd(`${prefix}idpsid:${rec.iss}:${rec.idpSid}`, member)
  if (rec.email !== undefined) await raw.sadd(`${prefix}email:${rec.email.toLowerCase()}`, member)
}

function oldRecord (over: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now()
  return {
    sid: randomBytes(16).toString('base64url'),
    sub: randomUUID(),
    iss: ISS,
    idpSid: randomUUID(),
    createdAt: now - 60_000,
    lastSeenAt: now - 60_000,
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
    ip: '192.0.2.1',
    rememberMe: true,
    expiresAt: now + 3_600_000,
    version: 0,
    credHash: hashOf('c0'),
    tokens: 'v1.k1.sealed-old-bundle',
    email: 'Old@Example.test',
    ...over
  }
}

const input = (rec: SessionRecord, presented: string, at = Date.now()): RenewDeviceInput =>
  ({ sub: rec.sub, sid: rec.sid, presentedHash: presented, newHash: hashOf(`${presented}+`), nowMs: at, graceUntil: at + 1000, touch: { ip: '198.51.100.1', userAgent: 'new agent' }, denyTtl: 60 })

t.test('a previous-layout record reads, renews into the new layout, keeps its tokens, then logs out', async (t) => {
  const { store, prefix } = await setup(t)
  const rec = oldRecord()
  await writeOld(prefix, rec)
  const dev = `${prefix}dev:${tagOf(rec.sub)}:${rec.sid}`
  t.strictSame(await store.getSession(rec.sub, rec.sid), rec, 'read as written')
  t.same((await store.listSessions(rec.sub)).map((r) => r.sid), [rec.sid])

  const now = Date.now()
  const renewed = await store.renewDevice(input(rec, hashOf('c0'), now))
  t.equal(renewed.outcome, 'rotated', 'its base64url hash still matches')
  if (renewed.outcome !== 'rotated') return
  t.strictSame(renewed.record, { ...rec, credHash: hashOf(`${hashOf('c0')}+`), prevCredHash: hashOf('c0'), prevGraceUntil: now + 1000, generation: 1, lastSeenAt: now, ip: '198.51.100.1', userAgent: 'new agent' })
  const fields = await raw.hgetallBuffer(dev)
  t.equal(fields.h?.length, 32, 'the new hash is stored raw')
  t.equal(fields.p?.length, 32, 'so is the previous one')
  t.equal(fields.n?.toString(), '1', 'the generation (absent before: 0) in one short field')
  for (const old of ['credHash', 'prevCredHash', 'prevGraceUntil', 'lastSeenAt', 'ip', 'userAgent']) t.notOk(old in fields, `${old} replaced`)
  t.equal((await store.renewDevice(input(rec, hashOf('c0'), now + 10))).outcome, 'grace', 'the old credential within its grace window')

  await store.updateSession(rec.sub, rec.sid, { tokens: 'v1.k2.resealed' })
  t.notOk('tokens' in await raw.hgetall(dev), 'tokens leave the hash on their first write')
  t.equal(await raw.get(`${prefix}tok:${tagOf(rec.sub)}:${rec.sid}`), 'v1.k2.resealed', 'for their own key')
  t.ok(await raw.pttl(`${prefix}tok:${tagOf(rec.sub)}:${rec.sid}`) > 3_000_000, 'which lives as long as the record')
  t.equal((await store.getSession(rec.sub, rec.sid))?.tokens, 'v1.k2.resealed')

  const event = await store.revokeSessions(rec.sub, [rec.sid], 60)
  t.same(event.sids, [rec.sid])
  t.equal(await store.getSession(rec.sub, rec.sid), null)
  t.equal(await raw.exists(`${prefix}tok:${tagOf(rec.sub)}:${rec.sid}`), 0, 'its tokens go with it')
  t.equal(await store.findOwner(rec.sid), null, 'owner index dropped')
  t.same(await store.sessionsForIdpSession(ISS, rec.idpSid!), [], 'IdP-session index dropped (read from the renamed fields)')
  t.same(await store.usersForEmail('old@example.test'), [])
})

t.test('a previous-layout record: reuse after the window revokes it, with its indexes', async (t) => {
  const { store, prefix } = await setup(t)
  const rec = oldRecord({ credHash: hashOf('c1'), prevCredHash: hashOf('c0'), prevGraceUntil: Date.now() - 1 })
  await writeOld(prefix, rec)
  const result = await store.renewDevice(input(rec, hashOf('c0')))
  t.equal(result.outcome, 'reuse')
  t.equal(await store.getSession(rec.sub, rec.sid), null, 'revoked')
  t.equal((await store.check(rec.sub, rec.sid)).denied, true)
  t.equal(await store.findOwner(rec.sid), null)
  t.same(await store.sessionsForIdpSession(ISS, rec.idpSid!), [])
  t.equal(await raw.get(`${prefix}deny:${tagOf(rec.sub)}:${rec.sid}`), `${ISS}\n${rec.idpSid!}\nOld@Example.test`, 'the denylist entry keeps what a retry needs')
})

t.test('a previous-layout record: a user-wide revocation takes it; an outdated version is refused', async (t) => {
  const { store, prefix } = await setup(t)
  const rec = oldRecord()
  await writeOld(prefix, rec)
  const lagging = oldRecord({ sub: rec.sub })
  await writeOld(prefix, lagging)
  await raw.incr(`${prefix}ver:${tagOf(rec.sub)}`) // the user moved on; these records did not
  t.strictSame(await store.renewDevice(input(lagging, hashOf('c0'))), { outcome: 'version' })
  const event = await store.revokeUser(rec.sub, 60)
  t.same([...event.sids].sort(), [rec.sid, lagging.sid].sort())
  t.same(await store.sessionsForIdpSession(ISS, rec.idpSid!), [])
  t.equal(await store.findOwner(rec.sid), null)
})

t.test('the new layout: a listpack of short fields, raw hashes, the token bundle beside it', async (t) => {
  const { store, prefix } = await setup(t)
  const rec = oldRecord({ userAgent: 'x'.repeat(200) })
  const { version: _v, ...fresh } = rec
  await store.createSession(fresh, 3600)
  const dev = `${prefix}dev:${tagOf(rec.sub)}:${rec.sid}`
  t.equal(await raw.object('ENCODING', dev), 'listpack', 'every value fits a listpack (a long user agent is split)')
  const fields = await raw.hgetallBuffer(dev)
  t.ok(Object.keys(fields).every((f) => f.length <= 2), `short field names (${Object.keys(fields).join(',')})`)
  t.ok(Object.values(fields).every((v) => v.length <= 64), 'no value over 64 bytes')
  t.equal(fields.h?.length, 32)
  t.notOk('tokens' in fields)
  t.equal(await raw.get(`${prefix}tok:${tagOf(rec.sub)}:${rec.sid}`), rec.tokens)
  t.strictSame(await store.getSession(rec.sub, rec.sid), rec)
  const b = (n: number): string => randomBytes(n).toString('base64url')
  const sealed = `v1.k-2026.${b(12)}.${b(900)}.${b(16)}`
  await store.updateSession(rec.sub, rec.sid, { tokens: sealed })
  const stored = await raw.getBuffer(`${prefix}tok:${tagOf(rec.sub)}:${rec.sid}`)
  t.ok(stored !== null && stored.length < sealed.length * 0.8, `a sealed bundle is kept as bytes (${stored?.length ?? 0} for ${sealed.length} characters)`)
  t.equal((await store.getSession(rec.sub, rec.sid))?.tokens, sealed, 'and reads back as the same text')
  await store.updateSession(rec.sub, rec.sid, { userAgent: 'short' })
  t.equal((await store.getSession(rec.sub, rec.sid))?.userAgent, 'short', 'a shorter user agent leaves no chunk behind')
})

t.test('indexes of the previous layout (sets) are read, then converted to small hashes by the next session added', async (t) => {
  const { store, prefix } = await setup(t)
  const old = oldRecord({ idpSid: 'idp-set', email: 'Sets@Example.test' })
  await writeOld(prefix, old)
  const tag = tagOf(old.sub)
  const keys = [`${prefix}devs:${tag}`, `${prefix}idpsid:${ISS}:idp-set`, `${prefix}email:sets@example.test`]
  for (const key of keys) t.equal(await raw.type(key), 'set', `${key} starts as a set`)
  t.same(await store.sessionsForIdpSession(ISS, 'idp-set'), [{ sub: old.sub, sid: old.sid }], 'a set index is read')
  t.same(await store.usersForEmail('sets@example.test'), [old.sub])

  const now = Date.now()
  const added = { sid: randomUUID(), sub: old.sub, iss: ISS, idpSid: 'idp-set', email: 'sets@example.test', createdAt: now, lastSeenAt: now, userAgent: 'ua', ip: 'ip', rememberMe: true, expiresAt: now + 60_000, credHash: hashOf('n') }
  await store.createSession(added, 60)
  for (const key of keys) {
    t.equal(await raw.type(key), 'hash', `${key} is a hash now`)
    t.equal(await raw.object('ENCODING', key), 'listpack')
    t.ok(await raw.pttl(key) > 0, 'it keeps a lifetime')
  }
  t.same(await raw.hgetall(`${prefix}idpsid:${ISS}:idp-set`), { [old.sid]: old.sub, [added.sid]: old.sub }, 'the old member converted: sid -> sub')
  t.same((await store.listSessions(old.sub)).map((r) => r.sid).sort(), [old.sid, added.sid].sort(), 'both devices listed')
  t.same(sortRefs(await store.sessionsForIdpSession(ISS, 'idp-set')), sortRefs([{ sub: old.sub, sid: old.sid }, { sub: old.sub, sid: added.sid }]))

  await store.revokeSessions(old.sub, [old.sid], 60)
  t.same(await store.sessionsForIdpSession(ISS, 'idp-set'), [{ sub: old.sub, sid: added.sid }], 'a revocation drops its entry from the hash')
  t.same(await raw.hkeys(`${prefix}devs:${tag}`), [added.sid])
  await store.revokeUser(old.sub, 60)
  t.same(await store.listSessions(old.sub), [])
  t.same(await store.usersForEmail('sets@example.test'), [])
})

function sortRefs (refs: Array<{ sub: string, sid: string }>): Array<{ sub: string, sid: string }> {
  return [...refs].sort((a, b) => a.sid.localeCompare(b.sid))
}

t.test('store errors carry codes: a partial record is corrupt data, a bad setting a config error', async (t) => {
  const { store, prefix } = await setup(t)
  const sub = randomUUID()
  const sid = randomUUID()
  await raw.hset(`${prefix}dev:${tagOf(sub)}:${sid}`, 'i', ISS) // no ip, user agent, times, hash
  await t.rejects(store.getSession(sub, sid), { name: 'StoreCorruptRecordError', code: 'SG_STORE_CORRUPT_RECORD' })
  await raw.hset(`${prefix}dev:${tagOf(sub)}:${sid}`, 'a', 'ip', 'u', 'ua', 'c', 'soon', 'l', '1', 'e', '1', 'v', '0', 'h', 'x')
  await t.rejects(store.getSession(sub, sid), { code: 'SG_STORE_CORRUPT_RECORD', message: /createdAt is not an integer/ })
  t.throws(() => parseRedisUrl('http://localhost:6379'), { name: 'StoreConfigError', code: 'SG_STORE_CONFIG' })
  t.throws(() => new RedisStore({ redis: { cluster: { nodes: [{ host: '127.0.0.1', port: 1 }] }, keyPrefix: '{x}', commandTimeoutMs: 100 } }), { code: 'SG_STORE_CONFIG' })
})
