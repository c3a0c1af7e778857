/**
 * RedisStore's device records (DeviceStore): the record hash and token key in the user's slot
 * (redis-record.ts has the codec), the lookup indexes outside it (redis-indexes.ts), credential rotation
 * and the one-round-trip renewal.
 */
import { randomBytes } from 'node:crypto'
import type { RedisConnection } from './redis-conn.js'
import type { RedisIndexes, SessionRef } from './redis-indexes.js'
import { encodeHash, encodeTokens, fromFields, pairsToObject, toFields, toInt } from './redis-record.js'
import { CREATE, RENEW, ROTATE, UPDATE } from './redis-scripts.js'
import type { SentinelAck } from './redis-sentinel-ack.js'
import { secondsToMs, secondsToS } from './redis-util.js'
import {
  StoreBadReplyError,
  newEpoch,
  type RenewDeviceInput,
  type RenewDeviceResult,
  type RenewRefusal,
  type RotateResult,
  type SessionPatch,
  type SessionRecord
} from './store.js'

const REFUSALS: readonly string[] = ['missing', 'expired', 'denied', 'state_lost', 'version', 'unknown'] satisfies RenewRefusal[]

export class RedisDevices {
  constructor (private readonly conn: RedisConnection, private readonly ack: SentinelAck, private readonly indexes: RedisIndexes) {}

  async createSession (rec: Omit<SessionRecord, 'version'>, userStateTtl: number): Promise<number> {
    const k = this.conn.keys
    const now = Date.now()
    const px = Math.max(1, Math.ceil(rec.expiresAt - now))
    // One connection runs commands in order: the indexes exist before the record, so a logout racing
    // this call finds the session. They live in other slots, hence separate commands.
    const replies = await this.conn.call('createSession', async (c) => await Promise.all([
      ...this.indexes.add(c, rec, px),
      CREATE.run(
        c,
        [k.ver(rec.sub), k.dev(rec.sub, rec.sid), k.devs(rec.sub), k.tok(rec.sub, rec.sid)],
        [rec.sid, rec.expiresAt, secondsToMs(userStateTtl), now, rec.tokens !== undefined ? encodeTokens(rec.tokens) : '', ...toFields(rec).set]
      )
    ]))
    return toInt(replies[replies.length - 1], 'ver')
  }

  async getSession (sub: string, sid: string): Promise<SessionRecord | null> {
    const k = this.conn.keys
    const [hash, tokens] = await this.conn.call('getSession', async (c) => await Promise.all([
      c.hgetallBuffer(k.dev(sub, sid)),
      c.getBuffer(k.tok(sub, sid))
    ]))
    return fromFields(sub, sid, hash, tokens)
  }

  async findOwner (sid: string): Promise<string | null> {
    return await this.conn.call('findOwner', async (c) => await c.get(this.conn.keys.sidx(sid)))
  }

  async listSessions (sub: string): Promise<SessionRecord[]> {
    const k = this.conn.keys
    const sids = await this.indexes.devices('listSessions', sub)
    if (sids.length === 0) return []
    // The list shows no tokens: they are not read.
    const hashes = await this.conn.call('listSessions', async (c) => await Promise.all(sids.map(async (sid) => await c.hgetallBuffer(k.dev(sub, sid)))))
    const records: SessionRecord[] = []
    const stale: string[] = []
    hashes.forEach((hash, i) => {
      const rec = fromFields(sub, sids[i] ?? '', hash, null)
      if (rec !== null) delete rec.tokens // a record of the previous layout holds them in the hash
      if (rec !== null) records.push(rec)
      else stale.push(sids[i] ?? '')
    })
    // Expired records leave their id in the set; drop them so the set stays bounded.
    if (stale.length > 0) await this.indexes.dropDevices('listSessions', sub, stale)
    return records.sort((a, b) => b.createdAt - a.createdAt)
  }

  async updateSession (sub: string, sid: string, patch: SessionPatch): Promise<void> {
    const k = this.conn.keys
    const { tokens, ...rest } = patch
    const { set, del } = toFields(rest)
    if (tokens !== undefined) del.push('tokens') // the previous layout kept them in the hash
    if (set.length === 0 && tokens === undefined) return
    await this.conn.call('updateSession', async (c) => await UPDATE.run(c, [k.dev(sub, sid), k.tok(sub, sid)], [
      tokens !== undefined ? '1' : '0', tokens !== undefined ? encodeTokens(tokens) : '', set.length, ...set, ...del
    ]))
  }

