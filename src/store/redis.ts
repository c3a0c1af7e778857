/**
 * RedisStore: the shared Store for many replicas (ioredis), on a standalone Redis, a Sentinel-managed
 * master or a Redis Cluster (see redis-connect.ts for the topologies, redis-pubsub.ts for the revocation
 * channel of each, redis-scripts.ts for the Lua scripts).
 *
 * Composed of one part per concern, all on one connection (redis-conn.ts: bounded calls, the revocation
 * channel, the subscription signals):
 * - redis-revocation.ts: RevocationStore (epoch, check, revocations, bearer check);
 * - redis-devices.ts: DeviceStore (records, rotation, renewal) with redis-indexes.ts (owner, IdP-session
 *   and email indexes) and redis-record.ts (the record codec);
 * - redis-claims.ts: ClaimStore, Locks and CoordinationStore (claims, locks, leases, notes);
 * - redis-sentinel-ack.ts: a revocation is acknowledged only once a replica has it (Sentinel).
 *
 * Every key of one user carries the hash tag `{base64url(sub)}` (DESIGN.md section 4), so the hot-path
 * MGET and the Lua scripts that change several keys of one user stay in one Cluster slot. Indexes keyed
 * by something else (`idpsid:`, `sidx:`, `email:`) live in other slots and are written with separate commands.
 */
import type { Client } from './redis-connect.js'
import { RedisClaims } from './redis-claims.js'
import { RedisConnection, type RedisStoreOptions } from './redis-conn.js'
import { RedisDevices } from './redis-devices.js'
import { RedisIndexes, type SessionRef } from './redis-indexes.js'
import type { Keys } from './redis-keys.js'
import type { Feed } from './redis-pubsub.js'
import { RedisRevocation } from './redis-revocation.js'
import { SentinelAck } from './redis-sentinel-ack.js'
import type {
  BearerCheck,
  RenewDeviceInput,
  RenewDeviceResult,
  RevocationEvent,
  RotateResult,
  SessionCheck,
  SessionPatch,
  SessionRecord,
  Store
} from './store.js'

export { connect, parseRedisUrl } from './redis-connect.js'
export { EVENTS_LEASE_MS, type RedisStoreOptions, type StoreLogger } from './redis-conn.js'
export { parseEvent } from './redis-util.js'

export class RedisStore implements Store {
  readonly kind = 'redis'
  private readonly conn: RedisConnection
  private readonly revocation: RedisRevocation
  private readonly devices: RedisDevices
  private readonly shared: RedisClaims

  constructor (opts: RedisStoreOptions) {
    this.conn = new RedisConnection(opts)
    const ack = new SentinelAck(this.conn, opts.redis)
    const indexes = new RedisIndexes(this.conn)
    this.revocation = new RedisRevocation(this.conn, ack, indexes)
    this.devices = new RedisDevices(this.conn, ack, indexes)
    this.shared = new RedisClaims(this.conn)
  }

  // RevocationStore
  async epoch (): Promise<string> { return await this.revocation.epoch() }
  async check (sub: string, sid: string): Promise<SessionCheck> { return await this.revocation.check(sub, sid) }
  async revokeSessions (sub: string, sids: string[], denyTtl: number): Promise<RevocationEvent> { return await this.revocation.revokeSessions(sub, sids, denyTtl) }
  async revokeUser (sub: string, denyTtl: number, tokenTtl?: number): Promise<RevocationEvent> { return await this.revocation.revokeUser(sub, denyTtl, tokenTtl) }
  async logoutIdpSession (iss: string, idpSid: string, ttl: number): Promise<RevocationEvent> { return await this.revocation.logoutIdpSession(iss, idpSid, ttl) }
  async checkBearer (sub: string, iss: string, idpSid: string | undefined): Promise<BearerCheck> { return await this.revocation.checkBearer(sub, iss, idpSid) }
  subscribe (listener: (event: RevocationEvent) => void): () => void { return this.conn.subscribe(listener) }
  onResubscribed (cb: () => void): () => void { return this.conn.onResubscribed(cb) }
  onSubscriptionChange (cb: (live: boolean) => void): () => void { return this.conn.onSubscriptionChange(cb) }
  eventsUpToDate (): boolean { return this.conn.eventsUpToDate() }
  onReconnect (cb: () => void): () => void { return this.conn.onReconnect(cb) }
  onTrouble (cb: () => void): () => void { return this.conn.onTrouble(cb) }

  // DeviceStore
  async createSession (rec: Omit<SessionRecord, 'version'>, userStateTtl: number): Promise<number> { return await this.devices.createSession(rec, userStateTtl) }
  async getSession (sub: string, sid: string): Promise<SessionRecord | null> { return await this.devices.getSession(sub, sid) }
  async findOwner (sid: string): Promise<string | null> { return await this.devices.findOwner(sid) }
  async listSessions (sub: string): Promise<SessionRecord[]> { return await this.devices.listSessions(sub) }
  async updateSession (sub: string, sid: string, patch: SessionPatch): Promise<void> { await this.devices.updateSession(sub, sid, patch) }
  async rotateCredential (sub: string, sid: string, expectedHash: string, newHash: string, now: number, graceUntil: number): Promise<RotateResult> {
    return await this.devices.rotateCredential(sub, sid, expectedHash, newHash, now, graceUntil)
  }

  async renewDevice (input: RenewDeviceInput): Promise<RenewDeviceResult> { return await this.devices.renewDevice(input, async () => await this.revocation.epoch()) }
  async sessionsForIdpSession (iss: string, idpSid: string): Promise<SessionRef[]> { return await this.devices.sessionsForIdpSession(iss, idpSid) }
  async usersForEmail (email: string): Promise<string[]> { return await this.devices.usersForEmail(email) }

  // ClaimStore, Locks, CoordinationStore
  async claimOnce (kind: string, id: string, ttl: number): Promise<boolean> { return await this.shared.claimOnce(kind, id, ttl) }
  async wasClaimed (kind: string, id: string): Promise<boolean> { return await this.shared.wasClaimed(kind, id) }
  async tryLock (name: string, ttl: number): Promise<boolean> { return await this.shared.tryLock(name, ttl) }
  async lease (name: string, holder: string, ttlMs: number): Promise<boolean> { return await this.shared.lease(name, holder, ttlMs) }
  async releaseLease (name: string, holder: string): Promise<void> { await this.shared.releaseLease(name, holder) }
  async putNote (kind: string, id: string, value: string, ttl: number): Promise<void> { await this.shared.putNote(kind, id, value, ttl) }
  async getNote (kind: string, id: string): Promise<string | null> { return await this.shared.getNote(kind, id) }

  // StoreLifecycle
  async ping (): Promise<void> { await this.conn.ping() }
  async close (): Promise<void> { await this.conn.close() }

  // Internals some tests look at (the data client, the subscriber feed, key names).
  private get client (): Client { return this.conn.client }
  private get feed (): Feed { return this.conn.feed }
  private get keys (): Keys { return this.conn.keys }
}
