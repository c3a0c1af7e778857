import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import {
  MAX_GENERATION, deviceTagData, formatDeviceCookie, hashCredential, isCredential, isDeviceTag, isGeneration, isSessionId, newCredential, newSessionId,
  parseDeviceCookie, safeEqual
} from '../../src/core/device.js'

t.test('new credentials and session ids', async (t) => {
  const c = newCredential()
  t.match(c, /^[A-Za-z0-9_-]{43}$/)
  t.equal(Buffer.from(c, 'base64url').length, 32)
  const sid = newSessionId()
  t.match(sid, /^[A-Za-z0-9_-]{22}$/)
  t.equal(Buffer.from(sid, 'base64url').length, 16)
  t.ok(isCredential(c) && isSessionId(sid))
  const many = new Set(Array.from({ length: 1000 }, () => newCredential()))
  t.equal(many.size, 1000, 'no repeats')
})

t.test('hashCredential', async (t) => {
  const c = newCredential()
  t.equal(hashCredential(c), createHash('sha256').update(c).digest('base64url'))
  t.match(hashCredential(c), /^[A-Za-z0-9_-]{43}$/)
  t.not(hashCredential(c), c)
  t.equal(hashCredential(c), hashCredential(c), 'deterministic')
  t.not(hashCredential(c), hashCredential(newCredential()))
})

t.test('safeEqual', async (t) => {
  const h = hashCredential(newCredential())
  t.ok(safeEqual(h, h))
  t.ok(safeEqual(h, `${h}`))
  t.notOk(safeEqual(h, hashCredential(newCredential())))
  t.notOk(safeEqual(h, h.slice(0, -1)), 'prefix')
  t.notOk(safeEqual(h, `${h}x`), 'longer')
  t.notOk(safeEqual('', h))
  t.ok(safeEqual('', ''))
  t.ok(safeEqual('é', 'é'))
  t.notOk(safeEqual('é', 'e\u0301'), 'byte comparison, no normalisation')
})

t.test('device cookie round trip', async (t) => {
  const sid = newSessionId()
  const credential = newCredential()
  const value = formatDeviceCookie(sid, credential)
  t.equal(value, `${sid}.${credential}`)
  t.same(parseDeviceCookie(value), { sid, credential })
})

t.test('formatDeviceCookie refuses malformed parts', async (t) => {
  const sid = newSessionId()
  const credential = newCredential()
  t.throws(() => formatDeviceCookie(credential, credential), TypeError, 'credential as sid')
  t.throws(() => formatDeviceCookie(sid, sid), TypeError, 'sid as credential')
  t.throws(() => formatDeviceCookie(`${sid.slice(0, 21)}.`, credential), TypeError, 'dot in sid')
})

t.test('parseDeviceCookie is strict', async (t) => {
  const sid = newSessionId()
  const credential = newCredential()
  // Last characters that leave trailing bits set: valid charset, not canonical.
  const nonCanonicalSid = sid.slice(0, 21) + 'B'
  const nonCanonicalCred = credential.slice(0, 42) + 'B'
  const bad: Array<[string, string | undefined]> = [
    ['undefined', undefined],
    ['empty', ''],
    ['sid only', sid],
    ['no separator', sid + credential],
    ['other separator', `${sid}:${credential}`],
    ['two dots', `${sid}..${credential.slice(1)}`],
    ['swapped', `${credential}.${sid}`],
    ['short credential', `${sid}.${credential.slice(1)}`],
    ['long credential', `${sid}.${credential}A`],
    ['short sid', `${sid.slice(1)}.${credential}A`],
    ['standard base64', `${sid.slice(0, 20)}+/.${credential}`],
    ['padding', `${sid.slice(0, 20)}==.${credential}`],
    ['non-canonical sid', `${nonCanonicalSid}.${credential}`],
    ['non-canonical credential', `${sid}.${nonCanonicalCred}`],
    ['whitespace', ` ${sid}.${credential.slice(1)}`],
    ['quoted', `"${sid}.${credential.slice(2)}"`]
  ]
  for (const [name, value] of bad) t.equal(parseDeviceCookie(value), null, name)
})

t.test('the device cookie carries the user (base64url), and the previous two-part format still parses', async (t) => {
  const sid = newSessionId()
  const credential = newCredential()
  for (const sub of ['alice', 'user|42', 'ünïcødé', 'x'.repeat(255), '{brace}.dot']) {
    const value = formatDeviceCookie(sid, credential, sub)
    t.equal(value, `${sid}.${credential}.${Buffer.from(sub).toString('base64url')}`, `format for ${sub.slice(0, 12)}`)
    t.same(parseDeviceCookie(value), { sid, credential, sub }, `round trip for ${sub.slice(0, 12)}`)
  }
  t.strictSame(parseDeviceCookie(`${sid}.${credential}`), { sid, credential }, 'old cookie: no sub, the caller looks the owner up')
  t.equal(formatDeviceCookie(sid, credential, 'x'.repeat(256)), `${sid}.${credential}`, 'a sub too long to carry falls back to the old format')
  t.equal(formatDeviceCookie(sid, credential, ''), `${sid}.${credential}`, 'so does an empty one')
  const tag = Buffer.from('alice').toString('base64url')
  const bad: Array<[string, string]> = [
    ['empty sub', `${sid}.${credential}.`],
    ['other separator', `${sid}.${credential}:${tag}`],
    ['extra part', `${sid}.${credential}.${tag}.x`],
    ['padding', `${sid}.${credential}.${tag}=`],
    ['standard base64', `${sid}.${credential}.a+/b`],
    ['non-canonical', `${sid}.${credential}.YWxpY2F`],
    ['invalid UTF-8', `${sid}.${credential}.${Buffer.from([0xff, 0xfe]).toString('base64url')}`],
    ['too long', `${sid}.${credential}.${Buffer.from('x'.repeat(256)).toString('base64url')}`]
  ]
  for (const [name, value] of bad) t.equal(parseDeviceCookie(value), null, name)
})

