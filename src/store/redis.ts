/**
 * RedisStore: the shared Store for many replicas (ioredis), on a standalone Redis, a Sentinel-managed
 * master or a Redis Cluster (see redis-connect.ts for the topologies, redis-pubsub.ts for the revocation
 * channel of each, redis-scripts.ts for the Lua scripts).
 *
 * Every key of one user carries the hash tag `{base64url(sub)}` (DESIGN.md section 4), so the hot-path
 * MGET and the Lua scripts that change several keys of one user stay in one Cluster slot. Indexes keyed
 * by something else (`idpsid:`, `sidx:`) live in other slots and are written with separate commands.
 *
 * Calls are bounded: a command is only sent on a ready connection (no offline queue, no replay after a
 * reconnect), waits at most `commandTimeoutMs` for the connection, then at most `commandTimeoutMs` for
 * the reply (in a Cluster, redirections and CLUSTERDOWN/TRYAGAIN retries included), and fails with
 * StoreUnavailableError. Reconnection runs in the background with backoff.
 *
 * Sentinel: a revocation is acknowledged only once a replica has it (WAIT), so a failover cannot discard
 * it; see `replicated()`.
 *
 * Signals for a cache in front of the store (NearCacheStore's `SubscriptionSignals`): `onSubscriptionChange`
 * reports whether this replica is subscribed to the revocation channel (false as soon as events may be
 * missed), `eventsUpToDate` whether the subscription answered a heartbeat recently enough to vouch for
 * every event acknowledged more than EVENTS_LEASE_MS ago, `onReconnect` that the data connection was
 * re-established (the data may have been lost), `onTrouble` that a connection misbehaved. For the
 * gateway itself, `onResubscribed`: listening again after a loss (events published meanwhile are lost).
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import type { RedisConfig } from '../config/types.js'
import { connect, isUnavailable, nodeOptions, quit, type Client } from './redis-connect.js'
import { Keys } from './redis-keys.js'
import type { SubscriptionSignals } from './near-cache.js'
import { feedFor, type Feed } from './redis-pubsub.js'
import { encodeHash, encodeTokens, fromFields, pairsToObject, toFields, toInt } from './redis-record.js'
import { askSentinel, parseEvent, parseMember, secondsToMs, secondsToS, toDeleted, within, type Deleted, type SentinelView } from './redis-util.js'
import { CREATE, EPOCH, IDP_LOGOUT, INDEX, LEASE, RELEASE, RENEW, REVOKE_SESSIONS, REVOKE_USER, ROTATE, UPDATE } from './redis-scripts.js'
import {
  StoreUnavailableError,
  newEpoch,
  type BearerCheck,
  type RenewDeviceInput,
  type RenewDeviceResult,
  type RenewRefusal,
  type RevocationEvent,
  type RotateResult,
  type SessionCheck,
  type SessionRecord,
  type Store
} from './store.js'

export { connect, parseRedisUrl } from './redis-connect.js'
export { parseEvent } from './redis-util.js'

/** The pino-like logger the store reports outages and bad messages to. */
export interface StoreLogger {
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

export interface RedisStoreOptions {
  redis: RedisConfig
  logger?: StoreLogger
  /** Wraps every round trip (latency histogram, trace span): see src/obs/observe.ts. */
  observe?: <T>(op: string, run: () => Promise<T>) => Promise<T>
}

type Patch = Partial<Pick<SessionRecord, 'lastSeenAt' | 'userAgent' | 'ip' | 'tokens'>>
type Sentinel = NonNullable<RedisConfig['sentinel']>

const EVENT = 'revocation'
/**
 * The subscriber PINGs this often. A reply dates the subscription (see redis-pubsub.ts); a PING left
 * unanswered past commandTimeout is a loss and reconnects, and each PING arms socketTimeout.
 */
const HEARTBEAT_MS = 200
/**
 * How long after the send of its newest answered PING the subscription still vouches for the events: the
 * worst time a near-cached verdict can outlive a revocation acknowledged elsewhere while this replica's
 * link hangs without a reset. A few heartbeats, so round trips and event-loop delays do not lapse it.
 */
export const EVENTS_LEASE_MS = 500
const UNREPLICATED_WARN_EVERY_MS = 60_000

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

export class RedisStore implements Store, SubscriptionSignals {
  readonly kind = 'redis'
  private readonly client: Client
  private readonly feed: Feed
  private readonly keys: Keys
  private readonly logger: StoreLogger
  private readonly timeoutMs: number
  private readonly sentinel: Sentinel | undefined
  /** WAIT's own timeout (ms): well inside the command's. */
  private readonly waitMs: number
  private readonly events = new EventEmitter()
  private readonly waiters = new Waiters()
  private readonly heartbeat: NodeJS.Timeout
  private epochCache: string | undefined
  // Bumped on every 'ready' (and Cluster topology change): an epoch read across it is not cached, and a
  // Sentinel write and its WAIT must have used the same connection.
  private generation = 0
  private outage: { since: number, failures: number } | undefined
  private lastUnreplicatedWarn = 0
  private closed = false
  /** Whether the revocation subscription is confirmed, as last reported to the subscription listeners. */
  private live = false
  /** Set on the data client's first 'ready': every later one is a reconnect. */
  private readied = false
  /** Cluster: the shard node of the revocation feed went away since the feed last listened. */
  private feedNodeLost = false
  private readonly subscriptionListeners = new Set<(live: boolean) => void>()
  private readonly reconnectListeners = new Set<() => void>()
  private readonly troubleListeners = new Set<() => void>()
  private readonly resubscribedListeners = new Set<() => void>()
  private readonly observe: RedisStoreOptions['observe']

