/**
 * Fault injection on the help-desk API: `DELETE /admin/users/:sub/sessions` and `DELETE /admin/sessions/:id`.
 * Every store step fails in turn, then Redis unreachable, a stall, SIGSTOP and ACLs; each time the answer
 * is 503 store_unavailable, the very same DELETE sent again answers 204, and the revoked sessions are
 * refused on both replicas, by cookie and by device credential, with their WebSockets closed.
 */
import t from 'tap'
import { ALL_FAULTS, faultMatrix, startEnv } from '../helpers/fault-kit.js'
import { adminSession, adminUser } from '../helpers/fault-paths.js'

const env = await startEnv(t)

await faultMatrix(t, env, [adminUser, adminSession], ALL_FAULTS)
