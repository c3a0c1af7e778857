/**
 * The receiver on a memory store with recording actions: what each event and subject asks for, the
 * replay guard recorded only after success, and the delivery results (that push answers and poll acks
 * follow).
 */
import t, { type Test } from 'tap'
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose'
import { MemoryStore } from '../../src/store/memory.js'
import { Receiver, type SsfActions } from '../../src/ssf/receiver.js'
import { EVENT } from '../../src/ssf/events.js'
import type { SsfTransmitterConfig } from '../../src/config/types.js'

const IDP = 'https://idp.example'
const { privateKey, publicKey } = await generateKeyPair('RS256')
const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256' }] })
const config: SsfTransmitterConfig = { issuer: 'https://tx.example', audience: 'https://gw.example', delivery: 'push', pushToken: 'x'.repeat(16), manageStream: false, jwksUri: 'https://tx.example/jwks' }
const tx = { config, keys }
let n = 0
async function set (type: string, subject: unknown, event: Record<string, unknown> = {}): Promise<string> {
  return await new SignJWT({ iss: config.issuer, aud: config.audience, iat: Math.floor(Date.now() / 1000), jti: `j${n++}`, sub_id: subject, events: { [type]: event } })
    .setProtectedHeader({ alg: 'RS256', kid: 'k', typ: 'secevent+jwt' }).sign(privateKey)
}

function setup (t: Test): { store: MemoryStore, calls: string[], receiver: Receiver, counted: string[], fail: { on: boolean } } {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const calls: string[] = []
  const counted: string[] = []
  const fail = { on: false }
  const actions: SsfActions = {
    user: async (sub) => { if (fail.on) throw new Error('store down'); calls.push(`user ${sub}`) },
    idpSession: async (sid, onlySub) => { if (fail.on) throw new Error('store down'); calls.push(`idp ${sid}${onlySub !== undefined ? ` ${onlySub}` : ''}`) }
  }
  const quiet = { info: () => {}, warn: () => {}, error: () => {} }
  const receiver = new Receiver({ store, actions, idpIssuer: IDP, now: () => Math.floor(Date.now() / 1000), log: quiet, count: (tr, type, result) => { counted.push(`${tr} ${type} ${result}`) } })
  return { store, calls, receiver, counted, fail }
}

const record = (sub: string, sid: string, over: Record<string, unknown> = {}) => ({ sid, sub, iss: IDP, createdAt: Date.now(), lastSeenAt: Date.now(), userAgent: 'ua', ip: 'ip', rememberMe: false, expiresAt: Date.now() + 60_000, credHash: 'h', ...over })

t.test('what each event and subject asks for', async (t) => {
  const { store, calls, receiver, counted } = setup(t)
  await store.createSession(record('ann', 's1', { email: 'Ann@Example.com', idpSid: 'idp-1' }), 60)
  await store.createSession(record('ann2', 's2', { email: 'ann@example.com' }), 60)
  const got = async (type: string, subject: unknown): Promise<string> => (await receiver.receive(tx, await set(type, subject))).result
  t.equal(await got(EVENT.sessionRevoked, { format: 'complex', user: { format: 'iss_sub', iss: IDP, sub: 'ann' }, session: { format: 'opaque', id: 'idp-1' } }), 'applied')
  t.equal(await got(EVENT.sessionRevoked, { format: 'complex', session: { format: 'opaque', id: 'idp-9' } }), 'applied')
  t.equal(await got(EVENT.sessionRevoked, { format: 'opaque', id: 'bo' }), 'applied')
  t.equal(await got(EVENT.credentialChange, { format: 'email', email: 'ANN@example.com' }), 'applied')
  t.equal(await got(EVENT.accountDisabled, { format: 'complex', session: { format: 'opaque', id: 'idp-1' } }), 'applied')
  t.equal(await got(EVENT.accountPurged, { format: 'email', email: 'nobody@example.com' }), 'applied')
  t.equal(await got(EVENT.sessionsRevoked, { format: 'phone_number', phone_number: '+1' }), 'ignored')
  t.equal(await got('https://example.com/other', { format: 'opaque', id: 'x' }), 'ignored')
  t.equal(await got(EVENT.verification, { format: 'opaque', id: 'stream' }), 'recorded')
  t.same(calls, ['idp idp-1 ann', 'idp idp-9', 'user bo', 'user ann', 'user ann2', 'user ann'])
  t.same(counted.slice(0, 3), ['https://tx.example caep.session-revoked applied', 'https://tx.example caep.session-revoked applied', 'https://tx.example caep.session-revoked applied'])
  t.equal(counted[7], 'https://tx.example other ignored')
  t.equal(counted[8], 'https://tx.example ssf.verification recorded')
  t.match(JSON.parse((await store.getNote('ssf-verified', config.issuer))!), { jti: 'j8' })
})

t.test('a failed application leaves the jti free; the retry is applied; then it is a replay', async (t) => {
  const { calls, receiver, fail } = setup(t)
  const token = await set(EVENT.accountDisabled, { format: 'opaque', id: 'cy' })
  fail.on = true
  t.match(await receiver.receive(tx, token), { result: 'unavailable', cause: 'store' })
  fail.on = false
  t.match(await receiver.receive(tx, token), { result: 'applied' })
  t.match(await receiver.receive(tx, token), { result: 'replay' })
  t.same(calls, ['user cy'], 'applied once')
})

t.test('invalid SETs, a malformed subject, a mislabeled poll entry', async (t) => {
  const { calls, receiver } = setup(t)
  t.match(await receiver.receive(tx, 'nope'), { result: 'invalid', err: 'invalid_request' })
  t.match(await receiver.receive(tx, await set(EVENT.accountDisabled, { format: 'opaque' })), { result: 'invalid', err: 'invalid_request' })
  t.match(await receiver.receive(tx, await set(EVENT.accountDisabled, { format: 'opaque', id: 'x' }), 'another-jti'), { result: 'invalid', jti: 'another-jti' })
  t.same(calls, [])
})
