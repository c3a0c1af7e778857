/**
 * Judges a request's `Authorization: Bearer <JWT>` (README section "API clients"): the token is verified once and
 * cached by value (only tokens that verified, so junk cannot push live ones out), then checked on every
 * request against the revocation state: its IdP session logged out, its user revoked at or after its
 * `iat`, or issued before the store's epoch began (the store lost the revocations that could apply; the
 * gateway creates the epoch at start-up, so on a new store this refuses only tokens older than the store). With the
 * near cache that check costs no round trip. No Fastify here: the http adapter answers.
 */
import type { JWTVerifyGetKey } from 'jose'
import type { Config } from '../config/types.js'
import { claimPathsOf } from '../core/authorize.js'
import { buildProfile, identityRefusal } from '../core/identity.js'
import type { SessionClaims } from '../core/session.js'
import { epochCreatedAt, StoreUnavailableError, type BearerCheck as StoreBearerCheck, type Store } from '../store/store.js'
import { BearerTokenError, timeProblem, verifyAccessToken, type AccessToken } from './access-token.js'

/** Clock skew allowed on exp, nbf and iat; also added to how long logout markers are kept. */
export const BEARER_SKEW = 60
const CACHE_MAX = 10_000

export type BearerDecision =
  /** `session` carries the token's identity for headers and rules; `failOpen` when the store was not asked. */
  | { kind: 'live', session: SessionClaims, failOpen?: true }
  | { kind: 'invalid', reason: string }
  | { kind: 'revoked', reason: 'idp_logout' | 'user_revoked' | 'state_lost' }

export interface BearerCheck {
  /** Judges an `Authorization` header value. Throws StoreUnavailableError (failMode closed) or OidcError. */
  judge (authorization: string | undefined): Promise<BearerDecision>
}

export interface BearerCheckDeps {
  config: Pick<Config, 'oidc' | 'identity' | 'routes' | 'store'>
  store: Store
  /** The IdP's signing keys (oidc/jwks.ts). */
  keys: JWTVerifyGetKey
  /** The discovered issuer: `iss` must equal it exactly. */
  issuer: () => Promise<string>
  /** Epoch seconds. */
  now: () => number
}

/** How long revocation markers must be kept so that every token they apply to is refused. */
export function bearerStateTtl (config: Pick<Config, 'oidc'>): number {
  return config.oidc.accessTokenMaxAge + BEARER_SKEW
}

// RFC 6750 section 2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive.
const AUTHORIZATION = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i

/** The token of an `Authorization: Bearer` header, or undefined when the header is anything else. */
export function bearerToken (authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : AUTHORIZATION.exec(authorization)?.[1]
}

interface Verified { token: AccessToken, session: SessionClaims }

/** Builds the bearer check of one gateway. */
export function createBearerCheck (deps: BearerCheckDeps): BearerCheck {
  const { config, store } = deps
  const maxAge = config.oidc.accessTokenMaxAge
  const keptPaths = [...config.routes.flatMap((r) => claimPathsOf(r.authorize ?? [])), ...Object.values(config.identity.headers)]
  const cache = new Map<string, Verified>()

  async function verified (raw: string, now: number): Promise<Verified> {
    const hit = cache.get(raw)
    if (hit !== undefined) {
      const problem = timeProblem(hit.token, now, maxAge, BEARER_SKEW)
      if (problem === undefined) return hit
      cache.delete(raw)
      throw new BearerTokenError(problem)
    }
    const token = await verifyAccessToken(raw, { issuer: await deps.issuer(), audience: config.oidc.audience, keys: deps.keys, now, skew: BEARER_SKEW, maxAge })
    const profile = buildProfile([token.claims], config.identity, keptPaths)
    // The same refusal as at login: an identity value that upstream parsers could read as another one.
    const refused = identityRefusal(token.sub, profile, config.identity.user)
    if (refused !== undefined) throw new BearerTokenError(`claim ${refused.claim} ${refused.problem}`)
    const session: SessionClaims = {
      v: 1,
      sid: '', // no gateway session: a bearer request has none
      sub: token.sub,
      iss: token.iss,
      ...(token.sid !== undefined ? { idpSid: token.sid } : {}),
      ver: 0,
      epoch: '',
      iat: token.iat,
      exp: token.exp,
      absExp: token.exp,
      authTime: typeof token.claims.auth_time === 'number' ? token.claims.auth_time : token.iat,
      rememberMe: false,
      profile,
      at: raw, // forwardAccessToken forwards the very token the client sent
      atExp: token.exp
    }
    const v = { token, session }
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
    cache.set(raw, v)
    return v
  }

  async function revocation (t: AccessToken): Promise<{ state: StoreBearerCheck, epoch: string }> {
    // A near-cache hit answers without a round trip or even an async hop.
    const peeked = store.peekBearer?.(t.sub, t.iss, t.sid)
    const peekedEpoch = peeked !== undefined ? store.peekEpoch?.() : undefined
    if (peeked !== undefined && peekedEpoch !== undefined) return { state: peeked, epoch: peekedEpoch }
    const [state, epoch] = await Promise.all([store.checkBearer(t.sub, t.iss, t.sid), store.epoch()])
    return { state, epoch }
  }

  async function judge (authorization: string | undefined): Promise<BearerDecision> {
    const raw = bearerToken(authorization)
    if (raw === undefined) return { kind: 'invalid', reason: 'malformed Authorization header (expected Bearer <token>)' }
    let v: Verified
    try {
      v = await verified(raw, deps.now())
    } catch (err) {
      if (err instanceof BearerTokenError) return { kind: 'invalid', reason: err.reason }
      throw err
    }
    let r
    try {
      r = await revocation(v.token)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || config.store.failMode === 'closed') throw err
      return { kind: 'live', session: v.session, failOpen: true } // failMode open: the token alone decides
    }
    if (r.state.idpLoggedOut) return { kind: 'revoked', reason: 'idp_logout' }
    if (r.state.revokedAt !== null && r.state.revokedAt >= v.token.iat) return { kind: 'revoked', reason: 'user_revoked' }
    // Same skew as everywhere: the IdP's clock (iat) and the store's (epoch) are not the same clock.
    const since = epochCreatedAt(r.epoch)
    if (since !== undefined && v.token.iat < since - BEARER_SKEW) return { kind: 'revoked', reason: 'state_lost' }
    return { kind: 'live', session: v.session }
  }

  return { judge }
}
