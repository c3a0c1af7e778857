/**
 * RedisStore: the shared Store for many replicas (ioredis).
 *
 * Every key of one user carries the hash tag `{base64url(sub)}` (DESIGN.md section 4), so the hot-path
 * MGET and the Lua scripts that change several keys of one user stay in one Cluster slot. Indexes keyed
 * by something else (`idpsid:`, `sidx:`) live in other slots and are written with separate commands.
 *
 * Calls are bounded: a command is only sent on a ready connection (no offline queue, no replay after a
 * reconnect), waits at most `commandTimeoutMs` for the connection, then at most `commandTimeoutMs` for
 * the reply, and fails with StoreUnavailableError. Reconnection runs in the background with backoff.
 */
import { createHash, randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { RedisConfig } from '../config/types.js'
import {
  StoreUnavailableError,
  type RevocationEvent,
  type RotateResult,
  type SessionCheck,
  type SessionRecord,
  type Store
} from './store.js'

/** The pino-like logger the store reports outages and bad messages to. */
export interface StoreLogger {
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

export interface RedisStoreOptions {
  redis: RedisConfig
  logger?: StoreLogger
}

type Client = Redis | Cluster
type Patch = Partial<Pick<SessionRecord, 'lastSeenAt' | 'userAgent' | 'ip' | 'tokens'>>

const EVENT = 'revocation'
const HEARTBEAT_MS = 15_000
const RETRY_CAP_MS = 2_000

/** Builds the client for the configured topology; the store's bounded-call settings apply to all. */
export function connect (cfg: RedisConfig): Client {
  const common: RedisOptions = {
    commandTimeout: cfg.commandTimeoutMs,
    // Destroys a socket that stops answering (half-open TCP), so it reconnects instead of timing out forever.
    socketTimeout: Math.max(2 * cfg.commandTimeoutMs, 1000),
    connectTimeout: Math.max(2 * cfg.commandTimeoutMs, 1000),
    // The store waits for 'ready' itself; a queued or replayed write could run after its caller gave up.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), RETRY_CAP_MS) + Math.floor(Math.random() * 100),
    ...(cfg.username !== undefined ? { username: cfg.username } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {})
  }
  if (cfg.url !== undefined) return new Redis({ ...parseRedisUrl(cfg.url), ...common })
  if (cfg.sentinel !== undefined) {
    return new Redis({
      ...common,
      sentinels: cfg.sentinel.nodes,
      name: cfg.sentinel.name,
      ...(cfg.sentinel.password !== undefined ? { sentinelPassword: cfg.sentinel.password } : {})
    })
  }
  if (cfg.cluster !== undefined) {
    // Not yet covered by tests; pub/sub over Cluster is a later issue.
    return new Cluster(cfg.cluster.nodes, {
      redisOptions: common,
      enableOfflineQueue: false,
      clusterRetryStrategy: common.retryStrategy ?? undefined
    })
  }
  throw new Error('store.redis needs one of url, sentinel or cluster')
}

/** A second connection for pub/sub; the store subscribes on every 'ready' itself, to know when it listens. */
function subscriberOf (client: Client): Client {
  if (client instanceof Cluster) return client.duplicate([], { redisOptions: { autoResubscribe: false } })
  return client.duplicate({ autoResubscribe: false })
}

/** Lets callers wait, with a deadline, for a condition that connection events make true. */
class Waiters {
  private readonly wakers = new Set<() => void>()

  async until (cond: () => boolean, ms: number, what: string): Promise<void> {
    if (cond()) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wakers.delete(wake)
        reject(new Error(`${what} within ${ms} ms`))
      }, ms)
      const wake = (): void => {
        if (!cond()) return
        clearTimeout(timer)
        this.wakers.delete(wake)
        resolve()
      }
      this.wakers.add(wake)
    })
  }

  notify (): void {
    for (const wake of [...this.wakers]) wake()
  }
}

