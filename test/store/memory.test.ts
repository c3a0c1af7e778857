import t from 'tap'
import { MemoryStore } from '../../src/store/memory.js'
import { StoreUnavailableError } from '../../src/store/store.js'
import { storeSuite } from './suite.js'

/** A store on a fake clock that starts at real time and only moves when told. */
function fakeClockStore (): { store: MemoryStore, advance: (ms: number) => void, now: () => number, errors: unknown[] } {
  let offset = 0
  const now = (): number => Date.now() + offset
  const errors: unknown[] = []
  const store = new MemoryStore({ now, logger: { error: (obj) => { errors.push(obj) } } })
  return { store, now, errors, advance: (ms) => { offset += ms } }
}

await storeSuite(t, 'memory', async () => {
  const { store, advance, now } = fakeClockStore()
  return { store, advance, now, cleanup: async () => { await store.close() } }
})

t.test('memory: the sweep frees expired entries', async (t) => {
  const { store, advance, now } = fakeClockStore()
  t.teardown(() => store.close())
  const sub = 'u1'
  await store.createSession({ sid: 's1', sub, iss: 'i', createdAt: now(), lastSeenAt: now(), userAgent: 'ua', ip: 'ip', rememberMe: false, expiresAt: now() + 1000, credHash: 'h', idpSid: 'x' }, 1)
  await store.revokeSessions(sub, ['gone'], 1)
  await store.claimOnce('jti', 'j', 1)
  await store.tryLock('refresh:s1', 1)
  await store.lease('poll', 'me', 1000)
  await store.putNote('ssf', 'x', 'v', 1)
  await store.revokeUser('u2', 1, 1)
  await store.logoutIdpSession('i', 'x', 1)
  advance(2000)
  store.sweep()
  // Internal maps are private; their emptiness is what bounds memory.
  const internals = store as unknown as Record<string, Map<string, unknown>> & { shared: Record<string, Map<string, unknown>> }
  for (const name of ['versions', 'denied', 'records', 'owners', 'idpIndex', 'revokedAt', 'idpLogouts']) {
    t.equal(internals[name]?.size, 0, `${name} is empty`)
  }
  for (const name of ['claims', 'locks', 'leases', 'notes']) t.equal(internals.shared[name]?.size, 0, `${name} is empty`)
})

t.test('memory: a throwing listener is logged, not swallowed', async (t) => {
  const { store, errors } = fakeClockStore()
  t.teardown(() => store.close())
  store.subscribe(() => { throw new Error('boom') })
  await store.revokeUser('u', 1)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(errors.length, 1)
})

t.test('memory: calls after close reject with StoreUnavailableError', async (t) => {
  const { store } = fakeClockStore()
  await store.close()
  await t.rejects(store.check('u', 's'), StoreUnavailableError)
  await t.rejects(store.ping(), { code: 'SG_STORE_UNAVAILABLE' })
})
