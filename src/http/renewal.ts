/**
 * Silent renewal from the device credential: when the short session cookie is gone or expired, a valid
 * `sg-device` cookie mints a new one in the same request and is rotated. The previous credential keeps
 * working for `rememberMe.rotationGrace` (parallel requests); after that it is reuse, and the device is
 * revoked. Also refreshes a forwarded access token shortly before it expires.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ResponseBodyError } from 'openid-client'
import { seal, unseal } from '../core/sealed-cookie.js'
import { formatDeviceCookie, hashCredential, newCredential, parseDeviceCookie } from '../core/device.js'
import { issueSession, type SessionClaims } from '../core/session.js'
import { accessTokenOf, asTokenBundle, TOKENS_PURPOSE, type TokenBundle } from '../core/tokens.js'
import type { SessionRecord } from '../store/store.js'
import type { GatewayContext } from './context.js'

/** Refresh a forwarded access token this many seconds before it expires. */
const ACCESS_TOKEN_LEEWAY = 60

export interface Renewal {
  /** A new session from the device cookie, or null (cookies cleared when the device is refused). */
  renew (request: FastifyRequest, reply: FastifyReply, write: (claims: SessionClaims) => void): Promise<SessionClaims | null>
  /** A copy of `claims` with a fresh access token when the current one is about to expire. */
  freshAccessToken (request: FastifyRequest, claims: SessionClaims): Promise<SessionClaims | null>
}

