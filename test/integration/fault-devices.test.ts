/**
 * Fault injection on the devices page's sign-out form: another device, and this device. Every store step
 * fails in turn, then Redis unreachable, a stall, SIGSTOP and ACLs; each time the answer is 503
 * store_unavailable, the very same form sent again (same cookies, same form token) succeeds, and the
 * signed-out session is refused on both replicas, by cookie and by device credential, with its WebSockets
 * closed, while the device that signed it out stays signed in.
 */
import t from 'tap'
import { ALL_FAULTS, faultMatrix, startEnv } from '../helpers/fault-kit.js'
import { devicesOther, devicesThis } from '../helpers/fault-paths.js'

const env = await startEnv(t)

await faultMatrix(t, env, [devicesOther, devicesThis], ALL_FAULTS)
