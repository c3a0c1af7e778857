/**
 * Poll delivery (RFC 8936) on two replicas: one polls at a time (a store lease), applied SETs are
 * acknowledged, invalid ones reported in setErrs, and a SET that could not be applied (the store refused
 * the revocation) is neither: the transmitter delivers it again and it is applied once the store works.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import type { Gateway } from '../../src/app.js'
import { startRedis } from '../helpers/redis-server.js'
import { alive, device, socket, startSsfStack } from '../helpers/ssf-stack.js'
import { EVENT } from '../helpers/ssf-transmitter.js'
import { sleep } from '../helpers/store-kit.js'

/** Resolves once `cond` holds, checking every 25 ms; fails the wait after `ms`. */
async function until (cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!await cond()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`)
    await sleep(25)
  }
}

const redis = await startRedis()
t.teardown(() => redis.stop())
const admin = new Redis(redis.url)
t.teardown(() => { admin.disconnect() })
const { s, tx } = await startSsfStack(t, {
  redisUrl: redis.url,
  transmitter: (tx, base) => ({ issuer: base.issuer, jwksUri: base.jwksUri, delivery: 'poll', pollUrl: `${tx.issuer}/ssf/poll`, pollToken: tx.pollToken }),
  deps: { ssfPoll: { leaseMs: 1000, idleMs: 50 } }
})
const r2 = await s.replica()
const gateways: Gateway[] = [s.gateway, r2.gateway]
const polling = async (g: Gateway): Promise<boolean> => ((await g.ssf!.status())[0]?.poller as { polling: boolean }).polling

t.test('one replica polls at a time', async (t) => {
  await until(async () => (await Promise.all(gateways.map(polling))).some((p) => p), 5000, 'a replica polls')
  await sleep(1500)
  const states = await Promise.all(gateways.map(polling))
  t.equal(states.filter((p) => p).length, 1, 'exactly one replica holds the lease')
  t.equal(tx.maxConcurrentPolls, 1, 'the transmitter never saw two poll requests at once')
})

t.test('an applied SET is acknowledged; the revocation reaches the other replica', async (t) => {
  const d = await device(s, 'poll-alice')
  const ws = await socket(t, d, s.url)
  const wsR2 = await socket(t, d, r2.url)
  const jti = tx.enqueue(await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: d.user } }))
  t.equal(await ws.closed, 1008, 'the WebSocket through replica 1 closed')
  t.equal(await wsR2.closed, 1008, 'the WebSocket through replica 2 closed')
  t.notOk(await alive(d, s.url), 'refused on replica 1')
  t.notOk(await alive(d, r2.url), 'refused on replica 2')
  await until(() => tx.acked.includes(jti), 5000, 'the ack')
  t.notOk(jti in tx.setErrs)
})

t.test('a SET delivered again after it was applied is acknowledged and revokes nothing new', async (t) => {
  const d = await device(s, 'poll-bob')
  const set = await tx.sign({ type: EVENT.credentialChange, subject: { format: 'email', email: 'poll-bob@example.com' } })
  const jti = tx.enqueue(set)
  await until(() => tx.acked.includes(jti), 5000, 'the first ack')
  t.notOk(await alive(d, s.url), 'applied')
  const fresh = await device(s, 'poll-bob')
  tx.enqueue(set)
  await until(() => tx.acked.filter((j) => j === jti).length === 2, 5000, 'the second ack')
  t.ok(await alive(fresh, s.url), 'the session signed in since is untouched (a replay is not applied)')
})

t.test('invalid SETs are reported in setErrs and never acknowledged', async (t) => {
  const d = await device(s, 'poll-carol')
  const good = await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: d.user } })
  const badSig = tx.enqueue(good.slice(0, -4) + (good.endsWith('AAAA') ? 'BBBB' : 'AAAA'), 'bad-signature')
  const wrongAud = tx.enqueue(await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: d.user }, claims: { aud: 'https://elsewhere.example' } }))
  const mislabeled = tx.enqueue(await tx.sign({ type: EVENT.accountDisabled, subject: { format: 'opaque', id: d.user } }), 'not-its-jti')
  await until(() => [badSig, wrongAud, mislabeled].every((j) => j in tx.setErrs), 5000, 'the setErrs')
  t.equal(tx.setErrs[badSig]?.err, 'invalid_key')
  t.equal(tx.setErrs[wrongAud]?.err, 'invalid_audience')
  t.equal(tx.setErrs[mislabeled]?.err, 'invalid_request')
  t.type(tx.setErrs[badSig]?.description, 'string')
  for (const j of [badSig, wrongAud, mislabeled]) t.notOk(tx.acked.includes(j), `${j} not acknowledged`)
  t.ok(await alive(d, s.url), 'nothing revoked')
})

t.test('a SET that could not be applied is neither acknowledged nor reported; applied once the store works', async (t) => {
  const d = await device(s, 'poll-dave')
  const ws = await socket(t, d, s.url)
  // The store refuses writes except the poller's own keys (lease, replay guard, notes): the revocation fails.
  await admin.call('ACL', 'SETUSER', 'default', 'resetkeys', '%R~*', '~sg:lease:*', '~sg:jti:*', '~sg:note:*')
  let jti = ''
  try {
    jti = tx.enqueue(await tx.sign({ type: EVENT.sessionsRevoked, subject: { format: 'iss_sub', iss: s.idp.issuer, sub: d.user } }))
    await until(() => tx.polls.filter((p) => p.returned.includes(jti)).length >= 2, 10_000, 'the SET delivered twice')
    t.notOk(tx.acked.includes(jti), 'not acknowledged')
    t.notOk(jti in tx.setErrs, 'not reported as invalid')
    t.ok(await alive(d, s.url), 'nothing revoked meanwhile')
  } finally {
    await admin.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*')
  }
  t.equal(await ws.closed, 1008, 'once the store works the WebSocket closes')
  await until(() => tx.acked.includes(jti), 10_000, 'the ack')
  t.notOk(await alive(d, s.url), 'the session is gone')
  t.notOk(jti in tx.setErrs)
})

t.test('when the polling replica stops, the other takes over', async (t) => {
  const holder = (await polling(s.gateway)) ? s.gateway : r2.gateway
  const other = holder === s.gateway ? r2.gateway : s.gateway
  await holder.ssf!.stop()
  await until(async () => await polling(other), 5000, 'the other replica polls')
  const d = await device(s, 'poll-erin')
  const jti = tx.enqueue(await tx.sign({ type: EVENT.accountPurged, subject: { format: 'opaque', id: d.user } }))
  await until(() => tx.acked.includes(jti), 5000, 'the ack')
  t.notOk(await alive(d, s.url), 'applied by the replica that took over')
  t.equal(tx.maxConcurrentPolls, 1, 'still never two polls at once')
})
