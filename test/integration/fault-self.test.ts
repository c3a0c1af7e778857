/**
 * Fault injection on the user's own ways out: RP-initiated logout (`GET /auth/logout?sid=`), the devices
 * page's sign-out form (another device, and this device), and the own-sessions API
 * (`DELETE /auth/sessions/:id`). Every store step fails in turn, then Redis unreachable, a stall, SIGSTOP
 * and ACLs; each time the answer is 503 store_unavailable, the very same request sent again (same cookies,
 * same form) succeeds, and the signed-out session is refused on both replicas, by cookie and by device
 * credential, with its WebSockets closed, while the device that signed it out stays signed in.
 */
import t from 'tap'
import { ALL_FAULTS, faultMatrix, startEnv } from '../helpers/fault-kit.js'
import { devicesOther, devicesThis, rpLogout, sessionsApi } from '../helpers/fault-paths.js'

const env = await startEnv(t)

await faultMatrix(t, env, [rpLogout, devicesOther, devicesThis, sessionsApi], ALL_FAULTS)
