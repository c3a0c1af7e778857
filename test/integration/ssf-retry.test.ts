/**
 * A push that failed half-way (the store refused the revocation) is answered 503 and accepted when the
 * transmitter sends the same SET again: the jti is recorded only after the revocation succeeded.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { startRedis } from '../helpers/redis-server.js'
import { alive, device, socket, startSsfStack } from '../helpers/ssf-stack.js'
import { EVENT, push } from '../helpers/ssf-transmitter.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
const admin = new Redis(redis.url)
t.teardown(() => { admin.disconnect() })
const { s, tx, pushToken } = await startSsfStack(t, { redisUrl: redis.url })
const r2 = await s.replica()

const kinds = [
  { name: 'a user-wide event (RISC account-disabled, email)', scope: 'user', parts: (user: string, _idpSid: string) => ({ type: EVENT.accountDisabled, subject: { format: 'email', email: `${user}@example.com` } }) },
  { name: 'a session event (CAEP session-revoked, complex)', scope: 'device', parts: (user: string, idpSid: string) => ({ type: EVENT.sessionRevoked, subject: { format: 'complex', user: { format: 'opaque', id: user }, session: { format: 'opaque', id: idpSid } } }) }
]

for (const k of kinds) {
  t.test(`${k.name}: the store fails, 503; the same SET retried is applied`, async (t) => {
    const user = `ssf-retry-${k.scope}`
    const d = await device(s, user)
    const ws = await socket(t, d, s.url)
    const set = await tx.sign(k.parts(user, d.idpSid))
    // Scripting taken away: the replay check (EXISTS) and the index reads work, the revocation (Lua) fails.
    await admin.call('ACL', 'SETUSER', 'default', '-@scripting')
    let failed
    try { failed = await push(r2.url, pushToken, set) } finally { await admin.call('ACL', 'SETUSER', 'default', '+@all') }
    t.equal(failed.status, 503, 'not a success: the transmitter will retry')
    t.match(failed.body, { err: 'temporarily_unavailable' })
    t.equal(failed.headers.get('retry-after'), '5')
    t.ok(await alive(d, s.url), 'nothing was revoked yet')
    t.ok(await s.gateway.ctx.store.getSession(user, d.sid), 'the device record is still there')

    const at = Date.now()
    const retried = await push(r2.url, pushToken, set)
    t.equal(retried.status, 202, 'the retry of the same SET is accepted')
    t.equal(await ws.closed, 1008, 'the WebSocket closed')
    t.ok(await ws.since(at) < 1000, 'within 1 s')
    t.notOk(await alive(d, s.url), 'and the session is gone')
    const replay = await push(r2.url, pushToken, set)
    t.equal(replay.status, 400, 'a replay after success is refused')
    t.match(replay.body.description, /replay/)
  })
}

t.test('the jti is kept a bounded time (iat + a day), not forever', async (t) => {
  const set = await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: 'nobody-ttl' }, claims: { jti: `ttl-${Date.now()}` } })
  t.equal((await push(r2.url, pushToken, set)).status, 202)
  const keys = (await admin.keys('*')).filter((key) => key.includes(':jti:ssf:') && key.includes('ttl-'))
  t.equal(keys.length, 1, 'one replay key')
  const ttl = await admin.ttl(keys[0]!)
  t.ok(ttl > 86_000 && ttl <= 86_400 + 3 * 60, `kept until iat + a day + skew (ttl ${ttl}s)`)
})
