/**
 * Login with the authorization code flow (PKCE, state, nonce): the start (the login transaction sealed
 * into a short cookie, the IdP's URL) and the callback (state compared in constant time, claimed once,
 * code exchanged, identity checked, session record and device credential created).
 */
import { buildProfile, identityRefusal } from '../core/identity.js'
import { causeChain } from '../core/cause.js'
import { formatDeviceCookie, hashCredential, newCredential, newSessionId, safeEqual } from '../core/device.js'
import { SealError } from '../core/sealed-cookie.js'
import { issueSession, type ProfileClaims, type SessionClaims } from '../core/session.js'
import { accessTokenOf, type TokenBundle } from '../core/tokens.js'
import type { LoginResult, OidcError } from '../oidc/client.js'
import type { SessionDeps } from './deps.js'
import type { LoginTx } from './seals.js'
import type { CookieOp, RequestFacts } from './types.js'

/** A login must come back from the IdP within this many seconds. */
export const TX_TTL = 600

const CLEAR_TX: CookieOp = Object.freeze({ op: 'clear-tx' })

export interface LoginStart {
  /** The IdP's authorization URL to redirect to. */
  url: string
  cookies: readonly CookieOp[]
}

/** Why a callback did not sign anyone in (the login outcomes of sessiongate_logins_total). */
export type CallbackFailure = 'expired' | 'idp_error' | 'state_mismatch' | 'replay' | 'exchange_failed' | 'refused_identity'

export type CallbackResult =
  | { kind: 'signed-in', session: SessionClaims, returnTo: string, cookies: readonly CookieOp[] }
  | { kind: 'failed', failure: CallbackFailure, refusal?: { claim: string, problem: string }, cookies: readonly CookieOp[] }

export interface CallbackInput {
  /** The sealed login transaction cookie, if the browser sent one. */
  tx: string | undefined
  /** The callback URL as the browser asked for it (code, state, iss...). */
  url: URL
  now: number
}

export interface Login {
  start (input: { returnTo: string, remember: boolean, now: number }): Promise<LoginStart>
  callback (input: CallbackInput, about: RequestFacts): Promise<CallbackResult>
}

