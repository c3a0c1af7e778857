/**
 * SET rules in isolation (jose, a local key set): what passes, and which RFC 8935 `err` each rule gives.
 */
import t from 'tap'
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose'
import { KeysUnavailableError, SetError, setReplayWindow, validateSet } from '../../src/ssf/set.js'
import { EVENT } from '../../src/ssf/events.js'

const now = 1_800_000_000
const rsa = await generateKeyPair('RS256')
const ec = await generateKeyPair('ES256')
const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'r1', alg: 'RS256' }, { ...(await exportJWK(ec.publicKey)), kid: 'e1', alg: 'ES256' }] })
const opts = { issuer: 'https://tx.example', audience: 'https://gw.example', keys, now }
const subject = { format: 'opaque', id: 'alice' }

async function set (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key = rsa.privateKey, alg = 'RS256'): Promise<string> {
  return await new SignJWT({ iss: 'https://tx.example', aud: 'https://gw.example', iat: now, jti: 'j1', sub_id: subject, events: { [EVENT.accountDisabled]: { reason: 'x' } }, ...claims })
    .setProtectedHeader({ alg, kid: alg === 'RS256' ? 'r1' : 'e1', typ: 'secevent+jwt', ...header }).sign(key)
}

t.test('a valid SET yields its one event and subject', async (t) => {
  t.same(await validateSet(await set(), opts), { iss: 'https://tx.example', jti: 'j1', iat: now, type: EVENT.accountDisabled, payload: { reason: 'x' }, subject })
  t.ok(await validateSet(await set({}, {}, ec.privateKey, 'ES256'), opts), 'ES256')
  t.ok(await validateSet(await set({}, { typ: 'application/secevent+jwt' }), opts), 'typ with the application/ prefix')
  t.ok(await validateSet(await set({ aud: ['https://gw.example', 'https://other.example'] }), opts), 'aud array naming us')
  t.ok(await validateSet(await set({ exp: now + 60, unknown: 1 }), opts), 'a future exp and unknown claims are fine')
  t.ok(await validateSet(` ${await set()}\n`, opts), 'surrounding whitespace')
  const legacy = await validateSet(await set({ sub_id: undefined, events: { [EVENT.accountDisabled]: { subject } } }), opts)
  t.same(legacy.subject, subject, 'a subject inside the event (RISC before SSF 1.0)')
  const inEvent = await validateSet(await set({ sub_id: undefined, events: { [EVENT.accountDisabled]: { sub_id: subject } } }), opts)
  t.same(inEvent.subject, subject, 'sub_id inside the event')
  const none = await validateSet(await set({ sub_id: undefined }), opts)
  t.equal(none.subject, undefined, 'no subject: for the receiver to judge')
})

t.test('each rule refuses with its err code', async (t) => {
  const hs = await new SignJWT({ iss: 'https://tx.example', aud: 'https://gw.example', iat: now, jti: 'j', events: { x: {} } }).setProtectedHeader({ alg: 'HS256', typ: 'secevent+jwt' }).sign(new Uint8Array(32))
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const other = await generateKeyPair('RS256')
  const cases: Array<[string, string, () => Promise<unknown>]> = [
    ['missing', 'invalid_request', async () => await validateSet(undefined, opts)],
    ['too large', 'invalid_request', async () => await validateSet('a'.repeat(70_000), opts)],
    ['JWE', 'invalid_request', async () => await validateSet('a.b.c.d.e', opts)],
    ['two parts', 'invalid_request', async () => await validateSet('a.b', opts)],
    ['garbage header', 'invalid_request', async () => await validateSet('!!.b.c', opts)],
    ['alg none', 'invalid_request', async () => await validateSet(`${enc({ alg: 'none', typ: 'secevent+jwt' })}.${enc({})}.`, opts)],
    ['HS256', 'invalid_key', async () => await validateSet(hs, opts)],
    ['no typ', 'invalid_request', async () => await validateSet(await set({}, { typ: undefined }), opts)],
    ['typ JWT', 'invalid_request', async () => await validateSet(await set({}, { typ: 'JWT' }), opts)],
    ['other key', 'invalid_key', async () => await validateSet(await set({}, {}, other.privateKey), opts)],
    ['unknown kid', 'invalid_key', async () => await validateSet(await set({}, { kid: 'zz' }), opts)],
    ['wrong iss', 'invalid_issuer', async () => await validateSet(await set({ iss: 'https://evil.example' }), opts)],
    ['missing iss', 'invalid_request', async () => await validateSet(await set({ iss: undefined }), opts)],
    ['wrong aud', 'invalid_audience', async () => await validateSet(await set({ aud: 'https://other.example' }), opts)],
    ['missing aud', 'invalid_request', async () => await validateSet(await set({ aud: undefined }), opts)],
    ['iat in the future', 'invalid_request', async () => await validateSet(await set({ iat: now + 600 }), opts)],
    ['iat too old', 'invalid_request', async () => await validateSet(await set({ iat: now - 2 * 86_400 }), opts)],
    ['missing iat', 'invalid_request', async () => await validateSet(await set({ iat: undefined }), opts)],
    ['missing jti', 'invalid_request', async () => await validateSet(await set({ jti: undefined }), opts)],
    ['jti too long', 'invalid_request', async () => await validateSet(await set({ jti: 'j'.repeat(300) }), opts)],
    ['expired', 'invalid_request', async () => await validateSet(await set({ exp: now - 600 }), opts)],
    ['sub present', 'invalid_request', async () => await validateSet(await set({ sub: 'alice' }), opts)],
    ['no events', 'invalid_request', async () => await validateSet(await set({ events: undefined }), opts)],
    ['events an array', 'invalid_request', async () => await validateSet(await set({ events: [EVENT.accountDisabled] }), opts)],
    ['no event', 'invalid_request', async () => await validateSet(await set({ events: {} }), opts)],
    ['two events', 'invalid_request', async () => await validateSet(await set({ events: { a: {}, b: {} } }), opts)],
    ['event not an object', 'invalid_request', async () => await validateSet(await set({ events: { a: 'x' } }), opts)]
  ]
  for (const [name, code, run] of cases) {
    const err = await run().then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof SetError, `${name}: SetError`)
    t.equal((err as SetError).err, code, `${name}: ${code}`)
  }
})

