/**
 * Property-based fuzzing of the sealed cookie (src/core/sealed-cookie.ts) and of how the gateway reads
 * and forwards its cookies (src/http/cookies.ts): anything a browser can send is refused with a
 * SealError or opens to exactly what was sealed; chunks never combine into a session nobody sealed;
 * the gateway's cookies never reach an upstream.
 */
import t from 'tap'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import Fastify from 'fastify'
import cookie from '@fastify/cookie'
import {
  KeyRing, MAX_COOKIE_BYTES, MAX_COOKIE_CHUNKS, MAX_SEALED_LENGTH, SealError, joinCookie, seal, splitCookie, unseal, type SealErrorCode
} from '../../src/core/sealed-cookie.js'
import { CookieJar } from '../../src/http/cookies.js'
import { property } from '../helpers/fuzz.js'

const FILE = 'test/fuzz/sealed-cookie.test.ts'
const OPEN_CODES: readonly SealErrorCode[] = ['SG_SEAL_MALFORMED', 'SG_SEAL_UNKNOWN_KEY', 'SG_SEAL_INVALID']

// The parser the gateway reads the Cookie header with (src/app.ts registers @fastify/cookie without options).
const parser = Fastify()
await parser.register(cookie)
await parser.ready()
t.teardown(() => parser.close())
const parseCookie = (header: string): Record<string, string | undefined> => parser.parseCookie(header)

/** The three cookie namings: plain (http), `__Host-` (https), `__Secure-` (https with session.cookieDomain). */
const jarKind = fc.constantFrom('http', 'https', 'https+domain')
const jarOf = (kind: string): CookieJar => kind === 'http'
  ? new CookieJar('http://app.example.com')
  : new CookieJar('https://app.example.com', kind === 'https+domain' ? 'example.com' : undefined)

// Fixed keys, so that a replayed seed gives the same inputs (only seal's random IVs differ).
const fixedKey = (label: string): Uint8Array => new Uint8Array(createHash('sha256').update(label).digest())
const ring = new KeyRing([fixedKey('fuzz-1'), fixedKey('fuzz-2')])
const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 })
const B64URL_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
// RFC 6265 cookie-octet: what splitCookie accepts and what a sealed value is made of.
const COOKIE_OCTETS = [...Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i))]
  .filter((c) => !'",;\\'.includes(c))

/** What `fn` did: returned a value, or threw. */
function outcome (fn: () => unknown): { threw: false, value: unknown } | { threw: true, err: unknown } {
  try {
    return { threw: false, value: fn() }
  } catch (err) {
    return { threw: true, err }
  }
}

/** `fn` threw a SealError with one of `codes`; anything else (another error, a return) fails the property. */
function assertSealError (fn: () => unknown, codes: readonly SealErrorCode[] = OPEN_CODES): void {
  const o = outcome(fn)
  assert.ok(o.threw, `expected a SealError, got a value: ${JSON.stringify(o.threw ? undefined : o.value)?.slice(0, 200)}`)
  assert.ok(o.err instanceof SealError, `expected a SealError, got ${String(o.err)}`)
  assert.ok(codes.includes(o.err.code), `unexpected code ${o.err.code}`)
}

const b64urlString = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...B64URL_CHARS), minLength: min, maxLength: max })

/** Strings shaped like sealed values: right version and kid (often), parts of near-right sizes. */
const sealedLike: fc.Arbitrary<string> = fc.tuple(
  fc.constantFrom('v1', 'v1', 'v2', 'V1', '', 'v1 '),
  fc.oneof(fc.constant(ring.currentKid), fc.constantFrom(...ring.kids), b64urlString(0, 10)),
  fc.uint8Array({ minLength: 10, maxLength: 14 }).map((b) => Buffer.from(b).toString('base64url')),
  fc.oneof(fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('base64url')), b64urlString(0, 40)),
  fc.oneof(fc.uint8Array({ minLength: 14, maxLength: 18 }).map((b) => Buffer.from(b).toString('base64url')), b64urlString(20, 24)),
  fc.constantFrom('', '', '=', '.', '.x', ' ', '==', 'A')
).map(([v, kid, iv, ct, tag, tail]) => `${v}.${kid}.${iv}.${ct}.${tag}${tail}`)

/** Anything a Cookie header can carry after decoding, and more. */
const anyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: fc.constantFrom(...B64URL_CHARS, '.', '=', '%', ' '), maxLength: 200 }),
  sealedLike,
  fc.nat({ max: 200 }).map((n) => 'v1.'.repeat(n)),
  fc.constantFrom('', '.', '....', 'v1....', 'x'.repeat(MAX_SEALED_LENGTH + 1), `v1.${'A'.repeat(MAX_SEALED_LENGTH)}`)
)

