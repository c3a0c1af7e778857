/**
 * The session service: every decision about sessions, with no HTTP framework in it. It is given cookie
 * values, the time and a few facts about the request, and answers decisions and cookie operations as data
 * (./types.ts). The HTTP plugins read cookies, call it, apply the cookie operations and answer.
 */
import type { SessionClaims } from '../core/session.js'
import type { SessionRecord } from '../store/store.js'
import type { SessionDeps } from './deps.js'
import { createLogin, type CallbackInput, type CallbackResult, type LoginStart } from './login.js'
import { createRenewal } from './renewal.js'
import { createResolver } from './resolve.js'
import { createRevoker, logoutSession, type Revoker } from './revoke.js'
import type { CookieOp, Decision, Log, RequestFacts, ResolveOptions } from './types.js'

export interface SessionService {
  /**
   * The decision on one request's cookies: `sealed` is the session cookie's value (chunks joined), `device`
   * the device cookie's. Synchronous when the cookie was opened before and the near cache knows its state.
   */
  resolve (sealed: string | undefined, device: string | undefined, now: number, opts: ResolveOptions, about: RequestFacts): Decision | Promise<Decision>
  /**
   * The session the cookie names, whatever the store says of it now (revoked, expired); null when it does
   * not open with our keys. For a logout asked again to end a session already refused: the first attempt
   * may have stored the revocation and failed before its event went out, and ending it once more
   * (idempotent, that user's keys only) publishes the event.
   */
  cookieSession (sealed: string | undefined): SessionClaims | null
  /** Starts a login: the IdP's URL and the login transaction cookie. */
  login (input: { returnTo: string, remember: boolean, now: number }): Promise<LoginStart>
  /** Finishes a login at the callback. */
  callback (input: CallbackInput, about: RequestFacts): Promise<CallbackResult>
  /** RP-initiated logout of one session: where to send the browser, and the cookies to clear. */
  logout (s: Pick<SessionClaims, 'sub' | 'sid'>, log: Log): Promise<{ redirect: string, cookies: readonly CookieOp[] }>
  /**
   * Ends one of the caller's own sessions. `finishHalfDone`: an id nobody owns any more may be one of the
   * caller's sessions whose sign-out stopped half-way (record and index gone, the event maybe never sent):
   * its denylist entry, under the caller's own keys, says so; then it is ended again to publish the event.
   */
  revokeOwn (s: Pick<SessionClaims, 'sub'>, id: string, log: Log, opts?: { finishHalfDone?: boolean }): Promise<'revoked' | 'not_found'>
  /** The user's live sessions (one per signed-in device), newest first. */
  sessionsOf (sub: string): Promise<SessionRecord[]>
  /** Every way to end sessions. */
  revoke: Revoker
}

export interface SessionServiceDeps extends SessionDeps {
  /** With bearer routes: how long an access token can live (see Revoker). */
  bearerTtl?: number
}

export function createSessionService (deps: SessionServiceDeps): SessionService {
  const { store } = deps
  const revoke = createRevoker({
    store,
    counters: deps.counters,
    denyTtl: deps.settings.session.ttl,
    ...(deps.bearerTtl !== undefined ? { bearerTtl: deps.bearerTtl } : {})
  })
  const resolver = createResolver(deps, createRenewal(deps))
  const login = createLogin(deps)
  const logoutDeps = { store, seals: deps.seals, idp: deps.idp, revoker: revoke, postLogoutRedirectUri: deps.settings.postLogoutRedirectUri }

  return {
    resolve: resolver.resolve,
    cookieSession: resolver.cookieSession,
    login: login.start,
    callback: login.callback,
    logout: async (s, log) => await logoutSession(logoutDeps, s, log),
    async revokeOwn (s, id, log, opts = {}) {
      // Only the caller's own sessions: another user's id is "not found", never revoked.
      const owner = id === '' ? null : await store.findOwner(id)
      const mine = owner === s.sub || (opts.finishHalfDone === true && id !== '' && owner === null && (await store.check(s.sub, id)).denied)
      if (!mine) return 'not_found'
      await revoke.session(s.sub, id, 'self', log)
      return 'revoked'
    },
    sessionsOf: async (sub) => await store.listSessions(sub),
    revoke
  }
}
