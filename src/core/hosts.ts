/**
 * Host names for forward-auth: route `host` patterns and the hosts a sign-in may return to.
 * `app.example.com` matches that host only; `*.example.com` matches any subdomain at any depth, never
 * `example.com` itself. Comparison is case-insensitive; a port, when the pattern has none, is ignored.
 */
import { MAX_RETURN_TO_LENGTH, PRINTABLE_ASCII, UNSAFE_DECODED } from './return-to.js'

/** True when `host` (a Host header value, maybe with a port) matches `pattern`. */
export function hostMatches (pattern: string, host: string): boolean {
  const p = pattern.toLowerCase()
  let h = host.toLowerCase()
  if (!p.includes(':')) h = stripPort(h)
  if (p.startsWith('*.')) return h.length > p.length - 1 && h.endsWith(p.slice(1))
  return h === p
}

function stripPort (host: string): string {
  if (host.startsWith('[')) { const end = host.indexOf(']'); return end === -1 ? host : host.slice(0, end + 1) }
  const colon = host.lastIndexOf(':')
  return colon === -1 ? host : host.slice(0, colon)
}

/**
 * A Host value as forward-auth judges it: lower-cased, one trailing dot of the name dropped (DNS and
 * nginx's server_name treat `app.example.com.` as `app.example.com`), port kept; undefined for anything
 * that is not one plain host name or IP literal with an optional port (userinfo, lists, spaces), which
 * a controller might read differently.
 */
export function canonicalHost (host: string): string | undefined {
  const m = /^([a-z0-9-]+(?:\.[a-z0-9-]+)*)\.?(:\d{1,5})?$|^(\[[0-9a-f:.]+\])(:\d{1,5})?$/i.exec(host)
  if (m === null) return undefined
  return (m[1] !== undefined ? `${m[1]}${m[2] ?? ''}` : `${m[3]!}${m[4] ?? ''}`).toLowerCase()
}

/** A pattern as the config accepts it: a host name (optionally `*.`-prefixed), optionally `:port`. */
export const HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/i


/**
 * An absolute `returnTo` for sign-in across hosts: only `https` (or `http` when `allowHttp`), no
 * credentials, no backslash or control-character tricks raw or percent-decoded, and a host in
 * `allowed`. Returns the URL as parsed (normalised), else undefined.
 */
export function allowedAbsoluteUrl (input: string, allowed: readonly string[], allowHttp: boolean): string | undefined {
  if (input.length > MAX_RETURN_TO_LENGTH || !PRINTABLE_ASCII.test(input) || input.includes('\\')) return undefined
  const m = /^(https?):\/\/([^/?#]*)/.exec(input)
  if (m === null || (m[1] === 'http' && !allowHttp)) return undefined
  // Anything that could be userinfo (`@`), or a host part a parser might read otherwise, is refused raw.
  if (m[2] === '' || m[2]!.includes('@') || m[2]!.includes('%')) return undefined
  let decoded: string
  try { decoded = decodeURIComponent(input) } catch { return undefined }
  if (UNSAFE_DECODED.test(decoded)) return undefined
  let u: URL
  try { u = new URL(input) } catch { return undefined }
  if (u.username !== '' || u.password !== '' || `${u.protocol}` !== `${m[1]}:`) return undefined
  if (!allowed.some((p) => hostMatches(p, u.host))) return undefined
  return u.href
}
