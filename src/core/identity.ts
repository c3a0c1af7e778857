/**
 * Identity values become upstream headers, and upstream parsers trim whitespace and may drop control
 * characters: `admin\t`, ` admin` and `ad\0min` would all read as `admin`. So such values are not
 * rewritten but refused at login, and two different IdP subjects can never collapse into one identity.
 */
import type { ProfileClaims } from './session.js'

/** Longest identity value accepted (a header line stays far below Node's 16 KB header limit). */
export const MAX_IDENTITY_LENGTH = 1024

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

/** Why one value cannot be forwarded as is, or undefined when it can. */
export function valueProblem (v: string): string | undefined {
  if (v === '') return 'is empty'
  if (v.length > MAX_IDENTITY_LENGTH) return `is longer than ${MAX_IDENTITY_LENGTH} characters`
  if (CONTROL.test(v)) return 'contains a control character'
  if (v.trim() !== v) return 'has leading or trailing whitespace'
  return undefined
}

/** The first identity claim (`sub`, `email`, `preferred_username`, `groups[i]`) that is refused, with why. */
export function identityRefusal (sub: string, profile: ProfileClaims): { claim: string, problem: string } | undefined {
  const checks: Array<[string, string | undefined]> = [['sub', sub], ['email', profile.email], ['preferred_username', profile.preferred_username]]
  profile.groups?.forEach((g, i) => checks.push([`groups[${i}]`, g]))
  for (const [claim, v] of checks) {
    if (v === undefined) continue
    const problem = valueProblem(v)
    if (problem !== undefined) return { claim, problem }
  }
  return undefined
}
