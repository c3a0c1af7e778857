/**
 * Sentinel write confirmation: a revocation is acknowledged only once a replica has it. Replication is
 * asynchronous, and a failover promotes a replica: a write only the old master had is gone, and with it
 * the revocation. So after the write, `WAIT 1` on the same connection. When no replica confirms in time,
 * the write is still accepted (with a rate-limited warning) if every sentinel that answers names this
 * very node as the master with no failover under way (see masterDoubt()): a master that simply has no
 * replica now (the new master right after a failover, a replica being restarted). Otherwise (a failover
 * in progress, this node already replaced, no sentinel answering) the caller gets StoreUnavailableError
 * and retries; revocations are idempotent (revokeUser bumps the version once more).
 *
 * Standalone and Cluster: nothing to wait for (`confirm` resolves at once).
 */
import { Redis } from 'ioredis'
import type { RedisConfig } from '../config/types.js'
import type { RedisConnection } from './redis-conn.js'
import { askSentinel, type SentinelView } from './redis-util.js'
import { StoreUnavailableError } from './store.js'

type Sentinel = NonNullable<RedisConfig['sentinel']>

const UNREPLICATED_WARN_EVERY_MS = 60_000

export class SentinelAck {
  private readonly sentinel: Sentinel | undefined
  /** WAIT's own timeout (ms): well inside the command's. */
  private readonly waitMs: number
  private lastUnreplicatedWarn = 0

  constructor (private readonly conn: RedisConnection, redis: RedisConfig) {
    this.sentinel = redis.url === undefined ? redis.sentinel : undefined
    this.waitMs = Math.max(1, Math.min(200, Math.floor(conn.timeoutMs / 2)))
  }

  /** Resolves once the write `op` made on connection generation `gen` is safe from a failover (see above). */
  async confirm (op: string, gen: number): Promise<void> {
    const sentinel = this.sentinel
    if (sentinel === undefined) return
    const acks = await this.conn.call(op, async (c) => await c.call('WAIT', 1, this.waitMs))
    this.sameConnection(op, gen)
    if (Number(acks) >= 1) return
    const doubt = await this.masterDoubt(op, gen, sentinel)
    if (doubt === undefined) {
      const now = Date.now()
      if (now - this.lastUnreplicatedWarn >= UNREPLICATED_WARN_EVERY_MS) {
        this.lastUnreplicatedWarn = now
        this.conn.logger.warn({ op, waitMs: this.waitMs }, 'store: no replica confirmed a revocation; the master has no replica in sync (revocations are not failover-safe until one is)')
      }
      return
    }
    const err = new StoreUnavailableError(`store unavailable (${op}): no replica confirmed the write and ${doubt}`)
    this.conn.noteFailure(op, err)
    // This node is no longer the master: reconnect now (through the sentinels) rather than on the next failure.
    if (doubt.includes('another master') && this.conn.client instanceof Redis) this.conn.client.disconnect(true)
    throw err
  }

  private sameConnection (op: string, gen: number): void {
    if (gen !== this.conn.generation) throw new StoreUnavailableError(`store unavailable (${op}): reconnected before the write was confirmed`)
  }

  /**
   * Why this connection's node may not be the master a failover keeps; undefined when every sentinel
   * that answers names this node (by run id; by address while a sentinel has not read the run id of a
   * just-promoted master yet) and reports no failover under way.
   */
  private async masterDoubt (op: string, gen: number, sentinel: Sentinel): Promise<string | undefined> {
    const self = await this.conn.call(op, async (c) => {
      const r = c as Redis
      const info = await r.info('server')
      return { runId: /^run_id:(\S+)/m.exec(info)?.[1] ?? '', ip: (r.stream.remoteAddress ?? '').replace(/^::ffff:/, ''), port: r.stream.remotePort ?? 0 }
    })
    this.sameConnection(op, gen)
    const views = await Promise.all(sentinel.nodes.map(async (node) => await askSentinel(node, sentinel, this.conn.timeoutMs).catch(() => undefined)))
    const answered = views.filter((v): v is SentinelView => v !== undefined)
    if (answered.length === 0) return 'no sentinel answered'
    for (const v of answered) {
      const same = v.runId !== '' ? v.runId === self.runId : v.ip === self.ip && v.port === self.port
      if (!same) return `sentinel ${v.at} names another master (${v.ip}:${v.port})`
      if (/down|failover/.test(v.flags)) return `sentinel ${v.at} reports the master as ${v.flags}`
    }
    return undefined
  }
}
