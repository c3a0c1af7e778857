/**
 * Signs logout tokens the way an IdP does, with the test IdP's real key, and lets a test break any rule.
 */
import { randomBytes } from 'node:crypto'
import { SignJWT, importJWK, generateKeyPair, type JWK } from 'jose'

export const EVENT = 'http://schemas.openid.net/event/backchannel-logout'

export interface TokenParts {
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  /** Claim names to delete after defaults are applied. */
  omit?: string[]
}

/** A valid logout token for `issuer`/`clientId` signed with `jwk`, altered by `parts`. */
export async function logoutToken (jwk: JWK & { kid: string }, issuer: string, clientId: string, parts: TokenParts = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const claims: Record<string, unknown> = {
    iss: issuer,
    aud: clientId,
    iat: now,
    exp: now + 120,
    jti: randomBytes(12).toString('base64url'),
    events: { [EVENT]: {} },
    ...parts.claims
  }
  for (const k of parts.omit ?? []) delete claims[k]
  const key = await importJWK(jwk, 'RS256')
  return await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'logout+jwt', ...parts.header }).sign(key)
}

/** Same claims signed with a fresh key the IdP never published (same kid or another). */
export async function foreignKeyToken (kid: string, issuer: string, clientId: string, claims: Record<string, unknown>): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256')
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ iss: issuer, aud: clientId, iat: now, exp: now + 120, jti: randomBytes(8).toString('hex'), events: { [EVENT]: {} }, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid, typ: 'logout+jwt' }).sign(privateKey)
}

/** An unsigned (`alg: none`) token. */
export function unsignedToken (claims: Record<string, unknown>): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${enc({ alg: 'none', typ: 'logout+jwt' })}.${enc(claims)}.`
}

/** HS256 signed with a shared secret (the client secret): an HMAC token where an RSA one is expected. */
export async function hmacToken (secret: string, claims: Record<string, unknown>): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' }).sign(new TextEncoder().encode(secret))
}

/** POSTs a logout token to the gateway's back-channel endpoint. */
export async function postLogout (gatewayUrl: string, token: string | undefined, opts: { contentType?: string, body?: string } = {}): Promise<{ status: number, body: Record<string, string>, headers: Headers }> {
  const body = opts.body ?? (token === undefined ? '' : new URLSearchParams({ logout_token: token }).toString())
  const res = await fetch(`${gatewayUrl}/auth/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': opts.contentType ?? 'application/x-www-form-urlencoded' },
    body
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : JSON.parse(text) as Record<string, string>, headers: res.headers }
}
