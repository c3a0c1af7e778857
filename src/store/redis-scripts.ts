/**
 * The RedisStore's Lua scripts. Cluster rule: every key a script touches is in ONE slot, the user's
 * `{sub}` tag. KEYS name them where the count is known; REVOKE_USER reaches per-session keys through
 * ARGV key bases that carry the same tag (Redis Cluster allows undeclared keys of the declared slot).
 * Indexes keyed by something else (`idpsid:`, `sidx:`, `jti:`, `epoch`) are only ever touched by
 * single-key scripts or plain commands.
 */
import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'

interface BufferEval {
  evalshaBuffer: (...args: Array<string | number | Buffer>) => Promise<unknown>
  evalBuffer: (...args: Array<string | number | Buffer>) => Promise<unknown>
}

/** A Lua script run by EVALSHA, falling back to EVAL after a server restart emptied the script cache. */
export class Script {
  readonly sha: string
  constructor (readonly name: string, readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex')
  }

  async run (client: Redis | Cluster, keys: string[], args: Array<string | number | Buffer>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (err) {
      // In a Cluster each node has its own script cache: the fallback goes to the same slot's node.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await client.eval(this.lua, keys.length, ...keys, ...args)
    }
  }

  /**
   * As `run`, with bulk replies as Buffers (binary-safe: raw credential hashes). ioredis generates the
   * Buffer variants without typing them; `callBuffer` loses its command name under auto-pipelining.
   */
  async runBuffer (client: Redis | Cluster, keys: string[], args: Array<string | number | Buffer>): Promise<unknown> {
    const c = client as unknown as BufferEval
    try {
      return await c.evalshaBuffer(this.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await c.evalBuffer(this.lua, keys.length, ...keys, ...args)
    }
  }
}

// The lookup indexes (devs, idpsid, email) are small hashes, which stay listpacks (a set of strings is a
// hashtable before Redis 7.2): devs sid -> '', idpsid and email sid -> sub. An index of the previous layout
// (a set: sids, or JSON [sub, sid]) is converted when written, and read or trimmed as it is until then.
const IDX = `
local function hidx(key, json)
  if redis.call('TYPE', key)['ok'] ~= 'set' then return end
  local members = redis.call('SMEMBERS', key)
  local ttl = redis.call('PTTL', key)
  redis.call('DEL', key)
  for _, m in ipairs(members) do
    local ok, v = false, nil
    if json then ok, v = pcall(cjson.decode, m) end
    if ok and type(v) == 'table' and type(v[1]) == 'string' and type(v[2]) == 'string' then
      redis.call('HSET', key, v[2], v[1])
    elseif not json then
      redis.call('HSET', key, m, '')
    end
  end
  if ttl > 0 and redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ttl) end
end
local function hrem(key, field, legacy)
  if redis.call('TYPE', key)['ok'] == 'set' then redis.call('SREM', key, legacy) else redis.call('HDEL', key, field) end
end
local function hfields(key)
  if redis.call('TYPE', key)['ok'] == 'set' then return redis.call('SMEMBERS', key) end
  return redis.call('HKEYS', key)
end
`

// Device-record field names: the compact layout (redis-record.ts) first, the previous layout's as fallback.
// Returns iss, idpSid, email of a record ('' when absent).
const META = `
local function meta(dev)
  local m = redis.call('HMGET', dev, 'i', 'd', 'm', 'iss', 'idpSid', 'email')
  return m[1] or m[4] or '', m[2] or m[5] or '', m[3] or m[6] or ''
end
`

// Revokes one session of the user: the record (and token key) first, then the denylist entry, then the set
// member. A script stopped half-way (an ACL refusing a command) must not leave the device credential alive
// behind a denylist entry that expires. The denylist entry keeps the record's iss, IdP sid and email, so a
// retry after a lost reply or a failed publish still reports them (the caller drops the indexes and
// publishes again). Returns whether the session was known, and its iss, idpSid, email.
const REVOKE_ONE = META + IDX + `
local function revoke(dev, deny, tok, devs, sid, ttl)
  local iss, idp, email = meta(dev)
  local fresh = redis.call('DEL', dev) == 1
  redis.call('DEL', tok)
  if not fresh then
    iss, idp, email = nil, nil, nil
    local prev = redis.call('GET', deny)
    if prev and prev ~= '1' then
      local cut = string.find(prev, '\\n', 1, true)
      if cut then
        iss = string.sub(prev, 1, cut - 1)
        local rest = string.sub(prev, cut + 1)
        local cut2 = string.find(rest, '\\n', 1, true)
        if cut2 then idp = string.sub(rest, 1, cut2 - 1); email = string.sub(rest, cut2 + 1) else idp = rest; email = '' end
      end
    end
  end
  local known = fresh or (iss and iss ~= '')
  redis.call('SET', deny, known and ((iss or '') .. '\\n' .. (idp or '') .. '\\n' .. (email or '')) or '1', 'EX', ttl)
  hrem(devs, sid, sid)
  return known, iss or '', idp or '', email or ''
end
`

// Credential check and rotation. raw: the presented hash as stored (redis-record.ts encodeHash); text: as
// the previous layout stored it (base64url). Rotation writes the compact fields, drops the old ones and
// counts the generation ('n', absent = 0).
const CRED = `
local function cred(dev, raw, text, newRaw, now, graceUntil)
  local h = redis.call('HMGET', dev, 'h', 'p', 'g', 'credHash', 'prevCredHash', 'prevGraceUntil')
  if not h[1] and not h[4] then return 'missing' end
  local cur, prev, grace
  if h[1] then cur = h[1] == raw else cur = h[4] == text end
  if h[2] then prev = h[2] == raw; grace = h[3] else prev = h[5] == text; grace = h[6] end
  if cur then
    redis.call('HSET', dev, 'h', newRaw, 'p', raw, 'g', graceUntil)
    redis.call('HINCRBY', dev, 'n', 1)
    if h[4] or h[5] or h[6] then redis.call('HDEL', dev, 'credHash', 'prevCredHash', 'prevGraceUntil') end
    return 'rotated'
  end
  if prev then
    if tonumber(now) <= tonumber(grace or '0') then return 'grace' end
    return 'reuse'
  end
  return 'unknown'
end
`

// KEYS: ver, dev, devs, tok. ARGV: sid, expiresAt, userStateTtl ms, now, tokens ('' = none), field/value pairs...
// The version key is created at 0 or kept, and its TTL only ever grows.
export const CREATE = new Script('create', IDX + `
local want = tonumber(ARGV[3])
if not redis.call('SET', KEYS[1], '0', 'PX', want, 'NX') then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 and ttl < want then redis.call('PEXPIRE', KEYS[1], want) end
end
local version = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[4])
redis.call('HSET', KEYS[2], 'v', version, unpack(ARGV, 6))
redis.call('PEXPIREAT', KEYS[2], ARGV[2])
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5], 'PXAT', ARGV[2]) end
hidx(KEYS[3], false)
redis.call('HSET', KEYS[3], ARGV[1], '')
local life = tonumber(ARGV[2]) - tonumber(ARGV[4])
if life > 0 and redis.call('PTTL', KEYS[3]) < life then redis.call('PEXPIRE', KEYS[3], life) end
return version`)

// KEYS: devs, then dev, deny and tok of each sid. ARGV: denyTtl s, the sids. Returns sid, iss, idpSid,
// email per deleted record.
export const REVOKE_SESSIONS = new Script('revokeSessions', REVOKE_ONE + `
local out = {}
for i = 2, #KEYS, 3 do
  local sid = ARGV[(i + 1) / 3 + 1]
  local known, iss, idp, email = revoke(KEYS[i], KEYS[i + 1], KEYS[i + 2], KEYS[1], sid, ARGV[1])
  if known then
    table.insert(out, sid); table.insert(out, iss); table.insert(out, idp); table.insert(out, email)
  end
end
return out`)

// KEYS: ver, devs, revat. ARGV: denyTtl s, dev key base, deny key base (same slot as KEYS), now s, revat ttl s,
// tok key base. Returns the new version, the revocation time, then sid, iss, idpSid, email per deleted record.
// The revocation time (for bearer tokens) never moves back and its TTL never shrinks.
export const REVOKE_USER = new Script('revokeUser', META + IDX + `
local out = {}
for _, sid in ipairs(hfields(KEYS[2])) do
  local iss, idp, email = meta(ARGV[2] .. sid)
  redis.call('DEL', ARGV[6] .. sid)
  if redis.call('DEL', ARGV[2] .. sid) == 1 then
    redis.call('SET', ARGV[3] .. sid, '1', 'EX', ARGV[1])
    table.insert(out, sid); table.insert(out, iss); table.insert(out, idp); table.insert(out, email)
  end
end
redis.call('DEL', KEYS[2])
local want = tonumber(ARGV[1]) * 1000
local existed = redis.call('EXISTS', KEYS[1]) == 1
local version = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if (not existed) or (ttl >= 0 and ttl < want) then redis.call('PEXPIRE', KEYS[1], want) end
local at = tonumber(ARGV[4])
local prev = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if prev > at then at = prev end
local keep = tonumber(ARGV[5])
local left = redis.call('TTL', KEYS[3])
if left > keep then keep = left end
redis.call('SET', KEYS[3], string.format('%d', at), 'EX', keep)
table.insert(out, 1, at)
table.insert(out, 1, version)
return out`)

// KEYS: idpout marker. ARGV: ttl s. Its TTL never shrinks (an IdP may repeat a logout).
export const IDP_LOGOUT = new Script('idpLogout', `
local keep = tonumber(ARGV[1])
local left = redis.call('TTL', KEYS[1])
if left > keep then keep = left end
redis.call('SET', KEYS[1], '1', 'EX', keep)
return 0`)

// KEYS: dev. ARGV: expected (stored form), new (stored form), now, graceUntil, expected (previous layout's form).
export const ROTATE = new Script('rotate', CRED + `
return cred(KEYS[1], ARGV[1], ARGV[5], ARGV[2], ARGV[3], ARGV[4])`)

// KEYS: dev, tok. ARGV: '1' to replace the tokens with ARGV[2] (else '0'), n, n field/value arguments, then
// fields to delete. Never recreates a record that expired or was revoked; the tokens live as long as it.
export const UPDATE = new Script('update', `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[3])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + n)) end
if #ARGV > 3 + n then redis.call('HDEL', KEYS[1], unpack(ARGV, 4 + n)) end
if ARGV[1] == '1' then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl) end
end
return 1`)

// Device renewal in one round trip. KEYS: dev, ver, deny, tok, devs (the user's slot), then the epoch key
// outside a Cluster (in a Cluster it lives in another slot and is read beside the script).
// ARGV: sid, presented (stored form), presented (previous layout's form), new (stored form), now ms,
// graceUntil, denyTtl s, a new epoch value, the generation the cookie was issued at ('' unless its tag
// verified), n, n touch field/value arguments, then fields to delete. A credential matching neither hash
// whose (authentic) generation is below the record's was rotated away more than once: reuse, once the
// last rotation's grace window is over (before, it may be a request that was in flight all along).
// Replies {refusal} | {'reuse', iss, idpSid, email} (the device is revoked) |
// {'rotated'|'grace', version, epoch, tokens, field, value...} (after rotation and touch).
export const RENEW = new Script('renewDevice', REVOKE_ONE + CRED + `
local dev, ver, deny, tok, devs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local m = redis.call('HMGET', dev, 'e', 'v', 'expiresAt', 'version')
local exp = m[1] or m[3]
if not exp then return {'missing'} end
if tonumber(ARGV[5]) >= tonumber(exp) then return {'expired'} end
if redis.call('EXISTS', deny) == 1 then return {'denied'} end
local v = redis.call('GET', ver)
if not v then return {'state_lost'} end
if tonumber(m[2] or m[4] or '0') < tonumber(v) then return {'version'} end
local r = cred(dev, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if r == 'unknown' and ARGV[9] ~= '' and tonumber(ARGV[9]) < tonumber(redis.call('HGET', dev, 'n') or '0')
  and tonumber(ARGV[5]) > tonumber(redis.call('HGET', dev, 'g') or '0') then r = 'reuse' end
if r == 'reuse' then
  local _, iss, idp, email = revoke(dev, deny, tok, devs, ARGV[1], ARGV[7])
  return {'reuse', iss, idp, email}
end
if r ~= 'rotated' and r ~= 'grace' then return {r} end
local n = tonumber(ARGV[10])
if n > 0 then redis.call('HSET', dev, unpack(ARGV, 11, 10 + n)) end
if #ARGV > 10 + n then redis.call('HDEL', dev, unpack(ARGV, 11 + n)) end
local epoch = ''
if KEYS[6] then
  redis.call('SET', KEYS[6], ARGV[8], 'NX')
  epoch = redis.call('GET', KEYS[6])
end
local out = {r, v, epoch, redis.call('GET', tok)}
for _, x in ipairs(redis.call('HGETALL', dev)) do table.insert(out, x) end
return out`)

// KEYS: idpsid or email index. ARGV: sid, sub, lifetime ms. The index lives as long as its longest-lived session.
export const INDEX = new Script('index', IDX + `
hidx(KEYS[1], true)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 0`)

export const EPOCH = new Script('epoch', `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`)

// KEYS: lease. ARGV: holder, ttl ms. Taken when free, extended when the holder's own; 1 when held by it.
export const LEASE = new Script('lease', `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]); return 1 end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// KEYS: lease. ARGV: holder. Deletes the lease only when the holder's own.
export const RELEASE = new Script('release', `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`)
