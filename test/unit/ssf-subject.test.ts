/**
 * Subject identifiers (RFC 9493, SSF 1.0) mapped to users and IdP sessions.
 */
import t from 'tap'
import { parseSubject, SubjectError } from '../../src/ssf/subject.js'

const IDP = 'https://idp.example'

t.test('formats the gateway maps', async (t) => {
  t.same(parseSubject({ format: 'iss_sub', iss: IDP, sub: 'u1' }, IDP), { kind: 'known', users: [{ sub: 'u1' }] })
  t.same(parseSubject({ format: 'email', email: 'A@Example.com' }, IDP), { kind: 'known', users: [{ email: 'a@example.com' }] }, 'email lower-cased')
  t.same(parseSubject({ format: 'opaque', id: 'u2' }, IDP), { kind: 'known', users: [{ sub: 'u2' }] })
  t.same(parseSubject({ format: 'complex', user: { format: 'opaque', id: 'u3' }, session: { format: 'opaque', id: 's3' } }, IDP), { kind: 'known', users: [{ sub: 'u3' }], session: 's3' })
  t.same(parseSubject({ format: 'complex', session: { format: 'iss_sub', iss: IDP, sub: 's4' }, device: { format: 'opaque', id: 'd' } }, IDP), { kind: 'known', users: [], session: 's4' })
  t.same(parseSubject({ format: 'aliases', identifiers: [{ format: 'email', email: 'b@example.com' }, { format: 'phone_number', phone_number: '+1' }, { format: 'opaque', id: 'u5' }] }, IDP),
    { kind: 'known', users: [{ email: 'b@example.com' }, { sub: 'u5' }] }, 'aliases: those it can map')
  t.same(parseSubject({ subject_type: 'iss-sub', iss: IDP, sub: 'u6' }, IDP), { kind: 'known', users: [{ sub: 'u6' }] }, 'the older subject_type / iss-sub spelling')
})

t.test('valid subjects that name nothing the gateway keeps', async (t) => {
  for (const s of [
    { format: 'iss_sub', iss: 'https://other.example', sub: 'u1' },
    { format: 'phone_number', phone_number: '+12065550100' },
    { format: 'account', uri: 'acct:a@example.com' },
    { format: 'complex', tenant: { format: 'opaque', id: 't' } },
    { format: 'complex', user: { format: 'opaque', id: 'u' }, session: { format: 'iss_sub', iss: 'https://other.example', sub: 's' } },
    { format: 'aliases', identifiers: [{ format: 'phone_number', phone_number: '+1' }] },
    undefined
  ]) t.equal(parseSubject(s, IDP).kind, 'unsupported', JSON.stringify(s) ?? 'none')
})

t.test('malformed subjects throw SubjectError', async (t) => {
  for (const s of [
    'alice', [], { id: 'x' }, { format: '' }, { format: 'opaque' }, { format: 'opaque', id: 7 }, { format: 'email', email: 'not-an-address' },
    { format: 'iss_sub', iss: IDP }, { format: 'opaque', id: 'x'.repeat(2000) }, { format: 'complex', user: 'x' },
    { format: 'complex', user: { format: 'complex' } }, { format: 'aliases', identifiers: [] }, { format: 'aliases', identifiers: [{ format: 'aliases', identifiers: [] }] },
    { format: 'aliases', identifiers: Array.from({ length: 30 }, (_, i) => ({ format: 'opaque', id: `u${i}` })) }
  ]) t.throws(() => parseSubject(s, IDP), SubjectError, JSON.stringify(s).slice(0, 80))
})
