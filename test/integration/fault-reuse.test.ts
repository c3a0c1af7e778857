/**
 * Fault injection on reuse detection: a device credential that was rotated away, presented again after the
 * grace window, revokes the device. Every store step fails in turn, then Redis unreachable, a stall,
 * SIGSTOP and ACLs; each time the answer is 503 store_unavailable, the very same request (the stale
 * credential again) is refused with 401, and the device is out on both replicas: its live session cookie,
 * its current credential and its WebSockets.
 */
import t from 'tap'
import { FAULTS, faultRun, startEnv, sweep } from '../helpers/fault-kit.js'
import { REUSE_CONFIG, reuseDetection } from '../helpers/fault-paths.js'

const env = await startEnv(t, REUSE_CONFIG)
const faults = [FAULTS.unreachable, FAULTS.stall, FAULTS.sigstop, FAULTS.noScripting, FAULTS.noPublish, FAULTS.noDel]

await t.test(reuseDetection.name, async (t) => {
  await sweep(t, env, reuseDetection)
  for (const f of faults) await t.test(`${reuseDetection.name}: ${f.name}`, async (t) => { await faultRun(t, env, reuseDetection, f) })
})
