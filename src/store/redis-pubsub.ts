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
 * ended, shard feed moving, close(), and any failure on the connection: an error, a (S)SUBSCRIBE or
 * heartbeat PING refused or timed out). After a failure the feed reconnects (after a backoff) instead of
 * waiting for a 'ready' that a connection which stays open never sends: a reply that comes after the
 * command timeout leaves Redis listing the replica as subscribed while ioredis has given up on it.
 *
 * The heartbeat (a PING every fraction of a second, from the store) also dates the subscription:
 * replies come in order on one connection, so once the reply to a PING sent at time T is in, every event
 * published before T has been delivered. `confirmedAt` is that T; the store vouches for its events only
 * while it is recent (a hung link shows as an unanswered PING long before a timeout closes anything).
 *
 * Subscriber connections never auto-pipeline (ioredis issue #1505: a command in subscriber mode must not be
 * batched with others, and SSUBSCRIBE is not on ioredis' list of commands kept out of auto-pipelines).
 */
import { Redis, type Cluster } from 'ioredis'
import { backoff, quit, type Client, type NodeOptions } from './redis-connect.js'
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
  /**
   * performance.now() when the newest (S)SUBSCRIBE or PING answered on the current subscription was sent:
   * every event published before then has arrived. -Infinity while not listening.
   */
  readonly confirmedAt: number
  /** Sends an event; the data client routes it (PUBLISH or SPUBLISH). */
  publish: (client: Client, message: string) => Promise<unknown>
  /**
   * PINGs the subscriber connection: the reply advances `confirmedAt`; a failure (timeout included) is
   * a loss and reconnects. The PING also arms socketTimeout, so a half-open socket is destroyed.
   */
  heartbeat: () => void
  close: () => Promise<void>
}

export function feedFor (client: Client, channel: string, nodeOptions: NodeOptions, hooks: FeedHooks): Feed {
  if (client instanceof Redis) return new ChannelFeed(client, channel, hooks)
  return new ShardFeed(client, channel, nodeOptions, hooks)
}

/** Classic pub/sub on a duplicate connection (standalone, Sentinel). */
class ChannelFeed implements Feed {
  listening = false
  confirmedAt = -Infinity
  private readonly conn: Redis
  /** Bumped on every 'ready' and 'close': a reply or failure of an earlier connection changes nothing. */
  private round = 0
  private closed = false
  /** Failures since the last confirmed SUBSCRIBE: the backoff before reconnecting grows with them. */
  private failures = 0
  private retry: NodeJS.Timeout | undefined

  constructor (client: Redis, private readonly channel: string, private readonly hooks: FeedHooks) {
    this.conn = client.duplicate({ autoResubscribe: false, enableAutoPipelining: false })
    this.conn.on('error', (err: unknown) => { this.fail('subscriber', err, this.round) })
    this.conn.on('message', (ch: string, message: string) => hooks.message(ch, message))
    this.conn.on('close', () => {
      this.round++
      this.drop()
    })
    this.conn.on('end', () => { this.drop() })
    this.conn.on('ready', () => {
      const round = ++this.round
      const sent = performance.now()
      this.conn.subscribe(this.channel).then(() => {
        if (round !== this.round || this.closed || this.conn.status !== 'ready') return
        this.listening = true
        this.confirmedAt = sent
        this.failures = 0
        hooks.listening()
      }, (err: unknown) => { this.fail('subscribe', err, round) })
    })
  }

  async publish (client: Client, message: string): Promise<unknown> {
    return await client.publish(this.channel, message)
  }

  heartbeat (): void {
    if (this.conn.status !== 'ready') return
    const round = this.round
    const sent = performance.now()
    this.conn.ping().then(() => {
      if (round === this.round && this.listening && sent > this.confirmedAt) this.confirmedAt = sent
    }, (err: unknown) => { this.fail('heartbeat', err, round) })
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.retry)
    this.drop()
    await quit(this.conn)
  }

  /**
   * A failure on connection `round`: the subscription may be gone even though the connection stays open,
   * so report the loss and reconnect after a backoff, unless that connection closes (and its successor
   * subscribes) meanwhile.
   */
  private fail (where: string, err: unknown, round: number): void {
    if (round !== this.round || this.closed) return
    this.drop()
    this.hooks.error(where, err)
    clearTimeout(this.retry)
    this.retry = setTimeout(() => {
      this.retry = undefined
      if (round === this.round && !this.closed && this.conn.status === 'ready') this.conn.disconnect(true)
    }, backoff(this.failures++))
    this.retry.unref()
  }

  private drop (): void {
    this.listening = false
    this.confirmedAt = -Infinity
    this.hooks.lost()
  }
}

/** Sharded pub/sub in a Cluster: one connection to the master that owns the channel's slot. */
class ShardFeed implements Feed {
  confirmedAt = -Infinity
  private conn: Redis | undefined
  private subscribed = false
  private attempts = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private readonly slot: number

  constructor (private readonly cluster: Cluster, private readonly channel: string, private readonly options: NodeOptions, private readonly hooks: FeedHooks) {
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
    if (conn?.status !== 'ready') return
    const sent = performance.now()
    conn.ping().then(() => {
      if (this.conn === conn && this.listening && sent > this.confirmedAt) this.confirmedAt = sent
    }, (err: unknown) => { if (this.conn === conn) this.broken(err) })
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const conn = this.conn
    this.conn = undefined
    this.subscribed = false
    this.confirmedAt = -Infinity
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
    conn.on('error', (err: unknown) => {
      if (!mine()) return
      this.hooks.error('subscriber', err)
      this.broken(err)
    })
    conn.on('smessage', (ch: string, message: string) => { if (mine()) this.hooks.message(ch, message) })
    // Emitted by ioredis for an unsolicited SUNSUBSCRIBE (slot migrated, node demoted) or MOVED to SSUBSCRIBE.
    conn.on('moved', () => { if (mine()) this.again(new Error('the revocation channel\'s slot moved')) })
    conn.on('close', () => {
      if (!mine()) return
      this.subscribed = false
      this.confirmedAt = -Infinity
      this.hooks.nodeLost?.()
      this.hooks.lost()
    })
    conn.on('end', () => { if (mine()) this.again(new Error(`subscriber connection to ${owner} ended`)) })
    conn.on('ready', () => {
      const sent = performance.now()
      conn.ssubscribe(this.channel).then(() => {
        if (!mine() || conn.status !== 'ready') return // 'close' / 'end' follow and move on
        this.subscribed = true
        this.confirmedAt = sent
        this.attempts = 0
        this.hooks.listening()
      }, (err: unknown) => {
        if (mine()) this.again(err)
      })
    })
  }

  /**
   * The connection errored or stopped answering (a PING timed out): the node may be hung, failing over or
   * restarted empty, so it counts as lost (like a close), and the feed attaches again.
   */
  private broken (reason: unknown): void {
    this.hooks.nodeLost?.()
    this.again(reason)
  }

  /** Drops the current connection, refreshes the slot map and attaches again after a backoff. */
  private again (reason: unknown): void {
    const conn = this.conn
    this.conn = undefined
    this.subscribed = false
    this.confirmedAt = -Infinity
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
