/**
 * Property-based fuzzing of `returnTo` (src/core/return-to.ts): whatever the input, the post-login
 * redirect target stays on this site, for a browser (WHATWG URL) and for a consumer that percent-decodes
 * it once first; plain paths on this site are kept as they are.
 */
import t from 'tap'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { MAX_RETURN_TO_LENGTH, safeReturnTo } from '../../src/core/return-to.js'
import { property } from '../helpers/fuzz.js'

const FILE = 'test/fuzz/return-to.test.ts'
const ORIGIN = 'https://app.example.com'

/** Pieces attackers combine: slashes and backslashes (raw, encoded, look-alikes), controls, schemes, dots. */
const FRAGMENTS = [
  '/', '/', '//', '///', '\\', '/\\', '\\/', '%2f', '%2F', '%5c', '%5C', '%252f', '%255c',
  '\t', '\n', '\r', ' ', '%09', '%0a', '%0d', '%0D%0A', '%20', '%00', '\u0000', '\u007f', '%7f', '%C2%85', '%C2%A0', '%E2%80%A8',
  '.', '..', '/..', '/../', '%2e', '%2E', '%2e%2e', '.%2e', '%2e.',
  'http:', 'https:', 'javascript:', 'data:', ':', '//evil.com', 'evil.com', '@evil.com', 'user@', '@',
  '?', '#', '&', '=', '%', '%%', '%25', '%2', '%G0', '%E0%A4%A', '%C0%AF', '%C0%AE', '%EF%BC%8F',
  '\u3002', '\uff0f', '\u2215', '\u2044', '\uff3c', '\u00a0', '\u2028', '\ufeff', 'é', 'x', 'a', 'ok', 'admin'
]

const fragment = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...FRAGMENTS) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 3 }).map((b) => [...b].map((x) => `%${x.toString(16).padStart(2, '0')}`).join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 3 }) }
)
/** The shape of known open-redirect tricks: a way up or out, a doubled separator, a host. */
const trick = fc.tuple(
  fc.constantFrom('', '/', '/.', '/..', '/../..', '/a/..', '/%2e%2e', '/.%2e', '%2f', '/%09', '/%0a'),
  fc.constantFrom('', '/', '//', '///', '/\\', '\\/', '\\\\', '/%2f', '%2f/', '%2f%2f', '/%5c', '%5c%5c', '/%09/', '%09', '/\t/'),
  fc.constantFrom('evil.com', 'evil.com/x', '@evil.com', 'evil.com:443', '%65vil.com', 'app.example.com.evil.com', ''),
  fc.constantFrom('', '?x=1', '#y', '/..', '%00')
).map((p) => p.join(''))

const returnTo: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: trick },
  { weight: 4, arbitrary: fc.array(fragment, { maxLength: 10 }).map((p) => p.join('')) },
  { weight: 2, arbitrary: fc.array(fragment, { maxLength: 9 }).map((p) => '/' + p.join('')) },
  { weight: 1, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.nat({ max: 40 }).map((n) => '/' + 'a'.repeat(MAX_RETURN_TO_LENGTH - 21 + n)) }
)

function decodeOnce (s: string): string | undefined {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

t.test('returnTo', async (t) => {
  await property(t, FILE, 'return-to.same-origin', fc.property(
    fc.oneof(returnTo, fc.anything()), fc.constantFrom('/', '/home'),
    (input, fallback) => {
      const target = safeReturnTo(input, fallback)
      assert.ok(target === input || target === fallback, 'the input itself or the fallback')
      // What a browser does with `Location: <target>` on this site.
      assert.equal(new URL(target, `${ORIGIN}/auth/callback`).origin, ORIGIN, `off-site: ${JSON.stringify(target)}`)
      // A header value: printable ASCII only (no CR/LF splitting, no bytes a proxy may rewrite).
      assert.match(target, /^[\x21-\x7e]+$/)
      // A consumer that percent-decodes once before using it stays on the site too.
      const decoded = decodeOnce(target)
      assert.ok(decoded !== undefined, 'decodes')
      assert.equal(new URL(decoded, `${ORIGIN}/auth/callback`).origin, ORIGIN, `off-site once decoded: ${JSON.stringify(decoded)}`)
      // Browsers drop tab and newline anywhere in a URL: still on the site with them gone.
      assert.equal(new URL(decoded.replace(/[\t\n\r]/g, ''), ORIGIN).origin, ORIGIN)
      // The normalised path never starts with '//' (a later re-serialisation would make it protocol-relative).
      assert.ok(!new URL(target, ORIGIN).pathname.startsWith('//'), 'no // path')
      if (target === fallback) return
      // An accepted target is a path-absolute reference, and decoding it once yields no control
      // character (a consumer that decodes before writing a header cannot be split).
      assert.match(target, /^\/(?![/\\])/, 'starts with one /')
      assert.doesNotMatch(decoded, /[\x00-\x1f\x7f-\x9f]/, 'no control once decoded')
    }), 10)

  // Plain paths (unreserved and sub-delim characters, no empty segment) are kept as they are.
  const pchar = fc.constantFrom(...'abcXYZ019-._~!$&\'()*+,;=:@')
  const segment = fc.string({ unit: pchar, minLength: 1, maxLength: 8 })
  const query = fc.string({ unit: fc.constantFrom(...'abc019-._~!$&\'()*+,;=:@/?'), maxLength: 12 })
  await property(t, FILE, 'return-to.keeps-plain-paths', fc.property(
    fc.array(segment, { maxLength: 6 }), fc.option(query), fc.option(query), fc.boolean(),
    (segments, q, h, trailing) => {
      const path = '/' + segments.join('/') + (trailing && segments.length > 0 ? '/' : '') +
        (q !== null ? `?${q}` : '') + (h !== null ? `#${h}` : '')
      assert.equal(safeReturnTo(path, '/fallback'), path)
    }))
})
