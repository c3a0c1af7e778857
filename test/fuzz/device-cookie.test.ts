/**
 * Property-based fuzzing of the device cookie (src/core/device.ts): any value parses to null or to parts
 * that format back to exactly that value (one device, one spelling: no alias can reach a record or a
 * generation another way), and every cookie the gateway writes parses back to what it wrote.
 */
import t from 'tap'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { formatDeviceCookie, newCredential, newSessionId, parseDeviceCookie } from '../../src/core/device.js'
import { property } from '../helpers/fuzz.js'

const FILE = 'test/fuzz/device-cookie.test.ts'

const sid = fc.constant(null).map(() => newSessionId())
const credential = fc.constant(null).map(() => newCredential())
const sub = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }), fc.uuid())
const gen = fc.record({ generation: fc.oneof(fc.nat({ max: 10 }), fc.maxSafeNat().map((n) => n % 1e15)), tag: fc.constant(null).map(() => randomBytes(16).toString('base64url')) })

/** A written cookie, then edits attackers try: characters swapped, cut, inserted, parts duplicated. */
const written = fc.tuple(sid, credential, fc.option(sub, { nil: undefined }), fc.option(gen, { nil: undefined }))
  .map(([s, c, u, g]) => formatDeviceCookie(s, c, u, u === undefined ? undefined : g))
const ALPHABET = ['.', '-', '_', '=', '+', '/', '0', '00', '1', 'A', 'a', ' ', '%2E', '\u0000', 'é', '\uFFFD', '..']
const edited = written.chain((w) => fc.oneof(
  fc.constant(w),
  fc.tuple(fc.nat({ max: w.length }), fc.constantFrom(...ALPHABET)).map(([i, x]) => w.slice(0, i) + x + w.slice(i)),
  fc.tuple(fc.nat({ max: w.length }), fc.nat({ max: 4 })).map(([i, n]) => w.slice(0, i) + w.slice(i + n)),
  fc.nat({ max: w.length }).map((i) => w.slice(0, i)),
  fc.constant(`${w}.${w.split('.').at(-1)!}`),
  fc.constant(w.replace(/\.(\d+)\./, '.0$1.'))
))

t.test('device cookie', async (t) => {
  await property(t, FILE, 'device.parse-canonical', fc.property(
    fc.oneof(edited, fc.string({ maxLength: 400 })),
    (value) => {
      const p = parseDeviceCookie(value)
      if (p === null) return
      const again = formatDeviceCookie(p.sid, p.credential, p.sub, p.generation !== undefined && p.tag !== undefined ? { generation: p.generation, tag: p.tag } : undefined)
      assert.equal(again, value, 'a value that parses is the one spelling of its parts')
    }), 3)

  await property(t, FILE, 'device.round-trip', fc.property(
    sid, credential, sub, gen,
    (s, c, u, g) => {
      const value = formatDeviceCookie(s, c, u, g)
      const p = parseDeviceCookie(value)
      if (Buffer.byteLength(u, 'utf8') > 255 || Buffer.from(u, 'utf8').toString('utf8') !== u) {
        // A sub that cannot be carried (too long, not well-formed UTF-8): the previous 2-part form.
        assert.deepEqual(p, { sid: s, credential: c })
        return
      }
      assert.deepEqual(p, { sid: s, credential: c, sub: u, generation: g.generation, tag: g.tag })
    }), 3)
})
