/**
 * The RedisStore's Lua scripts. Cluster rule: every key a script touches is in ONE slot, the user's
 * `{sub}` tag. KEYS name them where the count is known; REVOKE_USER reaches per-session keys through
 * ARGV key bases that carry the same tag (Redis Cluster allows undeclared keys of the declared slot).
 * Indexes keyed by something else (`idpsid:`, `sidx:`, `jti:`, `epoch`) are only ever touched by
 * single-key scripts or plain commands.
 */
import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'

/** A Lua script run by EVALSHA, falling back to EVAL after a server restart emptied the script cache. */
export class Script {
  readonly sha: string
  constructor (readonly name: string, readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex')
  }

  async run (client: Redis | Cluster, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (err) {
      // In a Cluster each node has its own script cache: the fallback goes to the same slot's node.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await client.eval(this.lua, keys.length, ...keys, ...args)
    }
  }
}

// KEYS: ver, dev, devs. ARGV: sid, expiresAt, userStateTtl ms, now, field/value pairs...
// The version key is created at 0 or kept, and its TTL only ever grows.
export const CREATE = new Script('create', `
local want = tonumber(ARGV[3])
if not redis.call('SET', KEYS[1], '0', 'PX', want, 'NX') then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 and ttl < want then redis.call('PEXPIRE', KEYS[1], want) end
end
local version = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'version', version, unpack(ARGV, 5))
redis.call('PEXPIREAT', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
local life = tonumber(ARGV[2]) - tonumber(ARGV[4])
if life > 0 and redis.call('PTTL', KEYS[3]) < life then redis.call('PEXPIRE', KEYS[3], life) end
return version`)

// KEYS: devs, then dev and deny of each sid. ARGV: denyTtl s, the sids. Returns sid, iss, idpSid, email per
// deleted record.
// The record goes first: a script stopped half-way (an ACL refusing a command) must not leave the device
// credential alive behind a denylist entry that expires. The denylist entry keeps the record's iss, IdP
// sid and email, so a retry after a lost reply or a failed publish still reports them (the caller drops
// the indexes and publishes again).
export const REVOKE_SESSIONS = new Script('revokeSessions', `
local out = {}
for i = 2, #KEYS, 2 do
  local sid = ARGV[i / 2 + 1]
  local meta = redis.call('HMGET', KEYS[i], 'iss', 'idpSid', 'email')
  local iss, idp, email = meta[1], meta[2], meta[3]
  local fresh = redis.call('DEL', KEYS[i]) == 1
  if not fresh then
    local prev = redis.call('GET', KEYS[i + 1])
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
  redis.call('SET', KEYS[i + 1], known and ((iss or '') .. '\\n' .. (idp or '') .. '\\n' .. (email or '')) or '1', 'EX', ARGV[1])
  redis.call('SREM', KEYS[1], sid)
  if known then
    table.insert(out, sid); table.insert(out, iss or ''); table.insert(out, idp or ''); table.insert(out, email or '')
  end
end
return out`)

// KEYS: ver, devs, revat. ARGV: denyTtl s, dev key base, deny key base (same slot as KEYS), now s, revat ttl s.
// Returns the new version, the revocation time, then sid, iss, idpSid, email per deleted record.
// The revocation time (for bearer tokens) never moves back and its TTL never shrinks.
export const REVOKE_USER = new Script('revokeUser', `
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local meta = redis.call('HMGET', ARGV[2] .. sid, 'iss', 'idpSid', 'email')
  if redis.call('DEL', ARGV[2] .. sid) == 1 then
    redis.call('SET', ARGV[3] .. sid, '1', 'EX', ARGV[1])
    table.insert(out, sid); table.insert(out, meta[1] or ''); table.insert(out, meta[2] or ''); table.insert(out, meta[3] or '')
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

// KEYS: dev. ARGV: expected, new, now, graceUntil.
export const ROTATE = new Script('rotate', `
local h = redis.call('HMGET', KEYS[1], 'credHash', 'prevCredHash', 'prevGraceUntil')
if not h[1] then return 'missing' end
if h[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'credHash', ARGV[2], 'prevCredHash', ARGV[1], 'prevGraceUntil', ARGV[4])
  return 'rotated'
end
if h[2] == ARGV[1] then
  if tonumber(ARGV[3]) <= tonumber(h[3] or '0') then return 'grace' end
  return 'reuse'
end
return 'unknown'`)

// KEYS: dev. ARGV: field/value pairs. Never recreates a record that expired or was revoked.
export const UPDATE = new Script('update', `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return 0`)

// KEYS: idpsid or email index. ARGV: member, lifetime ms. The index lives as long as its longest-lived session.
export const INDEX = new Script('index', `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
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
