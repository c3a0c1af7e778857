/**
 * The identity headers upstreams trust (CONTRACT section 5), and their hygiene: whatever a client sent
 * under these names is removed before the gateway sets its own values.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { SessionClaims } from '../core/session.js'

export const IDENTITY_HEADERS = [
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-groups',
  'x-forwarded-access-token'
] as const
const IDENTITY_SET: ReadonlySet<string> = new Set(IDENTITY_HEADERS)

/** Header values must not carry control characters; UTF-8 travels as raw bytes (latin1 string). */
function headerValue (v: string): string {
  // eslint-disable-next-line no-control-regex
  return Buffer.from(v.replace(/[\u0000-\u001f\u007f]/g, ''), 'utf8').toString('latin1')
}

/** Identity header values per session: the gate hands out the same claims object for the same cookie. */
const identityCache = new WeakMap<SessionClaims, Record<string, string>>()

function identityOf (session: SessionClaims): Record<string, string> {
  let h = identityCache.get(session)
  if (h !== undefined) return h
  h = { 'x-forwarded-user': headerValue(session.sub) }
  const p = session.profile
  if (p.email !== undefined) h['x-forwarded-email'] = headerValue(p.email)
  if (p.preferred_username !== undefined) h['x-forwarded-preferred-username'] = headerValue(p.preferred_username)
  if (p.groups !== undefined && p.groups.length > 0) h['x-forwarded-groups'] = headerValue(p.groups.join(','))
  identityCache.set(session, h)
  return h
}

export interface IdentityOptions {
  forwardAccessToken: boolean
  /** The request's `Cookie` header with the gateway's cookies removed (undefined: none left). */
  cookie: string | undefined
}

/**
 * The headers sent upstream: client-sent identity headers removed, the gateway's cookies removed,
 * then the session's identity added (when there is one).
 */
export function upstreamHeaders (incoming: IncomingHttpHeaders, session: SessionClaims | null, opts: IdentityOptions): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(incoming)) {
    // `X_Forwarded_User` reaches CGI/WSGI/PHP apps as HTTP_X_FORWARDED_USER, like the real header: drop it too.
    // Node hands header names over in lower case already.
    const canonical = name.includes('_') ? name.toLowerCase().replace(/_/g, '-') : name
    if ((IDENTITY_SET as ReadonlySet<string>).has(canonical)) continue
    if (opts.forwardAccessToken && canonical === 'authorization') continue
    out[name] = value
  }
  if (opts.cookie === undefined) delete out.cookie
  else out.cookie = opts.cookie
  if (session === null) return out
  Object.assign(out, identityOf(session))
  if (opts.forwardAccessToken && session.at !== undefined) {
    out['x-forwarded-access-token'] = session.at
    out.authorization = `Bearer ${session.at}`
  }
  return out
}