/** redis:// and rediss:// URLs; credentials from the URL unless the config names its own. */
export function parseRedisUrl (url: string): RedisOptions {
  const u = new URL(url)
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`store.redis.url: unsupported scheme ${u.protocol}`)
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0
  if (!Number.isInteger(db) || db < 0) throw new Error('store.redis.url: bad database number')
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'), // IPv6 literal without brackets
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: { servername: u.hostname } } : {})
  }
}

/** A Lua script run by EVALSHA, falling back to EVAL after a server restart emptied the script cache. */
class Script {
  readonly sha: string
  constructor (readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex')
  }

  async run (client: Client, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await client.eval(this.lua, keys.length, ...keys, ...args)
    }
  }
}

// KEYS: ver, dev, devs. ARGV: sid, expiresAt, userStateTtl ms, now, field/value pairs...
// The version key is created at 0 or kept, and its TTL only ever grows.
const CREATE = new Script(`
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

// KEYS: devs, then dev and deny of each sid. ARGV: denyTtl s, the sids. Returns sid, iss, idpSid per deleted record.
const REVOKE_SESSIONS = new Script(`
local out = {}
for i = 2, #KEYS, 2 do
  local sid = ARGV[i / 2 + 1]
  local meta = redis.call('HMGET', KEYS[i], 'iss', 'idpSid')
  redis.call('SET', KEYS[i + 1], '1', 'EX', ARGV[1])
  redis.call('SREM', KEYS[1], sid)
  if redis.call('DEL', KEYS[i]) == 1 then
    table.insert(out, sid); table.insert(out, meta[1] or ''); table.insert(out, meta[2] or '')
  end
end
return out`)

// KEYS: ver, devs. ARGV: denyTtl s, dev key base, deny key base (same slot as KEYS).
// Returns the new version, then sid, iss, idpSid per deleted record.
const REVOKE_USER = new Script(`
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local meta = redis.call('HMGET', ARGV[2] .. sid, 'iss', 'idpSid')
  if redis.call('DEL', ARGV[2] .. sid) == 1 then
    redis.call('SET', ARGV[3] .. sid, '1', 'EX', ARGV[1])
    table.insert(out, sid); table.insert(out, meta[1] or ''); table.insert(out, meta[2] or '')
  end
end
redis.call('DEL', KEYS[2])
local want = tonumber(ARGV[1]) * 1000
local existed = redis.call('EXISTS', KEYS[1]) == 1
local version = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if (not existed) or (ttl >= 0 and ttl < want) then redis.call('PEXPIRE', KEYS[1], want) end
table.insert(out, 1, version)
return out`)

// KEYS: dev. ARGV: expected, new, now, graceUntil.
const ROTATE = new Script(`
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
const UPDATE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return 0`)

// KEYS: idpsid index. ARGV: member, lifetime ms. The index lives as long as its longest-lived session.
const INDEX = new Script(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

const EPOCH = new Script(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`)

// Replies that mean "not now" rather than "bad request".
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|OOM|MISCONF|NOREPLICAS)\b/

/** Connection trouble and timeouts (ioredis throws plain Errors) versus server replies to a bad command. */
function isUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return err.name !== 'ReplyError' || UNAVAILABLE_REPLY.test(err.message)
}

export class RedisStore implements Store {
  readonly kind = 'redis'
  private readonly client: Client
  private readonly subscriber: Client
  private readonly keys: Keys
  private readonly logger: StoreLogger
  private readonly timeoutMs: number
  private readonly events = new EventEmitter()
  private readonly waiters = new Waiters()
  private readonly heartbeat: NodeJS.Timeout
  private epochCache: string | undefined
  private generation = 0 // bumped on every 'ready': an epoch read across a reconnect is not cached
  private outage: { since: number, failures: number } | undefined
  private listening = false // the subscriber is subscribed to the revocation channel
  private closed = false

