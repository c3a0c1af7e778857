/**
 * The connection registry: a revocation closes exactly the connections it ends.
 */
import t from 'tap'
import { ConnectionRegistry, endsConnection, type CloseReason } from '../../src/http/connections.js'

t.test('closeFor: listed sessions, and older versions on a user-wide revocation', async (t) => {
  const r = new ConnectionRegistry()
  const closed: string[] = []
  const add = (sid: string, sub: string, ver: number): () => void => r.add({ sid, sub, ver }, (why: CloseReason) => closed.push(`${sid}:${why}`))
  add('a1', 'alice', 0)
  add('a2', 'alice', 0)
  const removeA3 = add('a3', 'alice', 1)
  add('b1', 'bob', 0)
  t.equal(r.size, 4)
  t.equal(r.closeFor({ sub: 'alice', sids: ['a1'] }), 1)
  t.same(closed, ['a1:revoked'])
  t.equal(r.closeFor({ sub: 'alice', sids: [], version: 1 }), 1, 'only the session below the new version')
  t.same(closed, ['a1:revoked', 'a2:revoked'])
  removeA3()
  t.equal(r.closeFor({ sub: 'alice', sids: ['a3'] }), 0, 'an unregistered connection is not closed')
  t.equal(r.closeFor({ sub: 'carol', sids: ['c1'] }), 0)
  t.equal(r.closeAll(), 1)
  t.same(closed.at(-1), 'b1:shutdown')
  t.equal(r.size, 0)
})

t.test('owners and closeWhere: a snapshot, and closing by owner', async (t) => {
  const r = new ConnectionRegistry()
  const closed: string[] = []
  r.add({ sid: 'a1', sub: 'alice', ver: 0 }, (why) => closed.push(`a1:${why}`))
  r.add({ sid: 'b1', sub: 'bob', ver: 2, epoch: 'e' }, (why) => closed.push(`b1:${why}`))
  t.same(r.owners().map((o) => o.sid).sort(), ['a1', 'b1'])
  t.equal(r.closeWhere((o) => o.sub === 'bob'), 1)
  t.same(closed, ['b1:revoked'])
  t.same(r.owners().map((o) => o.sid), ['a1'])
  t.equal(r.closeWhere(() => false), 0)
  t.equal(r.size, 1)
})

t.test('endsConnection: denied, lost state, a newer version, another epoch', async (t) => {
  const owner = { sid: 's', sub: 'u', ver: 1, epoch: 'e1' }
  t.equal(endsConnection(owner, { denied: false, version: 1 }, 'e1'), false, 'live')
  t.equal(endsConnection(owner, { denied: false, version: 0 }, 'e1'), false, 'an older store version does not end it')
  t.equal(endsConnection(owner, { denied: true, version: 1 }, 'e1'), true, 'denied')
  t.equal(endsConnection(owner, { denied: false, version: null }, 'e1'), true, 'state lost')
  t.equal(endsConnection(owner, { denied: false, version: 2 }, 'e1'), true, 'user revoked since')
  t.equal(endsConnection(owner, { denied: false, version: 1 }, 'e2'), true, 'another epoch')
  t.equal(endsConnection({ sid: 's', sub: 'u', ver: 1 }, { denied: false, version: 1 }, 'e2'), false, 'no epoch known: judged on the session')
})
