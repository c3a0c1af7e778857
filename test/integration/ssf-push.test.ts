/**
 * Shared Signals push delivery end to end: a real transmitter (test/helpers/ssf-transmitter.ts) signs
 * each CAEP / RISC event with each subject format and pushes it to replica 2; the session, open through
 * a WebSocket on replica 1, is refused on both replicas and its WebSocket closes with 1008 within 1 s.
 */
import t from 'tap'
import { startRedis } from '../helpers/redis-server.js'
import { alive, device, socket, startSsfStack, type Device } from '../helpers/ssf-stack.js'
import { EVENT, push } from '../helpers/ssf-transmitter.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
const { s, tx, pushToken } = await startSsfStack(t, { redisUrl: redis.url })
const r2 = await s.replica()
const iss = s.idp.issuer

type Subject = (d: Device) => Record<string, unknown>
const cases: Array<{ name: string, type: string, subject: Subject, scope: 'device' | 'user', legacy?: boolean }> = [
  { name: 'CAEP session-revoked, complex user (iss_sub) + session', type: EVENT.sessionRevoked, scope: 'device', subject: (d) => ({ format: 'complex', user: { format: 'iss_sub', iss, sub: d.user }, session: { format: 'opaque', id: d.idpSid } }) },
  { name: 'CAEP session-revoked, complex session only', type: EVENT.sessionRevoked, scope: 'device', subject: (d) => ({ format: 'complex', session: { format: 'opaque', id: d.idpSid } }) },
  { name: 'CAEP session-revoked, complex user (email) + session', type: EVENT.sessionRevoked, scope: 'device', subject: (d) => ({ format: 'complex', user: { format: 'email', email: `${d.user}@EXAMPLE.com` }, session: { format: 'opaque', id: d.idpSid } }) },
  { name: 'CAEP session-revoked, iss_sub user only', type: EVENT.sessionRevoked, scope: 'user', subject: (d) => ({ format: 'iss_sub', iss, sub: d.user }) },
  { name: 'CAEP credential-change, email', type: EVENT.credentialChange, scope: 'user', subject: (d) => ({ format: 'email', email: `${d.user}@example.com` }) },
  { name: 'RISC account-disabled, opaque', type: EVENT.accountDisabled, scope: 'user', subject: (d) => ({ format: 'opaque', id: d.user }) },
  { name: 'RISC account-purged, iss_sub', type: EVENT.accountPurged, scope: 'user', subject: (d) => ({ format: 'iss_sub', iss, sub: d.user }) },
  { name: 'RISC sessions-revoked, aliases (email, opaque)', type: EVENT.sessionsRevoked, scope: 'user', subject: (d) => ({ format: 'aliases', identifiers: [{ format: 'email', email: `${d.user}@example.com` }, { format: 'opaque', id: 'someone-else' }] }) },
  { name: 'RISC account-disabled, legacy subject in the event (subject_type iss-sub)', type: EVENT.accountDisabled, scope: 'user', legacy: true, subject: (d) => ({ subject_type: 'iss-sub', iss, sub: d.user }) }
]

let n = 0
for (const c of cases) {
  t.test(c.name, async (t) => {
    const user = `ssf-user-${n++}`
    const target = await device(s, user)
    const sibling = await device(s, user) // same user, its own IdP session
    const bystander = await device(s, `${user}-other`)
    const ws = await socket(t, target, s.url)
    t.ok(await alive(target, s.url) && await alive(target, r2.url), 'in on both replicas')

    const set = await tx.sign(c.legacy === true
      ? { type: c.type, omit: ['sub_id'], event: { subject: c.subject(target), reason: 'hijacking' } }
      : { type: c.type, subject: c.subject(target) })
    const at = Date.now()
    const res = await push(r2.url, pushToken, set)
    t.equal(res.status, 202, 'accepted')
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.equal(await ws.closed, 1008, 'the WebSocket through replica 1 closed with policy violation')
    const ms = await ws.since(at)
    t.ok(ms < 1000, `within 1 s of the push to replica 2 (${ms} ms)`)
    t.notOk(await alive(target, s.url), 'replica 1 refuses the session')
    t.notOk(await alive(target, r2.url), 'replica 2 refuses the session')
    t.equal(await s.gateway.ctx.store.getSession(user, target.sid), null, 'its device record (credential) is gone')
    if (c.scope === 'user') {
      t.notOk(await alive(sibling, s.url), 'every other device of the user is out too')
      t.same(await s.gateway.ctx.store.listSessions(user), [], 'no device of the user left')
    } else {
      t.ok(await alive(sibling, s.url), 'the same user\'s other IdP session is untouched')
    }
    t.ok(await alive(bystander, s.url), 'another user is untouched')
    const replay = await push(s.url, pushToken, set)
    t.equal(replay.status, 400, 'the same SET again is a replay')
    t.match(replay.body, { err: 'invalid_request', description: /replay/ })
  })
}

