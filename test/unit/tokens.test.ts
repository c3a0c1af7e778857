/**
 * openTokenBundle (src/core/tokens.ts): a record's sealed tokens open, or say why not (a coded result)
 * instead of silently becoming an empty bundle.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { KeyRing, seal } from '../../src/core/sealed-cookie.js'
import { openTokenBundle, TOKENS_PURPOSE } from '../../src/core/tokens.js'

const ring = new KeyRing([randomBytes(32)])

t.test('a sealed bundle opens; no bundle is an empty one', async (t) => {
  t.same(openTokenBundle(ring, seal(ring, TOKENS_PURPOSE, { refreshToken: 'rt', idToken: 'it', junk: 1 })), { ok: true, bundle: { refreshToken: 'rt', idToken: 'it' } })
  t.same(openTokenBundle(ring, undefined), { ok: true, bundle: {} })
})

t.test('a bundle sealed with a key no longer in the ring is SG_TOKENS_UNREADABLE', async (t) => {
  const old = new KeyRing([randomBytes(32)])
  const r = openTokenBundle(ring, seal(old, TOKENS_PURPOSE, { refreshToken: 'rt' }))
  t.equal(r.ok, false)
  if (r.ok) return
  t.equal(r.code, 'SG_TOKENS_UNREADABLE')
  t.ok(r.seal === 'SG_SEAL_UNKNOWN_KEY' || r.seal === 'SG_SEAL_INVALID', `the seal's own code (${String(r.seal)})`)
  t.same(r.bundle, {}, 'an empty bundle to go on with')
})

t.test('a value sealed for another purpose, or altered, is SG_TOKENS_UNREADABLE', async (t) => {
  const other = openTokenBundle(ring, seal(ring, 'tx', { refreshToken: 'rt' }))
  t.equal(other.ok ? undefined : other.code, 'SG_TOKENS_UNREADABLE')
  const sealed = seal(ring, TOKENS_PURPOSE, { refreshToken: 'rt' })
  const altered = openTokenBundle(ring, sealed.slice(0, -4) + (sealed.endsWith('AAAA') ? 'BBBB' : 'AAAA'))
  t.equal(altered.ok ? undefined : altered.code, 'SG_TOKENS_UNREADABLE')
})

t.test('something that unseals but is no bundle is SG_TOKENS_MALFORMED', async (t) => {
  const r = openTokenBundle(ring, seal(ring, TOKENS_PURPOSE, 'a string'))
  t.equal(r.ok ? undefined : r.code, 'SG_TOKENS_MALFORMED')
})
