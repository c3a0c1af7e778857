/**
 * Request-target hygiene: the path that picks the route must be the path the upstream receives.
 *
 * The router matches the raw path, while an upstream (or the URL parser of the proxy) may normalise it:
 * drop dot segments, turn `\` into `/`, decode `%2e`/`%2f`, strip `;params`, merge `//`, fold case. A
 * target whose meaning depends on such a step is ambiguous, and is refused with 400 before routing
 * rather than rewritten: nothing a browser sends for a normal link is refused (browsers resolve dot
 * segments and encode the characters refused here), and what is accepted reaches the upstream byte for
 * byte, with `new URL(path, upstream).pathname === path`.
 */

/** Stable refusal codes (logged, and named in the 400 answer). */
export type TargetRefusal =
  | 'not_origin_form' // absolute-form, authority-form, `*`, or a path that does not start with one `/`
  | 'bad_char' // control character, space, non-ASCII, or a character a URL parser would re-encode
  | 'backslash' // `\` raw or encoded: Windows and some parsers take it for `/`
  | 'bad_percent' // `%` not followed by two hex digits
  | 'encoded_separator' // `%2f`, `%5c`, `%2e`, `%3b`, `%00`-`%1f`, `%7f`: decoded by some upstreams, not by the router
  | 'dot_segment' // `.` or `..` as a segment
  | 'empty_segment' // `//`: merged by some upstreams (nginx merge_slashes), not by the router
  | 'path_parameter' // `;`: Tomcat and Jetty drop `;params` from segments
  | 'case_conflict' // read leniently (case, Windows names, Unicode forms) the path reaches another prefix

// Characters allowed raw in a path: RFC 3986 pchar (minus `;`) and `/`, plus the few characters that
// WHATWG URL parsing leaves unchanged in paths (`[`, `]`, `|`, `^`). Everything else is refused.
const ALLOWED = new Uint8Array(128)
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@/%[]|^") ALLOWED[c.charCodeAt(0)] = 1

const HEX = /^[0-9a-fA-F]{2}$/

/** Encodings some upstreams decode before routing while the gateway's router does not (or not alike). */
function encodedRefusal (hex: string): TargetRefusal | undefined {
  const code = parseInt(hex, 16)
  if (code === 0x2f || code === 0x2e || code === 0x3b) return 'encoded_separator'
  if (code === 0x5c) return 'backslash'
  if (code < 0x20 || code === 0x7f) return 'encoded_separator'
  return undefined
}

/**
 * Why this request target is refused, or undefined when it is unambiguous. Only the path is judged; the
 * query string (after the first `?`) goes upstream as it came.
 */
export function refuseTarget (url: string): TargetRefusal | undefined {
  if (url.charCodeAt(0) !== 0x2f) return 'not_origin_form'
  const q = url.indexOf('?')
  const end = q === -1 ? url.length : q
  // Fast path: most paths have nothing but plain characters.
  let prev = 0
  for (let i = 0; i < end; i++) {
    const c = url.charCodeAt(i)
    if (c >= 128 || ALLOWED[c] !== 1) {
      if (c === 0x5c) return 'backslash'
      if (c === 0x3b) return 'path_parameter'
      return 'bad_char'
    }
    if (c === 0x25) {
      const hex = url.slice(i + 1, i + 3)
      if (!HEX.test(hex)) return 'bad_percent'
      const r = encodedRefusal(hex)
      if (r !== undefined) return r
    } else if (c === 0x2f && i > 0) {
      if (prev === 0x2f) return 'empty_segment'
    }
    prev = c
  }
  // Dot segments: "/." or "/.." followed by "/" or the end of the path.
  let from = 0
  while (true) {
    const i = url.indexOf('/.', from)
    if (i === -1 || i >= end) break
    const next = url.charCodeAt(i + 2)
    const atEnd = i + 2 === end
    if (atEnd || next === 0x2f) return 'dot_segment'
    if (next === 0x2e && (i + 3 === end || url.charCodeAt(i + 3) === 0x2f)) return 'dot_segment'
    from = i + 2
  }
  return undefined
}

/** A route prefix's path without its trailing slash: `/api/` and `/api` both own `/api` and `/api/...`. */
export function prefixBase (prefix: string): string {
  return prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
}

/** True when `path` lies under the prefix whose base this is (`''`, the base of `/`, owns every path). */
export function underPrefix (base: string, path: string): boolean {
  return base === '' || path === base || path.startsWith(`${base}/`)
}

/**
 * The check run before routing, for one set of route prefixes: `refuseTarget`, then the lenient rule.
 * Routes are matched exactly, but some upstreams read paths leniently: they fold case (IIS,
 * case-insensitive file systems), drop trailing dots and spaces and `:stream` suffixes from names
 * (Windows), or fold Unicode compatibility forms (`ａdmin`, `admın`). When such a reading reaches another
 * configured prefix than the exact one (`/Admin/x`, `/admin./x` skip `/admin`), the target is refused
 * with `case_conflict`. The prefixes are prepared once, not per request.
 */
export function targetChecker (prefixes: readonly string[]): (url: string) => TargetRefusal | undefined {
  const bases = prefixes.map(prefixBase)
  const folded = bases.map((b) => b.toLowerCase())
  return (url) => {
    const refusal = refuseTarget(url)
    if (refusal !== undefined) return refusal
    // The router matches the percent-decoded path (`/%41dmin` is `/Admin` to it): judge that one.
    const path = decodedPath(url.split('?', 1)[0]!)
    if (!MAYBE_LENIENT.test(path)) return undefined
    const exact = longestPrefix(path, bases)
    const caseless = longestPrefix(lenient(path), folded)
    if (exact === undefined || caseless === undefined) return undefined
    return folded[caseless] !== folded[exact] ? 'case_conflict' : undefined
  }
}

/** Whatever a lenient reading could change: upper case, non-ASCII, `:`, a name ending in a dot or space. */
// eslint-disable-next-line no-control-regex
const MAYBE_LENIENT = /[A-Z:]|[^\x00-\x7f]|[. ](?:\/|$)/

/** The path as the most lenient upstream reads it: Unicode-compatibility folded, caseless, Windows names. */
function lenient (path: string): string {
  return path.normalize('NFKC').toUpperCase().toLowerCase().split('/')
    .map((seg) => seg.replace(/:.*$/, '').replace(/[. ]+$/, '')).join('/')
}

function decodedPath (path: string): string {
  try {
    return decodeURIComponent(path)
  } catch {
    return path // not UTF-8 once decoded: the router refuses it anyway
  }
}

/** Index of the longest base that owns `path`, or undefined. */
function longestPrefix (path: string, bases: readonly string[]): number | undefined {
  let best: number | undefined
  for (let i = 0; i < bases.length; i++) {
    if (underPrefix(bases[i]!, path) && (best === undefined || bases[i]!.length > bases[best]!.length)) best = i
  }
  return best
}
