/**
 * What the session service is built from: the store, the sealers, the IdP, a few settings and its
 * counters. All passed in (app.ts wires them; unit tests pass real ones).
 */
import type { Store } from '../store/store.js'
import type { OidcClient } from '../oidc/client.js'
import type { IdentityMapping } from '../core/identity.js'
import type { Seals } from './seals.js'

/** Gives the discovered IdP client, discovering (again) when needed. */
export interface IdpSource {
  get (): Promise<OidcClient>
  /** The client when discovery has succeeded, without waiting. */
  current (): OidcClient | undefined
}

/** The settings the service reads (whole seconds unless named otherwise). */
export interface SessionSettings {
  session: { ttl: number, absoluteTtl: number }
  rememberMe: { enabled: boolean, ttl: number, rotationGrace: number, checkIdp: boolean }
  /** What a request gets while the store is down: closed refuses (503), open trusts the cookie. */
  failMode: 'open' | 'closed'
  /** Whether some route forwards the access token (then the session cookie carries it). */
  keepsAccessToken: boolean
  /** Login: the callback URL registered at the IdP, the scopes asked for. */
  redirectUri: string
  scopes: string[]
  /** Where end-session sends the browser back to. */
  postLogoutRedirectUri: string
  identity: IdentityMapping
  /** Claim paths that rules and header mappings read: what a session keeps of the profile. */
  keptPaths: readonly string[]
}

/** Results of session checks, as counted (sessiongate_session_checks_total). */
export type CheckResult = 'live' | 'invalid' | 'expired' | 'revoked' | 'store_unavailable' | 'fail_open'

/** Where the service counts what it decided; the hot path's counts must not allocate. */
export interface SessionCounters {
  check (result: CheckResult): void
  renewal (result: string): void
  /** A store operation failed (the error: counted once however many places see it). */
  storeError (err: Error): void
  reuse (): void
  logout (channel: string): void
}

export interface SessionDeps {
  store: Store
  seals: Seals
  idp: IdpSource
  settings: SessionSettings
  counters: SessionCounters
  /** Epoch milliseconds (rotation grace windows need sub-second precision); tests move it. */
  nowMs (): number
  /**
   * True when a sealed session value fits the session cookie's budget (the HTTP adapter knows the cookie
   * names); absent: everything fits. A slide or renewal that would not fit is not made.
   */
  sessionFits? (sealed: string): boolean
  /** Told after each login what the IdP showed (its metadata; whether the ID token had a sid): warnings. */
  noteIdp? (client: OidcClient, sidInIdToken: boolean): void
}

/** Counters that count nothing (unit tests that do not look at them). */
export const NO_COUNTERS: SessionCounters = { check () {}, renewal () {}, storeError () {}, reuse () {}, logout () {} }
