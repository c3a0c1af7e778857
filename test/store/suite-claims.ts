/**
 * The ClaimStore, Locks and CoordinationStore contracts (src/store/store.ts): one-time claims, locks,
 * leases and notes. Run by storeSuite (suite.ts) against every target.
 */
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { setupWith, type StoreHarness } from './suite-kit.js'

/** Registers the claim, lock, lease and note cases under `claims and locks`. */
export async function claimSuite (t: Test, make: () => Promise<StoreHarness>): Promise<void> {
  await t.test('claims and locks', async (t) => {
    const setup = setupWith(make)

    t.test('claimOnce: first true, replay false, true again after the ttl', async (t) => {
      const c = await setup(t)
      const id = randomUUID()
      t.equal(await c.store.wasClaimed('jti', id), false, 'nothing claimed yet')
      t.equal(await c.store.claimOnce('jti', id, 1), true)
      t.equal(await c.store.wasClaimed('jti', id), true, 'wasClaimed sees the claim')
      t.equal(await c.store.claimOnce('jti', id, 1), false)
      t.equal(await c.store.wasClaimed('state', id), false, 'kinds are separate for wasClaimed')
      t.equal(await c.store.claimOnce('state', id, 1), true, 'kinds are separate')
      await c.elapse(1100)
      t.equal(await c.store.wasClaimed('jti', id), false, 'expired with its ttl')
      t.equal(await c.store.claimOnce('jti', id, 1), true)
    })

    t.test('lease: one holder at a time, extended by its holder, free after its ttl or release', async (t) => {
      const c = await setup(t)
      const name = `poll:${randomUUID()}`
      t.equal(await c.store.lease(name, 'a', 300), true, 'a free lease is taken')
      t.equal(await c.store.lease(name, 'b', 300), false, 'another holder is refused')
      t.equal(await c.store.lease(name, 'a', 300), true, 'the holder extends it')
      await c.elapse(400)
      t.equal(await c.store.lease(name, 'b', 10_000), true, 'a lapsed lease goes to the next')
      await c.store.releaseLease(name, 'a')
      t.equal(await c.store.lease(name, 'a', 300), false, 'release by a non-holder changes nothing')
      await c.store.releaseLease(name, 'b')
      t.equal(await c.store.lease(name, 'a', 300), true, 'released: free again')
      t.equal(await c.store.lease(`other:${name}`, 'b', 300), true, 'names are separate')
    })

    t.test('notes: put, get, replace, expire', async (t) => {
      const c = await setup(t)
      const id = randomUUID()
      t.equal(await c.store.getNote('ssf', id), null)
      await c.store.putNote('ssf', id, '{"a":1}', 1)
      t.equal(await c.store.getNote('ssf', id), '{"a":1}')
      t.equal(await c.store.getNote('other', id), null, 'kinds are separate')
      await c.store.putNote('ssf', id, 'two', 1)
      t.equal(await c.store.getNote('ssf', id), 'two', 'replaced')
      await c.elapse(1100)
      t.equal(await c.store.getNote('ssf', id), null, 'expired with its ttl')
    })

    t.test('tryLock: one taker until the ttl, for its taker too; names are separate; claims are not locks', async (t) => {
      const c = await setup(t)
      const name = `refresh:${randomUUID()}`
      t.equal(await c.store.tryLock(name, 1), true, 'a free lock is taken')
      t.equal(await c.store.tryLock(name, 1), false, 'a held lock is refused')
      t.equal(await c.store.tryLock(`other:${name}`, 1), true, 'names are separate')
      t.equal(await c.store.claimOnce('jti', name, 1), true, 'a claim of another kind is not the lock')
      await c.elapse(1100)
      t.equal(await c.store.tryLock(name, 1), true, 'free again after its ttl')
    })
  })
}
