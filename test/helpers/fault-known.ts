/**
 * Known defects the fault tests find whose fix belongs to another owner: the phase of each affected run
 * is marked TODO (it still runs and reports every failed assertion) instead of failing the suite. When
 * you fix one, delete its entry: the runs then have to pass.
 *
 * Phases: (a) the first answer is the documented failure, (b) the same request again succeeds,
 * (c) no revoked session is live on either replica afterwards.
 * Fault keys: FAULTS keys (`noPublish`, ...), or sweep steps: `reply:<CMD>` (it ran, its reply was lost),
 * `reply:EVALSHA#2` (the second EVALSHA of the path).
 */
export type Phase = 'a' | 'b' | 'c'

interface Known {
  why: string
  cells: Record<string, Partial<Record<string, Phase[]>>>
}

const BC_SID = 'back-channel by sid'
const BC_SUB = 'back-channel by sub only'
const FC_SID = 'front-channel (iss + sid)'
const FC_COOKIE = 'front-channel (no parameters: the session cookie)'
const ADMIN_USER = 'admin: all sessions of a user'
const ADMIN_SESSION = 'admin: one session'
const RP = 'RP-initiated logout'
const DEV_OTHER = 'devices page: sign out another device'
const DEV_THIS = 'devices page: sign out this device'
const API = 'own-sessions API: DELETE another device'
const REUSE = 'reuse detection'

const ALL = [BC_SID, BC_SUB, FC_SID, FC_COOKIE, ADMIN_USER, ADMIN_SESSION, RP, DEV_OTHER, DEV_THIS, API, REUSE]
const each = (paths: string[], faults: Record<string, Phase[]>): Known['cells'] => Object.fromEntries(paths.map((p) => [p, faults]))

// Every defect the fault tests found is fixed; a new one goes here with its owner until it is.
const KNOWN: Known[] = []

/** Why this phase of this run is expected to fail for now, or undefined. */
export function knownDefect (path: string, fault: string, phase: Phase): string | undefined {
  const whys = KNOWN.filter((k) => k.cells[path]?.[fault]?.includes(phase) === true).map((k) => k.why)
  return whys.length === 0 ? undefined : whys.join('; ')
}
