import t from 'tap'
import { identityRefusal, valueProblem } from '../../src/core/identity.js'

t.test('identity values that upstream parsers would trim or strip are refused', async (t) => {
  for (const v of [' admin', 'admin\t', 'admin ', 'ad\u0000min', 'ad\u007fmin', 'a\u0085b', 'a\u2028b', 'a\r\nX-Forwarded-User: root', '', 'x'.repeat(1025)]) {
    t.ok(typeof valueProblem(v) === 'string', encodeURIComponent(v.slice(0, 20)))
  }
  for (const v of ['admin', 'ad min', 'José Müller', 'user@example.com', 'x'.repeat(1024), 'CN=a,OU=b']) {
    t.equal(valueProblem(v), undefined, encodeURIComponent(v.slice(0, 20)))
  }
})

t.test('identityRefusal names the first claim refused', async (t) => {
  t.equal(identityRefusal('alice', { email: 'a@example.com', groups: ['g1', 'g2'] }), undefined)
  t.same(identityRefusal('alice ', {}), { claim: 'sub', problem: 'has leading or trailing whitespace' })
  t.same(identityRefusal('alice', { email: 'a@example.com\n' }), { claim: 'email', problem: 'contains a control character' })
  t.same(identityRefusal('alice', { preferred_username: '\talice' }), { claim: 'preferred_username', problem: 'contains a control character' })
  t.same(identityRefusal('alice', { groups: ['ok', ' admins'] }), { claim: 'groups[1]', problem: 'has leading or trailing whitespace' })
})
