/**
 * A rolling upgrade keeps remembered devices: a device record in the previous Redis layout (long field
 * names, base64url credential hash, tokens inside the hash), written here with raw commands, and a device
 * cookie in the previous `<sid>.<credential>` format still renew through the new code (the owner is
 * looked up), get the new cookie format (five parts), and log out with the ID token as id_token_hint.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { clears, sessionOf } from '../helpers/flow.js'
import { startRedis } from '../helpers/redis-server.js'
import { startStack } from '../helpers/stack.js'
import { redisOf } from '../../src/config/types.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
const raw = new Redis(redis.port, '127.0.0.1')
t.teardown(() => raw.quit())
const tagOf = (sub: string): string => `{${Buffer.from(sub).toString('base64url')}}`

t.test('an old-format record and an old-format device cookie renew, upgrade and log out', async (t) => {
  const s = await startStack(t, { redisUrl: redis.url })
  const prefix = redisOf(s.config.store).keyPrefix
  const b = new Browser()
  await login(b, s.url, 'olga', { remember: true })
  const me = await sessionOf(b, s.url)
  const device = b.cookies(s.url).get('sg-device')!
  const [sid, credential, user, generation] = device.split('.')
  t.equal(sid, me.sid)
  t.equal(user, Buffer.from('olga').toString('base64url'), 'a new device cookie carries the user')
  t.equal(generation, '0', 'and generation 0')

  // Rewrite the record as the previous gateway version stored it.
  const rec = (await s.gateway.ctx.store.getSession('olga', me.sid))!
  const dev = `${prefix}dev:${tagOf('olga')}:${me.sid}`
  await raw.del(dev, `${prefix}tok:${tagOf('olga')}:${me.sid}`)
  const fields: string[] = []
  for (const [k, v] of Object.entries(rec)) if (v !== undefined) fields.push(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v))
  await raw.hset(dev, ...fields)
  await raw.pexpireat(dev, rec.expiresAt)
  t.ok('credHash' in await raw.hgetall(dev), 'the record is in the previous layout')

  const oldCookie = `sg-device=${sid!}.${credential!}`
  const renewed = await new Browser().fetch(`${s.url}/api/x`, { headers: { accept: 'application/json', cookie: oldCookie } })
  t.equal(renewed.status, 200, 'the old cookie renews')
  const next = renewed.setCookies.find((c) => c.startsWith('sg-device='))?.split(';')[0]?.slice('sg-device='.length) ?? ''
  t.match(next, new RegExp(`^${sid!}\\.[A-Za-z0-9_-]{43}\\.${user!}\\.1\\.[A-Za-z0-9_-]{22}$`), 'and is replaced by the new format (generation 1, tagged)')
  const stored = await raw.hgetallBuffer(dev)
  t.equal(stored.h?.length, 32, 'the rotated hash is stored raw')
  t.notOk('credHash' in stored, 'the old hash field is gone')

  const session = renewed.setCookies.filter((c) => c.startsWith('sg=') || c.startsWith('sg.')).map((c) => c.split(';')[0]!)
  const out = await new Browser().fetch(`${s.url}/auth/logout?sid=${me.sid}`, { headers: { cookie: [...session, `sg-device=${next}`].join('; ') } })
  t.equal(out.status, 302, 'RP-initiated logout')
  t.ok(clears(out.setCookies, 'sg-device'))
  const loc = new URL(out.headers.get('location') ?? '', s.url)
  t.ok(loc.searchParams.get('id_token_hint'), 'the ID token, read from the old record\'s hash, is the hint')
  t.equal(await s.gateway.ctx.store.getSession('olga', me.sid), null, 'the device is gone')
  t.equal(await raw.exists(`${prefix}sidx:${me.sid}`), 0, 'with its owner index')
  const again = await new Browser().fetch(`${s.url}/api/x`, { headers: { accept: 'application/json', cookie: `sg-device=${next}` } })
  t.equal(again.status, 401, 'its credential no longer renews')
})
