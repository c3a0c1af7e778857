/**
 * The gate: resolves the session of a request from its cookie, checks it against the revocation state,
 * slides it forward when it is past half its life, and decides what an unauthenticated request gets.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { seal, unseal } from '../core/sealed-cookie.js'
import { asSessionClaims, shouldSlide, slideSession, timeVerdict, verdict, type SessionClaims } from '../core/session.js'
import { StoreUnavailableError } from '../store/store.js'
import { createRenewal } from './renewal.js'
import type { GatewayContext } from './context.js'

export const SESSION_PURPOSE = 'session'
const CACHE_MAX = 10_000

/**
 * Unsealing costs an AES-GCM decryption; the result depends only on the cookie value, so cache it.
 * Only values that opened are kept: junk sent on purpose must not push real sessions out.
 */
class UnsealCache {
  private readonly map = new Map<string, SessionClaims>()
  get (key: string): SessionClaims | undefined { return this.map.get(key) }
  set (key: string, value: SessionClaims): void {
    if (this.map.size >= CACHE_MAX) this.map.delete(this.map.keys().next().value as string)
    // The value is sliced from the whole Cookie header: a copy keeps only the cookie, not every header.
    this.map.set(Buffer.from(key, 'latin1').toString('latin1'), value)
  }
}

export interface ResolveOptions {
  /** Refresh a forwarded access token shortly before it expires. */
  accessToken?: boolean
  /**
   * For forward-auth answers, whose Set-Cookie an ingress controller relays: nginx's auth_request_set
   * passes only the first line. So at most one cookie is written (a slide of an unchunked session);
   * no renewal from the device credential (two cookies: the sign-in URL renews instead) and no
   * clearing (the sign-in URL does that too).
   */
  oneCookie?: boolean
}

export interface Gate {
  /** The live session of this request, or null. Clears cookies of revoked or invalid sessions. */
  resolve (request: FastifyRequest, reply: FastifyReply, opts?: ResolveOptions): Promise<SessionClaims | null>
  /**
   * The session the request's cookie names, whatever the store says of it now (revoked, expired); null
   * when no cookie opens with our keys. For a logout asked again to end a session the gate already
   * refuses: the first attempt may have stored the revocation and failed before its event went out, and
   * ending it once more (idempotent, that user's keys only) publishes the event.
   */
  cookieSession (request: FastifyRequest): Pick<SessionClaims, 'sub' | 'sid'> | null
  /** Seals and sets a session cookie for these claims. */
  writeSession (request: FastifyRequest, reply: FastifyReply, claims: SessionClaims): void
  /** What a request without a live session gets on an `auth: required` route. */
  deny (request: FastifyRequest, reply: FastifyReply): FastifyReply
}

/** Builds the gate for one gateway instance. */
export function createGate (ctx: GatewayContext): Gate {
  const cache = new UnsealCache()
  const { jar, store, config, metrics } = ctx
  let warnedOpen = 0
  const renewal = createRenewal(ctx)

  function open (sealed: string): SessionClaims | null {
    const hit = cache.get(sealed)
    if (hit !== undefined) return hit
    let claims: SessionClaims | null = null
    try {
      claims = asSessionClaims(unseal(ctx.ring, SESSION_PURPOSE, sealed))
    } catch {
      claims = null // tampered, truncated or sealed with a key we no longer have
    }
    if (claims !== null) cache.set(sealed, claims)
    return claims
  }

  function writeSession (request: FastifyRequest, reply: FastifyReply, claims: SessionClaims): void {
    const sealed = seal(ctx.ring, SESSION_PURPOSE, claims)
    jar.writeSession(request, reply, sealed, Math.max(0, claims.exp - ctx.now()))
  }

  /** No live cookie: the device credential may mint one. Renewal needs the store, whatever failMode says. */
  async function renewOrNull (request: FastifyRequest, reply: FastifyReply): Promise<SessionClaims | null> {
    if (request.cookies[jar.names.device] === undefined) return null
    try {
      return await renewal.renew(request, reply, (c) => writeSession(request, reply, c))
    } catch (err) {
      if (err instanceof StoreUnavailableError) metrics.storeErrors.inc()
      throw err
    }
  }

  async function resolve (request: FastifyRequest, reply: FastifyReply, opts: ResolveOptions = {}): Promise<SessionClaims | null> {
    const one = opts.oneCookie === true
    const sealed = jar.readSession(request)
    if (sealed === undefined) return one ? null : await renewOrNull(request, reply)
    const claims = open(sealed)
    if (claims === null) {
      metrics.sessionChecks.inc({ result: 'invalid' })
      if (one) return null
      jar.clearSession(request, reply)
      return await renewOrNull(request, reply)
    }
    const now = ctx.now()
    if (timeVerdict(claims, now) === 'expired') {
      metrics.sessionChecks.inc({ result: 'expired' })
      if (one) return null
      jar.clearSession(request, reply)
      return await renewOrNull(request, reply)
    }
    let v
    try {
      // A near-cache hit answers without a round trip or even an async hop.
      const peeked = store.peek?.(claims.sub, claims.sid)
      const peekedEpoch = peeked !== undefined ? store.peekEpoch?.() : undefined
      if (peeked !== undefined && peekedEpoch !== undefined) {
        v = verdict(claims, now, { ...peeked, epoch: peekedEpoch })
      } else {
        const [state, epoch] = await Promise.all([store.check(claims.sub, claims.sid), store.epoch()])
        v = verdict(claims, now, { ...state, epoch })
      }
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      metrics.storeErrors.inc()
      metrics.sessionChecks.inc({ result: config.store.failMode === 'closed' ? 'store_unavailable' : 'fail_open' })
      if (config.store.failMode === 'closed') throw err
      // failMode open: the cookie alone decides; say so loudly but not on every request
      if (Date.now() - warnedOpen > 10_000) {
        warnedOpen = Date.now()
        request.log.warn({ err: err.message }, 'store unavailable: admitting sessions on their cookie alone (failMode open)')
      }
      return claims
    }
    metrics.sessionChecks.inc({ result: v.kind })
    if (v.kind !== 'live') {
      request.log.info({ sid: claims.sid, verdict: v.kind, reason: v.kind === 'revoked' ? v.reason : undefined }, 'session refused')
      if (!one) jar.clearAll(request, reply)
      return null
    }
    let current = claims
    if (opts.accessToken === true) {
      const refreshed = await renewal.freshAccessToken(request, current)
      if (refreshed !== null) current = refreshed
    }
    if (current !== claims || shouldSlide(current, now)) {
      const slid = slideSession(current, now, config.session.ttl)
      const resealed = seal(ctx.ring, SESSION_PURPOSE, slid)
      if (one && !jar.fitsOneLine(request, resealed)) return current
      jar.writeSession(request, reply, resealed, Math.max(0, slid.exp - now))
      return slid
    }
    return claims
  }

  function deny (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const wantsHtml = (request.headers.accept ?? '').includes('text/html')
    if (request.method === 'GET' && wantsHtml && request.headers.upgrade === undefined) {
      const login = `${config.authPrefix}/login?returnTo=${encodeURIComponent(request.url)}`
      return reply.header('cache-control', 'no-store').redirect(login, 302)
    }
    return reply.code(401).header('cache-control', 'no-store').send({ error: 'unauthenticated' })
  }

  function cookieSession (request: FastifyRequest): SessionClaims | null {
    const sealed = jar.readSession(request)
    return sealed === undefined ? null : open(sealed)
  }

  return { resolve, cookieSession, writeSession, deny }
}
