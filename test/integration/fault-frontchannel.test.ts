/**
 * Fault injection on front-channel logout: with `iss` + `sid` (as the IdP frames it), and without
 * parameters (the session cookie decides). Every store step fails in turn, then Redis unreachable, a
 * stall, SIGSTOP and ACLs; each time the answer is 503 store_unavailable, the very same request again
 * succeeds, and no revoked session is live on either replica afterwards.
 */
import t from 'tap'
import { ALL_FAULTS, faultMatrix, startEnv } from '../helpers/fault-kit.js'
import { frontchannel, frontchannelCookie } from '../helpers/fault-paths.js'

const env = await startEnv(t)

await faultMatrix(t, env, [frontchannel, frontchannelCookie], ALL_FAULTS)
