/**
 * Bulk loader for the large-population scenario: writes device records (server-side, one Lua call per
 * batch of users) and denylist entries (pipelines) straight into Redis, in exactly the layout RedisStore.createSession / revokeSessions write
 * (src/store/redis-devices.ts, redis-indexes.ts, DESIGN.md section 4): per user `ver:{tag}` and the
 * `devs:{tag}` hash (sid -> ''); per device the `dev:{tag}:<sid>` hash (the compact fields of
 * src/store/redis-record.ts), `tok:{tag}:<sid>` (the sealed tokens), `sidx:<sid>`, and its entries (sid ->
 * sub) in the `idpsid:<iss>:<idpSid>` and `email:<address>` hashes; per denylist entry `deny:{tag}:<sid>`.
 * `checkLayout` compares a bulk record with one RedisStore wrote itself, so a drift in the store fails
 * the bench instead of measuring something else.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { encodeTokens } from '../../src/store/redis-record.js'
import type { SessionRecord } from '../../src/store/store.js'

export interface PopulationOptions {
  keyPrefix: string
  /** Devices per user (the last user may get fewer). */
  devicesPerUser: number
  /** The record every device copies its constant fields from (a real login's). */
  template: SessionRecord
  /** Lifetime of device records (ms) and of user state (ms), as the gateway sets them. */
  deviceTtlMs: number
  userStateTtlMs: number
  denyTtlS: number
}

