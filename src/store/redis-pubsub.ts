/**
 * The revocation channel's subscriber side, per topology.
 *
 * - Standalone and Sentinel: classic SUBSCRIBE on a duplicate of the data client (for Sentinel the
 *   duplicate also asks the sentinels for the master on every reconnect, so it follows failovers).
 * - Cluster: sharded pub/sub (Redis 7). SPUBLISH goes to the master owning the channel's slot and reaches
 *   only the SSUBSCRIBErs of that shard, instead of being broadcast over the cluster bus to every node as
 *   PUBLISH is. One dedicated connection to that slot's master; it moves when the slot does (Redis
 *   pushes an SUNSUBSCRIBE, or answers SSUBSCRIBE with MOVED) or when the node goes away.
 *
 * Either way the feed subscribes itself on every (re)connect, so the store knows when it listens: `listening`
 * each time a (S)SUBSCRIBE is confirmed, `lost` as soon as it may no longer hold (connection closed or
 * ended, shard feed moving, a failed (re)subscribe, close()).
 *
 * Subscriber connections never auto-pipeline (ioredis issue #1505: a command in subscriber mode must not be
 * batched with others, and SSUBSCRIBE is not on ioredis' list of commands kept out of auto-pipelines).
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import { backoff, quit, type Client } from './redis-connect.js'
import { keySlot } from './redis-keys.js'

export interface FeedHooks {
  message: (channel: string, message: string) => void
  /** Subscribed (again): events published from now on arrive. */
  listening: () => void
  /** The subscription may be gone (events published from now on may be missed). May repeat. */
  lost: () => void
  /** Cluster: the node holding the channel's shard went away (not a slot move); it may come back empty. */
  nodeLost?: () => void
  error: (where: string, err: unknown) => void
}

export interface Feed {
  /** True while subscribed on a live connection. */
  readonly listening: boolean
  /** Sends an event; the data client routes it (PUBLISH or SPUBLISH). */
  publish: (client: Client, message: string) => Promise<unknown>
  /** An idle subscriber never notices a half-open socket; a ping arms socketTimeout so it reconnects. */
  heartbeat: () => void
  close: () => Promise<void>
}

export function feedFor (client: Client, channel: string, nodeOptions: RedisOptions, hooks: FeedHooks): Feed {
  if (client instanceof Redis) return new ChannelFeed(client, channel, hooks)
  return new ShardFeed(client, channel, nodeOptions, hooks)
}

/** Classic pub/sub on a duplicate connection (standalone, Sentinel). */
class ChannelFeed implements Feed {
  listening = false
  private readonly conn: Redis
  /** Bumped on every 'ready' and 'close': a SUBSCRIBE reply of an earlier connection changes nothing. */
  private round = 0
  private closed = false

  constructor (client: Redis, private readonly channel: string, private readonly hooks: FeedHooks) {
    this.conn = client.duplicate({ autoResubscribe: false, enableAutoPipelining: false })
    this.conn.on('error', (err: unknown) => hooks.error('subscriber', err))
    this.conn.on('message', (ch: string, message: string) => hooks.message(ch, message))
    this.conn.on('close', () => {
      this.round++
      this.drop()
    })
    this.conn.on('end', () => { this.drop() })
    this.conn.on('ready', () => {
      const round = ++this.round
      this.conn.subscribe(this.channel).then(() => {
        if (round !== this.round || this.closed || this.conn.status !== 'ready') return
        this.listening = true
        hooks.listening()
      }, (err: unknown) => {
        if (round !== this.round || this.closed) return
        this.drop()
        hooks.error('subscribe', err) // the next 'ready' tries again
      })
    })
  }

  async publish (client: Client, message: string): Promise<unknown> {
    return await client.publish(this.channel, message)
  }

  heartbeat (): void {
    if (this.conn.status === 'ready') this.conn.ping().catch((err: unknown) => { this.hooks.error('subscriber', err) })
  }

