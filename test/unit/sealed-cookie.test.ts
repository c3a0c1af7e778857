import t from 'tap'
import { createCipheriv, createHmac, randomBytes } from 'node:crypto'
import { deflateRawSync } from 'node:zlib'
import {
  KeyRing, MAX_COOKIE_BYTES, MAX_COOKIE_CHUNKS, MAX_SEALED_LENGTH, SealError, joinCookie, mac, seal, splitCookie, staleChunkNames, unseal,
  verifyMac
} from '../../src/core/sealed-cookie.js'
import type { SealErrorCode } from '../../src/core/sealed-cookie.js'

const key = (): Uint8Array => new Uint8Array(randomBytes(32))
const payload = { sub: 'alice', groups: ['a', 'b'], n: 1, nested: { ok: true }, s: 'é ✓' }

type Asserts = Pick<typeof t, 'throws'>

function throwsCode (t: Asserts, fn: () => unknown, code: SealErrorCode, msg: string): void {
  t.throws(fn, { name: 'SealError', code }, msg)
}

// A base64url character different from `c` that keeps the part canonical when it is the last character.
const flip = (c: string): string => (c === 'A' ? 'B' : 'A')

t.test('round trip', async (t) => {
  const ring = new KeyRing([key()])
  const sealed = seal(ring, 'session', payload)
  t.match(sealed, /^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/)
  t.equal(sealed.split('.')[1], ring.currentKid)
  t.same(unseal(ring, 'session', sealed), payload)
  t.equal(unseal(ring, 'session', seal(ring, 'session', null)), null)
  t.equal(unseal(ring, 'session', seal(ring, 'session', 0)), 0)
  t.not(seal(ring, 'session', payload), sealed, 'a fresh IV every time')
  t.notMatch(sealed, /alice/, 'the payload is not readable')
})

t.test('seal refuses what it cannot seal', async (t) => {
  const ring = new KeyRing([key()])
  t.throws(() => seal(ring, 'session', undefined), TypeError)
  t.throws(() => seal(ring, 'session', () => 1), TypeError)
  t.throws(() => seal(ring, 'session', 1n), TypeError)
  t.throws(() => seal(ring, '', {}), TypeError, 'empty purpose')
  t.throws(() => seal(ring, 'a.b', {}), TypeError, 'purpose outside the charset')
  t.throws(() => seal(ring, 'session', randomBytes(MAX_SEALED_LENGTH).toString('hex')), RangeError, 'would exceed what unseal accepts')
})

t.test('tampering with any part fails authentication', async (t) => {
  const ring = new KeyRing([key()])
  const sealed = seal(ring, 'session', payload)
  const parts = sealed.split('.')
  // iv, ciphertext, tag: change the first character (always canonical) and check each one.
  for (const i of [2, 3, 4]) {
    const p = parts[i] as string
    const changed = [...parts]
    changed[i] = flip(p[0] as string) + p.slice(1)
    throwsCode(t, () => unseal(ring, 'session', changed.join('.')), 'SG_SEAL_INVALID', `part ${i} tampered`)
  }
  // Swap ciphertext and tag of two values sealed with the same key.
  const other = seal(ring, 'session', payload).split('.')
  throwsCode(t, () => unseal(ring, 'session', [...parts.slice(0, 4), other[4]].join('.')), 'SG_SEAL_INVALID', 'foreign tag')
  throwsCode(t, () => unseal(ring, 'session', [...parts.slice(0, 2), other[2], ...parts.slice(3)].join('.')), 'SG_SEAL_INVALID', 'foreign iv')
})

