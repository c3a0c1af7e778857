/**
 * RedisConnection: what every concern of RedisStore shares — the data connection with its bounded calls,
 * the revocation channel (publish, subscribe) and the signals a cache in front of the store listens to.
 * The concerns themselves (redis-revocation.ts, redis-devices.ts, redis-claims.ts) only send commands
 * through `call()`.
 *
 * Calls are bounded: a command is only sent on a ready connection (no offline queue, no replay after a
 * reconnect), waits at most `commandTimeoutMs` for the connection, then at most `commandTimeoutMs` for
 * the reply (in a Cluster, redirections and CLUSTERDOWN/TRYAGAIN retries included), and fails with
 * StoreUnavailableError. Reconnection runs in the background with backoff.
 *
 * Signals (RevocationStore's optional ones): `onSubscriptionChange` reports whether this replica is
 * subscribed to the revocation channel (false as soon as events may be missed), `eventsUpToDate` whether
 * the subscription answered a heartbeat recently enough to vouch for every event acknowledged more than
 * EVENTS_LEASE_MS ago, `onReconnect` that the data connection was re-established (the data may have been
 * lost), `onTrouble` that a connection misbehaved, and `onResubscribed`: listening again after a loss
 * (events published meanwhile are lost).
 */
import { EventEmitter } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import type { RedisConfig } from '../config/types.js'
import { connect, isUnavailable, nodeOptions, quit, type Client } from './redis-connect.js'
import { Keys } from './redis-keys.js'
import { feedFor, type Feed } from './redis-pubsub.js'
import { parseEvent, Waiters, within } from './redis-util.js'
import { StoreUnavailableError, type RevocationEvent } from './store.js'

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

export class RedisConnection {
  readonly client: Client
  readonly feed: Feed
  readonly keys: Keys
  readonly logger: StoreLogger
  readonly timeoutMs: number
  /** The epoch as last read on the current generation (see RedisRevocation.epoch). */
  epochCache: string | undefined
  // Bumped on every 'ready' (and Cluster topology change): an epoch read across it is not cached, and a
  // Sentinel write and its WAIT must have used the same connection.
  generation = 0
  private readonly events = new EventEmitter()
  private readonly waiters = new Waiters()
  private readonly heartbeat: NodeJS.Timeout
  private outage: { since: number, failures: number } | undefined
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

  get cluster (): boolean { return this.client instanceof Cluster }

  /**
   * Runs one bounded round trip; connection trouble becomes StoreUnavailableError. `fn` gets the
   * connection generation it runs on.
   */
  async call<T> (op: string, fn: (c: Client, generation: number) => Promise<T>): Promise<T> {
    if (this.observe === undefined) return await this.send(op, fn)
    return await this.observe(op, async () => await this.send(op, fn))
  }

  /** Publishes to every replica (this one included, through its subscriber). */
  async publish (event: RevocationEvent): Promise<RevocationEvent> {
    // The revocation is already stored; a failed publish still fails the call so the caller retries.
    await this.call('publish', async (c) => await this.feed.publish(c, JSON.stringify(event)))
    return event
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

  /** Logs the first failure of a burst; the rest are counted and reported on recovery. */
  noteFailure (op: string, err: unknown): void {
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
}
