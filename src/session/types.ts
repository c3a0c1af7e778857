/**
 * The session service's vocabulary: what it is asked (cookie values, the time, a few facts about the
 * request) and what it answers (a decision, and the cookie operations to apply, as data). No HTTP
 * framework here: an adapter reads cookies, calls the service and applies what it says.
 */
import type { SessionClaims } from '../core/session.js'

/** The logger calls the service makes (pino's, and so Fastify's request logger, fit). */
export interface Log {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
}

/**
 * What the service may read of the request it decides for. A Fastify request fits as it is, so the hot
 * path allocates nothing to describe it.
 */
export interface RequestFacts {
  readonly ip: string
  readonly headers: { readonly 'user-agent'?: string | undefined }
  readonly log: Log
}

/**
 * A cookie to write or clear. `session` is the sealed session value: the adapter splits it into chunks
 * and clears stale chunks the browser sent (it knows the cookie names and what the request carried).
 */
export type CookieOp =
  | { readonly op: 'session', readonly value: string, readonly maxAge: number }
  | { readonly op: 'clear-session' }
  | { readonly op: 'device', readonly value: string, readonly maxAge?: number }
  | { readonly op: 'clear-device' }
  | { readonly op: 'tx', readonly value: string, readonly maxAge: number }
  | { readonly op: 'clear-tx' }

/** Shared, frozen operation lists: the common answers allocate nothing. */
export const NO_COOKIES: readonly CookieOp[] = Object.freeze([])
export const CLEAR_SESSION: readonly CookieOp[] = Object.freeze([Object.freeze({ op: 'clear-session' as const })])
export const CLEAR_ALL: readonly CookieOp[] = Object.freeze([Object.freeze({ op: 'clear-session' as const }), Object.freeze({ op: 'clear-device' as const })])

/** Why a session (or a device credential) was refused. */
export type RefusalReason =
  // the session cookie, by the revocation state
  | 'denied' | 'version' | 'epoch' | 'state_lost'
  // the device credential
  | 'malformed' | 'unknown_device' | 'expired' | 'reuse' | 'unknown' | 'missing' | 'idp_revoked'
  // the session it would mint does not fit the cookie budget (the device is signed out)
  | 'too_large'

/** The decision on one request's cookies. `cookies` are to be applied whatever the kind. */
export type Decision =
  /** The cookie's session is live; `failOpen` when the store was down and failMode open let it in. */
  | { readonly kind: 'live', readonly session: SessionClaims, readonly cookies: readonly CookieOp[], readonly failOpen?: true }
  /** Live and past half its life (or with a refreshed access token): re-sealed with a new expiry. */
  | { readonly kind: 'slid', readonly session: SessionClaims, readonly from: SessionClaims, readonly cookies: readonly CookieOp[] }
  /** No live cookie, and the device credential minted a new session (`rotated`, or `grace` for a parallel request). */
  | { readonly kind: 'renewed', readonly session: SessionClaims, readonly rotation: 'rotated' | 'grace', readonly cookies: readonly CookieOp[] }
  /** No session: no cookie, or one that is invalid or expired, and no device credential that renews. */
  | { readonly kind: 'anonymous', readonly cookies: readonly CookieOp[] }
  /** A session or device credential the revocation state refuses: the cookies are cleared. */
  | { readonly kind: 'refused', readonly reason: RefusalReason, readonly cookies: readonly CookieOp[] }
  /** The store could not be reached and failMode is closed (or a renewal needed it): 503. */
  | { readonly kind: 'unavailable', readonly cookies: readonly CookieOp[], readonly error?: Error }

export interface ResolveOptions {
  /** Refresh a forwarded access token shortly before it expires. */
  readonly accessToken?: boolean
  /**
   * For forward-auth answers, whose Set-Cookie an ingress controller relays (nginx's auth_request_set
   * passes only the first line): no renewal from the device credential (two cookies; the sign-in URL
   * renews instead) and no clearing (the sign-in URL does that too). A slide is still decided; the
   * adapter writes it only when it fits one line.
   */
  readonly oneCookie?: boolean
}

/** The session of a decision, or null. */
export function sessionOf (d: Decision): SessionClaims | null {
  return d.kind === 'live' || d.kind === 'slid' || d.kind === 'renewed' ? d.session : null
}