t.test('truncation', async (t) => {
  const ring = new KeyRing([key()])
  const sealed = seal(ring, 'session', payload)
  const [v, kid, iv, ct, tag] = sealed.split('.') as [string, string, string, string, string]
  // Cutting whole bytes off the ciphertext stays well-formed base64url and must fail authentication.
  throwsCode(t, () => unseal(ring, 'session', [v, kid, iv, ct.slice(0, 8), tag].join('.')), 'SG_SEAL_INVALID', 'short ciphertext')
  throwsCode(t, () => unseal(ring, 'session', [v, kid, iv, ct, tag.slice(0, 21)].join('.')), 'SG_SEAL_MALFORMED', 'short tag')
  throwsCode(t, () => unseal(ring, 'session', [v, kid, iv, ct].join('.')), 'SG_SEAL_MALFORMED', 'tag removed')
  for (const n of [0, 1, 10, 30, sealed.length - 1]) {
    t.throws(() => unseal(ring, 'session', sealed.slice(0, n)), SealError, `cut at ${n}`)
  }
})

t.test('wrong key, unknown kid, wrong purpose', async (t) => {
  const a = key()
  const ring = new KeyRing([a])
  const sealed = seal(ring, 'session', payload)
  throwsCode(t, () => unseal(new KeyRing([key()]), 'session', sealed), 'SG_SEAL_UNKNOWN_KEY', 'another ring')
  const parts = sealed.split('.')
  parts[1] = 'AAAAAAAA'
  throwsCode(t, () => unseal(ring, 'session', parts.join('.')), 'SG_SEAL_UNKNOWN_KEY', 'kid not in the ring')
  throwsCode(t, () => unseal(ring, 'login-tx', sealed), 'SG_SEAL_INVALID', 'sealed for another purpose')
  throwsCode(t, () => unseal(ring, 'sessio', sealed), 'SG_SEAL_INVALID', 'purpose prefix')
  // The kid is bound too: relabelling a value with another key's kid fails even when both keys are known.
  const both = new KeyRing([a, key()])
  const relabelled = sealed.split('.')
  relabelled[1] = both.kids[1] as string
  throwsCode(t, () => unseal(both, 'session', relabelled.join('.')), 'SG_SEAL_INVALID', 'kid swapped')
})

t.test('rotation', async (t) => {
  const oldKey = key()
  const before = new KeyRing([oldKey])
  const old = seal(before, 'session', payload)
  const after = new KeyRing([key(), oldKey])
  t.same(unseal(after, 'session', old), payload, 'old value opens after a new key is prepended')
  t.not(after.currentKid, before.currentKid)
  t.same(after.kids, [after.currentKid, before.currentKid])
  const fresh = seal(after, 'session', payload)
  t.equal(fresh.split('.')[1], after.currentKid, 'new values use the new key')
  throwsCode(t, () => unseal(before, 'session', fresh), 'SG_SEAL_UNKNOWN_KEY', 'old ring cannot open new values')
  const retired = new KeyRing([key()])
  throwsCode(t, () => unseal(retired, 'session', old), 'SG_SEAL_UNKNOWN_KEY', 'retired key')
})

t.test('malformed input shapes', async (t) => {
  const ring = new KeyRing([key()])
  const good = seal(ring, 'session', payload)
  const [v, kid, iv, ct, tag] = good.split('.') as [string, string, string, string, string]
  const bad: Array<[string, unknown]> = [
    ['empty', ''],
    ['garbage', 'hello'],
    ['too many parts', `${good}.x`],
    ['too few parts', `${v}.${kid}.${iv}.${ct}`],
    ['other version', ['v2', kid, iv, ct, tag].join('.')],
    ['short kid', [v, kid.slice(1), iv, ct, tag].join('.')],
    ['kid charset', [v, '********', iv, ct, tag].join('.')],
    ['iv charset', [v, kid, `${iv.slice(0, 15)}=`, ct, tag].join('.')],
    ['iv too long', [v, kid, `${iv}AAAA`, ct, tag].join('.')],
    ['empty ciphertext', [v, kid, iv, '', tag].join('.')],
    ['standard base64', [v, kid, iv, `${ct}+/`, tag].join('.')],
    ['padding', [v, kid, iv, ct, `${tag}==`].join('.')],
    ['non-canonical tail bits', [v, kid, iv, ct, tag.slice(0, 21) + (tag.endsWith('B') ? 'C' : 'B')].join('.')],
    ['whitespace', ` ${good}`],
    ['over the length bound', 'v1.' + 'A'.repeat(MAX_SEALED_LENGTH)],
    ['not a string', 42],
    ['null', null]
  ]
  for (const [name, input] of bad) {
    throwsCode(t, () => unseal(ring, 'session', input as string), 'SG_SEAL_MALFORMED', name)
  }
  t.throws(() => unseal(ring, 'not ok', good), TypeError, 'bad purpose is a programming error')
})

