/**
 * Stream management: with `configurationUrl` the gateway reads the transmitter's SSF configuration (its
 * keys come from there), and with `manageStream: true` it creates (or, on the next replica, updates) its
 * stream at start-up and asks for a verification event; GET /admin/ssf shows the stream and whether the
 * verification that came back carries the requested state. Push and poll.
 */
import t from 'tap'
import { startRedis } from '../helpers/redis-server.js'
import { alive, device, startSsfStack } from '../helpers/ssf-stack.js'
import { EVENT, POLL, PUSH, push } from '../helpers/ssf-transmitter.js'
import { sleep } from '../helpers/store-kit.js'
import type { Stack } from '../helpers/stack.js'

async function until (cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!await cond()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`)
    await sleep(25)
  }
}

type Status = Record<string, any>
async function adminSsf (s: Stack): Promise<Status[]> {
  const res = await fetch(`${s.adminUrl}/admin/ssf`, { headers: { authorization: `Bearer ${s.adminToken}` } })
  if (res.status !== 200) throw new Error(`GET /admin/ssf: ${res.status}`)
  return (await res.json() as { transmitters: Status[] }).transmitters
}

const redis = await startRedis()
t.teardown(() => redis.stop())

t.test('push: the stream is created at start-up, verified, and updated (not duplicated) by the next replica', async (t) => {
  const { s, tx, pushToken } = await startSsfStack(t, {
    redisUrl: redis.url,
    transmitter: (tx, base) => ({ issuer: tx.issuer, configurationUrl: tx.configurationUrl, pushToken: base.pushToken, manageStream: true, managementToken: tx.managementToken })
  })
  await s.gateway.ssf!.managed()
  t.equal(tx.streams.size, 1, 'one stream created')
  const stream = [...tx.streams.values()][0]!
  t.same(stream.delivery, { method: PUSH, endpoint_url: `${s.config.publicUrl}/auth/ssf/push`, authorization_header: `Bearer ${pushToken}` }, 'push to this gateway with its bearer')
  t.same([...stream.events_requested].sort(), [EVENT.sessionRevoked, EVENT.credentialChange, EVENT.accountDisabled, EVENT.accountPurged, EVENT.sessionsRevoked, EVENT.verification].sort())
  t.equal(tx.verifications.length, 1, 'a verification was requested')
  t.type(tx.verifications[0]?.state, 'string')
  // The verification SET is pushed back, signed with the keys named by the configuration document.
  await until(() => tx.pushed.length === 1, 5000, 'the verification push')
  t.same(tx.pushed, [202], 'accepted')

  const [st] = await adminSsf(s)
  t.match(st, {
    issuer: tx.issuer,
    delivery: 'push',
    pushEndpoint: `${s.config.publicUrl}/auth/ssf/push`,
    keys: tx.jwksUri,
    configuration: 'loaded',
    manageStream: true,
    stream: { streamId: stream.stream_id, status: 'enabled' },
    verification: { requested: { streamId: stream.stream_id }, received: { matchesRequest: true } }
  })
  t.notOk(JSON.stringify(st).includes(pushToken), 'the status never shows the push token')
  t.notOk(JSON.stringify(st).includes(tx.managementToken), 'nor the management token')

  const r2 = await s.replica()
  await r2.gateway.ssf!.managed()
  t.equal(tx.streams.size, 1, 'still one stream')
  t.ok(tx.calls.some((c) => c.method === 'PATCH' && c.path === '/ssf/stream'), 'the next replica updated it')
  await until(() => tx.pushed.length === 2, 5000, 'the second verification push')
  const [st2] = await adminSsf(s)
  t.equal(st2?.verification.received.matchesRequest, true, 'the latest verification matches the latest request, on any replica')

  const d = await device(s, 'managed-user')
  t.equal((await push(r2.url, pushToken, await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: d.user } }))).status, 202)
  t.notOk(await alive(d, s.url), 'revocations flow through the managed stream')
})

t.test('poll: the stream names the poll endpoint; the verification is polled and acknowledged', async (t) => {
  const { s, tx } = await startSsfStack(t, {
    redisUrl: redis.url,
    transmitter: (tx) => ({ issuer: tx.issuer, configurationUrl: tx.configurationUrl, delivery: 'poll', pollToken: tx.pollToken, manageStream: true, managementToken: tx.managementToken }),
    deps: { ssfPoll: { leaseMs: 1000, idleMs: 50 } }
  })
  await s.gateway.ssf!.managed()
  const stream = [...tx.streams.values()][0]!
  t.equal(stream.delivery.method, POLL)
  await until(() => tx.acked.length === 1, 5000, 'the verification acknowledged')
  const [st] = await adminSsf(s)
  t.match(st, { delivery: 'poll', pollEndpoint: `${tx.issuer}/ssf/poll`, stream: { streamId: stream.stream_id }, verification: { received: { matchesRequest: true } }, poller: { polling: true } })

  const d = await device(s, 'managed-poll-user')
  const jti = tx.enqueue(await tx.sign({ type: EVENT.credentialChange, subject: { format: 'iss_sub', iss: s.idp.issuer, sub: d.user } }))
  await until(() => tx.acked.includes(jti), 5000, 'the ack')
  t.notOk(await alive(d, s.url), 'applied')
})

t.test('a management failure is shown, and the gateway serves anyway', async (t) => {
  const { s, tx } = await startSsfStack(t, {
    redisUrl: redis.url,
    transmitter: (tx, base) => ({ issuer: tx.issuer, configurationUrl: tx.configurationUrl, pushToken: base.pushToken, manageStream: true, managementToken: 'not-the-token' })
  })
  await s.gateway.ssf!.managed()
  t.equal(tx.streams.size, 0, 'no stream')
  const [st] = await adminSsf(s)
  t.match(st?.stream, { error: /HTTP 401/ })
  t.ok(s.logs.some((l) => l.includes('SSF stream management failed')), 'logged')
  t.notOk(s.logs.join('\n').includes('not-the-token'), 'without the token')
  t.equal((await fetch(`${s.adminUrl}/readyz`)).status, 200, 'ready')
})
