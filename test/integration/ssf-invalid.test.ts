/**
 * Every invalid push is refused with the RFC 8935 answer and changes no state: the session stays alive on
 * both replicas, its device record and the user's version are untouched, and its WebSocket stays open.
 */
import t from 'tap'
import { generateKeyPair, SignJWT } from 'jose'
import WebSocket from 'ws'
import { startRedis } from '../helpers/redis-server.js'
import { alive, device, socket, startSsfStack } from '../helpers/ssf-stack.js'
import { EVENT, push } from '../helpers/ssf-transmitter.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
const { s, tx, pushToken } = await startSsfStack(t, { redisUrl: redis.url })
const r2 = await s.replica()

t.test('every invalid SET or request is refused and changes nothing', async (t) => {
  const d = await device(s, 'ssf-dave')
  const ws = await socket(t, d, s.url)
  const before = await s.gateway.ctx.store.check(d.user, d.sid)
  const subject = { format: 'iss_sub', iss: s.idp.issuer, sub: d.user }
  const sign = async (parts: Parameters<typeof tx.sign>[0] = {}): Promise<string> => await tx.sign({ type: EVENT.accountDisabled, subject, ...parts })
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: tx.issuer, aud: tx.audience, iat: now, jti: 'x-1', sub_id: subject, events: { [EVENT.accountDisabled]: {} } }
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const { privateKey: foreign } = await generateKeyPair('RS256')

  const cases: Array<[string, number, string, () => Promise<{ status: number, body: Record<string, string> }>]> = [
    ['bad signature', 400, 'invalid_key', async () => { const set = await sign(); return await push(r2.url, pushToken, set.slice(0, -4) + (set.endsWith('AAAA') ? 'BBBB' : 'AAAA')) }],
    ['signed by a key the transmitter never published (same kid)', 400, 'invalid_key', async () => await push(r2.url, pushToken, await sign({ key: foreign }))],
    ['signed by an unknown kid', 400, 'invalid_key', async () => await push(r2.url, pushToken, await sign({ key: foreign, header: { kid: 'no-such-kid' } }))],
    ['alg none', 400, 'invalid_request', async () => await push(r2.url, pushToken, `${enc({ alg: 'none', typ: 'secevent+jwt' })}.${enc(claims)}.`)],
    ['HS256 with the push token as secret', 400, 'invalid_key', async () => await push(r2.url, pushToken, await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'secevent+jwt' }).sign(new TextEncoder().encode(pushToken)))],
    ['wrong iss', 400, 'invalid_issuer', async () => await push(r2.url, pushToken, await sign({ claims: { iss: `${tx.issuer}/other` } }))],
    ['missing iss', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ omit: ['iss'] }))],
    ['wrong aud', 400, 'invalid_audience', async () => await push(r2.url, pushToken, await sign({ claims: { aud: 'https://someone-else.example' } }))],
    ['missing aud', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ omit: ['aud'] }))],
    ['wrong typ', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ header: { typ: 'JWT' } }))],
    ['logout token typ', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ header: { typ: 'logout+jwt' } }))],
    ['no typ', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ header: { typ: undefined } }))],
    ['a sub claim present', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ claims: { sub: d.user } }))],
    ['no events', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ omit: ['events'] }))],
    ['events not an object', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ claims: { events: [EVENT.accountDisabled] } }))],
    ['two events', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ claims: { events: { [EVENT.accountDisabled]: {}, [EVENT.credentialChange]: {} } } }))],
    ['event value not an object', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ claims: { events: { [EVENT.accountDisabled]: true } } }))],
    ['future iat', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ claims: { iat: now + 3600 } }))],
    ['iat older than a day', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ claims: { iat: now - 2 * 86400 } }))],
    ['missing iat', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ omit: ['iat'] }))],
    ['missing jti', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ omit: ['jti'] }))],
    ['expired exp', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ claims: { exp: now - 300 } }))],
    ['malformed subject', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ subject: { format: 'email', email: 42 } }))],
    ['subject without format', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign({ subject: { sub: d.user } }))],
    ['an encrypted SET (JWE)', 400, 'invalid_request', async () => await push(r2.url, pushToken, 'a.b.c.d.e')],
    ['not a JWT', 400, 'invalid_request', async () => await push(r2.url, pushToken, 'hello')],
    ['empty body', 400, 'invalid_request', async () => await push(r2.url, pushToken, '')],
    ['replayed jti', 400, 'invalid_request', async () => {
      const once = await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: 'nobody-replay' } })
      t.equal((await push(r2.url, pushToken, once)).status, 202, 'first use accepted')
      return await push(s.url, pushToken, once)
    }],
    ['wrong bearer', 401, 'authentication_failed', async () => await push(r2.url, `${pushToken}x`, await sign())],
    ['no bearer', 401, 'authentication_failed', async () => await push(r2.url, undefined, await sign())],
    ['another scheme', 401, 'authentication_failed', async () => {
      const res = await fetch(`${r2.url}/auth/ssf/push`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt', authorization: `Basic ${pushToken}` }, body: await sign() })
      return { status: res.status, body: await res.json() as Record<string, string> }
    }],
    ['wrong content type (JSON)', 400, 'invalid_request', async () => await push(r2.url, pushToken, JSON.stringify({ set: await sign() }), 'application/json')],
    ['wrong content type (text/plain)', 400, 'invalid_request', async () => await push(r2.url, pushToken, await sign(), 'text/plain')],
    ['wrong content type (form)', 400, 'invalid_request', async () => await push(r2.url, pushToken, `set=${await sign()}`, 'application/x-www-form-urlencoded')],
    ['oversized body', 400, 'invalid_request', async () => await push(r2.url, pushToken, `${await sign()}${'A'.repeat(70_000)}`)]
  ]
  for (const [name, status, err, run] of cases) {
    const res = await run()
    t.equal(res.status, status, `${name}: ${status}`)
    t.equal(res.body.err, err, `${name}: ${err}`)
    t.type(res.body.description, 'string', `${name}: says why`)
  }
  t.ok(await alive(d, s.url), 'the session still passes replica 1')
  t.ok(await alive(d, r2.url), 'and replica 2')
  t.ok(await s.gateway.ctx.store.getSession(d.user, d.sid), 'its device record is there')
  t.same(await s.gateway.ctx.store.check(d.user, d.sid), before, 'neither denied nor a new user version')
  t.equal(ws.ws.readyState, WebSocket.OPEN, 'its WebSocket is open')

  const wrongMethod = await fetch(`${r2.url}/auth/ssf/push`)
  t.equal(wrongMethod.status, 405)
  const unauth = await fetch(`${r2.url}/auth/ssf/push`, { method: 'POST', body: 'x', headers: { 'content-type': 'application/secevent+jwt' } })
  t.equal(unauth.headers.get('www-authenticate'), 'Bearer', '401 says Bearer')
})
