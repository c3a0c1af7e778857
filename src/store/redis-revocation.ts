/**
 * RedisStore's revocation state (RevocationStore without the subscription, which is the connection's):
 * the epoch, the hot-path check, revocations of sessions, users and IdP sessions, and the bearer check.
 *
 * Every revocation is a Lua script on the user's slot, then (Sentinel) the replica's confirmation, then
 * the event on the revocation channel, then the lookup indexes of the deleted records go.
 */
import { randomBytes } from 'node:crypto'
import { Cluster } from 'ioredis'
import type { RedisConnection } from './redis-conn.js'
import type { RedisIndexes } from './redis-indexes.js'
import { toInt } from './redis-record.js'
import { EPOCH, IDP_LOGOUT, REVOKE_SESSIONS, REVOKE_USER } from './redis-scripts.js'
import type { SentinelAck } from './redis-sentinel-ack.js'
import { secondsToS, toDeleted } from './redis-util.js'
import { StoreBadReplyError, newEpoch, type BearerCheck, type RevocationEvent, type SessionCheck } from './store.js'

export class RedisRevocation {
  constructor (private readonly conn: RedisConnection, private readonly ack: SentinelAck, private readonly indexes: RedisIndexes) {}

  async epoch (): Promise<string> {
    const conn = this.conn
    if (conn.epochCache !== undefined) return conn.epochCache
    const gen = conn.generation
    const value = await conn.call('epoch', async (c) => await EPOCH.run(c, [conn.keys.epoch], [newEpoch(randomBytes(16).toString('base64url'), Date.now())]))
    if (typeof value !== 'string') throw new StoreBadReplyError('store: epoch reply is not a string')
    if (gen === conn.generation) conn.epochCache = value
    return value
  }

  async check (sub: string, sid: string): Promise<SessionCheck> {
    const keys = this.conn.keys
    const [deny, ver] = await this.conn.call('check', async (c) => await c.mget(keys.deny(sub, sid), keys.ver(sub)))
    return { denied: deny != null, version: ver == null ? null : toInt(ver, 'ver') }
  }

  async revokeSessions (sub: string, sids: string[], denyTtl: number): Promise<RevocationEvent> {
    const k = this.conn.keys
    const keys = [k.devs(sub), ...sids.flatMap((sid) => [k.dev(sub, sid), k.deny(sub, sid), k.tok(sub, sid)])]
    let gen = 0
    const reply = await this.conn.call('revokeSessions', async (c, g) => {
      gen = g
      return await REVOKE_SESSIONS.run(c, keys, [secondsToS(denyTtl), ...sids])
    })
    await this.ack.confirm('revokeSessions', gen)
    // Published before the indexes go: a retry after a failed publish must still find the sessions.
    const event = await this.conn.publish({ sub, sids: [...sids], at: Date.now() })
    await this.indexes.drop(sub, toDeleted(reply))
    return event
  }

  async revokeUser (sub: string, denyTtl: number, tokenTtl = 0): Promise<RevocationEvent> {
    const k = this.conn.keys
    let gen = 0
    const denyS = secondsToS(denyTtl)
    const reply = await this.conn.call('revokeUser', async (c, g) => {
      gen = g
      return await REVOKE_USER.run(c, [k.ver(sub), k.devs(sub), k.revat(sub)], [
        denyS, k.dev(sub, ''), k.deny(sub, ''), Math.floor(Date.now() / 1000), Math.max(denyS, secondsToS(tokenTtl)), k.tok(sub, '')
      ])
    })
    if (!Array.isArray(reply)) throw new StoreBadReplyError('store: unexpected revokeUser reply')
    const [version, revokedAt, ...rest] = reply as unknown[]
    const deleted = toDeleted(rest)
    await this.ack.confirm('revokeUser', gen)
    const event = await this.conn.publish({ sub, sids: deleted.map((d) => d.sid), version: toInt(version, 'ver'), revokedAt: toInt(revokedAt, 'revat'), at: Date.now() })
    await this.indexes.drop(sub, deleted)
    return event
  }

  async logoutIdpSession (iss: string, idpSid: string, ttl: number): Promise<RevocationEvent> {
    let gen = 0
    await this.conn.call('logoutIdpSession', async (c, g) => {
      gen = g
      return await IDP_LOGOUT.run(c, [this.conn.keys.idpout(iss, idpSid)], [secondsToS(ttl)])
    })
    await this.ack.confirm('logoutIdpSession', gen)
    return await this.conn.publish({ sub: '', sids: [], idpSession: { iss, sid: idpSid }, at: Date.now() })
  }

  async checkBearer (sub: string, iss: string, idpSid: string | undefined): Promise<BearerCheck> {
    const revat = this.conn.keys.revat(sub)
    const [at, out] = await this.conn.call('checkBearer', async (c) => {
      if (idpSid === undefined) return [await c.get(revat), null]
      const marker = this.conn.keys.idpout(iss, idpSid)
      // Two slots in a Cluster: two commands, sent together (auto-pipelined per node); one MGET elsewhere.
      return c instanceof Cluster ? await Promise.all([c.get(revat), c.get(marker)]) : await c.mget(revat, marker)
    })
    return { revokedAt: at == null ? null : toInt(at, 'revat'), idpLoggedOut: out != null }
  }
}
