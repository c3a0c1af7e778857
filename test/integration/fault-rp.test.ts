/**
 * Fault injection on RP-initiated logout (`GET /auth/logout?sid=`) and the own-sessions API
 * (`DELETE /auth/sessions/:id` for another device). Every store step fails in turn, then Redis
 * unreachable, a stall, SIGSTOP and ACLs; each time the answer is 503 store_unavailable, the very same
 * request sent again (same cookies) succeeds, and the session is refused on both replicas, by cookie and by
 * device credential, with its WebSockets closed, while the device that signed it out stays signed in.
 */
import t from 'tap'
import { ALL_FAULTS, faultMatrix, startEnv } from '../helpers/fault-kit.js'
import { rpLogout, sessionsApi } from '../helpers/fault-paths.js'

const env = await startEnv(t)

await faultMatrix(t, env, [rpLogout, sessionsApi], ALL_FAULTS)