t.test('authentic but not JSON is invalid', async (t) => {
  // Only someone holding our key could make this; unseal must still not return it.
  const k = key()
  const ring = new KeyRing([k])
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', k, iv)
  cipher.setAAD(Buffer.from(`v1.${ring.currentKid}.session`))
  const ct = Buffer.concat([cipher.update('{not json', 'utf8'), cipher.final()])
  const sealed = ['v1', ring.currentKid, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
  throwsCode(t, () => unseal(ring, 'session', sealed), 'SG_SEAL_INVALID', 'not JSON')
})

/** Seals `plaintext` as the gateway would, bytes as given: a foreign sealer holding our key. */
function sealRaw (k: Uint8Array, ring: KeyRing, plaintext: Buffer): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', k, iv)
  cipher.setAAD(Buffer.from(`v1.${ring.currentKid}.session`))
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return ['v1', ring.currentKid, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
}

t.test('large payloads are deflated before sealing when asked; small ones are not', async (t) => {
  const k = key()
  const ring = new KeyRing([k])
  const groups = { groups: Array.from({ length: 400 }, (_, i) => `CN=group-${i},OU=Groups,DC=corp,DC=example,DC=com`) }
  const json = JSON.stringify(groups)
  const sealed = seal(ring, 'session', groups, { deflate: true })
  t.ok(sealed.length < json.length / 4, `${json.length} bytes of JSON sealed in ${sealed.length} characters`)
  const plain = seal(ring, 'session', groups)
  t.equal(Buffer.from(plain.split('.')[3]!, 'base64url').length, json.length, 'not deflated unless asked')
  t.same(unseal(ring, 'session', plain), groups)
  t.same(unseal(ring, 'session', sealed), groups, 'and opened whole')
  const small = seal(ring, 'session', payload, { deflate: true })
  const ctLength = Buffer.from(small.split('.')[3]!, 'base64url').length
  t.equal(ctLength, Buffer.byteLength(JSON.stringify(payload)), 'a small payload is sealed as its JSON')
  const uncompressible = { ids: Array.from({ length: 100 }, () => randomBytes(24).toString('hex')) }
  t.same(unseal(ring, 'session', seal(ring, 'session', uncompressible, { deflate: true })), uncompressible, 'a payload deflate would not shrink round-trips too')
  t.same(unseal(ring, 'session', sealRaw(k, ring, Buffer.from(json))), groups, 'a large value sealed undeflated (an earlier release) still opens')
})

t.test('a deflated plaintext that is broken or inflates too far is refused', async (t) => {
  const k = key()
  const ring = new KeyRing([k])
  const marked = (b: Buffer): Buffer => Buffer.concat([Buffer.of(1), b])
  throwsCode(t, () => unseal(ring, 'session', sealRaw(k, ring, marked(Buffer.from('not deflate at all')))), 'SG_SEAL_INVALID', 'not DEFLATE')
  throwsCode(t, () => unseal(ring, 'session', sealRaw(k, ring, marked(deflateRawSync(Buffer.from('{not json'))))), 'SG_SEAL_INVALID', 'deflated, not JSON')
  const bomb = deflateRawSync(Buffer.from(`"${'a'.repeat(2 * 1024 * 1024)}"`))
  t.ok(bomb.length < 8192, `a ${bomb.length}-byte bomb`)
  throwsCode(t, () => unseal(ring, 'session', sealRaw(k, ring, marked(bomb))), 'SG_SEAL_INVALID', 'inflating past the plaintext limit')
})

t.test('errors carry stable codes and no input', async (t) => {
  const ring = new KeyRing([key()])
  const sealed = seal(ring, 'session', { secret: 'hunter2' })
  try {
    unseal(ring, 'other', sealed)
    t.fail('should throw')
  } catch (err) {
    t.ok(err instanceof SealError)
    const e = err as SealError
    t.equal(e.name, 'SealError')
    t.equal(e.code, 'SG_SEAL_INVALID')
    t.notMatch(e.message, sealed.split('.')[3] as string)
    t.notMatch(e.message, /hunter2/)
  }
})

t.test('key validation', async (t) => {
  t.throws(() => new KeyRing([]), TypeError, 'no keys')
  t.throws(() => new KeyRing([new Uint8Array(31)]), TypeError, '31 bytes')
  t.throws(() => new KeyRing([new Uint8Array(33)]), TypeError, '33 bytes')
  t.throws(() => new KeyRing([key(), new Uint8Array(16)]), TypeError, 'any bad key')
  t.throws(() => new KeyRing(['x'.repeat(32) as unknown as Uint8Array]), TypeError, 'a string is not a key')
  t.doesNotThrow(() => new KeyRing([Buffer.alloc(32, 1)]), 'a Buffer is a Uint8Array')
  const k = key()
  const ring = new KeyRing([k, k])
  t.same(ring.kids, [ring.currentKid], 'duplicate keys collapse')
  const sealed = seal(ring, 'session', payload)
  k.fill(0)
  t.same(unseal(ring, 'session', sealed), payload, 'the ring copied the key')
  t.notMatch(JSON.stringify(ring), /[A-Za-z0-9_-]{40}/, 'key material is not serialised')
})

t.test('chunking round trip above 4 KB, with a __Host- name', async (t) => {
  const ring = new KeyRing([key()])
  // Random group ids: what compression cannot shrink below one cookie.
  const big = { profile: { groups: Array.from({ length: 150 }, () => randomBytes(21).toString('base64url')) } }
  const sealed = seal(ring, 'session', big, { deflate: true })
  t.ok(sealed.length > 4096, `sealed value is ${sealed.length} chars`)
  const parts = splitCookie('__Host-sg', sealed)
  t.ok(parts.length > 1 && parts.length <= MAX_COOKIE_CHUNKS)
  t.same(parts.map((p) => p.name), parts.map((_, i) => `__Host-sg.${i}`))
  for (const p of parts) t.ok(p.name.length + p.value.length <= 3800, `${p.name} fits the budget`)
  const jar = Object.fromEntries([...parts.map((p) => [p.name, p.value]), ['__Host-sg-device', 'other'], ['app', 'x']])
  const joined = joinCookie(jar, '__Host-sg')
  t.equal(joined, sealed)
  t.same(unseal(ring, 'session', joined as string), big)
})

t.test('small values stay whole', async (t) => {
  t.same(splitCookie('sg', 'abc'), [{ name: 'sg', value: 'abc' }])
  t.same(splitCookie('sg', 'x'.repeat(3798)), [{ name: 'sg', value: 'x'.repeat(3798) }], 'exactly the budget')
  t.equal(splitCookie('sg', 'x'.repeat(3799)).length, 2, 'one over the budget')
  t.equal(joinCookie({ sg: 'abc' }, 'sg'), 'abc')
  t.equal(joinCookie({ sg: 'abc', 'sg.0': 'x' }, 'sg'), 'abc', 'the plain cookie wins over leftovers')
  t.equal(joinCookie({}, 'sg'), undefined)
  t.equal(joinCookie({ sg: '' }, 'sg'), undefined, 'empty plain cookie')
  t.equal(joinCookie({ 'sg-device': 'x', sgx: 'y', 'sg.a': 'z', 'sg.01': 'w' }, 'sg'), undefined, 'lookalike names are not chunks')
})

t.test('chunk sets that must be rejected', async (t) => {
  t.equal(joinCookie({ 'sg.0': 'a', 'sg.1': 'b', 'sg.2': 'c' }, 'sg'), 'abc')
  t.equal(joinCookie({ 'sg.2': 'c', 'sg.0': 'a', 'sg.1': 'b' }, 'sg'), 'abc', 'order of the header does not matter')
  t.equal(joinCookie({ 'sg.0': 'a', 'sg.2': 'c' }, 'sg'), undefined, 'missing middle chunk')
  t.equal(joinCookie({ 'sg.1': 'b' }, 'sg'), undefined, 'missing first chunk')
  t.equal(joinCookie({ 'sg.0': 'a', 'sg.1': '' }, 'sg'), undefined, 'empty chunk')
  t.equal(joinCookie({ 'sg.0': 'a', 'sg.1': undefined }, 'sg'), undefined, 'undefined chunk')
  const over = Object.fromEntries(Array.from({ length: MAX_COOKIE_CHUNKS + 1 }, (_, i) => [`sg.${i}`, 'x']))
  t.equal(joinCookie(over, 'sg'), undefined, 'more chunks than the cap')
  t.equal(joinCookie({ 'sg.0': 'a', 'sg.99999999999999999999': 'b' }, 'sg'), undefined, 'huge index')
  const proto = JSON.parse('{"__proto__": "x"}') as Record<string, string>
  t.equal(joinCookie(proto, 'constructor'), undefined, 'inherited properties are not cookies')
})

t.test('chunk cap and argument checks on split', async (t) => {
  // The Cookie header budget: names and values of all chunks within MAX_COOKIE_BYTES.
  const fits = MAX_COOKIE_BYTES - 2 * ('sg'.length + 2)
  t.equal(splitCookie('sg', 'x'.repeat(fits)).length, 2, 'exactly at the byte budget: two chunks')
  throwsCode(t, () => splitCookie('sg', 'x'.repeat(fits + 1)), 'SG_COOKIE_TOO_LARGE', 'one byte over the budget')
  t.ok(MAX_COOKIE_BYTES <= 8192 - 1024, 'well under the 8 KB header line of the proxies in front')
  // The chunk cap, reached with small chunks.
  t.equal(splitCookie('sg', 'x'.repeat(100 * MAX_COOKIE_CHUNKS), 104).length, MAX_COOKIE_CHUNKS, 'exactly at the chunk cap')
  throwsCode(t, () => splitCookie('sg', 'x'.repeat(100 * MAX_COOKIE_CHUNKS + 1), 104), 'SG_COOKIE_TOO_LARGE', 'over the chunk cap')
  t.same(splitCookie('sg', 'abcdefgh', 8), [{ name: 'sg.0', value: 'abcd' }, { name: 'sg.1', value: 'efgh' }], 'even chunks')
  t.throws(() => splitCookie('bad name', 'x'), TypeError)
  t.throws(() => splitCookie('sg', 'a;b'), TypeError, 'separator in value')
  t.throws(() => splitCookie('sg', 'a b'), TypeError, 'space in value')
  t.throws(() => splitCookie('sg', 'x', 4), RangeError, 'no room for a chunk')
  t.throws(() => splitCookie('sg', 'x', 5000), RangeError, 'over the browser limit')
  t.throws(() => splitCookie('sg', 'x', 100.5), RangeError, 'not an integer')
})

t.test('staleChunkNames', async (t) => {
  const jar = { sg: 'p', 'sg.0': 'a', 'sg.1': 'b', 'sg.2': 'c', 'sg-device': 'd', other: 'o', 'sg.x': 'n' }
  t.same(staleChunkNames(jar, 'sg', ['sg']).sort(), ['sg.0', 'sg.1', 'sg.2'], 'now plain: clear all chunks')
  t.same(staleChunkNames(jar, 'sg', ['sg.0', 'sg.1']).sort(), ['sg', 'sg.2'], 'fewer chunks: clear plain and the tail')
  t.same(staleChunkNames(jar, 'sg', ['sg', 'sg.0', 'sg.1', 'sg.2']), [], 'nothing stale')
  t.same(staleChunkNames(jar, 'sg', []).sort(), ['sg', 'sg.0', 'sg.1', 'sg.2'], 'logout: clear everything')
  t.same(staleChunkNames({ '__Host-sg.5': 'x', '__Host-sg-device': 'y' }, '__Host-sg', []), ['__Host-sg.5'], 'chunks beyond the cap too')
  t.same(staleChunkNames({ 'sg.0': undefined }, 'sg', []), [], 'absent values are not cookies')
})

t.test('verifyMac: a (truncated) mac under any key of the ring; a rotated-out key, another label or data fail', async (t) => {
  const [k1, k2, k3] = [key(), key(), key()]
  const trunc = (m: string, n = 16): string => Buffer.from(m, 'base64url').subarray(0, n).toString('base64url')
  const old = new KeyRing([k1])
  const rotated = new KeyRing([k2, k1])
  const retired = new KeyRing([k3, k2])
  const tagOld = trunc(mac(old, 'device-gen', 'sid.0.h'))
  const tagNew = trunc(mac(rotated, 'device-gen', 'sid.0.h'))
  t.equal(mac(rotated, 'device-gen', 'sid.0.h'), createHmac('sha256', Buffer.from(k2)).update('device-gen:sid.0.h').digest('base64url'), 'mac: the current key')
  t.equal(mac(rotated, 'device-gen', 'sid.0.h', 16), tagNew, 'mac truncated to 16 bytes: the first 16 of the whole')
  t.throws(() => mac(rotated, 'device-gen', 'sid.0.h', 15), RangeError, 'never under 16 bytes')
  t.throws(() => mac(rotated, 'device-gen', 'sid.0.h', 33), RangeError, 'never over the HMAC')
  t.ok(verifyMac(rotated, 'device-gen', 'sid.0.h', tagNew), 'made with the current key')
  t.ok(verifyMac(rotated, 'device-gen', 'sid.0.h', tagOld), 'made with an older key still in the ring')
  t.ok(verifyMac(old, 'device-gen', 'sid.0.h', tagOld))
  t.notOk(verifyMac(old, 'device-gen', 'sid.0.h', tagNew), 'a key the ring does not hold')
  t.notOk(verifyMac(retired, 'device-gen', 'sid.0.h', tagOld), 'a key rotated out of the ring')
  t.ok(verifyMac(retired, 'device-gen', 'sid.0.h', tagNew))
  t.ok(verifyMac(rotated, 'device-gen', 'sid.0.h', mac(rotated, 'device-gen', 'sid.0.h')), 'the whole 32 bytes')
  t.notOk(verifyMac(rotated, 'devices-csrf', 'sid.0.h', tagNew), 'bound to its label')
  t.notOk(verifyMac(rotated, 'device-gen', 'sid.1.h', tagNew), 'bound to its data')
  t.notOk(verifyMac(rotated, 'device-gen', 'sid.0.h', trunc(mac(rotated, 'device-gen', 'sid.0.h'), 15)), 'under 16 bytes: refused')
  const flipped = Buffer.from(tagNew, 'base64url')
  flipped[15] = (flipped[15] ?? 0) ^ 1
  t.notOk(verifyMac(rotated, 'device-gen', 'sid.0.h', flipped.toString('base64url')), 'one bit off')
  for (const bad of ['', `${tagNew}=`, `${tagNew.slice(0, 21)}+`, ` ${tagNew}`, tagNew.slice(0, 21) + (tagNew[21] === 'B' ? 'C' : 'B')]) {
    t.notOk(verifyMac(rotated, 'device-gen', 'sid.0.h', bad), `malformed ${JSON.stringify(bad)}`)
  }
  t.throws(() => verifyMac(rotated, 'bad label!', 'x', tagNew), TypeError, 'labels as purposes')
})