t.test('a key lookup that cannot reach the keys is not an invalid SET', async (t) => {
  const broken = async (): Promise<never> => { throw new KeysUnavailableError('down') }
  await t.rejects(validateSet(await set(), { ...opts, keys: broken }), KeysUnavailableError)
})

t.test('the replay window ends when the SET is too old to be accepted again', async (t) => {
  t.equal(setReplayWindow(now, now), 86_400 + 120)
  t.equal(setReplayWindow(now - 86_400, now), 120)
  t.equal(setReplayWindow(now - 10 * 86_400, now), 60, 'at least a minute')
})

t.test('each rule also has its own code (logged), finer than the RFC 8935 err', async (t) => {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const other = await generateKeyPair('RS256')
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['SG_SET_NOT_A_SET', async () => await validateSet(undefined, opts)],
    ['SG_SET_TOO_LARGE', async () => await validateSet('a'.repeat(70_000), opts)],
    ['SG_SET_ENCRYPTED', async () => await validateSet('a.b.c.d.e', opts)],
    ['SG_SET_NOT_JWS', async () => await validateSet('a.b', opts)],
    ['SG_SET_MALFORMED', async () => await validateSet('!!.b.c', opts)],
    ['SG_SET_UNSIGNED', async () => await validateSet(`${enc({ alg: 'none', typ: 'secevent+jwt' })}.${enc({})}.`, opts)],
    ['SG_SET_TYP', async () => await validateSet(await set({}, { typ: 'JWT' }), opts)],
    ['SG_SET_SIGNATURE', async () => await validateSet(await set({}, {}, other.privateKey), opts)],
    ['SG_SET_KEY_UNKNOWN', async () => await validateSet(await set({}, { kid: 'zz' }), opts)],
    ['SG_SET_ISSUER', async () => await validateSet(await set({ iss: 'https://evil.example' }), opts)],
    ['SG_SET_AUDIENCE', async () => await validateSet(await set({ aud: 'https://other.example' }), opts)],
    ['SG_SET_CLAIM_MISSING', async () => await validateSet(await set({ jti: undefined }), opts)],
    ['SG_SET_IAT_FUTURE', async () => await validateSet(await set({ iat: now + 600 }), opts)],
    ['SG_SET_IAT_TOO_OLD', async () => await validateSet(await set({ iat: now - 2 * 86_400 }), opts)],
    ['SG_SET_JTI_TOO_LONG', async () => await validateSet(await set({ jti: 'j'.repeat(300) }), opts)],
    ['SG_SET_EXPIRED', async () => await validateSet(await set({ exp: now - 600 }), opts)],
    ['SG_SET_SUB', async () => await validateSet(await set({ sub: 'alice' }), opts)],
    ['SG_SET_EVENTS', async () => await validateSet(await set({ events: [EVENT.accountDisabled] }), opts)],
    ['SG_SET_EVENT_COUNT', async () => await validateSet(await set({ events: { a: {}, b: {} } }), opts)],
    ['SG_SET_EVENT', async () => await validateSet(await set({ events: { a: 'x' } }), opts)],
    ['SG_SET_EVENT_TYPE_TOO_LONG', async () => await validateSet(await set({ events: { ['x'.repeat(600)]: {} } }), opts)]
  ]
  for (const [code, run] of cases) {
    const err = await run().then(() => undefined, (e: unknown) => e)
    t.equal((err as SetError | undefined)?.code, code, code)
  }
})
