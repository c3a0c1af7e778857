/**
 * The fetch the gateway uses towards the IdP: the platform's, or undici's with extra trusted CA
 * certificates when `oidc.caFile` names a private CA (discovery, token, userinfo, revocation, JWKS).
 */
import { Agent, fetch as undiciFetch } from 'undici'
import { withPublicRoots } from '../config/tls.js'

export function idpFetch (ca: Buffer | undefined): typeof fetch | undefined {
  if (ca === undefined) return undefined
  const agent = new Agent({ connect: { ca: withPublicRoots(ca) } })
  return (async (input: string | URL | Request, init?: RequestInit) =>
    await undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: agent })) as unknown as typeof fetch
}

/** `{ fetch }` for the key-set options when a private CA is configured, else nothing. */
export function fetchOption (ca: Buffer | undefined): { fetch?: typeof fetch } {
  const f = idpFetch(ca)
  return f !== undefined ? { fetch: f } : {}
}
