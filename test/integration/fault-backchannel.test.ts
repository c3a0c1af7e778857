/**
 * Fault injection on the IdP's logout channels: back-channel by `sid`, back-channel by `sub` only, and
 * front-channel (`iss` + `sid`). Every store step fails in turn, then Redis unreachable, a stall, SIGSTOP
 * and ACLs; each time the answer is the documented failure, the IdP's retry of the very same logout token
 * (or front-channel URL) succeeds, and no revoked session is live on either replica afterwards.
 */
import t from 'tap'
import { FAULTS, faultRun, startEnv, sweep } from '../helpers/fault-kit.js'
import { backchannelSid, backchannelSub, frontchannel } from '../helpers/fault-paths.js'

const env = await startEnv(t)
const faults = [FAULTS.unreachable, FAULTS.stall, FAULTS.sigstop, FAULTS.noScripting, FAULTS.noPublish, FAULTS.noDel]

for (const path of [backchannelSid, backchannelSub, frontchannel]) {
  await t.test(path.name, async (t) => {
    await sweep(t, env, path)
    for (const f of faults) await t.test(`${path.name}: ${f.name}`, async (t) => { await faultRun(t, env, path, f) })
  })
}
