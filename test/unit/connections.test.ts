/**
 * The connection registry: a revocation closes exactly the connections it ends.
 */
import t from 'tap'
import { ConnectionRegistry, type CloseReason } from '../../src/http/connections.js'

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
