/**
 * Fault injection on the IdP's logout channels: back-channel by `sid`, back-channel by `sub` only, and
 * front-channel (`iss` + `sid`, and the parameterless form that relies on the session cookie). Every store step fails in turn, then Redis unreachable, a stall, SIGSTOP
 * and ACLs; each time the answer is the documented failure, the IdP's retry of the very same logout token
 * (or front-channel URL) succeeds, and no revoked session is live on either replica afterwards.
 */
import t from 'tap'
import { ALL_FAULTS, faultMatrix, startEnv } from '../helpers/fault-kit.js'
import { backchannelSid, backchannelSub, frontchannel, frontchannelCookie } from '../helpers/fault-paths.js'

const env = await startEnv(t)

await faultMatrix(t, env, [backchannelSid, backchannelSub, frontchannel, frontchannelCookie], ALL_FAULTS)
