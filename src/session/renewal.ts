/**
 * Silent renewal from the device credential: when the short session cookie is gone or expired, a valid
 * device cookie mints a new one in the same request and is rotated. The previous credential keeps
 * working for `rememberMe.rotationGrace` (parallel requests); after that it is reuse, and the device is
 * revoked. So is an older credential: one whose generation, MAC-tagged in the cookie, is below the
 * record's (rotated away more than once). Also refreshes a forwarded access token shortly before it expires.
 */
import { formatDeviceCookie, hashCredential, newCredential, parseDeviceCookie } from '../core/device.js'
import { issueSession, type SessionClaims } from '../core/session.js'
import { accessTokenOf, type TokenBundle } from '../core/tokens.js'
import { grantError, isOidcError } from '../oidc/errors.js'
import { StoreUnavailableError, type SessionRecord } from '../store/store.js'
import type { SessionDeps } from './deps.js'
import { ACCESS_TOKEN_LEEWAY, TOO_LARGE } from './resolve.js'
import { CLEAR_ALL, type CookieOp, type Decision, type Log, type RefusalReason, type RequestFacts } from './types.js'

export interface Renewal {
  /** The decision for a request whose only credential is the device cookie; `lead` are cookie operations decided before. */
  renew (device: string, now: number, about: RequestFacts, lead: readonly CookieOp[]): Promise<Decision>
  /** A copy of `claims` with a fresh access token when the current one is about to expire, else null. */
  freshAccessToken (claims: SessionClaims, now: number, about: RequestFacts): Promise<SessionClaims | null>
}