export function createLogin (deps: SessionDeps): Login {
  const { store, seals, settings } = deps
  const profileOf = (l: LoginResult): ProfileClaims => buildProfile([l.userinfo, l.idClaims as Record<string, unknown>], settings.identity, settings.keptPaths)
  const failed = (failure: CallbackFailure, refusal?: { claim: string, problem: string }): CallbackResult =>
    ({ kind: 'failed', failure, ...(refusal !== undefined ? { refusal } : {}), cookies: [CLEAR_TX] })

  async function start (input: { returnTo: string, remember: boolean, now: number }): Promise<LoginStart> {
    const oidc = await deps.idp.get()
    const checks = oidc.newChecks()
    const tx: LoginTx = { checks, returnTo: input.returnTo, remember: settings.rememberMe.enabled && input.remember, iat: input.now }
    const cookie: CookieOp = { op: 'tx', value: seals.loginTx.seal(tx), maxAge: TX_TTL }
    const url = await oidc.authorizationUrl(checks, settings.redirectUri, settings.scopes)
    return { url, cookies: [cookie] }
  }

  /** Creates the session record and device credential of a finished login: the cookies to set. */
  async function createSession (about: RequestFacts, issuer: string, l: LoginResult, profile: ProfileClaims, remember: boolean, now: number): Promise<{ session: SessionClaims, cookies: CookieOp[] }> {
    const sid = newSessionId()
    const credential = newCredential()
    const credHash = hashCredential(credential)
    const lifetime = remember ? settings.rememberMe.ttl : settings.session.absoluteTtl
    const idpSid = typeof l.idClaims.sid === 'string' ? l.idClaims.sid : undefined
    // Kept (in the cookie and the record) only when some route forwards it.
    const access = settings.keepsAccessToken ? accessTokenOf({ at: l.accessToken, atExp: l.accessTokenExp }) : {}
    const tokens: TokenBundle = {
      idToken: l.idToken,
      profile,
      ...(l.refreshToken !== undefined ? { refreshToken: l.refreshToken } : {}),
      ...access
    }
    const version = await store.createSession({
      sid,
      sub: l.idClaims.sub,
      iss: issuer,
      ...(idpSid !== undefined ? { idpSid } : {}),
      createdAt: now * 1000,
      lastSeenAt: now * 1000,
      userAgent: String(about.headers['user-agent'] ?? '').slice(0, 256),
      ip: about.ip,
      rememberMe: remember,
      expiresAt: (now + lifetime) * 1000,
      credHash,
      tokens: seals.tokens.seal(tokens),
      ...(profile.email !== undefined ? { email: profile.email } : {})
    }, Math.max(settings.rememberMe.ttl, settings.session.absoluteTtl) + settings.session.ttl)
    const session = issueSession({
      sid,
      sub: l.idClaims.sub,
      iss: issuer,
      ...(idpSid !== undefined ? { idpSid } : {}),
      ver: version,
      epoch: await store.epoch(),
      authTime: typeof l.idClaims.auth_time === 'number' ? l.idClaims.auth_time : now,
      rememberMe: remember,
      profile,
      ...access,
      loginAt: now
    }, now, settings.session.ttl, settings.session.absoluteTtl)
    // The device cookie carries the user: renewal goes straight to the user's keys (one round trip).
    // Generation 0 (the record has none yet), tagged so a later reuse of this credential is recognised.
    const value = formatDeviceCookie(sid, credential, l.idClaims.sub, { generation: 0, tag: seals.deviceTag(sid, 0, credHash) })
    const device: CookieOp = remember ? { op: 'device', value, maxAge: settings.rememberMe.ttl } : { op: 'device', value }
    const sealed = seals.session.seal(session)
    if (deps.sessionFits?.(sealed) === false) {
      // No cookie can carry it: the record just made would be a device no browser holds.
      await store.revokeSessions(l.idClaims.sub, [sid], settings.session.ttl)
      throw new SealError('SG_COOKIE_TOO_LARGE', 'the session does not fit in the cookie budget')
    }
    about.log.info({ sid, rememberMe: remember }, 'login')
    return { session, cookies: [CLEAR_TX, { op: 'session', value: sealed, maxAge: Math.max(0, session.exp - now) }, device] }
  }

  async function callback (input: CallbackInput, about: RequestFacts): Promise<CallbackResult> {
    const tx = input.tx === undefined ? null : seals.loginTx.open(input.tx)
    if (tx === null || input.now - tx.iat > TX_TTL) return failed('expired')
    const q = input.url.searchParams
    const error = q.get('error')
    if (error !== null) {
      about.log.info({ idpError: error }, 'IdP returned an error to the callback')
      return failed('idp_error')
    }
    const state = q.getAll('state')
    if (state.length !== 1 || !safeEqual(state[0]!, tx.checks.state)) return failed('state_mismatch')
    // One use per state: a replayed callback (same cookie, same state) is refused before the IdP sees it.
    // The state is claimed only after the login succeeded, so a failed attempt can be retried.
    if (await store.wasClaimed('state', tx.checks.state)) return failed('replay')
    const oidc = await deps.idp.get()
    let login: LoginResult
    try {
      login = await oidc.finishLogin(input.url, tx.checks)
    } catch (err) {
      about.log.warn({ code: (err as OidcError).code, reason: (err as Error).message, causes: causeChain(err) }, 'login failed')
      return failed('exchange_failed')
    }
    deps.noteIdp?.(oidc, typeof login.idClaims.sid === 'string')
    const profile = profileOf(login)
    const refused = identityRefusal(login.idClaims.sub, profile, settings.identity.user)
    if (refused !== undefined) {
      about.log.warn({ claim: refused.claim, problem: refused.problem }, 'login refused: an identity claim cannot be forwarded safely')
      return failed('refused_identity', refused)
    }
    // Two callbacks racing with one state: the IdP refuses the second code exchange, and should it not,
    // only the first to claim gets a session.
    if (!(await store.claimOnce('state', tx.checks.state, TX_TTL))) return failed('replay')
    const made = await createSession(about, oidc.issuer, login, profile, tx.remember, input.now)
    return { kind: 'signed-in', session: made.session, returnTo: tx.returnTo, cookies: made.cookies }
  }

  return { start, callback }
}