/** Payloads as they go through JSON (what unseal can give back). */
const payload = fc.jsonValue({ maxDepth: 4 })
const viaJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v))

/** One edit of a string: replace, insert or delete a character, truncate, or extend. */
const edit = (s: string): fc.Arbitrary<string> => fc.oneof(
  fc.tuple(fc.nat({ max: s.length - 1 }), fc.constantFrom(...B64URL_CHARS, '.', '=', ' ', '\u0000', '\u00e9'))
    .map(([i, c]) => s.slice(0, i) + c + s.slice(i + 1)),
  fc.tuple(fc.nat({ max: s.length }), fc.constantFrom(...B64URL_CHARS, '.', '=', ' ')).map(([i, c]) => s.slice(0, i) + c + s.slice(i)),
  fc.nat({ max: s.length - 1 }).map((i) => s.slice(0, i) + s.slice(i + 1)),
  fc.nat({ max: s.length - 1 }).map((i) => s.slice(0, i)),
  b64urlString(1, 8).map((x) => s + x),
  fc.tuple(fc.nat({ max: 4 }), fc.nat({ max: 4 })).map(([a, b]) => {
    const parts = s.split('.')
    ;[parts[a], parts[b]] = [parts[b]!, parts[a]!]
    return parts.join('.')
  })
)

t.test('unseal', async (t) => {
  await property(t, FILE, 'unseal.any-input', fc.property(
    fc.oneof(anyString, fc.anything()), fc.constantFrom('session', 'login-tx', 'device'),
    (input, purpose) => { assertSealError(() => unseal(ring, purpose, input as string)) }))

  // Large enough (over 1 KB of JSON) for the deflated form, mixed with the small payloads.
  const anyPayload = fc.oneof(payload, fc.record({ groups: fc.array(fc.string({ minLength: 16, maxLength: 48 }), { minLength: 70, maxLength: 140 }) }))
  await property(t, FILE, 'unseal.round-trip', fc.property(
    anyPayload, fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), fc.uniqueArray(keyArb, { minLength: 3, maxLength: 6, selector: (k) => Buffer.from(k).toString('hex') }), fc.boolean(),
    (value, purpose, keys, deflate) => {
      const [first, spare, absent, ...others] = keys as [Uint8Array, Uint8Array, Uint8Array, ...Uint8Array[]]
      const sealer = new KeyRing([first, ...others])
      const sealed = seal(sealer, purpose, value, { deflate })
      assert.match(sealed, /^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{22}$/)
      assert.ok(sealed.length <= MAX_SEALED_LENGTH)
      assert.deepEqual(unseal(sealer, purpose, sealed), viaJson(value))
      // Rotation: a ring where the sealing key is no longer first still opens it.
      assert.deepEqual(unseal(new KeyRing([...others, spare, first]), purpose, sealed), viaJson(value))
      // Another purpose, or a ring without the key, refuses it.
      assertSealError(() => unseal(sealer, purpose === 'other' ? 'other2' : 'other', sealed), ['SG_SEAL_INVALID'])
      assertSealError(() => unseal(new KeyRing([absent, ...others]), purpose, sealed), ['SG_SEAL_UNKNOWN_KEY'])
    }))

  const sealedValue = fc.tuple(anyPayload, fc.constantFrom('session', 'login-tx'), fc.boolean()).map(([v, purpose, deflate]) => ({ sealed: seal(ring, purpose, v, { deflate }), purpose }))
  await property(t, FILE, 'unseal.tampered', fc.property(
    sealedValue.chain(({ sealed, purpose }) => fc.record({ sealed: fc.constant(sealed), purpose: fc.constant(purpose), tampered: edit(sealed) })),
    ({ sealed, purpose, tampered }) => {
      fc.pre(tampered !== sealed)
      assertSealError(() => unseal(ring, purpose, tampered))
    }))
})

