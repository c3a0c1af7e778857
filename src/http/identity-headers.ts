/**
 * The identity headers upstreams trust (README sections "Proxying" and "Who may pass"), and their hygiene: whatever a client
 * sent under these names, or under a name `identity.headers` maps, is removed before the gateway sets
 * its own values.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { SessionClaims } from '../core/session.js'
import type { IdentityMapping } from '../core/identity.js'

export const IDENTITY_HEADERS = [
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-groups',
  'x-forwarded-access-token'
] as const

/** Longest mapped header value forwarded; a longer one is left out (a header line has limits upstream). */
const MAX_MAPPED_VALUE = 8192

/**
 * Header values carry no control characters (never CR/LF); UTF-8 travels as raw bytes (a latin1 string).
 * Login refuses the built-in identity values that would need this; mapped claims are cleaned here.
 */
function headerValue (v: string): string {
  // eslint-disable-next-line no-control-regex
  return Buffer.from(v.replace(/[\u0000-\u001f\u007f]/g, ''), 'utf8').toString('latin1')
}

/**
 * The headers for the upstream: `incoming` without identity headers a client sent, with the session's.
 * `cookie` is the request's `Cookie` header with the gateway's cookies removed (undefined: none left).
 * Positional, so a proxied request allocates no options object.
 */
export type UpstreamHeaders = (incoming: IncomingHttpHeaders, session: SessionClaims | null, forwardAccessToken: boolean, cookie: string | undefined) => IncomingHttpHeaders

/** Builds the upstream header rewriter for one gateway's identity mapping. */
export function createIdentityHeaders (mapping: Pick<IdentityMapping, 'headers'>): UpstreamHeaders {
  const stripped: ReadonlySet<string> = new Set([...IDENTITY_HEADERS, ...Object.keys(mapping.headers)])
  const mapped = Object.entries(mapping.headers)
  /**
   * Identity header values, built once per session: the gate hands out the same claims object for the
   * same cookie (the unseal cache holds it), so they live exactly as long as that cache entry.
   */
  const cache = new WeakMap<SessionClaims, Record<string, string>>()

  function identityOf (session: SessionClaims): Record<string, string> {
    let h = cache.get(session)
    if (h !== undefined) return h
    const p = session.profile
    h = { 'x-forwarded-user': headerValue(p.user ?? session.sub) }
    if (p.email !== undefined) h['x-forwarded-email'] = headerValue(p.email)
    if (p.preferred_username !== undefined) h['x-forwarded-preferred-username'] = headerValue(p.preferred_username)
    if (p.groups !== undefined && p.groups.length > 0) h['x-forwarded-groups'] = headerValue(p.groups.join(','))
    for (const [name, path] of mapped) {
      const values = p.claims?.[path]
      if (values === undefined || values.length === 0) continue
      const v = headerValue(values.join(',')).trim()
      if (v !== '' && v.length <= MAX_MAPPED_VALUE) h[name] = v
    }
    cache.set(session, h)
    return h
  }

  return (incoming, session, forwardAccessToken, cookie) => {
    const out: IncomingHttpHeaders = {}
    for (const name in incoming) {
      // `X_Forwarded_User` reaches CGI/WSGI/PHP apps as HTTP_X_FORWARDED_USER, like the real header: drop it too.
      // Node hands header names over in lower case already.
      const canonical = name.includes('_') ? name.toLowerCase().replace(/_/g, '-') : name
      if (stripped.has(canonical)) continue
      if (forwardAccessToken && canonical === 'authorization') continue
      out[name] = incoming[name]
    }
    if (cookie === undefined) delete out.cookie
    else out.cookie = cookie
    if (session === null) return out
    const identity = identityOf(session)
    for (const name in identity) out[name] = identity[name]
    if (forwardAccessToken && session.at !== undefined) {
      out['x-forwarded-access-token'] = session.at
      out.authorization = `Bearer ${session.at}`
    }
    return out
  }
}