  async close (): Promise<void> {
    this.closed = true
    this.drop()
    await quit(this.conn)
  }

  private drop (): void {
    this.listening = false
    this.hooks.lost()
  }
}

/** Sharded pub/sub in a Cluster: one connection to the master that owns the channel's slot. */
class ShardFeed implements Feed {
  private conn: Redis | undefined
  private subscribed = false
  private attempts = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private readonly slot: number

  constructor (private readonly cluster: Cluster, private readonly channel: string, private readonly options: RedisOptions, private readonly hooks: FeedHooks) {
    this.slot = keySlot(channel)
    // The slot map arrives with the cluster's 'ready'; until then there is no owner to ask.
    cluster.on('ready', () => { this.ensure() })
    if (cluster.status === 'ready') this.ensure()
  }

  get listening (): boolean { return this.subscribed && this.conn?.status === 'ready' }

  async publish (client: Client, message: string): Promise<unknown> {
    return await client.spublish(this.channel, message)
  }

  heartbeat (): void {
    const conn = this.conn
    if (conn?.status === 'ready') conn.ping().catch((err: unknown) => { this.hooks.error('subscriber', err) })
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const conn = this.conn
    this.conn = undefined
    this.subscribed = false
    this.hooks.lost()
    if (conn !== undefined) await quit(conn)
  }

  private ensure (): void {
    if (this.closed || this.conn !== undefined || this.timer !== undefined) return
    this.attach()
  }

  /** Connects to the slot's current master and subscribes there; any failure ends in `again()`. */
  private attach (): void {
    const owner = this.cluster.slots[this.slot]?.[0]
    if (owner === undefined) {
      this.again(new Error(`no node owns slot ${this.slot} of the revocation channel`))
      return
    }
    const at = owner.lastIndexOf(':')
    const conn = new Redis({
      ...this.options,
      host: owner.slice(0, at).replace(/^\[(.*)\]$/, '$1'),
      port: Number(owner.slice(at + 1)),
      // No reconnecting to the same address: the slot may have moved. `again()` asks the slot map anew.
      retryStrategy: () => null,
      autoResubscribe: false,
      enableOfflineQueue: false,
      enableAutoPipelining: false
    })
    this.conn = conn
    const mine = (): boolean => this.conn === conn
    conn.on('error', (err: unknown) => { if (mine()) this.hooks.error('subscriber', err) })
    conn.on('smessage', (ch: string, message: string) => { if (mine()) this.hooks.message(ch, message) })
    // Emitted by ioredis for an unsolicited SUNSUBSCRIBE (slot migrated, node demoted) or MOVED to SSUBSCRIBE.
    conn.on('moved', () => { if (mine()) this.again(new Error('the revocation channel\'s slot moved')) })
    conn.on('close', () => {
      if (!mine()) return
      this.subscribed = false
      this.hooks.nodeLost?.()
      this.hooks.lost()
    })
    conn.on('end', () => { if (mine()) this.again(new Error(`subscriber connection to ${owner} ended`)) })
    conn.on('ready', () => {
      conn.ssubscribe(this.channel).then(() => {
        if (!mine() || conn.status !== 'ready') return // 'close' / 'end' follow and move on
        this.subscribed = true
        this.attempts = 0
        this.hooks.listening()
      }, (err: unknown) => {
        if (mine()) this.again(err)
      })
    })
  }

  /** Drops the current connection, refreshes the slot map and attaches again after a backoff. */
  private again (reason: unknown): void {
    const conn = this.conn
    this.conn = undefined
    this.subscribed = false
    this.hooks.lost()
    if (conn !== undefined) {
      conn.removeAllListeners()
      conn.on('error', () => {}) // late socket errors of a dropped connection
      conn.disconnect()
    }
    if (this.closed || this.timer !== undefined) return
    if (this.attempts > 0) this.hooks.error('subscriber', reason) // the first one is often a routine move
    this.cluster.refreshSlotsCache()
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.attach()
    }, backoff(this.attempts++))
  }
}
