/**
 * The device lookup indexes: `sidx:<sid>` (owner), `idpsid:<iss>:<sid>` (sessions under one IdP session)
 * and `email:<address>` (sessions under one address), outside the user's slot, and the user's `devs:{u}`.
 * Written beside the record by createSession, dropped once a revocation is stored and announced; a stale
 * entry leads to no record (readers check) and expires with its index.
 *
 * The indexes are small hashes, which Redis keeps as listpacks (a set of strings is a hashtable before
 * Redis 7.2, 100-300 B more per key): `devs` sid -> '', `idpsid` and `email` sid -> sub. An index of the
 * previous layout (a set: sids, or JSON `[sub, sid]` members) is still read and trimmed as a set (a
 * WRONGTYPE reply falls back to the set command) and is converted by the script that next adds to it.
 */
import type { Client } from './redis-connect.js'
import type { RedisConnection } from './redis-conn.js'
import { INDEX } from './redis-scripts.js'
import { parseMember, type Deleted } from './redis-util.js'

/** A hash command on an index of the previous layout (a set). */
const wrongType = (err: unknown): boolean => err instanceof Error && err.message.startsWith('WRONGTYPE')

/** `hashCmd`, or `setCmd` when the key is still a set of the previous layout. */
async function either<T> (hashCmd: () => Promise<T>, setCmd: () => Promise<T>): Promise<T> {
  try {
    return await hashCmd()
  } catch (err) {
    if (!wrongType(err)) throw err
    return await setCmd()
  }
}

export interface SessionRef { sub: string, sid: string }

export class RedisIndexes {
  constructor (private readonly conn: RedisConnection) {}

  /**
   * The index writes of a new session, to run on `c` in the same batch as (and before) the record's own
   * script: a logout racing the creation then finds the session. `px`: the record's lifetime.
   */
  add (c: Client, rec: { sub: string, sid: string, iss: string, idpSid?: string, email?: string }, px: number): Array<Promise<unknown>> {
    const keys = this.conn.keys
    return [
      c.set(keys.sidx(rec.sid), rec.sub, 'PX', px),
      ...(rec.idpSid !== undefined ? [INDEX.run(c, [keys.idpsid(rec.iss, rec.idpSid)], [rec.sid, rec.sub, px])] : []),
      ...(rec.email !== undefined ? [INDEX.run(c, [keys.email(rec.email)], [rec.sid, rec.sub, px])] : [])
    ]
  }

  /** The members of an IdP-session or email index (maybe stale: their records may be gone). */
  async members (op: string, key: string): Promise<SessionRef[]> {
    return await this.conn.call(op, async (c) => await either(
      async () => Object.entries(await c.hgetall(key)).map(([sid, sub]) => ({ sub, sid })),
      async () => (await c.smembers(key)).map(parseMember).filter((m): m is SessionRef => m !== null)
    ))
  }

  /** The sids in the user's `devs` index (maybe stale). */
  async devices (op: string, sub: string): Promise<string[]> {
    const key = this.conn.keys.devs(sub)
    return await this.conn.call(op, async (c) => await either(async () => await c.hkeys(key), async () => await c.smembers(key)))
  }

  /** Drops stale sids (their records expired) from the user's `devs` index. */
  async dropDevices (op: string, sub: string, sids: string[]): Promise<void> {
    const key = this.conn.keys.devs(sub)
    await this.conn.call(op, async (c) => await either(async () => await c.hdel(key, ...sids), async () => await c.srem(key, ...sids)))
  }

  /**
   * Drops the lookup indexes of revoked sessions, once the revocation is stored and announced. A failure
   * here does not undo the logout: a stale entry leads to no record (and expires with it), so it is
   * logged, not thrown.
   */
  async drop (sub: string, deleted: Deleted[]): Promise<void> {
    if (deleted.length === 0) return
    const keys = this.conn.keys
    try {
      await this.conn.call('revoke', async (c) => await Promise.all(deleted.flatMap((d) => [
        c.del(keys.sidx(d.sid)),
        ...(d.idpSid !== '' ? [this.remove(c, keys.idpsid(d.iss, d.idpSid), sub, d.sid)] : []),
        ...(d.email !== '' ? [this.remove(c, keys.email(d.email), sub, d.sid)] : [])
      ])))
    } catch (err) {
      this.conn.logger.warn({ reason: (err as Error).message, sessions: deleted.length }, 'store: revoked, but its lookup indexes could not be dropped (they expire with the records)')
    }
  }

  private async remove (c: Client, key: string, sub: string, sid: string): Promise<unknown> {
    return await either(async () => await c.hdel(key, sid), async () => await c.srem(key, JSON.stringify([sub, sid])))
  }
}
