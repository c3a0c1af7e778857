/**
 * The Store contract, run against every implementation (after oauth2-proxy's pkg/sessions/tests): one
 * suite per concern (suite-revocation.ts, suite-devices.ts, suite-claims.ts), each case with a fresh
 * store from `make` and its own random user ids. Targets: memory (memory.test.ts), Redis standalone and
 * the near cache over it (redis.test.ts), Sentinel (redis-sentinel.test.ts), Cluster
 * (redis-cluster.test.ts), the near cache over memory (test/unit/near-cache.test.ts).
 */
import type { Test } from 'tap'
import { claimSuite } from './suite-claims.js'
import { deviceSuite } from './suite-devices.js'
import type { StoreHarness } from './suite-kit.js'
import { revocationSuite } from './suite-revocation.js'

export type { StoreHarness } from './suite-kit.js'

/** Registers every concern's contract tests for one Store implementation under `name`. */
export async function storeSuite (t: Test, name: string, make: () => Promise<StoreHarness>): Promise<void> {
  await t.test(name, async (t) => {
    await revocationSuite(t, make)
    await deviceSuite(t, make)
    await claimSuite(t, make)
  })
}