t.test('events that name nothing the gateway keeps, or that it does not act on: 202, nothing revoked', async (t) => {
  const d = await device(s, 'ssf-keeper')
  const sets = [
    await tx.sign({ type: 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change', subject: { format: 'opaque', id: d.user } }),
    await tx.sign({ type: 'https://example.com/event/unknown', subject: { format: 'opaque', id: d.user } }),
    await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'iss_sub', iss: 'https://other-idp.example', sub: d.user } }),
    await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'phone_number', phone_number: '+12065550100' } }),
    await tx.sign({ type: EVENT.credentialChange, subject: { format: 'email', email: 'nobody-here@example.com' } })
  ]
  for (const set of sets) t.equal((await push(r2.url, pushToken, set)).status, 202)
  t.ok(await alive(d, s.url), 'still in')
  const metrics = await r2.gateway.ctx.metrics.registry.metrics()
  t.match(metrics, /sessiongate_ssf_events_total\{transmitter="[^"]+",type="other",result="ignored"\} 2/, 'unknown types counted as other/ignored')
})

t.test('a verification event is accepted and recorded', async (t) => {
  const set = await tx.sign({ type: EVENT.verification, subject: { format: 'opaque', id: 'stream-1' }, event: { state: 'abc123' } })
  t.equal((await push(r2.url, pushToken, set)).status, 202)
  const res = await fetch(`${s.adminUrl}/admin/ssf`, { headers: { authorization: `Bearer ${s.adminToken}` } })
  t.equal(res.status, 200)
  const body = await res.json() as { transmitters: Array<Record<string, any>> }
  t.equal(body.transmitters[0]?.issuer, tx.issuer)
  t.equal(body.transmitters[0]?.verification.received.jti, JSON.parse(Buffer.from(set.split('.')[1]!, 'base64url').toString()).jti)
  t.equal((await fetch(`${s.adminUrl}/admin/ssf`)).status, 401, 'the admin token is required')
  const metrics = await r2.gateway.ctx.metrics.registry.metrics()
  t.match(metrics, /sessiongate_ssf_events_total\{transmitter="[^"]+",type="ssf.verification",result="recorded"\} 1/)
  t.match(metrics, /sessiongate_ssf_events_total\{transmitter="[^"]+",type="risc.account-disabled",result="applied"\}/)
  t.match(metrics, /sessiongate_logouts_total\{channel="ssf"\}/)
})

t.test('an open event stream on replica 1 says logout and ends', async (t) => {
  const d = await device(s, 'ssf-sse')
  const res = await fetch(`${s.url}/auth/events`, { headers: { cookie: d.cookie } })
  t.equal(res.status, 200)
  const reader = res.body!.getReader()
  t.teardown(() => reader.cancel().catch(() => {}))
  let text = ''
  const done = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      text += Buffer.from(value).toString()
    }
  })()
  while (!text.includes('event: session')) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal((await push(r2.url, pushToken, await tx.sign({ type: EVENT.credentialChange, subject: { format: 'iss_sub', iss, sub: d.user } }))).status, 202)
  await done
  t.match(text, /event: logout/, 'the stream said logout, then closed')
})

t.test('the content type may carry parameters and any case; the bearer scheme any case', async (t) => {
  const d = await device(s, 'ssf-params')
  const set = await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: d.user } })
  const res = await fetch(`${r2.url}/auth/ssf/push`, { method: 'POST', headers: { 'content-type': 'Application/SecEvent+JWT; charset=utf-8', authorization: `bearer ${pushToken}` }, body: set })
  t.equal(res.status, 202)
  t.notOk(await alive(d, s.url), 'applied')
})

t.test('no SET or token ever reaches the logs', async (t) => {
  const set = await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: 'log-check' } })
  await push(s.url, pushToken, set)
  await push(s.url, 'wrong-token-0123456789', set)
  const logs = s.logs.join('\n')
  t.notOk(logs.includes(set.split('.')[2]!), 'no SET signature')
  t.notOk(logs.includes(set.split('.')[1]!), 'no SET payload')
  t.notOk(logs.includes(pushToken), 'no push token')
})