t.test('isSessionId and isCredential reject non-strings', async (t) => {
  t.notOk(isSessionId(undefined))
  t.notOk(isSessionId(42))
  t.notOk(isCredential(null))
  t.notOk(isCredential(newSessionId()))
})

t.test('the device cookie carries the generation and its tag; every new part is strict', async (t) => {
  const sid = newSessionId()
  const credential = newCredential()
  const user = Buffer.from('alice').toString('base64url')
  const tag = randomBytes(16).toString('base64url')
  for (const generation of [0, 1, 42, MAX_GENERATION]) {
    const value = formatDeviceCookie(sid, credential, 'alice', { generation, tag })
    t.equal(value, `${sid}.${credential}.${user}.${generation}.${tag}`, `format at ${generation}`)
    t.strictSame(parseDeviceCookie(value), { sid, credential, sub: 'alice', generation, tag }, `round trip at ${generation}`)
  }
  t.strictSame(parseDeviceCookie(`${sid}.${credential}.${user}`), { sid, credential, sub: 'alice' }, 'the three-part cookie: no generation')
  t.equal(formatDeviceCookie(sid, credential, undefined, { generation: 3, tag }), `${sid}.${credential}`, 'no user part: no generation either')
  t.equal(formatDeviceCookie(sid, credential, 'x'.repeat(256), { generation: 3, tag }), `${sid}.${credential}`, 'nor with a sub too long to carry')
  const long = formatDeviceCookie(sid, credential, 'x'.repeat(255), { generation: MAX_GENERATION, tag })
  t.equal(parseDeviceCookie(long)?.generation, MAX_GENERATION, 'the longest cookie parses')
  for (const generation of [-1, 1.5, MAX_GENERATION + 1, Number.NaN]) {
    t.throws(() => formatDeviceCookie(sid, credential, 'alice', { generation, tag }), TypeError, `generation ${generation} refused`)
  }
  t.throws(() => formatDeviceCookie(sid, credential, 'alice', { generation: 0, tag: tag.slice(1) }), TypeError, 'short tag refused')
  t.throws(() => formatDeviceCookie(sid, credential, 'alice', { generation: 0, tag: randomBytes(32).toString('base64url') }), TypeError, 'long tag refused')
  const nonCanonicalTag = tag.slice(0, 21) + (tag[21] === 'B' ? 'C' : 'B')
  const head = `${sid}.${credential}.${user}`
  const bad: Array<[string, string]> = [
    ['leading zero', `${head}.01.${tag}`],
    ['double zero', `${head}.00.${tag}`],
    ['sign', `${head}.+1.${tag}`],
    ['negative', `${head}.-1.${tag}`],
    ['exponent', `${head}.1e3.${tag}`],
    ['fraction', `${head}.1.5.${tag}`],
    ['hex', `${head}.0x1.${tag}`],
    ['empty generation', `${head}..${tag}`],
    ['too many digits', `${head}.${'9'.repeat(16)}.${tag}`],
    ['unicode digits', `${head}.\u0661.${tag}`],
    ['no tag', `${head}.0`],
    ['empty tag', `${head}.0.`],
    ['short tag', `${head}.0.${tag.slice(1)}`],
    ['long tag', `${head}.0.${tag}A`],
    ['32-byte tag', `${head}.0.${randomBytes(32).toString('base64url')}`],
    ['non-canonical tag', `${head}.0.${nonCanonicalTag}`],
    ['padded tag', `${head}.0.${tag}==`],
    ['standard base64 tag', `${head}.0.${tag.slice(0, 20)}+/`],
    ['sixth part', `${head}.0.${tag}.0`],
    ['generation without user', `${sid}.${credential}.0.${tag}`.replace(`.0.${tag}`, `..0.${tag}`)]
  ]
  for (const [name, value] of bad) t.equal(parseDeviceCookie(value), null, name)
  t.ok(isGeneration(0) && isGeneration(MAX_GENERATION) && !isGeneration(MAX_GENERATION + 1) && !isGeneration('1'))
  t.ok(isDeviceTag(tag) && !isDeviceTag(nonCanonicalTag) && !isDeviceTag(undefined))
  t.equal(deviceTagData(sid, 7, 'h'), `${sid}.7.h`)
})
