/**
 * Fault injection on back-channel logout, by `sid` and by `sub` only. Every store step fails in turn, then
 * Redis unreachable, a stall, SIGSTOP and ACLs; each time the answer is 400 temporarily_unavailable, the
 * IdP's retry of the very same logout token succeeds, and no revoked session is live on either replica
 * afterwards (cookie, device credential, WebSockets).
 */
import t from 'tap'
import { ALL_FAULTS, faultMatrix, startEnv } from '../helpers/fault-kit.js'
import { backchannelSid, backchannelSub } from '../helpers/fault-paths.js'

const env = await startEnv(t)

await faultMatrix(t, env, [backchannelSid, backchannelSub], ALL_FAULTS)
