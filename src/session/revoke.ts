/**
 * Every way to end sessions (back-channel, front-channel, RP-initiated, admin, the user's own device
 * page, Shared Signals) comes through here: one store operation plus one published event, counted and
 * logged alike. And the RP-initiated logout of one session: revoke, then the IdP's end-session URL.
 */
import type { Store } from '../store/store.js'
import type { IdpSource, SessionCounters } from './deps.js'
import type { Seals } from './seals.js'
import { CLEAR_ALL, type CookieOp, type Log } from './types.js'

export type LogoutChannel = 'backchannel' | 'frontchannel' | 'rp' | 'admin' | 'self' | 'ssf'

export interface Revoker {
  /** Ends one session (and its device credential). */
  session (sub: string, sid: string, channel: LogoutChannel, log: Log): Promise<void>
  /** Ends every session of the user on every device. Returns how many records it deleted. */
  user (sub: string, channel: LogoutChannel, log: Log): Promise<number>
  /** Ends every gateway session created under one IdP session (optionally only the given user's). */
  idpSession (iss: string, idpSid: string, channel: LogoutChannel, log: Log, onlySub?: string): Promise<number>
}

export interface RevokerDeps {
  store: Store
  counters: Pick<SessionCounters, 'logout'>
  /** How long a revoked session id stays denylisted (session.ttl: no cookie of it lives longer). */
  denyTtl: number
  /** With bearer routes: how long an access token can live (revocation times and IdP-session markers are kept that long). */
  bearerTtl?: number
}

/** Builds the revoker of one gateway. */
export function createRevoker ({ store, counters, denyTtl, bearerTtl }: RevokerDeps): Revoker {
  return {
    async session (sub, sid, channel, log) {
      await store.revokeSessions(sub, [sid], denyTtl)
      counters.logout(channel)
      log.info({ sid, channel }, 'session revoked')
    },
    async user (sub, channel, log) {
      const event = await store.revokeUser(sub, denyTtl, bearerTtl ?? 0)
      counters.logout(channel)
      log.info({ sessions: event.sids.length, version: event.version, channel }, 'all sessions of a user revoked')
      return event.sids.length
    },
    async idpSession (iss, idpSid, channel, log, onlySub) {
      // First, so an API client's tokens are refused even when no gateway session was created under it.
      if (bearerTtl !== undefined) await store.logoutIdpSession(iss, idpSid, bearerTtl)
      const found = await store.sessionsForIdpSession(iss, idpSid)
      const bySub = new Map<string, string[]>()
      for (const { sub, sid } of found) {
        if (onlySub !== undefined && sub !== onlySub) continue
        bySub.set(sub, [...(bySub.get(sub) ?? []), sid])
      }
      for (const [sub, sids] of bySub) await store.revokeSessions(sub, sids, denyTtl)
      const n = [...bySub.values()].reduce((a, s) => a + s.length, 0)
      counters.logout(channel)
      log.info({ sessions: n, channel }, 'IdP session revoked')
      return n
    }
  }
}

export interface LogoutDeps { store: Store, seals: Seals, idp: IdpSource, revoker: Revoker, postLogoutRedirectUri: string }

/**
 * Local (RP-initiated) logout of one session: revoke it and its device credential, revoke the refresh
 * token at the IdP (RFC 7009, best effort), and send the browser to the IdP's end-session endpoint.
 */
export async function logoutSession (deps: LogoutDeps, s: { sub: string, sid: string }, log: Log): Promise<{ redirect: string, cookies: readonly CookieOp[] }> {
  const record = await deps.store.getSession(s.sub, s.sid)
  await deps.revoker.session(s.sub, s.sid, 'rp', log)
  const opened = deps.seals.tokenBundle(record?.tokens)
  // Logged: without the bundle the refresh token is not revoked at the IdP, nor the id_token_hint sent.
  if (!opened.ok) log.warn({ code: opened.code, seal: opened.seal, sid: s.sid }, 'the session\'s token bundle cannot be opened')
  const tokens = opened.bundle
  const oidc = deps.idp.current()
  if (oidc !== undefined && tokens.refreshToken !== undefined) {
    // RFC 7009: best effort; the local session is gone whatever the IdP answers.
    await oidc.revokeRefreshToken(tokens.refreshToken).catch((err: Error) => {
      log.warn({ reason: err.message }, 'refresh token revocation at the IdP failed')
    })
  }
  return { redirect: oidc?.endSessionUrl(tokens.idToken, deps.postLogoutRedirectUri) ?? '/', cookies: CLEAR_ALL }
}
