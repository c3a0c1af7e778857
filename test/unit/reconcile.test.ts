/**
 * Reconciliation after a lost subscription (http/reconcile.ts), on the memory store: the sessions of open
 * connections are re-checked and exactly the revoked ones closed; failures are retried; a resubscribe
 * during a pass runs another. The same over real Redis, through the gateway: test/integration/reconcile.test.ts.
 */
import t from 'tap'
import { ConnectionRegistry, type CloseReason } from '../../src/http/connections.js'
import { reconcileConnections, reconcileOnResubscribe } from '../../src/http/reconcile.js'
import { MemoryStore } from '../../src/store/memory.js'
import type { SessionCheck, SessionRecord } from '../../src/store/store.js'

const quiet = { info: () => {}, warn: () => {} }

function rec (sub: string, sid: string): Omit<SessionRecord, 'version'> {
  const now = Date.now()
  return { sid, sub, iss: 'https://idp.example.test', createdAt: now, lastSeenAt: now, userAgent: 'ua', ip: '192.0.2.1', rememberMe: false, expiresAt: now + 3_600_000, credHash: `h-${sid}` }
}

/** A memory store that says when it resubscribes (on demand), and whose checks can be made to fail. */
class ResubscribingStore extends MemoryStore {
  readonly resubscribed = new Set<() => void>()
  failChecks = 0
  checks = 0
  gate: Promise<void> | undefined

  onResubscribed (cb: () => void): () => void {
    this.resubscribed.add(cb)
    return () => { this.resubscribed.delete(cb) }
  }

  resubscribe (): void { for (const cb of this.resubscribed) cb() }

  override async check (sub: string, sid: string): Promise<SessionCheck> {
    this.checks++
    if (this.failChecks > 0) {
      this.failChecks--
      throw new Error('store unavailable (test)')
    }
    const result = await super.check(sub, sid)
    if (this.gate !== undefined) await this.gate // the answer is held, as read
    return result
  }
}

/** A registry whose connections record how they were closed. */
function registry (): { r: ConnectionRegistry, closed: string[], add: (sub: string, sid: string, ver: number, epoch?: string) => () => void } {
  const r = new ConnectionRegistry()
  const closed: string[] = []
  let n = 0
  const add = (sub: string, sid: string, ver: number, epoch?: string): () => void => {
    const id = `${sid}#${++n}`
    return r.add({ sub, sid, ver, ...(epoch !== undefined ? { epoch } : {}) }, (why: CloseReason) => closed.push(`${id}:${why}`))
  }
  return { r, closed, add }
}

t.test('a pass closes the connections of revoked sessions, older versions and another epoch, and nothing else', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const epoch = await store.epoch()
  for (const [sub, sid] of [['alice', 'a1'], ['alice', 'a2'], ['bob', 'b1'], ['carol', 'c1'], ['dave', 'd1']] as const) await store.createSession(rec(sub, sid), 3600)
  // Revocations this registry never heard of (it is not subscribed in this test).
  await store.revokeSessions('alice', ['a1'], 60)
  await store.revokeUser('bob', 60) // bob's version is 1 now
  await store.createSession(rec('bob', 'b2'), 3600) // a new session at version 1

  const { r, closed, add } = registry()
  add('alice', 'a1', 0, epoch)
  add('alice', 'a1', 0) // a second connection of the same session, epoch unknown
  add('alice', 'a2', 0, epoch)
  add('bob', 'b1', 0, epoch)
  add('bob', 'b2', 1, epoch)
  add('carol', 'c1', 0, 'an-older-epoch')
  add('dave', 'd1', 0) // epoch unknown: judged on the session alone
  add('erin', 'e1', 0, epoch) // no state at all for erin (lost): refused as the gate would

  const result = await reconcileConnections(store, r)
  t.same(closed.sort(), ['a1#1:revoked', 'a1#2:revoked', 'b1#4:revoked', 'c1#6:revoked', 'e1#8:revoked'])
  t.same(result, { sessions: 7, closed: 5, failed: 0 })
  t.equal(r.size, 3, 'a2, b2 and d1 stay open')
  t.same(await reconcileConnections(store, r), { sessions: 3, closed: 0, failed: 0 }, 'a second pass closes nothing')
})

t.test('every resubscribe runs a pass; failed checks are retried; a resubscribe during a pass runs another', async (t) => {
  const store = new ResubscribingStore()
  t.teardown(() => store.close())
  await store.createSession(rec('alice', 'a1'), 3600)
  await store.createSession(rec('bob', 'b1'), 3600)
  const { r, closed, add } = registry()
  add('alice', 'a1', 0)
  add('bob', 'b1', 0)
  const warnings: string[] = []
  const stop = reconcileOnResubscribe(store, r, { info: () => {}, warn: (_o, msg) => { warnings.push(msg) } }, { retryMs: [20] })
  t.teardown(stop)
  t.equal(store.resubscribed.size, 1, 'listens for resubscribes')

  await store.revokeSessions('alice', ['a1'], 60)
  store.failChecks = 2 // both sessions' checks fail on the first pass
  store.resubscribe()
  await waitUntil(() => closed.length > 0, 'the retry to close alice\'s connection')
  t.same(closed, ['a1#1:revoked'])
  t.equal(warnings.length, 1, 'the failed pass was reported')
  t.equal(r.size, 1)

  // A resubscribe while a pass waits on the store: the pass read bob as live; the next one sees the
  // revocation made meanwhile.
  let open!: () => void
  store.gate = new Promise((resolve) => { open = resolve })
  const before = store.checks
  store.resubscribe()
  await waitUntil(() => store.checks > before, 'the first pass to read')
  await store.revokeSessions('bob', ['b1'], 60)
  store.resubscribe()
  store.gate = undefined
  open()
  await waitUntil(() => closed.length > 1, 'bob\'s connection to close')
  t.same(closed, ['a1#1:revoked', 'b1#2:revoked'])
  t.equal(store.checks - before, 2, 'two passes')

  stop()
  t.equal(store.resubscribed.size, 0, 'stop unregisters')
})

t.test('a store without onResubscribed never misses an event: nothing to run', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const { r } = registry()
  const stop = reconcileOnResubscribe(store, r, quiet)
  t.type(stop, 'function')
  stop()
})

async function waitUntil (cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
