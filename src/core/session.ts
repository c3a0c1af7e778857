/**
 * The session carried by the short, encrypted session cookie, and the verdict on it.
 * Pure: no I/O. Times are whole epoch seconds (the unit of JWT claims) unless a name says otherwise.
 */

/** Profile claims forwarded upstream as identity headers. */
export interface ProfileClaims {
  email?: string
  /** false when the IdP says the email is not verified (email rules then never match). */
  email_verified?: boolean
  preferred_username?: string
  name?: string
  groups?: string[]
  /** The user as `identity.user` names it, when that is not `sub`. */
  user?: string
  /** The claims that `authorize` rules and `identity.headers` name, by claim path, as strings. */
  claims?: Record<string, string[]>
}

export interface SessionClaims {
  /** Format version of the sealed payload. */
  v: 1
  /** Gateway session id; also the device id (one login on one device). */
  sid: string
  sub: string
  iss: string
  /** The IdP's session id (ID token `sid`), when the IdP sent one. */
  idpSid?: string
  /** The user's token version when this cookie was issued. */
  ver: number
  /** The store epoch when this cookie was issued. */
  epoch: string
  iat: number
  exp: number
  /** The login's hard end: a cookie is never slid past it. */
  absExp: number
  authTime: number
  rememberMe: boolean
  profile: ProfileClaims
  /** IdP access token, kept only when a route forwards it. */
  at?: string
  /** Expiry of `at` (epoch seconds). */
  atExp?: number
}

export type Verdict =
  | { kind: 'live', claims: SessionClaims }
  | { kind: 'expired', claims: SessionClaims }
  | { kind: 'revoked', claims: SessionClaims, reason: 'denied' | 'version' | 'epoch' | 'state_lost' }
  | { kind: 'invalid' }

/** What the store said about a session; see Store.check. */
export interface RevocationState {
  denied: boolean
  /** null: the store holds no state for this user (it lost its data). */
  version: number | null
  epoch: string
}

/** What a new cookie is issued from: the claims minus the times `issueSession` computes. */
export type IssueInput = Omit<SessionClaims, 'v' | 'iat' | 'exp' | 'absExp'> & {
  /** When the login started (epoch seconds); bounds the session by absoluteTtl. */
  loginAt: number
}

/** Issues the claims of a new session cookie, never extending past `loginAt + absoluteTtl`. */
export function issueSession (input: IssueInput, now: number, ttl: number, absoluteTtl: number): SessionClaims {
  const absExp = input.loginAt + absoluteTtl
  const claims: SessionClaims = {
    v: 1,
    sid: input.sid,
    sub: input.sub,
    iss: input.iss,
    ver: input.ver,
    epoch: input.epoch,
    iat: now,
    exp: Math.min(now + ttl, absExp),
    absExp,
    authTime: input.authTime,
    rememberMe: input.rememberMe,
    profile: input.profile
  }
  if (input.idpSid !== undefined) claims.idpSid = input.idpSid
  if (input.at !== undefined) claims.at = input.at
  if (input.atExp !== undefined) claims.atExp = input.atExp
  return claims
}

/** A slid copy of the claims: same session, new iat/exp, still bounded by absExp. */
export function slideSession (claims: SessionClaims, now: number, ttl: number): SessionClaims {
  return { ...claims, iat: now, exp: Math.min(now + ttl, claims.absExp) }
}

/** True when the cookie is past half its life and can still be extended. */
export function shouldSlide (claims: SessionClaims, now: number): boolean {
  if (claims.exp >= claims.absExp) return false
  return now - claims.iat >= (claims.exp - claims.iat) / 2
}

/** Time-only verdict, before any store lookup: expired cookies need no round trip. */
export function timeVerdict (claims: SessionClaims, now: number): 'live' | 'expired' {
  return now >= claims.exp || now >= claims.absExp ? 'expired' : 'live'
}

/** Why the revocation state refuses a cookie that is still in time, or null. Positional: the hot path allocates nothing. */
export function revocationReason (claims: SessionClaims, denied: boolean, version: number | null, epoch: string): 'denied' | 'version' | 'epoch' | 'state_lost' | null {
  if (claims.epoch !== epoch) return 'epoch'
  if (version === null) return 'state_lost'
  if (denied) return 'denied'
  if (claims.ver < version) return 'version'
  return null
}

/** The full verdict: time first, then the revocation state read from the store. */
export function verdict (claims: SessionClaims, now: number, state: RevocationState): Verdict {
  if (timeVerdict(claims, now) === 'expired') return { kind: 'expired', claims }
  const reason = revocationReason(claims, state.denied, state.version, state.epoch)
  return reason === null ? { kind: 'live', claims } : { kind: 'revoked', claims, reason }
}

/** Narrows an unsealed payload to SessionClaims; anything else is invalid. */
export function asSessionClaims (value: unknown): SessionClaims | null {
  if (typeof value !== 'object' || value === null) return null
  const c = value as Record<string, unknown>
  if (c.v !== 1) return null
  for (const k of ['sid', 'sub', 'iss', 'epoch'] as const) if (typeof c[k] !== 'string' || c[k] === '') return null
  for (const k of ['ver', 'iat', 'exp', 'absExp', 'authTime'] as const) if (typeof c[k] !== 'number' || !Number.isFinite(c[k])) return null
  if (typeof c.rememberMe !== 'boolean') return null
  if (typeof c.profile !== 'object' || c.profile === null) return null
  return value as SessionClaims
}
