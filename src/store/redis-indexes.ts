/**
 * The device lookup indexes that live outside the user's slot: `sidx:<sid>` (owner), `idpsid:<iss>:<sid>`
 * (sessions under one IdP session) and `email:<address>` (sessions under one address), members
 * `[sub, sid]` as JSON. Written beside the record by createSession, dropped once a revocation is stored
 * and announced; a stale member leads to no record (readers check) and expires with its index.
 */
import type { Client } from './redis-connect.js'
import type { RedisConnection } from './redis-conn.js'
import { INDEX } from './redis-scripts.js'
import { parseMember, type Deleted } from './redis-util.js'

export interface SessionRef { sub: string, sid: string }

export class RedisIndexes {
  constructor (private readonly conn: RedisConnection) {}

  /**
   * The index writes of a new session, to run on `c` in the same batch as (and before) the record's own
   * script: a logout racing the creation then finds the session. `px`: the record's lifetime.
   */
  add (c: Client, rec: { sub: string, sid: string, iss: string, idpSid?: string, email?: string }, px: number): Array<Promise<unknown>> {
    const keys = this.conn.keys
    const member = JSON.stringify([rec.sub, rec.sid])
    return [
      c.set(keys.sidx(rec.sid), rec.sub, 'PX', px),
      ...(rec.idpSid !== undefined ? [INDEX.run(c, [keys.idpsid(rec.iss, rec.idpSid)], [member, px])] : []),
      ...(rec.email !== undefined ? [INDEX.run(c, [keys.email(rec.email)], [member, px])] : [])
    ]
  }

  /** The members of an IdP-session or email index (maybe stale: their records may be gone). */
  async members (op: string, key: string): Promise<SessionRef[]> {
    const members = await this.conn.call(op, async (c) => await c.smembers(key))
    return members.map(parseMember).filter((m): m is SessionRef => m !== null)
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
        ...(d.idpSid !== '' ? [c.srem(keys.idpsid(d.iss, d.idpSid), JSON.stringify([sub, d.sid]))] : []),
        ...(d.email !== '' ? [c.srem(keys.email(d.email), JSON.stringify([sub, d.sid]))] : [])
      ])))
    } catch (err) {
      this.conn.logger.warn({ reason: (err as Error).message, sessions: deleted.length }, 'store: revoked, but its lookup indexes could not be dropped (they expire with the records)')
    }
  }
}
