/**
 * Typed sealing of what the gateway keeps encrypted: the session cookie, the token bundle kept with a
 * device, and the login transaction cookie. Each helper owns its purpose string and its shape check, so
 * no caller names purposes, inspects seal prefixes or touches a key.
 */
import { DEVICE_TAG_BYTES, deviceTagData } from '../core/device.js'
import { mac, seal, sealedWithCurrentKey, unseal, verifyMac, type KeyRing } from '../core/sealed-cookie.js'
import { asSessionClaims, type SessionClaims } from '../core/session.js'
import { asTokenBundle, openTokenBundle, TOKENS_PURPOSE, type TokenBundle, type TokenBundleResult } from '../core/tokens.js'
import type { LoginChecks } from '../oidc/client.js'

export const SESSION_PURPOSE = 'session'
export const LOGIN_TX_PURPOSE = 'login-tx'
const DEVICES_FORM_LABEL = 'devices-csrf'
const DEVICE_GEN_LABEL = 'device-gen'

/** The login transaction, sealed into a short cookie for the IdP round trip. */
export interface LoginTx { checks: LoginChecks, returnTo: string, remember: boolean, iat: number }

export interface Sealer<T> {
  seal (value: T): string
  /** The value, or null when it does not open with our keys (tampered, foreign, retired key, wrong shape). */
  open (sealed: string): T | null
  /** True when sealed with the current key (else re-seal it so the old key can retire). */
  isCurrent (sealed: string): boolean
}

export interface Seals {
  session: Sealer<SessionClaims>
  tokens: Sealer<TokenBundle>
  /** A record's token bundle with why it could not be opened (none at all is an empty bundle, not an error). */
  tokenBundle (sealed: string | undefined): TokenBundleResult
  loginTx: Sealer<LoginTx>
  /** A token bound to one session for the devices page's forms (they cannot send X-CSRF). */
  devicesFormToken (sid: string): string
  /** The device cookie's tag: MAC (current key, 16 bytes) over the sid, generation and credential hash. */
  deviceTag (sid: string, generation: number, credHash: string): string
  /** True when `tag` is a device tag for these under any key of the ring (constant time). */
  checkDeviceTag (sid: string, generation: number, credHash: string, tag: string): boolean
}

function asLoginTx (v: unknown): LoginTx | null {
  if (typeof v !== 'object' || v === null) return null
  const t = v as Record<string, unknown>
  const c = t.checks as Record<string, unknown> | null | undefined
  if (typeof c !== 'object' || c === null || typeof c.state !== 'string' || typeof c.nonce !== 'string' || typeof c.codeVerifier !== 'string') return null
  if (typeof t.returnTo !== 'string' || typeof t.remember !== 'boolean' || typeof t.iat !== 'number') return null
  return v as LoginTx
}

/** `deflate`: only for values no attacker puts text in (see src/core/sealed-cookie.ts). */
function sealer<T> (ring: KeyRing, purpose: string, shape: (v: unknown) => T | null, deflate: boolean): Sealer<T> {
  return {
    seal: (value) => seal(ring, purpose, value, { deflate }),
    open (sealed) {
      try { return shape(unseal(ring, purpose, sealed)) } catch { return null }
    },
    isCurrent: (sealed) => sealedWithCurrentKey(ring, sealed)
  }
}

/** The sealers of one gateway's key ring. */
export function createSeals (ring: KeyRing): Seals {
  return {
    session: sealer(ring, SESSION_PURPOSE, asSessionClaims, true),
    // A bundle that does not open is as good as none: logout and renewal go on without tokens.
    tokens: sealer(ring, TOKENS_PURPOSE, asTokenBundle, true),
    tokenBundle: (sealed) => openTokenBundle(ring, sealed),
    // Never deflated: it carries the caller's returnTo beside the state, nonce and PKCE verifier.
    loginTx: sealer(ring, LOGIN_TX_PURPOSE, asLoginTx, false),
    devicesFormToken: (sid) => mac(ring, DEVICES_FORM_LABEL, sid),
    deviceTag: (sid, generation, credHash) => mac(ring, DEVICE_GEN_LABEL, deviceTagData(sid, generation, credHash), DEVICE_TAG_BYTES),
    checkDeviceTag: (sid, generation, credHash, tag) =>
      verifyMac(ring, DEVICE_GEN_LABEL, deviceTagData(sid, generation, credHash), tag)
  }
}
