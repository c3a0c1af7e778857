/**
 * The DeviceStore contract (src/store/store.ts): device records (create, read, list, update, expiry),
 * credential rotation and renewal, and the lookup indexes (owner, IdP session, email), including what a
 * revocation leaves of them. Run by storeSuite (suite.ts) against every target.
 */
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import type { RenewDeviceInput, RenewDeviceResult } from '../../src/store/store.js'
import { DENY_TTL, ISS, USER_TTL, hashOf, nextEvent, setupWith, sortPairs, type NewRecord, type StoreHarness } from './suite-kit.js'

/** Registers the device-record cases under `devices`. */
export async function deviceSuite (t: Test, make: () => Promise<StoreHarness>): Promise<void> {
  await t.test('devices', async (t) => {
    const setup = setupWith(make)

    t.test('createSession then getSession round-trips every field', async (t) => {
      const c = await setup(t)
      const full = c.record({ idpSid: 'idp-1', prevCredHash: 'old', prevGraceUntil: c.now() + 5, tokens: 'sealed.bundle', email: 'Full@Example.test' })
      t.equal(await c.store.createSession(full, USER_TTL), 0, 'a new user starts at version 0')
      t.strictSame(await c.store.getSession(full.sub, full.sid), { ...full, version: 0 })

      const bare = c.record({ sub: full.sub, rememberMe: false })
      await c.store.createSession(bare, USER_TTL)
      const got = await c.store.getSession(bare.sub, bare.sid)
      t.strictSame(got, { ...bare, version: 0 }, 'absent optional fields stay absent')
      t.equal(got?.rememberMe, false)
    })

    t.test('getSession is null for an unknown sid or another user', async (t) => {
      const c = await setup(t)
      const rec = c.record()
      await c.store.createSession(rec, USER_TTL)
      t.equal(await c.store.getSession(rec.sub, randomUUID()), null)
      t.equal(await c.store.getSession(randomUUID(), rec.sid), null)
    })

    t.test('listSessions returns the user\'s records, newest first', async (t) => {
      const c = await setup(t)
      const sub = randomUUID()
      const a = c.record({ sub, createdAt: c.now() - 3000 })
      const b = c.record({ sub, createdAt: c.now() - 1000 })
      const other = c.record()
      for (const r of [a, b, other]) await c.store.createSession(r, USER_TTL)
      t.same((await c.store.listSessions(sub)).map((r) => r.sid), [b.sid, a.sid])
      t.same(await c.store.listSessions(randomUUID()), [])
    })

    t.test('updateSession patches fields and never recreates a missing record', async (t) => {
      const c = await setup(t)
      const rec = c.record()
      await c.store.createSession(rec, USER_TTL)
      await c.store.updateSession(rec.sub, rec.sid, { lastSeenAt: rec.lastSeenAt + 10, ip: '10.0.0.9', tokens: 't2' })
      t.match(await c.store.getSession(rec.sub, rec.sid), { lastSeenAt: rec.lastSeenAt + 10, ip: '10.0.0.9', tokens: 't2', userAgent: rec.userAgent })

      const ghost = randomUUID()
      await c.store.updateSession(rec.sub, ghost, { ip: '1.2.3.4' })
      t.equal(await c.store.getSession(rec.sub, ghost), null)
      t.equal((await c.store.listSessions(rec.sub)).length, 1)
    })

    t.test('findOwner maps a sid to its user', async (t) => {
      const c = await setup(t)
      const rec = c.record()
      await c.store.createSession(rec, USER_TTL)
      t.equal(await c.store.findOwner(rec.sid), rec.sub)
      t.equal(await c.store.findOwner(randomUUID()), null)
    })

    t.test('revokeSessions deletes records and their index entries', async (t) => {
      const c = await setup(t)
      const a = c.record({ idpSid: 'idp-shared' })
      const b = c.record({ sub: a.sub, idpSid: 'idp-shared' })
      const d = c.record({ sub: a.sub })
      for (const r of [a, b, d]) await c.store.createSession(r, USER_TTL)
      const unknown = randomUUID()
      const ev = await c.store.revokeSessions(a.sub, [a.sid, d.sid, unknown], DENY_TTL)
      t.match(ev, { sub: a.sub, sids: [a.sid, d.sid, unknown] })
      t.type(ev.at, 'number')
      t.equal(ev.version, undefined)
      for (const sid of [a.sid, d.sid]) {
        t.equal(await c.store.getSession(a.sub, sid), null)
        t.equal(await c.store.findOwner(sid), null)
      }
      t.equal((await c.store.check(a.sub, unknown)).denied, true, 'a sid without a record is denylisted too')
      t.same((await c.store.listSessions(a.sub)).map((r) => r.sid), [b.sid])
      t.same(await c.store.sessionsForIdpSession(ISS, 'idp-shared'), [{ sub: b.sub, sid: b.sid }])
    })

    t.test('sessionsForIdpSession lists the gateway sessions of one IdP session', async (t) => {
      const c = await setup(t)
      const a = c.record({ idpSid: 'idp-x' })
      const b = c.record({ idpSid: 'idp-x' })
      const elsewhere = c.record({ idpSid: 'idp-y' })
      const otherIss = c.record({ iss: 'https://other.example.test', idpSid: 'idp-x' })
      for (const r of [a, b, elsewhere, otherIss]) await c.store.createSession(r, USER_TTL)
      const got = await c.store.sessionsForIdpSession(ISS, 'idp-x')
      t.same(sortPairs(got), sortPairs([{ sub: a.sub, sid: a.sid }, { sub: b.sub, sid: b.sid }]))
      t.same(await c.store.sessionsForIdpSession(ISS, 'nope'), [])
    })

    t.test('usersForEmail: the users of an address, case-insensitively, without revoked or expired sessions', async (t) => {
      const c = await setup(t)
      const email = `${randomUUID()}@Example.test`
      const a = c.record({ email, idpSid: 'idp-e' })
      const a2 = c.record({ sub: a.sub, email: email.toUpperCase() })
      const b = c.record({ email: email.toLowerCase() })
      const short = c.record({ email, expiresAt: c.now() + 300 })
      const other = c.record({ email: `other-${email}` })
      for (const r of [a, a2, b, short, other]) await c.store.createSession(r, USER_TTL)
      t.same((await c.store.usersForEmail(email.toLowerCase())).sort(), [a.sub, b.sub, short.sub].sort(), 'every user with a session under the address')
      t.same((await c.store.usersForEmail(email.toUpperCase())).sort(), [a.sub, b.sub, short.sub].sort(), 'any case')
      t.same(await c.store.usersForEmail(`nobody-${email}`), [], 'an unknown address: nobody')
      t.same((await c.store.getSession(a.sub, a.sid))?.email, email, 'the record keeps the address as given')

      await c.store.revokeSessions(a.sub, [a.sid], DENY_TTL)
      t.ok((await c.store.usersForEmail(email)).includes(a.sub), 'a user with another session under it stays')
      await c.store.revokeUser(a.sub, DENY_TTL)
      await c.store.revokeSessions(b.sub, [b.sid], DENY_TTL)
      await c.elapse(400)
      t.same(await c.store.usersForEmail(email), [], 'revoked and expired sessions leave the index')
      t.same(await c.store.usersForEmail(`other-${email}`), [other.sub], 'another address is untouched')
    })

    t.test('rotateCredential: rotated, grace, reuse, missing', async (t) => {
      const c = await setup(t)
      const rec = c.record({ credHash: 'h0' })
      await c.store.createSession(rec, USER_TTL)
      const now = c.now()
      const rotate = async (expected: string, next: string, at: number): Promise<string> =>
        await c.store.rotateCredential(rec.sub, rec.sid, expected, next, at, now + 1000)

      t.equal(await rotate('h0', 'h1', now), 'rotated')
      t.match(await c.store.getSession(rec.sub, rec.sid), { credHash: 'h1', prevCredHash: 'h0', prevGraceUntil: now + 1000 })
      t.equal(await rotate('h0', 'h2', now + 500), 'grace', 'the previous hash within the window')
      t.equal(await rotate('h0', 'h2', now + 1000), 'grace', 'the window is inclusive')
      t.equal(await rotate('h0', 'h2', now + 1001), 'reuse', 'the previous hash after the window')
      t.equal(await rotate('unknown', 'h2', now), 'unknown', 'a guessed credential is refused without revoking')
      t.equal((await c.store.getSession(rec.sub, rec.sid))?.credHash, 'h1', 'grace and reuse change nothing')
      t.equal(await rotate('h1', 'h2', now + 2000), 'rotated')
      t.equal(await c.store.rotateCredential(rec.sub, randomUUID(), 'h0', 'h1', now, now), 'missing')
    })

    t.test('renewDevice: rotated, grace, touched, with version and epoch; reuse revokes and announces', async (t) => {
      const c = await setup(t)
      const h0 = hashOf('c0')
      const rec = c.record({ credHash: h0, idpSid: 'idp-renew', email: 'Renew@Example.test', tokens: 'sealed.t' })
      await c.store.createSession(rec, USER_TTL)
      const now = c.now()
      const renew = async (presented: string, next: string, at: number, ua = 'Mozilla/5.0 (renewed)'): Promise<RenewDeviceResult> =>
        await c.store.renewDevice({ sub: rec.sub, sid: rec.sid, presentedHash: presented, newHash: next, nowMs: at, graceUntil: now + 1000, touch: { ip: '198.51.100.7', userAgent: ua }, denyTtl: DENY_TTL })

      const longUa = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 ü'
      const first = await renew(h0, hashOf('c1'), now, longUa)
      t.equal(first.outcome, 'rotated')
      if (first.outcome !== 'rotated') return
      t.equal(first.version, 0)
      t.equal(first.epoch, await c.store.epoch(), 'the epoch, read in the same step')
      t.strictSame(first.record, { ...rec, version: 0, credHash: hashOf('c1'), prevCredHash: h0, prevGraceUntil: now + 1000, generation: 1, lastSeenAt: now, ip: '198.51.100.7', userAgent: longUa })
      t.strictSame(await c.store.getSession(rec.sub, rec.sid), first.record, 'stored as returned (a long user agent too)')

      const grace = await renew(h0, hashOf('c2'), now + 500)
      t.equal(grace.outcome, 'grace', 'the previous credential within the window')
      if (grace.outcome === 'grace') t.equal(grace.record.credHash, hashOf('c1'), 'grace rotates nothing')
      t.strictSame(await renew(hashOf('guess'), hashOf('c2'), now + 600), { outcome: 'unknown' }, 'a guess revokes nothing')
      t.ok(await c.store.getSession(rec.sub, rec.sid))

      const heard = nextEvent(c.store, (e) => e.sids.includes(rec.sid))
      const reuse = await renew(h0, hashOf('c2'), now + 1001)
      t.equal(reuse.outcome, 'reuse', 'the previous credential after the window')
      if (reuse.outcome === 'reuse') t.match(reuse.event, { sub: rec.sub, sids: [rec.sid] })
      t.match(await heard, { sub: rec.sub, sids: [rec.sid] }, 'announced to every replica')
      t.equal(await c.store.getSession(rec.sub, rec.sid), null, 'the device is revoked')
      t.equal((await c.store.check(rec.sub, rec.sid)).denied, true, 'and denylisted')
      t.same(await c.store.sessionsForIdpSession(ISS, 'idp-renew'), [], 'its indexes go')
      t.same(await c.store.usersForEmail('renew@example.test'), [])
      t.strictSame(await renew(hashOf('c1'), hashOf('c3'), now + 1002), { outcome: 'missing' }, 'even the current credential is dead now')
    })

    t.test('renewDevice: the generation counts rotations; an unknown credential of an older issued generation is reuse', async (t) => {
      const c = await setup(t)
      const rec = c.record({ credHash: hashOf('g0'), idpSid: 'idp-gen' })
      await c.store.createSession(rec, USER_TTL)
      t.equal((await c.store.getSession(rec.sub, rec.sid))?.generation, undefined, 'a new record has none: generation 0')
      const now = c.now()
      const renew = async (presented: string, next: string, issuedGeneration?: number, at = now): Promise<RenewDeviceResult> =>
        await c.store.renewDevice({
          sub: rec.sub, sid: rec.sid, presentedHash: presented, newHash: next, nowMs: at, graceUntil: at + 1000, touch: { ip: 'ip', userAgent: 'ua' }, denyTtl: DENY_TTL,
          ...(issuedGeneration !== undefined ? { issuedGeneration } : {})
        })
      const one = await renew(hashOf('g0'), hashOf('g1'), 0)
      t.equal(one.outcome === 'rotated' ? one.record.generation : -1, 1, 'first rotation: generation 1')
      const two = await renew(hashOf('g1'), hashOf('g2'), 1)
      t.equal(two.outcome === 'rotated' ? two.record.generation : -1, 2, 'second rotation: generation 2')
      t.equal((await c.store.getSession(rec.sub, rec.sid))?.generation, 2, 'stored')
      t.equal((await renew(hashOf('g1'), hashOf('x'), 1)).outcome, 'grace', 'the previous credential within the window: grace, whatever its generation')
      t.strictSame(await renew(hashOf('g0'), hashOf('x')), { outcome: 'unknown' }, 'no issued generation: unknown')
      t.strictSame(await renew(hashOf('g0'), hashOf('x'), 2), { outcome: 'unknown' }, 'generation equal to the record\'s: unknown')
      t.strictSame(await renew(hashOf('g0'), hashOf('x'), 7), { outcome: 'unknown' }, 'a later generation: unknown')
      t.strictSame(await renew(hashOf('g0'), hashOf('x'), 0), { outcome: 'unknown' }, 'an older generation inside the last rotation\'s grace window: unknown (it may have been in flight)')
      t.equal((await c.store.getSession(rec.sub, rec.sid))?.credHash, hashOf('g2'), 'none of them changed the record')
      const heard = nextEvent(c.store, (e) => e.sids.includes(rec.sid))
      const reuse = await renew(hashOf('g0'), hashOf('x'), 0, now + 1001)
      t.equal(reuse.outcome, 'reuse', 'an older generation after the grace window: reuse')
      t.match(await heard, { sub: rec.sub, sids: [rec.sid] }, 'announced to every replica')
      t.equal(await c.store.getSession(rec.sub, rec.sid), null, 'the device is revoked')
      t.equal((await c.store.check(rec.sub, rec.sid)).denied, true, 'and denylisted')
      t.same(await c.store.sessionsForIdpSession(ISS, 'idp-gen'), [], 'its indexes go')
    })

    t.test('renewDevice refuses: missing, another user, expired, denylisted, lost state', async (t) => {
      const c = await setup(t)
      const input = (r: NewRecord, at = c.now()): RenewDeviceInput =>
        ({ sub: r.sub, sid: r.sid, presentedHash: r.credHash, newHash: hashOf('n'), nowMs: at, graceUntil: at + 1000, touch: { ip: 'ip', userAgent: 'ua' }, denyTtl: DENY_TTL })
      const a = c.record({ credHash: hashOf('a') })
      await c.store.createSession(a, USER_TTL)
      t.strictSame(await c.store.renewDevice({ ...input(a), sid: randomUUID() }), { outcome: 'missing' })
      t.strictSame(await c.store.renewDevice({ ...input(a), sub: randomUUID() }), { outcome: 'missing' }, 'a wrong user finds nothing')
      t.strictSame(await c.store.renewDevice(input(a, a.expiresAt)), { outcome: 'expired' })
      const b = c.record({ sub: a.sub, credHash: hashOf('b') })
      await c.store.createSession(b, USER_TTL)
      await c.store.revokeSessions(a.sub, [b.sid], DENY_TTL)
      await c.store.createSession(b, USER_TTL) // the same sid again: the denylist entry still refuses it
      t.strictSame(await c.store.renewDevice(input(b)), { outcome: 'denied' })
      const old = c.record({ credHash: hashOf('old') })
      await c.store.createSession(old, USER_TTL)
      await c.store.revokeUser(old.sub, DENY_TTL)
      await c.store.createSession({ ...old, sid: randomUUID() }, USER_TTL)
      t.equal((await c.store.check(old.sub, old.sid)).version, 1)
      // A record of the old version (written before the user was revoked, e.g. replicated late).
      const lagging = c.record({ sub: old.sub, credHash: hashOf('lag') })
      await c.store.createSession(lagging, USER_TTL)
      t.equal((await c.store.renewDevice(input(lagging))).outcome, 'rotated', 'a record of the current version renews')
      const lost = c.record({ credHash: hashOf('lost'), expiresAt: c.now() + 3_600_000 })
      await c.store.createSession(lost, 1)
      await c.elapse(1100)
      t.strictSame(await c.store.renewDevice(input(lost)), { outcome: 'state_lost' }, 'the user state is gone: no renewal')
      t.ok(await c.store.getSession(a.sub, a.sid), 'refusals revoke nothing')
    })

    t.test('records expire at expiresAt, with their indexes', async (t) => {
      const c = await setup(t)
      const short = c.record({ idpSid: 'idp-exp', expiresAt: c.now() + 300 })
      const long = c.record({ sub: short.sub })
      await c.store.createSession(short, USER_TTL)
      await c.store.createSession(long, USER_TTL)
      t.ok(await c.store.getSession(short.sub, short.sid))
      await c.elapse(400)
      t.equal(await c.store.getSession(short.sub, short.sid), null)
      t.equal(await c.store.findOwner(short.sid), null)
      t.same((await c.store.listSessions(short.sub)).map((r) => r.sid), [long.sid])
      t.same(await c.store.sessionsForIdpSession(ISS, 'idp-exp'), [])
      t.equal(await c.store.rotateCredential(short.sub, short.sid, short.credHash, 'x', c.now(), c.now()), 'missing')
    })
  })
}
