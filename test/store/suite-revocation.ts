/**
 * The RevocationStore contract (src/store/store.ts): the epoch, the hot-path check (and peek), revocations
 * of sessions, users and IdP sessions, the bearer check, and the events every subscriber hears. Run by
 * storeSuite (suite.ts) against every target.
 */
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import type { RevocationEvent } from '../../src/store/store.js'
import { DENY_TTL, ISS, USER_TTL, nextEvent, setupWith, type StoreHarness } from './suite-kit.js'

/** Registers the revocation cases under `revocation`. */
export async function revocationSuite (t: Test, make: () => Promise<StoreHarness>): Promise<void> {
  await t.test('revocation', async (t) => {
    const setup = setupWith(make)

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
