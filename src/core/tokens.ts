/**
 * What the gateway keeps server-side per session besides the record's plain fields: the IdP's tokens
 * and the profile, sealed with the session key ring (SEALED_TOKENS purpose) before they reach the store.
 */
import type { ProfileClaims } from './session.js'
import { SealError, unseal, type KeyRing, type SealErrorCode } from './sealed-cookie.js'

export const TOKENS_PURPOSE = 'tokens'

export interface TokenBundle {
  idToken?: string
  refreshToken?: string
  /** Profile claims, so a renewal can mint a cookie without asking the IdP. */
  profile?: ProfileClaims
  /** Access token and its expiry (epoch seconds), when a route forwards it. */
  at?: string
  atExp?: number
}

/** Narrows an unsealed value to a TokenBundle (anything malformed becomes an empty bundle). */
export function asTokenBundle (value: unknown): TokenBundle {
  if (typeof value !== 'object' || value === null) return {}
  const v = value as Record<string, unknown>
  const out: TokenBundle = {}
  if (typeof v.idToken === 'string') out.idToken = v.idToken
  if (typeof v.refreshToken === 'string') out.refreshToken = v.refreshToken
  if (typeof v.at === 'string') out.at = v.at
  if (typeof v.atExp === 'number') out.atExp = v.atExp
  if (typeof v.profile === 'object' && v.profile !== null) out.profile = v.profile as ProfileClaims
  return out
}

/** The access-token part of a bundle, as session claims carry it too ({} when there is none). */
export function accessTokenOf (b: { at?: string | undefined, atExp?: number | undefined }): Pick<TokenBundle, 'at' | 'atExp'> {
  if (b.at === undefined) return {}
  return b.atExp !== undefined ? { at: b.at, atExp: b.atExp } : { at: b.at }
}

/** Why a stored token bundle could not be used (its record is otherwise fine). */
export type TokenBundleErrorCode =
  /** It does not unseal: its key was rotated out of the ring, or it was altered. */
  | 'SG_TOKENS_UNREADABLE'
  /** It unseals, but is not a bundle (written by another version, or by mistake). */
  | 'SG_TOKENS_MALFORMED'

export type TokenBundleResult =
  | { ok: true, bundle: TokenBundle }
  /** `bundle` is empty, so a caller can go on without tokens; `seal` is the SealError code when unsealing failed. */
  | { ok: false, code: TokenBundleErrorCode, seal?: SealErrorCode, bundle: TokenBundle }

/**
 * Opens a record's sealed bundle. No bundle (the record has none) is an empty one, not an error; one
 * that cannot be opened is a coded result, so the caller logs it instead of silently losing the tokens.
 */
export function openTokenBundle (ring: KeyRing, sealed: string | undefined): TokenBundleResult {
  if (sealed === undefined) return { ok: true, bundle: {} }
  let value: unknown
  try {
    value = unseal(ring, TOKENS_PURPOSE, sealed)
  } catch (err) {
    if (!(err instanceof SealError)) throw err
    return { ok: false, code: 'SG_TOKENS_UNREADABLE', seal: err.code, bundle: {} }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, code: 'SG_TOKENS_MALFORMED', bundle: {} }
  return { ok: true, bundle: asTokenBundle(value) }
}
