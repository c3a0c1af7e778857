/**
 * Property-based fuzzing of request-target hygiene (src/http/request-target.ts, applied in src/app.ts
 * before routing): an accepted path is what the proxy forwards, and on a real gateway with `/` optional
 * and `/admin` required on one upstream, nothing reaches the upstream without identity at a path that an
 * upstream could read as `/admin` (percent-decoded once, dot segments resolved; and, stronger, after the
 * usual lenient normalisations: `\` as `/`, `;params` dropped, `//` merged, case folded).
 */
import t from 'tap'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { refuseTarget } from '../../src/http/request-target.js'
import { startStack } from '../helpers/stack.js'
import { rawRequest } from '../helpers/raw-http.js'
import { property } from '../helpers/fuzz.js'

const FILE = 'test/fuzz/request-target.test.ts'

/** Percent-decodes once, byte-wise (a malformed `%` stays as it is), as latin1 text. */
function decodeOnce (path: string): string {
  const bytes: number[] = []
  for (let i = 0; i < path.length; i++) {
    const hex = path.slice(i + 1, i + 3)
    if (path[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16))
      i += 2
    } else {
      for (const b of Buffer.from(path[i]!, 'utf8')) bytes.push(b)
    }
  }
  return Buffer.from(bytes).toString('latin1')
}

/** RFC 3986 section 5.2.4 remove_dot_segments. */
function removeDots (path: string): string {
  let input = path
  let out = ''
  while (input !== '') {
    if (input.startsWith('../')) input = input.slice(3)
    else if (input.startsWith('./')) input = input.slice(2)
    else if (input.startsWith('/./')) input = input.slice(2)
    else if (input === '/.') input = '/'
    else if (input.startsWith('/../')) { input = input.slice(3); out = out.slice(0, Math.max(0, out.lastIndexOf('/'))) }
    else if (input === '/..') { input = '/'; out = out.slice(0, Math.max(0, out.lastIndexOf('/'))) }
    else if (input === '.' || input === '..') input = ''
    else {
      const next = input.indexOf('/', input.startsWith('/') ? 1 : 0)
      const seg = next === -1 ? input : input.slice(0, next)
      out += seg
      input = input.slice(seg.length)
    }
  }
  return out
}

/** What the brief asks: decoded once, dot segments resolved. */
const strictView = (path: string): string => removeDots(decodeOnce(path))
/** What a lenient upstream may make of it on top: `\` is `/`, `;params` dropped, `//` merged, case folded, NUL cut. */
const lenientView = (path: string): string => {
  const p = decodeOnce(path).split('\0', 1)[0]!.replace(/\\/g, '/').replace(/;[^/]*/g, '').replace(/\/{2,}/g, '/')
  return removeDots(p).replace(/\/{2,}/g, '/').toLowerCase()
}
const isAdmin = (path: string): boolean => path === '/admin' || path.startsWith('/admin/')

const SEGMENTS = ['admin', 'ADMIN', 'Admin', 'admin.', 'admin%20', '.', '..', '%2e', '%2E', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '%252e',
  '%2f', '%2F', '\\', '%5c', '%5C', ';x', ';', '%3b', '%00', '%0a', '%09', '', '/', '//', '%61dmin', '%41dmin', 'adm%69n', 'users',
  'a b', 'é', '%C3%A9', '%zz', '%', '%25', '%252f', '?', '?x=/../admin', '#', '%3f', '%23', 'x', 'public', '~', 'a:b', '[a]']
const segment = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...SEGMENTS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'admin.%2eEfF5cC/\\;?'), maxLength: 6 }) }
)
const target: fc.Arbitrary<string> = fc.tuple(fc.constantFrom('/', '/', '/', '', '//', '\\', '%2f'), fc.array(segment, { maxLength: 6 }), fc.constantFrom('/', '/', '', '\\', '%2f'))
  .map(([lead, segs, sep]) => lead + segs.join(sep))

t.test('refuseTarget', async (t) => {
  await property(t, FILE, 'request-target.accepted-is-forwarded', fc.property(
    fc.oneof({ weight: 4, arbitrary: target }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) }, { weight: 1, arbitrary: fc.webPath() }),
    (url) => {
      let refusal: string | undefined
      assert.doesNotThrow(() => { refusal = refuseTarget(url) })
      if (refusal !== undefined) {
        assert.match(refusal, /^[a-z_]+$/, 'a stable code')
        return
      }
      const path = url.split('?', 1)[0]!
      // What the proxy sends (the target as it came) is what routed: a URL parser changes nothing.
      assert.equal(new URL(path, 'http://upstream.invalid').pathname, path, 'the URL parser keeps the path')
      // And no upstream normalisation changes its segments either.
      const decoded = decodeOnce(path)
      assert.equal(removeDots(decoded), decoded, `dot segments once decoded: ${decoded}`)
      assert.doesNotMatch(decoded, /[\\;\x00-\x1f\x7f]|\/\//, `separators once decoded: ${JSON.stringify(decoded)}`)
    }), 10)
})

t.test('a real gateway: / optional, /admin required, one upstream', async (t) => {
  const s = await startStack(t, {
    routes: [
      { prefix: '/', upstream: '{upstream}', auth: 'optional' },
      { prefix: '/admin', upstream: '{upstream}', auth: 'required' }
    ]
  })
  await property(t, FILE, 'request-target.no-admin-without-identity', fc.asyncProperty(
    target, fc.constantFrom('GET', 'POST', 'HEAD'),
    async (path, method) => {
      const before = s.upstream.seen.length
      const res = await rawRequest(s.url, path, { method, headers: { accept: 'application/json' } })
      assert.ok(res.status >= 200 && res.status < 500, `status ${res.status} for ${JSON.stringify(path)}`)
      const seen = s.upstream.seen.slice(before)
      assert.ok(seen.length <= 1)
      if (seen.length === 0) return
      const forwarded = seen[0]!
      const upstreamPath = forwarded.url.split('?', 1)[0]!
      assert.equal(forwarded.headers['x-forwarded-user'], undefined, 'no identity')
      assert.ok(!isAdmin(strictView(upstreamPath)), `reached the upstream as admin: ${JSON.stringify(path)} -> ${JSON.stringify(forwarded.url)} (${strictView(upstreamPath)})`)
      assert.ok(!isAdmin(lenientView(upstreamPath)), `a lenient upstream reads admin: ${JSON.stringify(path)} -> ${JSON.stringify(forwarded.url)} (${lenientView(upstreamPath)})`)
      // Forwarded byte for byte.
      assert.equal(forwarded.url, path, 'the upstream got the target as sent')
    }), 1, [
    ['/./admin/users', 'GET'], ['/%2e/admin', 'GET'], ['/x/../admin', 'GET'], ['/x/%2e%2e/admin', 'GET'], ['/admin%2fusers', 'GET'],
    ['//admin', 'GET'], ['/admin;x/users', 'GET'], ['/ADMIN/users', 'GET'], ['/%61dmin', 'GET'], ['/admin\\users', 'GET'],
    ['/public/..%2fadmin', 'GET'], ['/%2e%2e/admin', 'GET'], ['/admin%00', 'GET'], ['/public', 'GET'], ['/administrator', 'GET'],
    // Found by this property: the case check judged the raw path, the router the decoded one.
    ['/%41dmin', 'GET'], ['/%41DMIN/users', 'GET'], ['/adm%49n/x', 'GET']
  ])
})
