/**
 * The pure session core: issue, slide, verdict, and the narrowing of unsealed payloads.
 */
import t from 'tap'
import { asSessionClaims, issueSession, shouldSlide, slideSession, timeVerdict, verdict, type IssueInput } from '../../src/core/session.js'

const input: IssueInput = {
  sid: 's1', sub: 'alice', iss: 'https://idp', idpSid: 'idp-1', ver: 3, epoch: 'e1', authTime: 1000,
  rememberMe: false, profile: { email: 'a@x' }, loginAt: 1000
}

t.test('issue bounds the cookie by ttl and by the login\'s absolute end', async (t) => {
  const c = issueSession(input, 1000, 300, 3600)
  t.equal(c.exp, 1300)
  t.equal(c.absExp, 4600)
  t.equal(c.idpSid, 'idp-1')
  const late = issueSession(input, 4500, 300, 3600)
  t.equal(late.exp, 4600, 'never past absoluteTtl')
})

t.test('sliding: only past half its life, never past absExp', async (t) => {
  const c = issueSession(input, 1000, 300, 3600)
  t.notOk(shouldSlide(c, 1100))
  t.ok(shouldSlide(c, 1150))
  const slid = slideSession(c, 1200, 300)
  t.equal(slid.iat, 1200)
  t.equal(slid.exp, 1500)
  t.equal(slid.sid, c.sid, 'same session')
  const near = slideSession(c, 4500, 300)
  t.equal(near.exp, 4600)
  t.notOk(shouldSlide(near, 4590), 'a cookie at its absolute end is not slid again')
})

t.test('verdict: time, epoch, lost state, denylist, version', async (t) => {
  const c = issueSession(input, 1000, 300, 3600)
  const ok = { denied: false, version: 3, epoch: 'e1' }
  t.equal(verdict(c, 1100, ok).kind, 'live')
  t.equal(verdict(c, 1300, ok).kind, 'expired')
  t.equal(timeVerdict(c, 1299), 'live')
  t.same(verdict(c, 1100, { ...ok, epoch: 'e2' }), { kind: 'revoked', claims: c, reason: 'epoch' })
  t.same(verdict(c, 1100, { ...ok, version: null }), { kind: 'revoked', claims: c, reason: 'state_lost' })
  t.same(verdict(c, 1100, { ...ok, denied: true }), { kind: 'revoked', claims: c, reason: 'denied' })
  t.same(verdict(c, 1100, { ...ok, version: 4 }), { kind: 'revoked', claims: c, reason: 'version' })
  t.equal(verdict(c, 1100, { ...ok, version: 2 }).kind, 'live', 'an older version in the store never revokes')
})

t.test('asSessionClaims refuses anything that is not a v1 session', async (t) => {
  const c = issueSession(input, 1000, 300, 3600)
  t.same(asSessionClaims(JSON.parse(JSON.stringify(c))), c)
  for (const bad of [null, 'x', 1, {}, { ...c, v: 2 }, { ...c, sub: '' }, { ...c, exp: 'soon' }, { ...c, rememberMe: 'yes' }, { ...c, profile: null }]) {
    t.equal(asSessionClaims(bad), null)
  }
})
