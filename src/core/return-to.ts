/**
 * Post-login redirect targets. Only a path on this site is accepted, so `returnTo` can never become an
 * open redirector (RFC 9700 §4.11); anything doubtful falls back.
 */

/** Longest `returnTo` accepted. */
export const MAX_RETURN_TO_LENGTH = 2048

// The raw value must be printable ASCII: no whitespace, controls or bytes a Location header cannot carry.
export const PRINTABLE_ASCII = /^[\x21-\x7E]+$/
// After one percent-decoding: no C0/C1 controls, no Unicode whitespace (browsers strip tab/newline from
// URLs, turning `/%09/evil.com` into `//evil.com` for any consumer that decodes first), no backslash.
export const UNSAFE_DECODED = /[\x00-\x1F\x7F-\x9F\s\\]/u
const BASE = 'http://x.invalid'

/**
 * Returns `input` when it is a relative path on this site (`/path?query#hash`), else `fallback`.
 * The fallback is trusted as given.
 */
export function safeReturnTo (input: unknown, fallback = '/'): string {
  if (typeof input !== 'string' || input.length > MAX_RETURN_TO_LENGTH || !PRINTABLE_ASCII.test(input)) return fallback
  if (!isLocalPath(input)) return fallback
  let decoded: string
  try {
    decoded = decodeURIComponent(input)
  } catch {
    return fallback // malformed percent-encoding: no honest link has it
  }
  return !UNSAFE_DECODED.test(decoded) && isLocalPath(decoded) ? input : fallback
}

/** One leading '/', no backslash, and it resolves to a same-origin path that does not start with '//'. */
function isLocalPath (path: string): boolean {
  if (path[0] !== '/' || path[1] === '/' || path.includes('\\')) return false
  // A path-absolute reference against a valid base cannot fail to parse (WHATWG URL), so no try.
  const url = new URL(path, BASE)
  // Dot segments can normalise `/..//evil.com` to the path `//evil.com`; refuse it in case a consumer
  // re-serialises the normalised path.
  return url.origin === BASE && !url.pathname.startsWith('//')
}
