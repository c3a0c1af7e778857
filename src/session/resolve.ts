/**
 * The hot path: the decision on a request's session cookie. The cookie is opened once per value (cached),
 * its time checked once, its revocation state read from the store (or, synchronously, from the near
 * cache), and a live cookie past half its life is slid forward. With both caches hitting, the decision
 * is returned synchronously and is an object made when the cookie was first opened: nothing is allocated.
 */
import { revocationReason, shouldSlide, slideSession, type SessionClaims } from '../core/session.js'
import { StoreUnavailableError } from '../store/store.js'
import type { SessionDeps } from './deps.js'
import type { Renewal } from './renewal.js'
import { CLEAR_ALL, CLEAR_SESSION, NO_COOKIES, type CookieOp, type Decision, type RefusalReason, type RequestFacts, type ResolveOptions } from './types.js'

const CACHE_MAX = 10_000
/** Said when a session cookie to write would not fit the cookie budget. */
export const TOO_LARGE = 'the session does not fit in the cookie budget (6 KB of the Cookie header): trim the groups claim or stop forwarding the access token'

/** Refresh a forwarded access token this many seconds before it expires. */
export const ACCESS_TOKEN_LEEWAY = 60

/** A cookie value that opened: its claims, and the decision that a live check of them returns. */
interface Opened {
  readonly claims: SessionClaims
  readonly live: Decision
}

/**
 * Unsealing costs an AES-GCM decryption; the result depends only on the cookie value, so cache it.
 * Only values that opened are kept: junk sent on purpose must not push real sessions out.
 */
class UnsealCache {
  private readonly map = new Map<string, Opened>()
  get (key: string): Opened | undefined { return this.map.get(key) }
  add (key: string, claims: SessionClaims): Opened {
    if (this.map.size >= CACHE_MAX) this.map.delete(this.map.keys().next().value as string)
    const opened: Opened = { claims, live: { kind: 'live', session: claims, cookies: NO_COOKIES } }
    // The value may be sliced from the whole Cookie header: a copy keeps only the cookie, not every header.
    this.map.set(Buffer.from(key, 'latin1').toString('latin1'), opened)
    return opened
  }
}

const ANONYMOUS: Decision = Object.freeze({ kind: 'anonymous', cookies: NO_COOKIES })
const ANONYMOUS_CLEARED: Decision = Object.freeze({ kind: 'anonymous', cookies: CLEAR_SESSION })

export interface Resolver {
  resolve (sealed: string | undefined, device: string | undefined, now: number, opts: ResolveOptions, about: RequestFacts): Decision | Promise<Decision>
  cookieSession (sealed: string | undefined): SessionClaims | null
}

