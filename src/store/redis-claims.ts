/**
 * RedisStore's one-time claims, locks (ClaimStore, Locks) and Shared Signals leases and notes
 * (CoordinationStore): single keys of their own slots, plain commands or one-key scripts.
 *
 * A lock is a claim under its name (`jti:<name>`): `tryLock('refresh:<sid>')` is the key the previous
 * release's refresh lock, `claimOnce('refresh', sid)`, took, so replicas of both versions exclude each
 * other during a rolling upgrade.
 */
import type { RedisConnection } from './redis-conn.js'
import { LEASE, RELEASE } from './redis-scripts.js'
import { secondsToS } from './redis-util.js'
import type { ClaimStore, CoordinationStore, Locks } from './store.js'

export class RedisClaims implements ClaimStore, Locks, CoordinationStore {
  constructor (private readonly conn: RedisConnection) {}

  async claimOnce (kind: string, id: string, ttl: number): Promise<boolean> {
    return await this.take('claimOnce', this.conn.keys.jti(kind, id), ttl)
  }

  async wasClaimed (kind: string, id: string): Promise<boolean> {
    return (await this.conn.call('wasClaimed', async (c) => await c.exists(this.conn.keys.jti(kind, id)))) === 1
  }

  async tryLock (name: string, ttl: number): Promise<boolean> {
    return await this.take('tryLock', this.conn.keys.lock(name), ttl)
  }

  async lease (name: string, holder: string, ttlMs: number): Promise<boolean> {
    const held = await this.conn.call('lease', async (c) => await LEASE.run(c, [this.conn.keys.lease(name)], [holder, Math.max(1, Math.ceil(ttlMs))]))
    return Number(held) === 1
  }

  async releaseLease (name: string, holder: string): Promise<void> {
    await this.conn.call('releaseLease', async (c) => await RELEASE.run(c, [this.conn.keys.lease(name)], [holder]))
  }

  async putNote (kind: string, id: string, value: string, ttl: number): Promise<void> {
    await this.conn.call('putNote', async (c) => await c.set(this.conn.keys.note(kind, id), value, 'EX', secondsToS(ttl)))
  }

  async getNote (kind: string, id: string): Promise<string | null> {
    return await this.conn.call('getNote', async (c) => await c.get(this.conn.keys.note(kind, id)))
  }

  /** SET NX EX: true when the key was free. */
  private async take (op: string, key: string, ttl: number): Promise<boolean> {
    const ok = await this.conn.call(op, async (c) => await c.set(key, '1', 'EX', secondsToS(ttl), 'NX'))
    return ok === 'OK'
  }
}