  async rotateCredential (sub: string, sid: string, expectedHash: string, newHash: string, now: number, graceUntil: number): Promise<RotateResult> {
    const result = await this.conn.call('rotateCredential', async (c) =>
      await ROTATE.run(c, [this.conn.keys.dev(sub, sid)], [encodeHash(expectedHash), encodeHash(newHash), now, graceUntil, expectedHash]))
    if (result === 'rotated' || result === 'grace' || result === 'reuse' || result === 'unknown' || result === 'missing') return result
    throw new StoreBadReplyError(`store: unexpected rotate reply ${String(result)}`)
  }

  /**
   * One script on the user's slot; outside a Cluster it also reads (or creates) the epoch, which in a
   * Cluster lives in another slot and is read beside it. `epoch` is RedisRevocation's (cached) read.
   */
  async renewDevice (i: RenewDeviceInput, epoch: () => Promise<string>): Promise<RenewDeviceResult> {
    const { sub, sid } = i
    const conn = this.conn
    const k = conn.keys
    const cluster = conn.cluster
    const keys = [k.dev(sub, sid), k.ver(sub), k.deny(sub, sid), k.tok(sub, sid), k.devs(sub)]
    if (!cluster) keys.push(k.epoch)
    const touch = toFields({ lastSeenAt: i.nowMs, ip: i.touch.ip, userAgent: i.touch.userAgent })
    let gen = 0
    const [reply, clusterEpoch] = await conn.call('renewDevice', async (c, g) => {
      gen = g
      return await Promise.all([
        RENEW.runBuffer(c, keys, [
          sid, encodeHash(i.presentedHash), i.presentedHash, encodeHash(i.newHash), i.nowMs, i.graceUntil, secondsToS(i.denyTtl),
          newEpoch(randomBytes(16).toString('base64url'), Date.now()), i.issuedGeneration ?? '', touch.set.length, ...touch.set, ...touch.del
        ]),
        cluster ? epoch() : undefined
      ])
    })
    if (!Array.isArray(reply) || reply.length === 0) throw new StoreBadReplyError('store: unexpected renewDevice reply')
    const outcome = String(reply[0])
    if (outcome === 'reuse') {
      // Revoked by the script, exactly as revokeSessions: acknowledged once replicated and announced.
      await this.ack.confirm('renewDevice', gen)
      const event = await conn.publish({ sub, sids: [sid], at: Date.now() })
      await this.indexes.drop(sub, [{ sid, iss: String(reply[1]), idpSid: String(reply[2]), email: String(reply[3]) }])
      return { outcome: 'reuse', event }
    }
    if (outcome === 'rotated' || outcome === 'grace') {
      const [, version, stored, tokens, ...flat] = reply as unknown[]
      const record = fromFields(sub, sid, pairsToObject(flat), Buffer.isBuffer(tokens) ? tokens : null)
      if (record === null) throw new StoreBadReplyError('store: renewDevice returned no record')
      const e = clusterEpoch ?? String(stored)
      if (!cluster && gen === conn.generation) conn.epochCache = e
      return { outcome, record, version: toInt(version, 'ver'), epoch: e }
    }
    if (REFUSALS.includes(outcome)) return { outcome: outcome as RenewRefusal }
    throw new StoreBadReplyError(`store: unexpected renewDevice reply ${outcome}`)
  }

  async sessionsForIdpSession (iss: string, idpSid: string): Promise<SessionRef[]> {
    return await this.indexes.members('sessionsForIdpSession', this.conn.keys.idpsid(iss, idpSid))
  }

  async usersForEmail (email: string): Promise<string[]> {
    const k = this.conn.keys
    const found = await this.indexes.members('usersForEmail', k.email(email))
    if (found.length === 0) return []
    // A member outlives its record when the record expired (the set lives as long as its newest member).
    const live = await this.conn.call('usersForEmail', async (c) => await Promise.all(found.map(async (m) => await c.exists(k.dev(m.sub, m.sid)))))
    return [...new Set(found.filter((_m, i) => live[i] === 1).map((m) => m.sub))]
  }
}