t.test('chunks', async (t) => {
  const cookieName = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)
  const cookieValue = (max: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...COOKIE_OCTETS), minLength: 1, maxLength: max })

  await property(t, FILE, 'chunks.split-join', fc.property(
    cookieName, cookieValue(400), fc.integer({ min: 3, max: 200 }),
    (name, value, room) => {
      const maxChunk = name.length + 2 + room
      const o = outcome(() => splitCookie(name, value, maxChunk))
      if (o.threw) {
        assert.ok(o.err instanceof SealError && o.err.code === 'SG_COOKIE_TOO_LARGE', `split threw ${String(o.err)}`)
        const count = Math.ceil(value.length / room)
        assert.ok(count > MAX_COOKIE_CHUNKS || value.length + count * (name.length + 2) > MAX_COOKIE_BYTES, 'too large only when it does not fit')
        return
      }
      const parts = o.value as Array<{ name: string, value: string }>
      assert.ok(parts.length >= 1 && parts.length <= MAX_COOKIE_CHUNKS)
      for (const p of parts) {
        assert.ok(p.name.length + p.value.length <= maxChunk, 'each cookie within the budget')
        assert.ok(p.value !== '', 'no empty chunk')
      }
      if (parts.length === 1) assert.equal(parts[0]!.name, name)
      else assert.deepEqual(parts.map((p) => p.name), parts.map((_, i) => `${name}.${i}`))
      // Any order of the cookies in the jar joins back to the value.
      const entries = parts.map((p) => [p.name, p.value] as const)
      assert.equal(joinCookie(Object.fromEntries(entries), name), value)
      assert.equal(joinCookie(Object.fromEntries(entries.reverse()), name), value)
    }))

  // An independent model of the joining rules: plain cookie if non-empty; else chunks name.0 .. name.(n-1),
  // canonical decimal indices, no gap, none empty, fewer than MAX_COOKIE_CHUNKS.
  function modelJoin (jar: Record<string, string | undefined>, name: string): string | undefined {
    const plain = Object.hasOwn(jar, name) ? jar[name] : undefined
    if (plain !== undefined && plain !== '') return plain
    const found = new Map<number, string | undefined>()
    for (const k of Object.keys(jar)) {
      const m = k.startsWith(`${name}.`) ? /^(0|[1-9][0-9]*)$/.exec(k.slice(name.length + 1)) : null
      if (m !== null) found.set(Number(m[1]), jar[k])
    }
    if (found.size === 0) return undefined
    const values: string[] = []
    for (let i = 0; i < found.size; i++) {
      const v = found.get(i)
      if (v === undefined || v === '') return undefined
      values.push(v)
    }
    return found.size <= MAX_COOKIE_CHUNKS ? values.join('') : undefined
  }

  const jarKey = (name: string): fc.Arbitrary<string> => fc.oneof(
    fc.constantFrom(name, `${name}.0`, `${name}.1`, `${name}.2`, `${name}.3`, `${name}.10`, `${name}.00`, `${name}.01`,
      `${name}.-1`, `${name}.`, `${name}.1e0`, `${name}.0x1`, `${name}. 1`, `${name}.1 `, `${name}..1`, `${name}x.0`,
      `x${name}.0`, `${name.toUpperCase()}.0`, '__proto__', 'constructor', 'hasOwnProperty', 'toString'),
    fc.nat({ max: 20 }).map((i) => `${name}.${i}`),
    fc.string({ maxLength: 8 }))

  await property(t, FILE, 'chunks.join-model', fc.property(
    fc.constantFrom('sg', '__Host-sg', 'a'),
    fc.constantFrom('sg', '__Host-sg', 'a').chain((name) => fc.array(fc.tuple(jarKey(name), fc.option(fc.string({ maxLength: 6 }), { nil: undefined })), { maxLength: 8 })),
    (name, entries) => {
      // A prototype-less jar, like the cookie parser's; defineProperty keeps `__proto__` an own key.
      const jar = Object.create(null) as Record<string, string | undefined>
      for (const [k, v] of entries) Object.defineProperty(jar, k, { value: v, enumerable: true, writable: true, configurable: true })
      const o = outcome(() => joinCookie(jar, name))
      assert.ok(!o.threw, `joinCookie threw ${o.threw ? String(o.err) : ''}`)
      assert.equal(o.value, modelJoin(jar, name))
    }))

  // Sessions A, B, C sealed and split into chunks; the browser sends any mix of their chunks (missing,
  // duplicated, reordered, extra, foreign), as a real Cookie header read by the gateway's parser.
  await property(t, FILE, 'chunks.mixed-sessions', fc.property(
    fc.array(fc.string({ maxLength: 300 }), { minLength: 3, maxLength: 3 }),
    fc.integer({ min: 2, max: MAX_COOKIE_CHUNKS }),
    fc.array(fc.tuple(fc.nat(), fc.nat(), fc.constantFrom('=', ' = ', '=%20')), { maxLength: 10 }),
    jarKind,
    (pads, chunks, picks, kind) => {
      const jar = jarOf(kind)
      const name = jar.names.session
      const sessions = pads.map((pad, i) => ({ sid: `s${i}`, pad }))
      const sealed = sessions.map((s) => seal(ring, 'session', s))
      // A budget that splits each value into about `chunks` cookies.
      const split = sealed.map((v) => {
        const room = Math.ceil(v.length / chunks) + 1
        return splitCookie(name, v, Math.min(4096, name.length + 2 + room))
      })
      const pool: Array<[string, string]> = [
        ...split.flatMap((parts) => parts.map((p) => [p.name, p.value] as [string, string])),
        ...sealed.map((v) => [name, v] as [string, string]),
        [`${name}.3`, 'AAAA'], [`${name}.1`, ''], [name, ''], [`${name}.0`, 'v1.'], ['other', 'x']
      ]
      const pairs = picks.map(([i, , sep]) => { const [k, v] = pool[i % pool.length]!; return `${k}${sep}${v}` })
      const header = pairs.join('; ')
      const joined = joinCookie(parseCookie(header), name)
      if (joined === undefined) return
      const o = outcome(() => unseal(ring, 'session', joined))
      if (o.threw) {
        assert.ok(o.err instanceof SealError, `unseal threw ${String(o.err)}`)
        return
      }
      assert.ok(sessions.some((s) => JSON.stringify(s) === JSON.stringify(o.value)), `opened to a session nobody sealed: ${JSON.stringify(o.value)}`)
    }))

  await property(t, FILE, 'chunks.complete-set-opens', fc.property(
    fc.string({ maxLength: 6000 }), jarKind, fc.infiniteStream(fc.nat()),
    (pad, kind, order) => {
      const jar = jarOf(kind)
      const session = { sid: 's', pad }
      const parts = splitCookie(jar.names.session, seal(ring, 'session', session))
      // Shuffle with the generated stream; other cookies around them.
      const shuffled = [...parts, { name: 'other', value: 'x' }, { name: 'sgx', value: 'y' }]
      const it = order[Symbol.iterator]()
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = it.next().value! % (i + 1)
        ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
      }
      const header = shuffled.map((p) => `${p.name}=${p.value}`).join('; ')
      assert.deepEqual(unseal(ring, 'session', joinCookie(parseCookie(header), jar.names.session)!), session)
    }), 0.3)
})

