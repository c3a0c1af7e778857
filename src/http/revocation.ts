/**
 * Every way to end sessions (back-channel, front-channel, RP-initiated, admin, the user's own device
 * page, Shared Signals) comes through here: one store operation plus one published event, counted and logged alike.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { GatewayContext } from './context.js'
import { endsConnection, type Closer, type ConnectionOwner } from './connections.js'
import { bearerStateTtl } from '../bearer/bearer-check.js'

export type LogoutChannel = 'backchannel' | 'frontchannel' | 'rp' | 'admin' | 'self' | 'ssf'

export interface Revoker {
  /** Ends one session (and its device credential). */
  session (sub: string, sid: string, channel: LogoutChannel, log: FastifyBaseLogger): Promise<void>
  /** Ends every session of the user on every device. Returns how many records it deleted. */
  user (sub: string, channel: LogoutChannel, log: FastifyBaseLogger): Promise<number>
  /** Ends every gateway session created under one IdP session (optionally only the given user's). */
  idpSession (iss: string, idpSid: string, channel: LogoutChannel, log: FastifyBaseLogger, onlySub?: string): Promise<number>
}

/** Builds the revoker of one gateway. */
export function createRevoker (ctx: GatewayContext): Revoker {
  const { store, metrics } = ctx
  const denyTtl = ctx.config.session.ttl
  // Bearer tokens: the revocation time and IdP-session markers live as long as an access token can.
  const tokenTtl = bearerStateTtl(ctx.config)
  const bearerRoutes = ctx.config.routes.some((r) => r.bearer)

  return {
    async session (sub, sid, channel, log) {
      await store.revokeSessions(sub, [sid], denyTtl)
      metrics.logouts.inc({ channel })
      log.info({ sid, channel }, 'session revoked')
    },
    async user (sub, channel, log) {
      const event = await store.revokeUser(sub, denyTtl, bearerRoutes ? tokenTtl : 0)
      metrics.logouts.inc({ channel })
      log.info({ sessions: event.sids.length, version: event.version, channel }, 'all sessions of a user revoked')
      return event.sids.length
    },
    async idpSession (iss, idpSid, channel, log, onlySub) {
      // First, so an API client's tokens are refused even when no gateway session was created under it.
      if (bearerRoutes) await store.logoutIdpSession(iss, idpSid, tokenTtl)
      const found = await store.sessionsForIdpSession(iss, idpSid)
      const bySub = new Map<string, string[]>()
      for (const { sub, sid } of found) {
        if (onlySub !== undefined && sub !== onlySub) continue
        bySub.set(sub, [...(bySub.get(sub) ?? []), sid])
      }
      for (const [sub, sids] of bySub) await store.revokeSessions(sub, sids, denyTtl)
      const n = [...bySub.values()].reduce((a, s) => a + s.length, 0)
      metrics.logouts.inc({ channel })
      log.info({ sessions: n, channel }, 'IdP session revoked')
      return n
    }
  }
}

/**
 * Registers a long-lived connection for revocation, then checks the session once more: a revocation
 * that landed between the gate's check and this registration would otherwise never reach it. The epoch
 * read then is the connection's, unless the caller gave one (reconciliation compares it; http/reconcile.ts).
 */
export function watchConnection (ctx: GatewayContext, owner: ConnectionOwner, close: Closer, log: FastifyBaseLogger): () => void {
  const remove = ctx.connections.add(owner, close)
  Promise.all([ctx.store.check(owner.sub, owner.sid), ctx.store.epoch()]).then(([st, epoch]) => {
    owner.epoch ??= epoch
    if (endsConnection(owner, st, epoch)) ctx.connections.closeFor({ sub: owner.sub, sids: [owner.sid] })
  }, (err: Error) => {
    log.warn({ reason: err.message }, 'could not re-check a new long-lived connection; revocation events still apply')
  })
  return remove
}