  constructor (opts: RedisStoreOptions) {
    this.observe = opts.observe
    this.keys = new Keys(opts.redis.keyPrefix)
    this.logger = opts.logger ?? { warn: (obj, msg) => console.warn(msg, obj), error: (obj, msg) => console.error(msg, obj) }
    this.timeoutMs = opts.redis.commandTimeoutMs
    this.sentinel = opts.redis.url === undefined ? opts.redis.sentinel : undefined
    this.waitMs = Math.max(1, Math.min(200, Math.floor(this.timeoutMs / 2)))
    this.events.setMaxListeners(0)
    this.client = connect(opts.redis)
    this.client.on('error', (err: unknown) => {
      this.noteFailure('connection', err)
      this.trouble()
    })
    this.client.on('close', () => {
      this.newGeneration() // no epoch read across a disconnect is kept: the server may come back empty
      this.trouble()
      this.waiters.notify() // see usable()
    })
    this.client.on('ready', () => {
      const reconnected = this.readied
      this.readied = true
      this.newGeneration() // the server may have lost its data (and its epoch) meanwhile, or be another one
      if (reconnected) this.reconnected()
      this.noteRecovery()
      this.waiters.notify()
    })
    if (this.client instanceof Cluster) {
      // A node that left, came back or failed over may hold the epoch key without its data.
      for (const event of ['+node', '-node', 'node error']) {
        this.client.on(event, () => {
          this.newGeneration()
          this.reconnected()
        })
      }
    }
    this.feed = feedFor(this.client, this.keys.channel, nodeOptions(opts.redis), {
      message: (channel, message) => this.onMessage(channel, message),
      listening: () => {
        if (this.feedNodeLost) {
          // That node is back (or replaced) and may hold nothing: as much a reconnect as a node event.
          this.feedNodeLost = false
          this.newGeneration()
          this.reconnected()
        }
        this.setLive(true)
        this.waiters.notify()
      },
      lost: () => { this.setLive(false) },
      nodeLost: () => { this.feedNodeLost = true },
      error: (where, err) => {
        this.noteFailure(where, err)
        this.trouble()
      }
    })
    this.heartbeat = setInterval(() => this.feed.heartbeat(), HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  async epoch (): Promise<string> {
    if (this.epochCache !== undefined) return this.epochCache
    const gen = this.generation
    const value = await this.call('epoch', async (c) => await EPOCH.run(c, [this.keys.epoch], [newEpoch(randomBytes(16).toString('base64url'), Date.now())]))
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
    const [,,, version] = await this.call('createSession', async (c) => await Promise.all([
      c.set(this.keys.sidx(rec.sid), rec.sub, 'PX', px),
      rec.idpSid !== undefined
        ? INDEX.run(c, [this.keys.idpsid(rec.iss, rec.idpSid)], [JSON.stringify([rec.sub, rec.sid]), px])
        : undefined,
      rec.email !== undefined ? INDEX.run(c, [this.keys.email(rec.email)], [JSON.stringify([rec.sub, rec.sid]), px]) : undefined,
      CREATE.run(
        c,
        [this.keys.ver(rec.sub), this.keys.dev(rec.sub, rec.sid), this.keys.devs(rec.sub), this.keys.tok(rec.sub, rec.sid)],
        [rec.sid, rec.expiresAt, secondsToMs(userStateTtl), now, rec.tokens !== undefined ? encodeTokens(rec.tokens) : '', ...toFields(rec).set]
      )
    ]))
    return toInt(version, 'ver')
  }

  async getSession (sub: string, sid: string): Promise<SessionRecord | null> {
    const [hash, tokens] = await this.call('getSession', async (c) => await Promise.all([
      c.hgetallBuffer(this.keys.dev(sub, sid)),
      c.getBuffer(this.keys.tok(sub, sid))
    ]))
    return fromFields(sub, sid, hash, tokens)
  }

  async findOwner (sid: string): Promise<string | null> {
    return await this.call('findOwner', async (c) => await c.get(this.keys.sidx(sid)))
  }

  async listSessions (sub: string): Promise<SessionRecord[]> {
    const sids = await this.call('listSessions', async (c) => await c.smembers(this.keys.devs(sub)))
    if (sids.length === 0) return []
    // The list shows no tokens: they are not read.
    const hashes = await this.call('listSessions', async (c) => await Promise.all(sids.map(async (sid) => await c.hgetallBuffer(this.keys.dev(sub, sid)))))
    const records: SessionRecord[] = []
    const stale: string[] = []
    hashes.forEach((hash, i) => {
      const rec = fromFields(sub, sids[i] ?? '', hash, null)
      if (rec !== null) delete rec.tokens // a record of the previous layout holds them in the hash
      if (rec !== null) records.push(rec)
      else stale.push(sids[i] ?? '')
    })
    // Expired records leave their id in the set; drop them so the set stays bounded.
    if (stale.length > 0) await this.call('listSessions', async (c) => await c.srem(this.keys.devs(sub), ...stale))
    return records.sort((a, b) => b.createdAt - a.createdAt)
  }

  async updateSession (sub: string, sid: string, patch: Patch): Promise<void> {
    const { tokens, ...rest } = patch
    const { set, del } = toFields(rest)
    if (tokens !== undefined) del.push('tokens') // the previous layout kept them in the hash
    if (set.length === 0 && tokens === undefined) return
    await this.call('updateSession', async (c) => await UPDATE.run(c, [this.keys.dev(sub, sid), this.keys.tok(sub, sid)], [
      tokens !== undefined ? '1' : '0', tokens !== undefined ? encodeTokens(tokens) : '', set.length, ...set, ...del
    ]))
  }

  async rotateCredential (sub: string, sid: string, expectedHash: string, newHash: string, now: number, graceUntil: number): Promise<RotateResult> {
    const result = await this.call('rotateCredential', async (c) =>
      await ROTATE.run(c, [this.keys.dev(sub, sid)], [encodeHash(expectedHash), encodeHash(newHash), now, graceUntil, expectedHash]))
    if (result === 'rotated' || result === 'grace' || result === 'reuse' || result === 'unknown' || result === 'missing') return result
    throw new Error(`store: unexpected rotate reply ${String(result)}`)
  }

  async renewDevice (i: RenewDeviceInput): Promise<RenewDeviceResult> {
    const { sub, sid } = i
    const cluster = this.client instanceof Cluster
    const keys = [this.keys.dev(sub, sid), this.keys.ver(sub), this.keys.deny(sub, sid), this.keys.tok(sub, sid), this.keys.devs(sub)]
    // Outside a Cluster the epoch is read by the script; in a Cluster it lives in another slot.
    if (!cluster) keys.push(this.keys.epoch)
    const touch = toFields({ lastSeenAt: i.nowMs, ip: i.touch.ip, userAgent: i.touch.userAgent })
    let gen = 0
    const [reply, clusterEpoch] = await this.call('renewDevice', async (c, g) => {
      gen = g
      return await Promise.all([
        RENEW.runBuffer(c, keys, [
          sid, encodeHash(i.presentedHash), i.presentedHash, encodeHash(i.newHash), i.nowMs, i.graceUntil, secondsToS(i.denyTtl),
          newEpoch(randomBytes(16).toString('base64url'), Date.now()), touch.set.length, ...touch.set, ...touch.del
        ]),
        cluster ? this.epoch() : undefined
      ])
    })
    if (!Array.isArray(reply) || reply.length === 0) throw new Error('store: unexpected renewDevice reply')
    const outcome = String(reply[0])
    if (outcome === 'reuse') {
      // Revoked by the script, exactly as revokeSessions: acknowledged once replicated and announced.
      await this.replicated('renewDevice', gen)
      const event = await this.publish({ sub, sids: [sid], at: Date.now() })
      await this.dropIndexes(sub, [{ sid, iss: String(reply[1]), idpSid: String(reply[2]), email: String(reply[3]) }])
      return { outcome: 'reuse', event }
    }
    if (outcome === 'rotated' || outcome === 'grace') {
      const [, version, epoch, tokens, ...flat] = reply as unknown[]
      const record = fromFields(sub, sid, pairsToObject(flat), Buffer.isBuffer(tokens) ? tokens : null)
      if (record === null) throw new Error('store: renewDevice returned no record')
      const e = clusterEpoch ?? String(epoch)
      if (!cluster && gen === this.generation) this.epochCache = e
      return { outcome, record, version: toInt(version, 'ver'), epoch: e }
    }
    if (['missing', 'expired', 'denied', 'state_lost', 'version', 'unknown'].includes(outcome)) return { outcome: outcome as RenewRefusal }
    throw new Error(`store: unexpected renewDevice reply ${outcome}`)
  }

  async revokeSessions (sub: string, sids: string[], denyTtl: number): Promise<RevocationEvent> {
    const keys = [this.keys.devs(sub), ...sids.flatMap((sid) => [this.keys.dev(sub, sid), this.keys.deny(sub, sid), this.keys.tok(sub, sid)])]
    let gen = 0
    const reply = await this.call('revokeSessions', async (c, g) => {
      gen = g
      return await REVOKE_SESSIONS.run(c, keys, [secondsToS(denyTtl), ...sids])
    })
    await this.replicated('revokeSessions', gen)
    // Published before the indexes go: a retry after a failed publish must still find the sessions.
    const event = await this.publish({ sub, sids: [...sids], at: Date.now() })
    await this.dropIndexes(sub, toDeleted(reply))
    return event
  }

  async revokeUser (sub: string, denyTtl: number, tokenTtl = 0): Promise<RevocationEvent> {
    let gen = 0
    const denyS = secondsToS(denyTtl)
    const reply = await this.call('revokeUser', async (c, g) => {
      gen = g
      return await REVOKE_USER.run(c, [this.keys.ver(sub), this.keys.devs(sub), this.keys.revat(sub)], [
        denyS, this.keys.dev(sub, ''), this.keys.deny(sub, ''), Math.floor(Date.now() / 1000), Math.max(denyS, secondsToS(tokenTtl)), this.keys.tok(sub, '')
      ])
    })
    if (!Array.isArray(reply)) throw new Error('store: unexpected revokeUser reply')
    const [version, revokedAt, ...rest] = reply as unknown[]
    const deleted = toDeleted(rest)
    await this.replicated('revokeUser', gen)
    const event = await this.publish({ sub, sids: deleted.map((d) => d.sid), version: toInt(version, 'ver'), revokedAt: toInt(revokedAt, 'revat'), at: Date.now() })
    await this.dropIndexes(sub, deleted)
    return event
  }

  async logoutIdpSession (iss: string, idpSid: string, ttl: number): Promise<RevocationEvent> {
    let gen = 0
    await this.call('logoutIdpSession', async (c, g) => {
      gen = g
      return await IDP_LOGOUT.run(c, [this.keys.idpout(iss, idpSid)], [secondsToS(ttl)])
    })
    await this.replicated('logoutIdpSession', gen)
    return await this.publish({ sub: '', sids: [], idpSession: { iss, sid: idpSid }, at: Date.now() })
  }

  async checkBearer (sub: string, iss: string, idpSid: string | undefined): Promise<BearerCheck> {
    const revat = this.keys.revat(sub)
    const [at, out] = await this.call('checkBearer', async (c) => {
      if (idpSid === undefined) return [await c.get(revat), null]
      const marker = this.keys.idpout(iss, idpSid)
      // Two slots in a Cluster: two commands, sent together (auto-pipelined per node); one MGET elsewhere.
      return c instanceof Cluster ? await Promise.all([c.get(revat), c.get(marker)]) : await c.mget(revat, marker)
    })
    return { revokedAt: at == null ? null : toInt(at, 'revat'), idpLoggedOut: out != null }
  }

  async sessionsForIdpSession (iss: string, idpSid: string): Promise<Array<{ sub: string, sid: string }>> {
    const members = await this.call('sessionsForIdpSession', async (c) => await c.smembers(this.keys.idpsid(iss, idpSid)))
    return members.map(parseMember).filter((m): m is { sub: string, sid: string } => m !== null)
  }

  async claimOnce (kind: string, id: string, ttl: number): Promise<boolean> {
    const ok = await this.call('claimOnce', async (c) => await c.set(this.keys.jti(kind, id), '1', 'EX', secondsToS(ttl), 'NX'))
    return ok === 'OK'
  }

  async wasClaimed (kind: string, id: string): Promise<boolean> {
    return (await this.call('wasClaimed', async (c) => await c.exists(this.keys.jti(kind, id)))) === 1
  }

  async usersForEmail (email: string): Promise<string[]> {
    const members = await this.call('usersForEmail', async (c) => await c.smembers(this.keys.email(email)))
    const found = members.map(parseMember).filter((m): m is { sub: string, sid: string } => m !== null)
    if (found.length === 0) return []
    // A member outlives its record when the record expired (the set lives as long as its newest member).
    const live = await this.call('usersForEmail', async (c) => await Promise.all(found.map(async (m) => await c.exists(this.keys.dev(m.sub, m.sid)))))
    return [...new Set(found.filter((_m, i) => live[i] === 1).map((m) => m.sub))]
  }

  async lease (name: string, holder: string, ttlMs: number): Promise<boolean> {
    const held = await this.call('lease', async (c) => await LEASE.run(c, [this.keys.lease(name)], [holder, Math.max(1, Math.ceil(ttlMs))]))
    return Number(held) === 1
  }

  async releaseLease (name: string, holder: string): Promise<void> {
    await this.call('releaseLease', async (c) => await RELEASE.run(c, [this.keys.lease(name)], [holder]))
  }

  async putNote (kind: string, id: string, value: string, ttl: number): Promise<void> {
    await this.call('putNote', async (c) => await c.set(this.keys.note(kind, id), value, 'EX', secondsToS(ttl)))
  }

  async getNote (kind: string, id: string): Promise<string | null> {
    return await this.call('getNote', async (c) => await c.get(this.keys.note(kind, id)))
  }

  subscribe (listener: (event: RevocationEvent) => void): () => void {
    this.events.on(EVENT, listener)
    return () => { this.events.off(EVENT, listener) }
  }

  /**
   * Registers `cb`: called with true each time the (S)SUBSCRIBE to the revocation channel is confirmed,
   * with false as soon as the subscription may be lost (subscriber connection closed or ended, shard feed
   * moving, a failed (re)subscribe, close()), and with false then true around a malformed event (whatever
   * it was meant to say is lost). Called with the current state on registration. Returns an unregister.
   */
  onSubscriptionChange (cb: (live: boolean) => void): () => void {
    if (!this.closed) this.subscriptionListeners.add(cb)
    this.tell(cb, this.listening())
    return () => { this.subscriptionListeners.delete(cb) }
  }

  /**
   * Registers `cb`: called on every 'ready' of the data connection after the first and, in a Cluster, on
   * every node change (a node added, removed or failing): the data (and the epoch) may have been lost.
   */
  onReconnect (cb: () => void): () => void {
    if (!this.closed) this.reconnectListeners.add(cb)
    return () => { this.reconnectListeners.delete(cb) }
  }

  /**
   * Registers `cb`: called as soon as the data or subscriber connection misbehaves (an error, a close, a
   * command or heartbeat timeout): what was read before may no longer be true, or may be missing events.
   */
  onTrouble (cb: () => void): () => void {
    if (!this.closed) this.troubleListeners.add(cb)
    return () => { this.troubleListeners.delete(cb) }
  }

  /**
   * True while subscribed and the newest answered heartbeat (or the SUBSCRIBE) was sent less than
   * EVENTS_LEASE_MS ago: every event acknowledged before that has arrived. Synchronous and cheap.
   */
  eventsUpToDate (): boolean {
    return this.live && performance.now() - this.feed.confirmedAt < EVENTS_LEASE_MS
  }

  /**
   * Registers `cb`: called each time the subscription is confirmed after a period without one (a loss,
   * or start-up), after the subscription listeners. Events published meanwhile were missed: whoever
   * derived state from them re-checks it. Returns an unregister.
   */
  onResubscribed (cb: () => void): () => void {
    if (!this.closed) this.resubscribedListeners.add(cb)
    return () => { this.resubscribedListeners.delete(cb) }
  }

  /** Also waits (bounded) until this replica receives revocation events: readiness needs both. */
  async ping (): Promise<void> {
    await this.call('ping', async (c) => await c.ping())
    try {
      await this.waiters.until(() => this.closed || this.feed.listening, this.timeoutMs, 'not subscribed to revocation events')
    } catch (err) {
      throw new StoreUnavailableError('store unavailable (subscribe)', { cause: err })
    }
    if (this.closed) throw new StoreUnavailableError('store closed')
  }

  async close (): Promise<void> {
    const first = !this.closed
    this.closed = true
    clearInterval(this.heartbeat)
    this.waiters.notify()
    this.events.removeAllListeners()
    if (first) {
      this.setLive(false)
      this.subscriptionListeners.clear()
      this.reconnectListeners.clear()
      this.troubleListeners.clear()
      this.resubscribedListeners.clear()
    }
    await Promise.all([quit(this.client), this.feed.close()])
  }

  /**
   * Runs one bounded round trip; connection trouble becomes StoreUnavailableError. `fn` gets the
   * connection generation it runs on.
   */
  private async call<T> (op: string, fn: (c: Client, generation: number) => Promise<T>): Promise<T> {
    if (this.observe === undefined) return await this.send(op, fn)
    return await this.observe(op, async () => await this.send(op, fn))
  }

  private async send<T> (op: string, fn: (c: Client, generation: number) => Promise<T>): Promise<T> {
    try {
      await this.whenReady()
      const pending = fn(this.client, this.generation)
      // A Cluster command may be redirected and retried; the store's deadline covers all of that.
      const result = this.client instanceof Cluster ? await within(pending, this.timeoutMs) : await pending
      this.noteRecovery()
      return result
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err
      if (!isUnavailable(err) && !this.unfollowedRedirection(err)) throw err
      this.noteFailure(op, err)
      this.trouble() // a timeout on a connection that stays open: it may hang for everyone, the subscriber too
      throw new StoreUnavailableError(`store unavailable (${op})`, { cause: err })
    }
  }

  /**
   * Cluster with auto-pipelining: ioredis follows a MOVED/ASK for a whole auto-pipelined batch only when
   * every command of the batch got it; in a batch that also holds writes that succeeded (other slots of
   * the same node) the redirection reaches the caller as a ReplyError, and the slot map is not updated
   * (ioredis issue #2075). The redirected command did not run: it is an outage of that slot (the caller
   * retries), and the slot map is refreshed so the next batch goes to the right node.
   */
  private unfollowedRedirection (err: unknown): boolean {
    if (!(this.client instanceof Cluster) || !(err instanceof Error) || !/^(MOVED|ASK) /.test(err.message)) return false
    this.client.refreshSlotsCache()
    return true
  }

  /** Waits up to commandTimeoutMs for a ready connection instead of queueing the command. */
  private async whenReady (): Promise<void> {
    if (this.closed) throw new StoreUnavailableError('store closed')
    if (this.usable()) return
    if (this.client.status === 'end') throw new StoreUnavailableError('store connection ended')
    await this.waiters.until(() => this.closed || this.usable(), this.timeoutMs, 'not connected')
    if (this.closed) throw new StoreUnavailableError('store closed')
  }

  /**
   * Ready and writable. A Redis client stays 'ready' between ending its socket and the socket's 'close'
   * (the Sentinel failover detector ends it on +switch-master): commands sent then fail at once, and
   * callers retrying in a loop would spin without letting the 'close' through.
   */
  private usable (): boolean {
    const c = this.client
    return c.status === 'ready' && (!(c instanceof Redis) || c.stream?.writable === true)
  }

  /** Removes deleted sessions from the indexes that live outside the user's slot. */
  /**
   * Drops the lookup indexes of revoked sessions, once the revocation is stored and announced. A failure
   * here does not undo the logout: a stale entry leads to no record (and expires with it), so it is
   * logged, not thrown.
   */
  private async dropIndexes (sub: string, deleted: Deleted[]): Promise<void> {
    if (deleted.length === 0) return
    try {
      await this.call('revoke', async (c) => await Promise.all(deleted.flatMap((d) => [
        c.del(this.keys.sidx(d.sid)),
        ...(d.idpSid !== '' ? [c.srem(this.keys.idpsid(d.iss, d.idpSid), JSON.stringify([sub, d.sid]))] : []),
        ...(d.email !== '' ? [c.srem(this.keys.email(d.email), JSON.stringify([sub, d.sid]))] : [])
      ])))
    } catch (err) {
      this.logger.warn({ reason: (err as Error).message, sessions: deleted.length }, 'store: revoked, but its lookup indexes could not be dropped (they expire with the records)')
    }
  }

  /** Publishes to every replica (this one included, through its subscriber). */
  private async publish (event: RevocationEvent): Promise<RevocationEvent> {
    // The revocation is already stored; a failed publish still fails the call so the caller retries.
    await this.call('publish', async (c) => await this.feed.publish(c, JSON.stringify(event)))
    return event
  }

  private newGeneration (): void {
    this.generation++
    this.epochCache = undefined
  }

  /** The subscription state a new listener is told: confirmed, and still on a live connection. */
  private listening (): boolean {
    return this.live && !this.closed && this.feed.listening
  }

  /**
   * Tells the subscription listeners: every confirmation (true), and the first loss after one (false; a
   * loss while already lost adds nothing). No confirmation is reported after close().
   */
  private setLive (live: boolean): void {
    if (live ? this.closed : !this.live) return
    const again = live && !this.live
    this.live = live
    for (const cb of [...this.subscriptionListeners]) this.tell(cb, live)
    if (again) this.notify(this.resubscribedListeners, 'resubscribe')
  }

  private tell (cb: (live: boolean) => void, live: boolean): void {
    try {
      cb(live)
    } catch (err) {
      this.logger.error({ err }, 'store: subscription listener failed')
    }
  }

  private reconnected (): void {
    this.notify(this.reconnectListeners, 'reconnect')
  }

  private trouble (): void {
    this.notify(this.troubleListeners, 'trouble')
  }

  private notify (listeners: Set<() => void>, what: string): void {
    for (const cb of [...listeners]) {
      try {
        cb()
      } catch (err) {
        this.logger.error({ err }, `store: ${what} listener failed`)
      }
    }
  }

  /**
   * Sentinel only: a revocation is acknowledged once a replica has it. Replication is asynchronous, and
   * a failover promotes a replica: a write only the old master had is gone, and with it the revocation.
   * So after the write, `WAIT 1` on the same connection. When no replica confirms in time, the write is
   * still accepted (with a rate-limited warning) if every sentinel that answers names this very node
   * as the master with no failover under way (see masterDoubt()): a master that simply has no replica now
   * (the new master right after a failover, a replica being restarted). Otherwise (a failover in
   * progress, this node already replaced, no sentinel answering) the caller gets StoreUnavailableError
   * and retries; revocations are idempotent (revokeUser bumps the version once more).
   */
  private async replicated (op: string, gen: number): Promise<void> {
    const sentinel = this.sentinel
    if (sentinel === undefined) return
    const acks = await this.call(op, async (c) => await c.call('WAIT', 1, this.waitMs))
    this.sameConnection(op, gen)
    if (Number(acks) >= 1) return
    const doubt = await this.masterDoubt(op, gen, sentinel)
    if (doubt === undefined) {
      const now = Date.now()
      if (now - this.lastUnreplicatedWarn >= UNREPLICATED_WARN_EVERY_MS) {
        this.lastUnreplicatedWarn = now
        this.logger.warn({ op, waitMs: this.waitMs }, 'store: no replica confirmed a revocation; the master has no replica in sync (revocations are not failover-safe until one is)')
      }
      return
    }
    const err = new StoreUnavailableError(`store unavailable (${op}): no replica confirmed the write and ${doubt}`)
    this.noteFailure(op, err)
    // This node is no longer the master: reconnect now (through the sentinels) rather than on the next failure.
    if (doubt.includes('another master') && this.client instanceof Redis) this.client.disconnect(true)
    throw err
  }

  private sameConnection (op: string, gen: number): void {
    if (gen !== this.generation) throw new StoreUnavailableError(`store unavailable (${op}): reconnected before the write was confirmed`)
  }

  /**
   * Why this connection's node may not be the master a failover keeps; undefined when every sentinel
   * that answers names this node (by run id; by address while a sentinel has not read the run id of a
   * just-promoted master yet) and reports no failover under way.
   */
  private async masterDoubt (op: string, gen: number, sentinel: Sentinel): Promise<string | undefined> {
    const self = await this.call(op, async (c) => {
      const r = c as Redis
      const info = await r.info('server')
      return { runId: /^run_id:(\S+)/m.exec(info)?.[1] ?? '', ip: (r.stream.remoteAddress ?? '').replace(/^::ffff:/, ''), port: r.stream.remotePort ?? 0 }
    })
    this.sameConnection(op, gen)
    const views = await Promise.all(sentinel.nodes.map(async (node) => await askSentinel(node, sentinel, this.timeoutMs).catch(() => undefined)))
    const answered = views.filter((v): v is SentinelView => v !== undefined)
    if (answered.length === 0) return 'no sentinel answered'
    for (const v of answered) {
      const same = v.runId !== '' ? v.runId === self.runId : v.ip === self.ip && v.port === self.port
      if (!same) return `sentinel ${v.at} names another master (${v.ip}:${v.port})`
      if (/down|failover/.test(v.flags)) return `sentinel ${v.at} reports the master as ${v.flags}`
    }
    return undefined
  }

  private onMessage (channel: string, message: string): void {
    if (channel !== this.keys.channel) return
    const event = parseEvent(message)
    if (event === null) {
      this.logger.warn({ channel, length: message.length }, 'store: ignored a malformed revocation event')
      // It may have been a revocation (a peer of another version, a truncated message): whoever trusts the
      // events to be complete must forget what it derived from them.
      if (this.live) {
        this.setLive(false)
        this.setLive(true)
      }
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
