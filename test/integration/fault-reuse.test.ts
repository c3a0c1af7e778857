/**
 * Fault injection on reuse detection: a device credential that was rotated away, presented again after the
 * grace window, revokes the device. Every store step fails in turn, then Redis unreachable, a stall,
 * SIGSTOP and ACLs; each time the answer is 503 store_unavailable, the very same request (the stale
 * credential again) is refused with 401, and the device is out on both replicas: its live session cookie,
 * its current credential and its WebSockets.
 */
import t from 'tap'
import { ALL_FAULTS, faultMatrix, startEnv } from '../helpers/fault-kit.js'
import { REUSE_CONFIG, reuseDetection } from '../helpers/fault-paths.js'

const env = await startEnv(t, REUSE_CONFIG)

await faultMatrix(t, env, [reuseDetection], ALL_FAULTS)