  constructor (opts: RedisStoreOptions) {
    this.keys = new Keys(opts.redis.keyPrefix)
    this.logger = opts.logger ?? { warn: (obj, msg) => console.warn(msg, obj), error: (obj, msg) => console.error(msg, obj) }
    this.timeoutMs = opts.redis.commandTimeoutMs
    this.events.setMaxListeners(0)
    this.client = connect(opts.redis)
    this.client.on('error', (err: unknown) => this.noteFailure('connection', err))
    this.client.on('ready', () => {
      this.generation++
      this.epochCache = undefined // the server may have lost its data (and its epoch) meanwhile
      this.noteRecovery()
      this.waiters.notify()
    })
    this.subscriber = subscriberOf(this.client)
    this.subscriber.on('error', (err: unknown) => this.noteFailure('subscriber', err))
    this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message))
    this.subscriber.on('close', () => { this.listening = false })
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(this.keys.channel).then(() => {
        this.listening = true
        this.waiters.notify()
      }, (err: unknown) => this.noteFailure('subscribe', err)) // the next 'ready' tries again
    })
    // An idle subscriber never notices a half-open socket; a ping arms socketTimeout so it reconnects.
    this.heartbeat = setInterval(() => {
      if (this.subscriber.status === 'ready') this.subscriber.ping().catch((err: unknown) => this.noteFailure('subscriber', err))
    }, HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  async epoch (): Promise<string> {
    if (this.epochCache !== undefined) return this.epochCache
    const gen = this.generation
    const value = await this.call('epoch', async (c) => await EPOCH.run(c, [this.keys.epoch], [randomBytes(16).toString('base64url')]))
    if (typeof value !== 'string') throw new Error('store: epoch reply is not a string')
    if (gen === this.generation) this.epochCache = value
    return value
  }

  async check (sub: string, sid: string): Promise<SessionCheck> {
    const [deny, ver] = await this.call('check', async (c) => await c.mget(this.keys.deny(sub, sid), this.keys.ver(sub)))
    return { denied: deny != null, version: ver == null ? null : toInt(ver, 'ver') }
  }

  async createSession (rec: Omit<SessionRecord, 'version'>, userStateTtl: number): Promise<number> {
    const now = Date.now()
    const px = Math.max(1, Math.ceil(rec.expiresAt - now))
    // One connection runs commands in order: the indexes exist before the record, so a logout racing
    // this call finds the session. They live in other slots, hence separate commands.
    const [,, version] = await this.call('createSession', async (c) => await Promise.all([
      c.set(this.keys.sidx(rec.sid), rec.sub, 'PX', px),
      rec.idpSid !== undefined
        ? INDEX.run(c, [this.keys.idpsid(rec.iss, rec.idpSid)], [JSON.stringify([rec.sub, rec.sid]), px])
        : undefined,
      CREATE.run(
        c,
        [this.keys.ver(rec.sub), this.keys.dev(rec.sub, rec.sid), this.keys.devs(rec.sub)],
        [rec.sid, rec.expiresAt, secondsToMs(userStateTtl), now, ...toHash(rec)]
      )
    ]))
    return toInt(version, 'ver')
  }

  async getSession (sub: string, sid: string): Promise<SessionRecord | null> {
    const hash = await this.call('getSession', async (c) => await c.hgetall(this.keys.dev(sub, sid)))
    return fromHash(hash)
  }

  async findOwner (sid: string): Promise<string | null> {
    return await this.call('findOwner', async (c) => await c.get(this.keys.sidx(sid)))
  }

  async listSessions (sub: string): Promise<SessionRecord[]> {
    const sids = await this.call('listSessions', async (c) => await c.smembers(this.keys.devs(sub)))
    if (sids.length === 0) return []
    const hashes = await this.call('listSessions', async (c) => await Promise.all(sids.map(async (sid) => await c.hgetall(this.keys.dev(sub, sid)))))
    const records: SessionRecord[] = []
    const stale: string[] = []
    hashes.forEach((hash, i) => {
      const rec = fromHash(hash)
      if (rec !== null) records.push(rec)
      else stale.push(sids[i] ?? '')
    })
    // Expired records leave their id in the set; drop them so the set stays bounded.
    if (stale.length > 0) await this.call('listSessions', async (c) => await c.srem(this.keys.devs(sub), ...stale))
    return records.sort((a, b) => b.createdAt - a.createdAt)
  }

  async updateSession (sub: string, sid: string, patch: Patch): Promise<void> {
    const fields = toHash(patch)
    if (fields.length === 0) return
    await this.call('updateSession', async (c) => await UPDATE.run(c, [this.keys.dev(sub, sid)], fields))
  }

  async rotateCredential (sub: string, sid: string, expectedHash: string, newHash: string, now: number, graceUntil: number): Promise<RotateResult> {
    const result = await this.call('rotateCredential', async (c) =>
      await ROTATE.run(c, [this.keys.dev(sub, sid)], [expectedHash, newHash, now, graceUntil]))
    if (result === 'rotated' || result === 'grace' || result === 'reuse' || result === 'unknown' || result === 'missing') return result
    throw new Error(`store: unexpected rotate reply ${String(result)}`)
  }

  async revokeSessions (sub: string, sids: string[], denyTtl: number): Promise<RevocationEvent> {
    const keys = [this.keys.devs(sub), ...sids.flatMap((sid) => [this.keys.dev(sub, sid), this.keys.deny(sub, sid)])]
    const reply = await this.call('revokeSessions', async (c) => await REVOKE_SESSIONS.run(c, keys, [secondsToS(denyTtl), ...sids]))
    await this.dropIndexes(sub, toTriples(reply))
    return await this.publish({ sub, sids: [...sids], at: Date.now() })
  }

  async revokeUser (sub: string, denyTtl: number): Promise<RevocationEvent> {
    const reply = await this.call('revokeUser', async (c) => await REVOKE_USER.run(
      c,
      [this.keys.ver(sub), this.keys.devs(sub)],
      [secondsToS(denyTtl), this.keys.dev(sub, ''), this.keys.deny(sub, '')]
    ))
    if (!Array.isArray(reply)) throw new Error('store: unexpected revokeUser reply')
    const [version, ...rest] = reply as unknown[]
    const deleted = toTriples(rest)
    await this.dropIndexes(sub, deleted)
    return await this.publish({ sub, sids: deleted.map((d) => d.sid), version: toInt(version, 'ver'), at: Date.now() })
  }

  async sessionsForIdpSession (iss: string, idpSid: string): Promise<Array<{ sub: string, sid: string }>> {
    const members = await this.call('sessionsForIdpSession', async (c) => await c.smembers(this.keys.idpsid(iss, idpSid)))
    return members.map(parseMember).filter((m): m is { sub: string, sid: string } => m !== null)
  }

  async claimOnce (kind: string, id: string, ttl: number): Promise<boolean> {
    const ok = await this.call('claimOnce', async (c) => await c.set(this.keys.jti(kind, id), '1', 'EX', secondsToS(ttl), 'NX'))
    return ok === 'OK'
  }

  subscribe (listener: (event: RevocationEvent) => void): () => void {
    this.events.on(EVENT, listener)
    return () => { this.events.off(EVENT, listener) }
  }

  /** Also waits (bounded) until this replica receives revocation events: readiness needs both. */
  async ping (): Promise<void> {
    await this.call('ping', async (c) => await c.ping())
    try {
      await this.waiters.until(() => this.closed || this.listening, this.timeoutMs, 'not subscribed to revocation events')
    } catch (err) {
      throw new StoreUnavailableError('store unavailable (subscribe)', { cause: err })
    }
    if (this.closed) throw new StoreUnavailableError('store closed')
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.heartbeat)
    this.waiters.notify()
    this.events.removeAllListeners()
    await Promise.all([quit(this.client), quit(this.subscriber)])
  }

  /** Runs one bounded round trip; connection trouble becomes StoreUnavailableError. */
  private async call<T> (op: string, fn: (c: Client) => Promise<T>): Promise<T> {
    try {
      await this.whenReady()
      const result = await fn(this.client)
      this.noteRecovery()
      return result
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err
      if (!isUnavailable(err)) throw err
      this.noteFailure(op, err)
      throw new StoreUnavailableError(`store unavailable (${op})`, { cause: err })
    }
  }

  /** Waits up to commandTimeoutMs for a ready connection instead of queueing the command. */
  private async whenReady (): Promise<void> {
    if (this.closed) throw new StoreUnavailableError('store closed')
    if (this.client.status === 'ready') return
    if (this.client.status === 'end') throw new StoreUnavailableError('store connection ended')
    await this.waiters.until(() => this.closed || this.client.status === 'ready', this.timeoutMs, 'not connected')
    if (this.closed) throw new StoreUnavailableError('store closed')
  }

  /** Removes deleted sessions from the indexes that live outside the user's slot. */
  private async dropIndexes (sub: string, deleted: Deleted[]): Promise<void> {
    if (deleted.length === 0) return
    await this.call('revoke', async (c) => await Promise.all(deleted.flatMap((d) => [
      c.del(this.keys.sidx(d.sid)),
      ...(d.idpSid !== '' ? [c.srem(this.keys.idpsid(d.iss, d.idpSid), JSON.stringify([sub, d.sid]))] : [])
    ])))
  }

  /** Publishes to every replica (this one included, through its subscriber). */
  private async publish (event: RevocationEvent): Promise<RevocationEvent> {
    // The revocation is already stored; a failed publish still fails the call so the caller retries.
    await this.call('publish', async (c) => await c.publish(this.keys.channel, JSON.stringify(event)))
    return event
  }

  private onMessage (channel: string, message: string): void {
    if (channel !== this.keys.channel) return
    const event = parseEvent(message)
    if (event === null) {
      this.logger.warn({ channel, length: message.length }, 'store: ignored a malformed revocation event')
      return
    }
    for (const listener of this.events.listeners(EVENT) as Array<(e: RevocationEvent) => void>) {
      try {
        listener(event)
      } catch (err) {
        this.logger.error({ err }, 'revocation listener failed')
      }
    }
  }

  /** Logs the first failure of a burst; the rest are counted and reported on recovery. */
  private noteFailure (op: string, err: unknown): void {
    if (this.closed) return
    if (this.outage !== undefined) {
      this.outage.failures++
      return
    }
    this.outage = { since: Date.now(), failures: 1 }
    this.logger.error({ err, op }, 'store unavailable')
  }

  private noteRecovery (): void {
    if (this.outage === undefined) return
    this.logger.warn({ failures: this.outage.failures, downMs: Date.now() - this.outage.since }, 'store available again')
    this.outage = undefined
  }
}