t.test('the gateway\'s cookies never go upstream', async (t) => {
  // Pieces of a Cookie header around the gateway's own names.
  const own = ['sg', 'sg.0', 'sg.1', 'sg.2', 'sg.9', 'sg.01', 'sg-device', 'sg-tx', '__Host-sg', '__Host-sg.0', '__Host-sg.1',
    '__Host-sg-device', '__Host-sg-tx', '__Secure-sg', '__Secure-sg.0', '__Secure-sg.2', '__Secure-sg-device', '__Secure-sg-tx',
    '__host-sg', '__secure-sg']
  const spaces = fc.constantFrom('', '', ' ', '  ', '\t', ' \t')
  const cookieName = fc.oneof(fc.constantFrom(...own, 'other', 'sgx', 'sg.x', 'SG', 'sg.', '__Host-', 'a'), fc.string({ maxLength: 6 }))
  const cookieValue = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('', 'x', 'a=b', '"q"', '%3B', '%20'))
  const piece = fc.oneof(
    fc.tuple(spaces, cookieName, spaces, cookieValue, spaces).map(([a, n, b, v, c]) => `${a}${n}${b}=${v}${c}`),
    fc.tuple(spaces, cookieName).map(([a, n]) => `${a}${n}`),
    fc.constantFrom('', ' ', '=', '=x')
  )
  const header = fc.array(piece, { maxLength: 8 }).map((p) => p.join(';'))

  await property(t, FILE, 'cookies.strip-own', fc.property(
    fc.oneof(header, fc.array(header, { minLength: 1, maxLength: 3 })), jarKind,
    (h, kind) => {
      const jar = jarOf(kind)
      const stripped = jar.stripOwn(h)
      const original = parseCookie(Array.isArray(h) ? h.join('; ') : h)
      const upstream = stripped === undefined ? {} : parseCookie(stripped)
      for (const k of Object.keys(upstream)) assert.ok(!jar.isOwn(k), `the gateway cookie ${JSON.stringify(k)} reached the upstream`)
      assert.equal(joinCookie(upstream, jar.names.session), undefined, 'no session (or chunks) upstream')
      // Nothing else is lost: the upstream reads every other cookie the browser sent, with its value
      // (but a nameless `=v` pair, which no application can read by name).
      const others = Object.fromEntries(Object.entries(original).filter(([k]) => k !== '' && !jar.isOwn(k)))
      delete upstream['']
      assert.deepEqual({ ...upstream }, others)
    }))
})