export function createRenewal (ctx: GatewayContext): Renewal {
  const { store, jar, config, metrics } = ctx

  function openTokens (rec: SessionRecord): TokenBundle {
    if (rec.tokens === undefined) return {}
    try { return asTokenBundle(unseal(ctx.ring, TOKENS_PURPOSE, rec.tokens)) } catch { return {} }
  }

  /** Refreshes at the IdP; 'gone' when the IdP says the grant is dead (invalid_grant). */
  async function idpRefresh (request: FastifyRequest, rec: SessionRecord, bundle: TokenBundle): Promise<TokenBundle | 'gone' | 'unavailable'> {
    if (bundle.refreshToken === undefined) return bundle
    try {
      const oidc = await ctx.oidc.get()
      const r = await oidc.refresh(bundle.refreshToken)
      const next: TokenBundle = {
        ...bundle,
        at: r.accessToken,
        ...(r.accessTokenExp !== undefined ? { atExp: r.accessTokenExp } : {}),
        // The IdP may rotate the refresh token: keep the new one, atomically with the record.
        ...(r.refreshToken !== undefined ? { refreshToken: r.refreshToken } : {}),
        ...(r.idToken !== undefined ? { idToken: r.idToken } : {})
      }
      await store.updateSession(rec.sub, rec.sid, { tokens: seal(ctx.ring, TOKENS_PURPOSE, next) })
      return next
    } catch (err) {
      if (err instanceof ResponseBodyError && err.error === 'invalid_grant') return 'gone'
      request.log.warn({ reason: (err as Error).message }, 'refresh at the IdP failed')
      return 'unavailable'
    }
  }

  function refuse (request: FastifyRequest, reply: FastifyReply, result: string): null {
    metrics.renewals.inc({ result })
    jar.clearAll(request, reply)
    return null
  }

  async function renew (request: FastifyRequest, reply: FastifyReply, write: (claims: SessionClaims) => void): Promise<SessionClaims | null> {
    const raw = request.cookies[jar.names.device]
    if (raw === undefined) return null
    const device = parseDeviceCookie(raw)
    if (device === null) return refuse(request, reply, 'malformed')
    // A cookie of the previous format names no user: its owner is looked up (one more round trip, once:
    // the rotation below writes the new format).
    const sub = device.sub ?? await store.findOwner(device.sid)
    if (sub === null) return refuse(request, reply, 'unknown_device')
    const nowMs = ctx.nowMs()
    const next = newCredential()
    // Record, revocation state, epoch, rotation and touch: one atomic store call.
    const result = await store.renewDevice({
      sub,
      sid: device.sid,
      presentedHash: hashCredential(device.credential),
      newHash: hashCredential(next),
      nowMs,
      graceUntil: nowMs + config.rememberMe.rotationGrace * 1000,
      touch: { ip: request.ip, userAgent: String(request.headers['user-agent'] ?? '').slice(0, 256) },
      denyTtl: config.session.ttl
    })
    if (result.outcome === 'missing') {
      // The owner index outlives the record only while a revocation is unfinished (its event not yet
      // published): finish it, so every replica hears of it.
      const owner = device.sub === undefined ? sub : await store.findOwner(device.sid)
      if (owner === sub) await store.revokeSessions(sub, [device.sid], config.session.ttl)
      return refuse(request, reply, 'unknown_device')
    }
    if (result.outcome === 'reuse') {
      // A credential that was rotated away came back after the grace window: someone else holds a copy.
      // The store revoked the device in the same step (and announced it).
      metrics.reuseDetections.inc()
      metrics.logouts.inc({ channel: 'reuse' })
      request.log.warn({ sid: device.sid }, 'device credential reuse detected: device revoked')
      return refuse(request, reply, 'reuse')
    }
    if (result.outcome !== 'rotated' && result.outcome !== 'grace') return refuse(request, reply, result.outcome)
    const { record: rec, version, epoch } = result
    const rotated = result.outcome

    if (rotated === 'rotated') {
      // The new credential goes out whatever happens next: the old one is now only good for the grace window.
      const maxAge = rec.rememberMe ? Math.max(1, Math.floor((rec.expiresAt - nowMs) / 1000)) : undefined
      jar.set(reply, jar.names.device, formatDeviceCookie(rec.sid, next, sub), maxAge)
    }

    let bundle = openTokens(rec)
    if (rec.tokens !== undefined && Object.keys(bundle).length > 0 && !rec.tokens.startsWith(`v1.${ctx.ring.currentKid}.`)) {
      // Sealed with an older key: re-seal with the current one, so the old key can retire.
      await store.updateSession(sub, rec.sid, { tokens: seal(ctx.ring, TOKENS_PURPOSE, bundle) })
    }
    // Only the request that rotated asks the IdP: parallel refreshes would race the IdP's token rotation.
    if (config.rememberMe.checkIdp && rotated === 'rotated') {
      const checked = await idpRefresh(request, rec, bundle)
      if (checked === 'gone') {
        await store.revokeSessions(sub, [rec.sid], config.session.ttl)
        metrics.logouts.inc({ channel: 'idp' })
        request.log.info({ sid: rec.sid }, 'IdP refused the refresh token (invalid_grant): device revoked')
        return refuse(request, reply, 'idp_revoked')
      }
      if (checked === 'unavailable') {
        // An IdP outage is not a logout: no session now, but the device keeps its (rotated) credential.
        metrics.renewals.inc({ result: 'idp_unavailable' })
        return null
      }
      bundle = checked
    }

    const now = ctx.now()
    const claims = issueSession({
      sid: rec.sid,
      sub,
      iss: rec.iss,
      ...(rec.idpSid !== undefined ? { idpSid: rec.idpSid } : {}),
      ver: version,
      epoch,
      authTime: Math.floor(rec.createdAt / 1000),
      rememberMe: rec.rememberMe,
      profile: bundle.profile ?? {},
      ...(ctx.keepsAccessToken ? accessTokenOf(bundle) : {}),
      loginAt: now
      // The device record's end bounds the renewed cookie: absoluteTtl for a browser session, rememberMe.ttl otherwise.
    }, now, config.session.ttl, Math.max(1, Math.floor(rec.expiresAt / 1000) - now))
    write(claims)
    metrics.renewals.inc({ result: rotated })
    request.log.info({ sid: rec.sid, rotation: rotated }, 'session renewed from the device credential')
    return claims
  }

  async function freshAccessToken (request: FastifyRequest, claims: SessionClaims): Promise<SessionClaims | null> {
    if (claims.at === undefined || claims.atExp === undefined || claims.atExp - ctx.now() > ACCESS_TOKEN_LEEWAY) return null
    const rec = await store.getSession(claims.sub, claims.sid)
    if (rec === null) return null
    const bundle = openTokens(rec)
    const newer = bundle.at !== undefined && bundle.at !== claims.at
    // Another request, maybe on another replica, refreshed it already: take its token.
    if (newer && (bundle.atExp ?? 0) - ctx.now() > ACCESS_TOKEN_LEEWAY) return { ...claims, ...accessTokenOf(bundle) }
    // One refresh per device at a time across replicas: a short lock, never released early (it lapses).
    if (!(await store.tryLock(`refresh:${claims.sid}`, 10))) return newer ? { ...claims, ...accessTokenOf(bundle) } : null
    const next = await idpRefresh(request, rec, bundle)
    if (typeof next === 'string' || next.at === undefined) return null
    return { ...claims, ...accessTokenOf(next) }
  }

  return { renew, freshAccessToken }
}