/** Key names (DESIGN.md section 4). The user's tag is base64url, which never contains `{` or `}`. */
class Keys {
  readonly epoch: string
  readonly channel: string
  constructor (private readonly prefix: string) {
    this.epoch = `${prefix}epoch`
    this.channel = `${prefix}revocations`
  }

  tag (sub: string): string { return `{${Buffer.from(sub, 'utf8').toString('base64url')}}` }
  ver (sub: string): string { return `${this.prefix}ver:${this.tag(sub)}` }
  deny (sub: string, sid: string): string { return `${this.prefix}deny:${this.tag(sub)}:${sid}` }
  dev (sub: string, sid: string): string { return `${this.prefix}dev:${this.tag(sub)}:${sid}` }
  devs (sub: string): string { return `${this.prefix}devs:${this.tag(sub)}` }
  idpsid (iss: string, idpSid: string): string { return `${this.prefix}idpsid:${iss}:${idpSid}` }
  sidx (sid: string): string { return `${this.prefix}sidx:${sid}` }
  jti (kind: string, id: string): string { return `${this.prefix}jti:${kind}:${id}` }
}

interface Deleted { sid: string, iss: string, idpSid: string }

function toTriples (reply: unknown): Deleted[] {
  if (!Array.isArray(reply)) throw new Error('store: unexpected revoke reply')
  const out: Deleted[] = []
  for (let i = 0; i + 2 < reply.length; i += 3) {
    out.push({ sid: String(reply[i]), iss: String(reply[i + 1]), idpSid: String(reply[i + 2]) })
  }
  return out
}