export function createResolver (deps: SessionDeps, renewal: Renewal): Resolver {
  const { store, seals, settings, counters } = deps
  const cache = new UnsealCache()
  let warnedOpen = 0

  function open (sealed: string): Opened | null {
    const hit = cache.get(sealed)
    if (hit !== undefined) return hit
    const claims = seals.session.open(sealed) // null: tampered, truncated or sealed with a key we no longer have
    return claims === null ? null : cache.add(sealed, claims)
  }

  /** No live cookie: the device credential may mint one (renewal needs the store, whatever failMode says). */
  function renewOr (device: string | undefined, now: number, about: RequestFacts, lead: readonly CookieOp[]): Decision | Promise<Decision> {
    if (device === undefined) return lead === NO_COOKIES ? ANONYMOUS : ANONYMOUS_CLEARED
    return renewal.renew(device, now, about, lead)
  }

  function refused (reason: RefusalReason, one: boolean): Decision {
    return { kind: 'refused', reason, cookies: one ? NO_COOKIES : CLEAR_ALL }
  }

  /** The slid cookie, or null when it would not fit the cookie budget (the cookie in hand stays good until it expires). */
  function slid (from: SessionClaims, now: number, about: RequestFacts): Decision | null {
    const session = slideSession(from, now, settings.session.ttl)
    const value = seals.session.seal(session)
    if (deps.sessionFits?.(value) === false) {
      about.log.warn({ sid: from.sid }, TOO_LARGE)
      return null
    }
    // The next request carries this value: opened already.
    cache.add(value, session)
    return { kind: 'slid', session, from, cookies: [{ op: 'session', value, maxAge: Math.max(0, session.exp - now) }] }
  }

  /** The decision on a cookie in time, given the revocation state. */
  function judge (o: Opened, now: number, opts: ResolveOptions, denied: boolean, version: number | null, epoch: string, about: RequestFacts): Decision | Promise<Decision> {
    const claims = o.claims
    const reason = revocationReason(claims, denied, version, epoch)
    if (reason !== null) {
      counters.check('revoked')
      about.log.info({ sid: claims.sid, verdict: 'revoked', reason }, 'session refused')
      return refused(reason, opts.oneCookie === true)
    }
    counters.check('live')
    if (opts.accessToken === true && claims.at !== undefined && claims.atExp !== undefined && claims.atExp - now <= ACCESS_TOKEN_LEEWAY) {
      // A fresh token too large to carry is left in the store: the cookie in hand keeps its own.
      return renewal.freshAccessToken(claims, now, about).then((fresh) =>
        (fresh !== null ? slid(fresh, now, about) : null) ?? (shouldSlide(claims, now) ? slid(claims, now, about) ?? o.live : o.live))
    }
    return shouldSlide(claims, now) ? slid(claims, now, about) ?? o.live : o.live
  }

  function storeDown (o: Opened, err: unknown, about: RequestFacts): Decision {
    if (!(err instanceof StoreUnavailableError)) throw err
    counters.storeError(err)
    if (settings.failMode === 'closed') {
      counters.check('store_unavailable')
      return { kind: 'unavailable', cookies: NO_COOKIES, error: err }
    }
    // failMode open: the cookie alone decides; say so loudly but not on every request
    counters.check('fail_open')
    if (Date.now() - warnedOpen > 10_000) {
      warnedOpen = Date.now()
      about.log.warn({ err: err.message }, 'store unavailable: admitting sessions on their cookie alone (failMode open)')
    }
    return { kind: 'live', session: o.claims, cookies: NO_COOKIES, failOpen: true }
  }

  async function checkInStore (o: Opened, now: number, opts: ResolveOptions, about: RequestFacts): Promise<Decision> {
    let state, epoch
    try {
      [state, epoch] = await Promise.all([store.check(o.claims.sub, o.claims.sid), store.epoch()])
    } catch (err) {
      return storeDown(o, err, about)
    }
    return await judge(o, now, opts, state.denied, state.version, epoch, about)
  }

  function resolve (sealed: string | undefined, device: string | undefined, now: number, opts: ResolveOptions, about: RequestFacts): Decision | Promise<Decision> {
    const one = opts.oneCookie === true
    if (sealed === undefined) return one ? ANONYMOUS : renewOr(device, now, about, NO_COOKIES)
    const o = open(sealed)
    if (o === null) {
      counters.check('invalid')
      return one ? ANONYMOUS : renewOr(device, now, about, CLEAR_SESSION)
    }
    // The only time check: the store's answer below is about revocation alone.
    if (now >= o.claims.exp || now >= o.claims.absExp) {
      counters.check('expired')
      return one ? ANONYMOUS : renewOr(device, now, about, CLEAR_SESSION)
    }
    // A near-cache hit answers without a round trip or even an async hop.
    let peeked, epoch
    try {
      peeked = store.peek?.(o.claims.sub, o.claims.sid)
      epoch = peeked !== undefined ? store.peekEpoch?.() : undefined
    } catch (err) {
      return storeDown(o, err, about)
    }
    if (peeked !== undefined && epoch !== undefined) return judge(o, now, opts, peeked.denied, peeked.version, epoch, about)
    return checkInStore(o, now, opts, about)
  }

  function cookieSession (sealed: string | undefined): SessionClaims | null {
    return sealed === undefined ? null : open(sealed)?.claims ?? null
  }

  return { resolve, cookieSession }
}