const tag = (sub: string): string => `{${Buffer.from(sub, 'utf8').toString('base64url')}}`
/** A UUID-shaped subject, as most IdPs issue them. */
export const subOf = (prefix: string, i: number): string => `${prefix}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const rand = (bytes: number): string => randomBytes(bytes).toString('base64url')

// One EVAL writes a batch of users and their devices server-side; the constant fields (tokens, user agent)
// travel once per batch instead of once per device. ARGV: prefix, iss, userAgent, ip, rememberMe, now,
// expiresAt, device ttl ms, user-state ttl ms, tokens ('' = none), devices per user, then per user: sub,
// tag, email ('' = none), and per device: sid ('' = none), credHash, idpSid ('' = none). Same commands as
// RedisStore's CREATE script plus its separate sidx/idpsid/email writes.
const BULK = `
local p, iss, ua, ip, remember, now, expiresAt = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local devTtl, userTtl, tokens, dpu = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local i = 12
while i <= #ARGV do
  local sub, tag, email = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  redis.call('SET', p .. 'ver:' .. tag, '0', 'PX', userTtl)
  local devs = p .. 'devs:' .. tag
  for d = 1, dpu do
    local sid, cred, idp = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    if sid ~= '' then
      local f = {'v', '0', 'i', iss}
      if idp ~= '' then f[#f + 1] = 'd'; f[#f + 1] = idp end
      f[#f + 1] = 'c'; f[#f + 1] = now; f[#f + 1] = 'l'; f[#f + 1] = now
      for k = 0, math.max(1, math.ceil(#ua / 64)) - 1 do
        f[#f + 1] = k == 0 and 'u' or ('u' .. k); f[#f + 1] = string.sub(ua, k * 64 + 1, (k + 1) * 64)
      end
      local rest = {'a', ip, 'r', remember, 'e', expiresAt, 'h', cred}
      for _, v in ipairs(rest) do f[#f + 1] = v end
      if email ~= '' then f[#f + 1] = 'm'; f[#f + 1] = email end
      local dev = p .. 'dev:' .. tag .. ':' .. sid
      redis.call('HSET', dev, unpack(f))
      redis.call('PEXPIREAT', dev, expiresAt)
      if tokens ~= '' then redis.call('SET', p .. 'tok:' .. tag .. ':' .. sid, tokens, 'PXAT', expiresAt) end
      redis.call('SET', p .. 'sidx:' .. sid, sub, 'PX', devTtl)
      if idp ~= '' then
        local idx = p .. 'idpsid:' .. iss .. ':' .. idp
        redis.call('HSET', idx, sid, sub)
        redis.call('PEXPIRE', idx, devTtl)
      end
      if email ~= '' then
        local ex = p .. 'email:' .. string.lower(email)
        redis.call('HSET', ex, sid, sub)
        redis.call('PEXPIRE', ex, devTtl)
      end
      redis.call('HSET', devs, sid, '')
    end
  end
  redis.call('PEXPIRE', devs, devTtl)
end
return 0`

/** Writes `count` device records for users `subOf(prefix, 0..)`; resolves with the number of users. */
export async function loadDevices (redis: Redis, prefix: string, count: number, o: PopulationOptions): Promise<number> {
  const t = o.template
  const now = Date.now()
  const expiresAt = now + o.deviceTtlMs
  const idpSidLength = t.idpSid?.length ?? 0
  const users = Math.ceil(count / o.devicesPerUser)
  const USERS_PER_EVAL = 500
  const head = [o.keyPrefix, t.iss, t.userAgent, t.ip, t.rememberMe ? '1' : '0', String(now), String(expiresAt),
    String(o.deviceTtlMs), String(o.userStateTtlMs), t.tokens !== undefined ? encodeTokens(t.tokens) : '', String(o.devicesPerUser)]
  const inFlight = new Set<Promise<unknown>>()
  for (let u0 = 0; u0 < users; u0 += USERS_PER_EVAL) {
    const args: Array<string | Buffer> = [...head]
    for (let u = u0; u < Math.min(users, u0 + USERS_PER_EVAL); u++) {
      const sub = subOf(prefix, u)
      // Like a login: the record carries the user's own address (when the real one carried one).
      args.push(sub, tag(sub), t.email !== undefined ? `${sub}@example.com` : '')
      for (let d = 0; d < o.devicesPerUser; d++) {
        if (u * o.devicesPerUser + d >= count) { args.push('', '', ''); continue }
        // The credential hash as RedisStore stores it: its raw 32 bytes (src/store/redis-record.ts).
        args.push(rand(16), randomBytes(32), idpSidLength > 0 ? rand(Math.ceil(idpSidLength * 3 / 4)).slice(0, idpSidLength) : '')
      }
    }
    const done = redis.eval(BULK, 0, ...args)
    inFlight.add(done)
    void done.finally(() => inFlight.delete(done))
    if (inFlight.size >= 4) await Promise.race(inFlight)
  }
  await Promise.all(inFlight)
  return users
}

/** Writes `count` denylist entries (random sids of the population's users). */
export async function loadDenylist (redis: Redis, prefix: string, count: number, users: number, o: PopulationOptions): Promise<void> {
  const BATCH = 5000
  for (let i0 = 0; i0 < count; i0 += BATCH) {
    const pipe = redis.pipeline()
    for (let i = i0; i < Math.min(count, i0 + BATCH); i++) {
      pipe.set(`${o.keyPrefix}deny:${tag(subOf(prefix, i % users))}:${rand(16)}`, '1', 'EX', o.denyTtlS)
    }
    await pipe.exec()
  }
}

/** Redis `used_memory` in bytes, after letting lazy frees settle. */
export async function usedMemory (redis: Redis): Promise<number> {
  const info = await redis.info('memory')
  const m = /^used_memory:(\d+)/m.exec(info)
  if (m === null) throw new Error('INFO memory has no used_memory')
  return Number(m[1])
}

/**
 * Throws unless a bulk-written record has the same hash fields, key names and TTL kinds as one that
 * RedisStore.createSession wrote (`realSub`/`realSid`).
 */
export async function checkLayout (redis: Redis, o: PopulationOptions, real: { sub: string, sid: string }, bulk: { sub: string }): Promise<void> {
  const p = o.keyPrefix
  const realFields = Object.keys(await redis.hgetall(`${p}dev:${tag(real.sub)}:${real.sid}`)).sort()
  const bulkSids = await redis.hkeys(`${p}devs:${tag(bulk.sub)}`)
  if (bulkSids.length === 0) throw new Error('bulk layout: no devs set')
  const bulkFields = Object.keys(await redis.hgetall(`${p}dev:${tag(bulk.sub)}:${bulkSids[0]}`)).sort()
  if (JSON.stringify(realFields) !== JSON.stringify(bulkFields)) {
    throw new Error(`bulk layout drifted from RedisStore: ${JSON.stringify(realFields)} vs ${JSON.stringify(bulkFields)}`)
  }
  for (const key of [`${p}ver:${tag(bulk.sub)}`, `${p}devs:${tag(bulk.sub)}`, `${p}sidx:${bulkSids[0]}`]) {
    if (await redis.pttl(key) <= 0) throw new Error(`bulk layout: ${key} missing or without TTL`)
  }
  if (await redis.exists(`${p}sidx:${real.sid}`) !== 1) throw new Error('bulk layout: RedisStore no longer writes sidx: keys; update the loader')
  // The indexes' types (the store's small hashes) and entries: the real record's and the bulk one's.
  const realDev = await redis.hgetall(`${p}dev:${tag(real.sub)}:${real.sid}`)
  const bulkDev = await redis.hgetall(`${p}dev:${tag(bulk.sub)}:${bulkSids[0]}`)
  const indexes = (sub: string, sid: string, dev: Record<string, string>): Array<[string, string]> => [
    [`${p}devs:${tag(sub)}`, sid],
    ...(dev.d !== undefined ? [[`${p}idpsid:${dev.i ?? ''}:${dev.d}`, sid] as [string, string]] : []),
    ...(dev.m !== undefined ? [[`${p}email:${dev.m.toLowerCase()}`, sid] as [string, string]] : [])
  ]
  const describe = async (list: Array<[string, string]>): Promise<string[]> => await Promise.all(list.map(async ([key, sid]) => {
    const type = await redis.type(key)
    const value = type === 'hash' ? await redis.hget(key, sid) : null
    return `${key.slice(p.length).split(':')[0] ?? ''}:${type}:${value === null ? 'missing' : value === '' ? 'empty' : 'value'}`
  }))
  const [realIdx, bulkIdx] = [await describe(indexes(real.sub, real.sid, realDev)), await describe(indexes(bulk.sub, bulkSids[0]!, bulkDev))]
  if (JSON.stringify(realIdx) !== JSON.stringify(bulkIdx)) throw new Error(`bulk layout: indexes drifted from RedisStore: ${JSON.stringify(realIdx)} vs ${JSON.stringify(bulkIdx)}`)
  const realTok = await redis.exists(`${p}tok:${tag(real.sub)}:${real.sid}`)
  if (realTok !== await redis.exists(`${p}tok:${tag(bulk.sub)}:${bulkSids[0]}`)) throw new Error('bulk layout: token keys differ from RedisStore\'s')
}