const secondsToS = (ttl: number): number => Math.max(1, Math.ceil(ttl))
const secondsToMs = (ttl: number): number => secondsToS(ttl) * 1000

function toInt (value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isSafeInteger(n)) throw new Error(`store: ${what} is not an integer`)
  return n
}

const NUMBER_FIELDS = ['createdAt', 'lastSeenAt', 'expiresAt', 'version'] as const
const STRING_FIELDS = ['sid', 'sub', 'iss', 'userAgent', 'ip', 'credHash'] as const

/** Flattens defined fields into HSET arguments. */
function toHash (rec: Partial<SessionRecord>): string[] {
  const out: string[] = []
  for (const [field, value] of Object.entries(rec)) {
    if (value === undefined) continue
    out.push(field, typeof value === 'boolean' ? (value ? '1' : '0') : String(value))
  }
  return out
}

/** Rebuilds a record from HGETALL; null when the key is gone. A partial hash is corrupt data and throws. */
function fromHash (h: Record<string, string>): SessionRecord | null {
  if (Object.keys(h).length === 0) return null
  const rec: Record<string, unknown> = {}
  for (const f of STRING_FIELDS) {
    const v = h[f]
    if (v === undefined) throw new Error(`store: session record lacks ${f}`)
    rec[f] = v
  }
  for (const f of NUMBER_FIELDS) rec[f] = toInt(h[f], f)
  rec.rememberMe = h.rememberMe === '1'
  if (h.idpSid !== undefined) rec.idpSid = h.idpSid
  if (h.prevCredHash !== undefined) rec.prevCredHash = h.prevCredHash
  if (h.prevGraceUntil !== undefined) rec.prevGraceUntil = toInt(h.prevGraceUntil, 'prevGraceUntil')
  if (h.tokens !== undefined) rec.tokens = h.tokens
  return rec as unknown as SessionRecord
}

