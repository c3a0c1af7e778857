/**
 * The one Store contract suite, run against every implementation (after oauth2-proxy's
 * pkg/sessions/tests). Each case gets a fresh store from `make` and its own random user ids.
 */
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import type { RenewDeviceInput, RenewDeviceResult, RevocationEvent, SessionRecord, Store } from '../../src/store/store.js'

export interface StoreHarness {
  store: Store
  /** Fast-forwards the store's clock; without it the suite waits for real (short TTLs only). */
  advance?: (ms: number) => void | Promise<void>
  /** The store's clock in ms; defaults to Date.now. */
  now?: () => number
  cleanup: () => Promise<void>
}

type NewRecord = Omit<SessionRecord, 'version'>

const ISS = 'https://idp.example.test'
const USER_TTL = 3600
const DENY_TTL = 300

/** Registers the contract tests for one Store implementation under `name`. */
export async function storeSuite (t: Test, name: string, make: () => Promise<StoreHarness>): Promise<void> {
  await t.test(name, async (t) => {
    /** A fresh store for one case, closed in teardown. */
    const setup = async (t: Test): Promise<Ctx> => {
      const h = await make()
      t.teardown(h.cleanup)
      return new Ctx(h)
    }

    t.test('epoch is a stable non-empty string', async (t) => {
      const { store } = await setup(t)
      const e = await store.epoch()
      t.type(e, 'string')
      t.ok(e.length >= 8)
      t.equal(await store.epoch(), e)
    })

    t.test('ping resolves', async (t) => {
      const { store } = await setup(t)
      await t.resolves(store.ping())
    })

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

    t.test('check: unknown user, live session, revoked session', async (t) => {
      const c = await setup(t)
      t.same(await c.store.check(randomUUID(), randomUUID()), { denied: false, version: null }, 'no state: version null')
      const a = c.record()
      const b = c.record({ sub: a.sub })
      await c.store.createSession(a, USER_TTL)
      await c.store.createSession(b, USER_TTL)
      t.same(await c.store.check(a.sub, a.sid), { denied: false, version: 0 })
      await c.store.revokeSessions(a.sub, [a.sid], DENY_TTL)
      t.same(await c.store.check(a.sub, a.sid), { denied: true, version: 0 })
      t.same(await c.store.check(b.sub, b.sid), { denied: false, version: 0 }, 'the other session is untouched')
    })

    t.test('peek, where a store has it, never contradicts check', async (t) => {
      const c = await setup(t)
      if (c.store.peek === undefined) {
        // The two go together: the gate answers from memory only when both do.
        t.equal(c.store.peekEpoch, undefined, 'a store without peek has no peekEpoch either: every check asks the store')
        return
      }
      const a = c.record()
      await c.store.createSession(a, USER_TTL)
      let answered = 0
      const agree = async (what: string): Promise<void> => {
        const fresh = await c.store.check(a.sub, a.sid)
        const peeked = c.store.peek!(a.sub, a.sid)
        if (peeked !== undefined) answered++
        if (peeked !== undefined) t.same(peeked, fresh, what)
        const pe = c.store.peekEpoch?.()
        if (pe !== undefined) t.equal(pe, await c.store.epoch(), `${what}: epoch`)
      }
      await agree('live')
      await c.store.revokeSessions(a.sub, [a.sid], DENY_TTL)
      await new Promise((resolve) => setTimeout(resolve, 20)) // events are asynchronous
      await agree('after revokeSessions')
      await c.store.revokeUser(a.sub, DENY_TTL)
      await new Promise((resolve) => setTimeout(resolve, 20))
      await agree('after revokeUser')
      t.ok(answered > 0, `peek answered at least once (${answered} of 3), so the comparisons above ran`)
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

    t.test('revokeUser revokes every session of that user only', async (t) => {
      const c = await setup(t)
      const a = c.record({ idpSid: 'idp-a' })
      const b = c.record({ sub: a.sub })
      const other = c.record({ idpSid: 'idp-a' })
      for (const r of [a, b, other]) await c.store.createSession(r, USER_TTL)

      const ev = await c.store.revokeUser(a.sub, DENY_TTL)
      t.equal(ev.sub, a.sub)
      t.equal(ev.version, 1)
      t.same([...ev.sids].sort(), [a.sid, b.sid].sort())
      t.same(await c.store.listSessions(a.sub), [])
      t.equal(await c.store.getSession(a.sub, b.sid), null)
      t.same(await c.store.check(a.sub, a.sid), { denied: true, version: 1 })
      t.same(await c.store.sessionsForIdpSession(ISS, 'idp-a'), [{ sub: other.sub, sid: other.sid }])

      t.same(await c.store.check(other.sub, other.sid), { denied: false, version: 0 }, 'another user is untouched')
      t.ok(await c.store.getSession(other.sub, other.sid))

      t.equal(await c.store.createSession(c.record({ sub: a.sub }), USER_TTL), 1, 'a new session carries the bumped version')
      t.equal((await c.store.revokeUser(a.sub, DENY_TTL)).version, 2)
    })

    t.test('revokeUser of a user without records still bumps the version', async (t) => {
      const c = await setup(t)
      const sub = randomUUID()
      const ev = await c.store.revokeUser(sub, DENY_TTL)
      t.match(ev, { sub, sids: [], version: 1 })
      t.same(await c.store.check(sub, randomUUID()), { denied: false, version: 1 })
    })

    t.test('checkBearer: revokeUser records when the user was revoked, for that user only', async (t) => {
      const c = await setup(t)
      const sub = randomUUID()
      const other = randomUUID()
      t.same(await c.store.checkBearer(sub, ISS, undefined), { revokedAt: null, idpLoggedOut: false }, 'nothing recorded yet')
      const before = Math.floor(c.now() / 1000)
      const ev = await c.store.revokeUser(sub, DENY_TTL, USER_TTL)
      const after = Math.floor(c.now() / 1000)
      t.ok(ev.revokedAt !== undefined && ev.revokedAt >= before && ev.revokedAt <= after, 'the event carries the revocation time in seconds')
      t.same(await c.store.checkBearer(sub, ISS, undefined), { revokedAt: ev.revokedAt, idpLoggedOut: false })
      t.same(await c.store.checkBearer(sub, ISS, 'some-idp-sid'), { revokedAt: ev.revokedAt, idpLoggedOut: false }, 'a sid nobody logged out')
      t.same(await c.store.checkBearer(other, ISS, undefined), { revokedAt: null, idpLoggedOut: false }, 'another user is untouched')
      const again = await c.store.revokeUser(sub, DENY_TTL, USER_TTL)
      t.ok(again.revokedAt! >= ev.revokedAt!, 'never moves back')
      t.equal((await c.store.checkBearer(sub, ISS, undefined)).revokedAt, again.revokedAt)
    })

    t.test('checkBearer: the revocation time is kept max(denyTtl, tokenTtl), then forgotten', async (t) => {
      const c = await setup(t)
      const sub = randomUUID()
      const ev = await c.store.revokeUser(sub, 1, 2)
      await c.elapse(1100)
      t.equal((await c.store.checkBearer(sub, ISS, undefined)).revokedAt, ev.revokedAt, 'still kept after denyTtl')
      await c.elapse(1000)
      t.equal((await c.store.checkBearer(sub, ISS, undefined)).revokedAt, null, 'gone after tokenTtl')
    })

    t.test('logoutIdpSession marks one IdP session for ttl, with no gateway session under it', async (t) => {
      const c = await setup(t)
      const sub = randomUUID()
      const idpSid = randomUUID()
      t.equal((await c.store.checkBearer(sub, ISS, idpSid)).idpLoggedOut, false)
      const seen = nextEvent(c.store, (e) => e.idpSession?.sid === idpSid)
      const ev = await c.store.logoutIdpSession(ISS, idpSid, 1)
      t.match(ev, { sub: '', sids: [], idpSession: { iss: ISS, sid: idpSid } })
      t.same(await seen, ev, 'subscribers get the same event')
      t.same(await c.store.checkBearer(sub, ISS, idpSid), { revokedAt: null, idpLoggedOut: true }, 'any user\'s token with that sid')
      t.equal((await c.store.checkBearer(sub, 'https://other.example.test', idpSid)).idpLoggedOut, false, 'another issuer\'s sid is another session')
      t.equal((await c.store.checkBearer(sub, ISS, randomUUID())).idpLoggedOut, false, 'another sid')
      t.equal((await c.store.checkBearer(sub, ISS, undefined)).idpLoggedOut, false, 'a token without sid')
      t.same(await c.store.sessionsForIdpSession(ISS, idpSid), [], 'no gateway session is invented')
      await c.elapse(1100)
      t.equal((await c.store.checkBearer(sub, ISS, idpSid)).idpLoggedOut, false, 'forgotten after ttl')
    })

    t.test('checkBearer follows each revocation, and peekBearer (where a store has it) agrees', async (t) => {
      const c = await setup(t)
      const sub = randomUUID()
      const idpSid = randomUUID()
      const agree = async (what: string, want: { revokedAt: 'none' | 'some', idpLoggedOut: boolean }): Promise<void> => {
        const fresh = await c.store.checkBearer(sub, ISS, idpSid)
        t.equal(fresh.idpLoggedOut, want.idpLoggedOut, `${what}: idpLoggedOut`)
        t.equal(fresh.revokedAt === null ? 'none' : 'some', want.revokedAt, `${what}: revokedAt`)
        const peeked = c.store.peekBearer?.(sub, ISS, idpSid)
        if (peeked !== undefined) t.same(peeked, fresh, `${what}: peek`)
      }
      await agree('nothing recorded', { revokedAt: 'none', idpLoggedOut: false })
      await c.store.logoutIdpSession(ISS, idpSid, DENY_TTL)
      await new Promise((resolve) => setTimeout(resolve, 20)) // events are asynchronous
      await agree('after logoutIdpSession', { revokedAt: 'none', idpLoggedOut: true })
      await c.store.revokeUser(sub, DENY_TTL, USER_TTL)
      await new Promise((resolve) => setTimeout(resolve, 20))
      await agree('after revokeUser', { revokedAt: 'some', idpLoggedOut: true })
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

    t.test('claimOnce: first true, replay false, true again after the ttl', async (t) => {
      const c = await setup(t)
      const id = randomUUID()
      t.equal(await c.store.wasClaimed('jti', id), false, 'nothing claimed yet')
      t.equal(await c.store.claimOnce('jti', id, 1), true)
      t.equal(await c.store.wasClaimed('jti', id), true, 'wasClaimed sees the claim')
      t.equal(await c.store.claimOnce('jti', id, 1), false)
      t.equal(await c.store.wasClaimed('state', id), false, 'kinds are separate for wasClaimed')
      t.equal(await c.store.claimOnce('state', id, 1), true, 'kinds are separate')
      await c.elapse(1100)
      t.equal(await c.store.wasClaimed('jti', id), false, 'expired with its ttl')
      t.equal(await c.store.claimOnce('jti', id, 1), true)
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

    t.test('lease: one holder at a time, extended by its holder, free after its ttl or release', async (t) => {
      const c = await setup(t)
      const name = `poll:${randomUUID()}`
      t.equal(await c.store.lease(name, 'a', 300), true, 'a free lease is taken')
      t.equal(await c.store.lease(name, 'b', 300), false, 'another holder is refused')
      t.equal(await c.store.lease(name, 'a', 300), true, 'the holder extends it')
      await c.elapse(400)
      t.equal(await c.store.lease(name, 'b', 10_000), true, 'a lapsed lease goes to the next')
      await c.store.releaseLease(name, 'a')
      t.equal(await c.store.lease(name, 'a', 300), false, 'release by a non-holder changes nothing')
      await c.store.releaseLease(name, 'b')
      t.equal(await c.store.lease(name, 'a', 300), true, 'released: free again')
      t.equal(await c.store.lease(`other:${name}`, 'b', 300), true, 'names are separate')
    })

    t.test('notes: put, get, replace, expire', async (t) => {
      const c = await setup(t)
      const id = randomUUID()
      t.equal(await c.store.getNote('ssf', id), null)
      await c.store.putNote('ssf', id, '{"a":1}', 1)
      t.equal(await c.store.getNote('ssf', id), '{"a":1}')
      t.equal(await c.store.getNote('other', id), null, 'kinds are separate')
      await c.store.putNote('ssf', id, 'two', 1)
      t.equal(await c.store.getNote('ssf', id), 'two', 'replaced')
      await c.elapse(1100)
      t.equal(await c.store.getNote('ssf', id), null, 'expired with its ttl')
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
      t.strictSame(first.record, { ...rec, version: 0, credHash: hashOf('c1'), prevCredHash: h0, prevGraceUntil: now + 1000, lastSeenAt: now, ip: '198.51.100.7', userAgent: longUa })
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

    t.test('events reach subscribers asynchronously with the right payload', async (t) => {
      const c = await setup(t)
      const a = c.record()
      const b = c.record({ sub: a.sub })
      await c.store.createSession(a, USER_TTL)
      await c.store.createSession(b, USER_TTL)

      const seen: RevocationEvent[] = []
      const unsubscribe = c.store.subscribe((e) => seen.push(e))
      const first = nextEvent(c.store, (e) => e.sub === a.sub)
      // Delivery is asynchronous: never from inside the call. (Redis publishes before it drops the
      // indexes, so a retry can still find a half-done revocation: the event may arrive before it returns.)
      const revoking = c.store.revokeSessions(a.sub, [a.sid], DENY_TTL)
      t.equal(seen.length, 0, 'not delivered synchronously inside the revoking call')
      const revoked = await revoking
      t.same(await first, revoked)

      const second = nextEvent(c.store, (e) => e.sub === a.sub && e.version !== undefined)
      const all = await c.store.revokeUser(a.sub, DENY_TTL)
      t.same(await second, all)
      t.match(all, { sub: a.sub, sids: [b.sid], version: 1 })

      unsubscribe()
      const count = seen.length
      const third = nextEvent(c.store, (e) => e.sub === a.sub)
      await c.store.revokeSessions(a.sub, [b.sid], DENY_TTL)
      await third
      t.equal(seen.length, count, 'an unsubscribed listener hears nothing')
    })

    t.test('a throwing listener does not stop delivery to the others', async (t) => {
      const c = await setup(t)
      c.store.subscribe(() => { throw new Error('listener bug (expected by the test)') })
      const sub = randomUUID()
      const got = nextEvent(c.store, (e) => e.sub === sub)
      await c.store.revokeUser(sub, DENY_TTL)
      t.equal((await got).sub, sub)
    })

    t.test('denylist entries expire after denyTtl', async (t) => {
      const c = await setup(t)
      const rec = c.record()
      await c.store.createSession(rec, USER_TTL)
      await c.store.revokeSessions(rec.sub, [rec.sid], 1)
      t.equal((await c.store.check(rec.sub, rec.sid)).denied, true)
      await c.elapse(1100)
      t.equal((await c.store.check(rec.sub, rec.sid)).denied, false)
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

    t.test('the user version lives at least userStateTtl, is never shortened, then is lost', async (t) => {
      const c = await setup(t)
      const rec = c.record({ expiresAt: c.now() + 500 })
      await c.store.createSession(rec, 2)
      await c.store.createSession(c.record({ sub: rec.sub, expiresAt: c.now() + 500 }), 1)
      await c.elapse(1100)
      t.equal((await c.store.check(rec.sub, rec.sid)).version, 0, 'the shorter ttl did not shorten it')
      await c.elapse(1000)
      t.same(await c.store.check(rec.sub, rec.sid), { denied: false, version: null }, 'lost state reads as null')
    })
  })
}

/** One case's store, clock and record factory. */
class Ctx {
  readonly store: Store
  readonly now: () => number
  private readonly h: StoreHarness

  constructor (h: StoreHarness) {
    this.h = h
    this.store = h.store
    this.now = h.now ?? Date.now
  }

  /** Lets `ms` pass: on the fake clock when there is one, else for real. */
  async elapse (ms: number): Promise<void> {
    if (this.h.advance !== undefined) await this.h.advance(ms)
    else await new Promise((resolve) => setTimeout(resolve, ms))
  }

  /** A valid record of a new random user (unless `sub` is given), live for an hour. */
  record (over: Partial<NewRecord> = {}): NewRecord {
    const now = this.now()
    return {
      sid: randomUUID(),
      sub: randomUUID(),
      iss: ISS,
      createdAt: now,
      lastSeenAt: now,
      userAgent: 'Mozilla/5.0 (suite)',
      ip: '192.0.2.1',
      rememberMe: true,
      expiresAt: now + 3_600_000,
      credHash: randomUUID(),
      ...over
    }
  }
}

/** Resolves with the first event matching `pred`; fails after 2 s (events must arrive within 1 s). */
async function nextEvent (store: Store, pred: (e: RevocationEvent) => boolean): Promise<RevocationEvent> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error('no revocation event within 2 s'))
    }, 2000)
    const off = store.subscribe((e) => {
      if (!pred(e)) return
      clearTimeout(timer)
      off()
      resolve(e)
    })
  })
}

/** A credential hash as the gateway makes them (base64url SHA-256): the store keeps these as raw bytes. */
function hashOf (credential: string): string {
  return createHash('sha256').update(credential).digest('base64url')
}

function sortPairs (pairs: Array<{ sub: string, sid: string }>): Array<{ sub: string, sid: string }> {
  return [...pairs].sort((x, y) => (x.sub + x.sid).localeCompare(y.sub + y.sid))
}