export function createRenewal (deps: SessionDeps): Renewal {
  const { store, seals, settings, counters } = deps
  const denyTtl = settings.session.ttl

  const openTokens = (rec: SessionRecord): TokenBundle => rec.tokens === undefined ? {} : seals.tokens.open(rec.tokens) ?? {}

  /** Refreshes at the IdP; 'gone' when the IdP says the grant is dead (invalid_grant). */
  async function idpRefresh (log: Log, rec: SessionRecord, bundle: TokenBundle): Promise<TokenBundle | 'gone' | 'unavailable'> {
    if (bundle.refreshToken === undefined) return bundle
    try {
      const oidc = await deps.idp.get()
      const r = await oidc.refresh(bundle.refreshToken)
      const next: TokenBundle = {
        ...bundle,
        at: r.accessToken,
        ...(r.accessTokenExp !== undefined ? { atExp: r.accessTokenExp } : {}),
        // The IdP may rotate the refresh token: keep the new one, atomically with the record.
        ...(r.refreshToken !== undefined ? { refreshToken: r.refreshToken } : {}),
        ...(r.idToken !== undefined ? { idToken: r.idToken } : {})
      }
      await store.updateSession(rec.sub, rec.sid, { tokens: seals.tokens.seal(next) })
      return next
    } catch (err) {
      // invalid_grant: the grant is dead for good; anything else (an outage, a store error) is not a logout.
      if (isOidcError(grantError(err, 'refresh'), 'SG_OIDC_INVALID_GRANT')) return 'gone'
      log.warn({ reason: (err as Error).message }, 'refresh at the IdP failed')
      return 'unavailable'
    }
  }

  async function renewSteps (raw: string, now: number, about: RequestFacts, ops: CookieOp[]): Promise<Decision> {
    const refuse = (reason: RefusalReason): Decision => {
      counters.renewal(reason)
      return { kind: 'refused', reason, cookies: [...ops, ...CLEAR_ALL] }
    }
    const device = parseDeviceCookie(raw)
    if (device === null) return refuse('malformed')
    // A cookie of the previous format names no user: its owner is looked up (one more round trip, once:
    // the rotation below writes the new format).
    const sub = device.sub ?? await store.findOwner(device.sid)
    if (sub === null) return refuse('unknown_device')
    const presentedHash = hashCredential(device.credential)
    // The generation counts only when the gateway tagged it (any key of the ring): a forged one must
    // never turn a refusal into a revocation of someone's device.
    const issued = device.generation !== undefined && device.tag !== undefined &&
      seals.checkDeviceTag(device.sid, device.generation, presentedHash, device.tag)
      ? device.generation
      : undefined
    const nowMs = deps.nowMs()
    const next = newCredential()
    const newHash = hashCredential(next)
    // Record, revocation state, epoch, rotation and touch: one atomic store call.
    const result = await store.renewDevice({
      sub,
      sid: device.sid,
      presentedHash,
      newHash,
      nowMs,
      graceUntil: nowMs + settings.rememberMe.rotationGrace * 1000,
      touch: { ip: about.ip, userAgent: String(about.headers['user-agent'] ?? '').slice(0, 256) },
      denyTtl,
      ...(issued !== undefined ? { issuedGeneration: issued } : {})
    })
    if (result.outcome === 'missing') {
      // The owner index outlives the record only while a revocation is unfinished (its event not yet
      // published): finish it, so every replica hears of it. A user named by the cookie is checked
      // against the index first: a wrong one must not revoke anything of anybody.
      const owner = device.sub === undefined ? sub : await store.findOwner(device.sid)
      if (owner === sub) await store.revokeSessions(sub, [device.sid], denyTtl)
      return refuse('unknown_device')
    }
    if (result.outcome === 'reuse') {
      // A credential that was rotated away came back after the grace window (or, of an older generation,
      // after more than one rotation): someone else holds a copy.
      // The store revoked the device in the same step (and announced it).
      counters.reuse()
      counters.logout('reuse')
      about.log.warn({ sid: device.sid }, 'device credential reuse detected: device revoked')
      return refuse('reuse')
    }
    if (result.outcome !== 'rotated' && result.outcome !== 'grace') return refuse(result.outcome)
    const { record: rec, version, epoch } = result
    const rotated = result.outcome

    if (rotated === 'rotated') {
      // The new credential goes out whatever happens next: the old one is now only good for the grace window.
      const maxAge = rec.rememberMe ? Math.max(1, Math.floor((rec.expiresAt - nowMs) / 1000)) : undefined
      const generation = rec.generation ?? 0
      const value = formatDeviceCookie(rec.sid, next, sub, { generation, tag: seals.deviceTag(rec.sid, generation, newHash) })
      ops.push(maxAge !== undefined ? { op: 'device', value, maxAge } : { op: 'device', value })
    }

    let bundle = openTokens(rec)
    if (rec.tokens !== undefined && Object.keys(bundle).length > 0 && !seals.tokens.isCurrent(rec.tokens)) {
      // Sealed with an older key: re-seal with the current one, so the old key can retire.
      await store.updateSession(sub, rec.sid, { tokens: seals.tokens.seal(bundle) })
    }
    // Only the request that rotated asks the IdP: parallel refreshes would race the IdP's token rotation.
    if (settings.rememberMe.checkIdp && rotated === 'rotated') {
      const checked = await idpRefresh(about.log, rec, bundle)
      if (checked === 'gone') {
        await store.revokeSessions(sub, [rec.sid], denyTtl)
        counters.logout('idp')
        about.log.info({ sid: rec.sid }, 'IdP refused the refresh token (invalid_grant): device revoked')
        return refuse('idp_revoked')
      }
      if (checked === 'unavailable') {
        // An IdP outage is not a logout: no session now, but the device keeps its (rotated) credential.
        counters.renewal('idp_unavailable')
        return { kind: 'anonymous', cookies: ops }
      }
      bundle = checked
    }

    const session = issueSession({
      sid: rec.sid,
      sub,
      iss: rec.iss,
      ...(rec.idpSid !== undefined ? { idpSid: rec.idpSid } : {}),
      ver: version,
      epoch,
      authTime: Math.floor(rec.createdAt / 1000),
      rememberMe: rec.rememberMe,
      profile: bundle.profile ?? {},
      ...(settings.keepsAccessToken ? accessTokenOf(bundle) : {}),
      loginAt: now
      // The device record's end bounds the renewed cookie: absoluteTtl for a browser session, rememberMe.ttl otherwise.
    }, now, settings.session.ttl, Math.max(1, Math.floor(rec.expiresAt / 1000) - now))
    const value = seals.session.seal(session)
    if (deps.sessionFits?.(value) === false) {
      // No cookie can carry this session (a refreshed access token grew): answering 500 would rotate the
      // credential on every request. Sign the device out once instead; a new login says why if it must.
      await store.revokeSessions(sub, [rec.sid], denyTtl)
      counters.logout('too_large')
      about.log.warn({ sid: rec.sid }, TOO_LARGE)
      return refuse('too_large')
    }
    ops.push({ op: 'session', value, maxAge: Math.max(0, session.exp - now) })
    counters.renewal(rotated)
    about.log.info({ sid: rec.sid, rotation: rotated }, 'session renewed from the device credential')
    return { kind: 'renewed', session, rotation: rotated, cookies: ops }
  }

  async function renew (raw: string, now: number, about: RequestFacts, lead: readonly CookieOp[]): Promise<Decision> {
    const ops = [...lead]
    try {
      return await renewSteps(raw, now, about, ops)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      counters.storeError(err)
      // What was decided before the outage still goes out (a rotated credential above all).
      return { kind: 'unavailable', cookies: ops, error: err }
    }
  }

  async function freshAccessToken (claims: SessionClaims, now: number, about: RequestFacts): Promise<SessionClaims | null> {
    if (claims.at === undefined || claims.atExp === undefined || claims.atExp - now > ACCESS_TOKEN_LEEWAY) return null
    const rec = await store.getSession(claims.sub, claims.sid)
    if (rec === null) return null
    const bundle = openTokens(rec)
    const newer = bundle.at !== undefined && bundle.at !== claims.at
    // Another request, maybe on another replica, refreshed it already: take its token.
    if (newer && (bundle.atExp ?? 0) - now > ACCESS_TOKEN_LEEWAY) return { ...claims, ...accessTokenOf(bundle) }
    // One refresh per device at a time across replicas: a short lock, never released early (it lapses).
    if (!(await store.tryLock(`refresh:${claims.sid}`, 10))) return newer ? { ...claims, ...accessTokenOf(bundle) } : null
    const next = await idpRefresh(about.log, rec, bundle)
    if (typeof next === 'string' || next.at === undefined) return null
    return { ...claims, ...accessTokenOf(next) }
  }

  return { renew, freshAccessToken }
}
