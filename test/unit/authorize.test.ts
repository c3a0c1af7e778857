import t from 'tap'
import { admits, claimPathsOf, type AuthzSubject } from '../../src/core/authorize.js'
import { claimAt, claimValues, groupValues } from '../../src/core/claims.js'
import { buildProfile } from '../../src/core/identity.js'

function subject (s: Partial<AuthzSubject> & { claims?: Record<string, string[]> } = {}): AuthzSubject {
  return { sub: 'u1', ...s, claim: (p) => s.claims?.[p] }
}

t.test('each field must match inside a rule; any rule admits', async (t) => {
  const rules = [{ groups: ['admins'], emailDomains: ['example.com'] }, { subjects: ['root'] }]
  t.ok(admits(rules, subject({ groups: ['admins'], email: 'A@Example.com' })), 'both fields match (email case-insensitive)')
  t.notOk(admits(rules, subject({ groups: ['admins'], email: 'a@other.com' })), 'one field fails the rule')
  t.ok(admits(rules, subject({ sub: 'root' })), 'the second rule admits')
  t.notOk(admits([], subject({ sub: 'root' })), 'no rule admits nobody')
})

t.test('emails need a verified address; domains compare the part after the last @', async (t) => {
  t.ok(admits([{ emails: ['a@example.com'] }], subject({ email: 'a@example.com' })))
  t.notOk(admits([{ emails: ['a@example.com'] }], subject({ email: 'a@example.com', emailVerified: false })))
  t.notOk(admits([{ emailDomains: ['example.com'] }], subject({ email: 'a@example.com@evil.com' })))
  t.notOk(admits([{ emailDomains: ['example.com'] }], subject({ email: 'a@sub.example.com' })), 'no implicit subdomains')
  t.notOk(admits([{ emailDomains: ['example.com'] }], subject({})), 'no email')
})

t.test('claims: any accepted value, all paths', async (t) => {
  const rules = [{ claims: { acr: ['urn:mfa'], 'realm_access.roles': ['a', 'b'] } }]
  t.ok(admits(rules, subject({ claims: { acr: ['urn:mfa'], 'realm_access.roles': ['x', 'b'] } })))
  t.notOk(admits(rules, subject({ claims: { acr: ['urn:pwd'], 'realm_access.roles': ['b'] } })))
  t.notOk(admits(rules, subject({ claims: { acr: ['urn:mfa'] } })), 'a missing claim never matches')
  t.same(claimPathsOf([...rules, { groups: ['g'] }]), ['acr', 'realm_access.roles'])
})

t.test('claim paths: nested, dotted names, arrays and scalars', async (t) => {
  const c = { realm_access: { roles: ['r1', 2, true, { x: 1 }] }, 'https://example.com/roles': ['ns'], a: { 'b.c': 'd' }, n: 3 }
  t.same(claimValues(claimAt(c, 'realm_access.roles')), ['r1', '2', 'true'])
  t.same(claimAt(c, 'https://example.com/roles'), ['ns'], 'a claim name with dots is found whole')
  t.equal(claimAt(c, 'a.b.c'), 'd')
  t.equal(claimAt(c, 'realm_access.missing'), undefined)
  t.same(claimValues(claimAt(c, 'n')), ['3'])
  t.same(groupValues('a b,c  d'), ['a', 'b', 'c', 'd'])
  t.same(groupValues(['a', 'b']), ['a', 'b'])
})

t.test('buildProfile keeps only the named claims, userinfo first', async (t) => {
  const userinfo = { email: 'u@example.com', roles: 'admin editor', realm_access: { roles: ['r1'] }, secret: 'x' }
  const id = { sub: 'u1', email: 'old@example.com', email_verified: false, dept: 'eng' }
  const p = buildProfile([userinfo, id], { user: 'email', groups: 'roles', headers: {} }, ['realm_access.roles', 'dept', 'absent'])
  t.same(p, { email: 'u@example.com', email_verified: false, groups: ['admin', 'editor'], user: 'u@example.com', claims: { 'realm_access.roles': ['r1'], dept: ['eng'] } })
})
