/**
 * Fault injection with a Sentinel failover, on every logout path: the master stops (SIGSTOP) while a logout
 * is under way, the sentinel promotes the replica, the old master comes back (SIGCONT) and is demoted
 * (what was sent to it meanwhile runs there, then is discarded by the resync). The logout answers
 * the documented failure; the very same request, sent again to the new master, succeeds; and the session
 * is refused on both replicas (both follow the failover), by cookie and by device credential.
 */
import t from 'tap'
import { startRedisSentinel } from '../helpers/redis-sentinel.js'
import { waitUntil, withAdmin } from '../helpers/redis-process.js'
import { pause } from '../helpers/fault-proxy.js'
import { faultRun, startSentinelEnv, type Fault } from '../helpers/fault-kit.js'
import * as paths from '../helpers/fault-paths.js'

const sentinel = await startRedisSentinel()
t.teardown(() => sentinel.stop())
const env = await startSentinelEnv(t, sentinel, paths.REUSE_CONFIG)

/** SIGSTOP on the master; cleared once the sentinel named another one, then SIGCONT (the old one is demoted). */
const failover = (): Fault => {
  let resume: (() => void) | undefined
  let before = 0
  return {
    key: 'failover',
    name: 'the master stops and the sentinel fails over',
    inject: async () => {
      const m = await sentinel.master()
      before = m.port
      // Everything so far (the sessions) is on the replica that will be promoted.
      await withAdmin(m.port, async (r) => await r.call('WAIT', 1, 2000))
      resume = await pause(m.port)
    },
    clear: async () => {
      const started = Date.now()
      let after = before
      try {
        await waitUntil(async () => (after = (await sentinel.master()).port) !== before, 20_000, 'the sentinel to promote the replica')
      } finally {
        resume?.()
      }
      const promoted = Date.now()
      // What the sentinel would tell the old master once it sees it again (it looks every 10 s): follow the new one.
      await withAdmin(before, async (r) => await r.call('REPLICAOF', '127.0.0.1', String(after)))
      // The fault is gone once the failover is over: the old master is the new one's replica, in sync.
      await sentinel.settled()
      t.comment(`failover: promoted after ${promoted - started} ms, settled ${Date.now() - promoted} ms later`)
    }
  }
}

const all = [paths.backchannelSid, paths.backchannelSub, paths.frontchannel, paths.adminUser, paths.adminSession,
  paths.rpLogout, paths.devicesOther, paths.devicesThis, paths.sessionsApi, paths.reuseDetection]
for (const path of all) {
  await t.test(`${path.name}: ${failover().name}`, async (t) => { await faultRun(t, env, path, failover()) })
}