function parseMember (member: string): { sub: string, sid: string } | null {
  const v: unknown = JSON.parse(member)
  if (!Array.isArray(v) || typeof v[0] !== 'string' || typeof v[1] !== 'string') return null
  return { sub: v[0], sid: v[1] }
}

/** Validates a message from the channel; null when it is not a RevocationEvent. */
export function parseEvent (message: string): RevocationEvent | null {
  let v: unknown
  try {
    v = JSON.parse(message)
  } catch {
    return null // reported by the caller as a malformed event
  }
  if (typeof v !== 'object' || v === null) return null
  const o = v as Record<string, unknown>
  if (typeof o.sub !== 'string' || typeof o.at !== 'number') return null
  if (!Array.isArray(o.sids) || !o.sids.every((s) => typeof s === 'string')) return null
  if (o.version !== undefined && typeof o.version !== 'number') return null
  return { sub: o.sub, sids: o.sids as string[], at: o.at, ...(typeof o.version === 'number' ? { version: o.version } : {}) }
}

/** Quits cleanly when connected, else just drops the socket (no offline queue to flush). */
async function quit (client: Client): Promise<void> {
  if (client.status === 'end') return
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  try {
    await client.quit()
  } catch {
    client.disconnect() // QUIT raced a disconnect; the socket must still go
  }
}
