/**
 * Identity values become upstream headers, and upstream parsers trim whitespace and may drop control
 * characters: `admin\t`, ` admin` and `ad\0min` would all read as `admin`. So such values are not
 * rewritten but refused at login, and two different IdP subjects can never collapse into one identity.
 */
import type { ProfileClaims } from './session.js'
import { claimValues, groupValues, lookup } from './claims.js'

/** Where identity comes from (config `identity`). */
export interface IdentityMapping {
  user: string
  groups: string
  headers: Record<string, string>
}

/**
 * The profile a session keeps, from userinfo and the ID token (userinfo first): the standard claims,
 * the groups, the mapped user, and exactly the claim paths that rules and header mappings read.
 */
export function buildProfile (sources: ReadonlyArray<Record<string, unknown>>, mapping: IdentityMapping, keptPaths: readonly string[]): ProfileClaims {
  const profile: ProfileClaims = {}
  for (const k of ['email', 'preferred_username', 'name'] as const) {
    const v = lookup(sources, k)
    if (typeof v === 'string' && v !== '') profile[k] = v
  }
  const verified = lookup(sources, 'email_verified')
  if (typeof verified === 'boolean') profile.email_verified = verified
  const groups = groupValues(lookup(sources, mapping.groups))
  if (groups !== undefined) profile.groups = groups
  if (mapping.user !== 'sub') {
    const user = lookup(sources, mapping.user)
    if (typeof user === 'string' || typeof user === 'number') profile.user = String(user)
  }
  const claims: Record<string, string[]> = {}
  for (const path of new Set(keptPaths)) {
    const v = claimValues(lookup(sources, path))
    if (v !== undefined) claims[path] = v
  }
  if (Object.keys(claims).length > 0) profile.claims = claims
  return profile
}

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
export function identityRefusal (sub: string, profile: ProfileClaims, userClaim = 'sub'): { claim: string, problem: string } | undefined {
  if (userClaim !== 'sub' && profile.user === undefined) return { claim: userClaim, problem: 'is missing (identity.user names it)' }
  const checks: Array<[string, string | undefined]> = [['sub', sub], [userClaim, profile.user], ['email', profile.email], ['preferred_username', profile.preferred_username]]
  profile.groups?.forEach((g, i) => checks.push([`groups[${i}]`, g]))
  for (const [claim, v] of checks) {
    if (v === undefined) continue
    const problem = valueProblem(v)
    if (problem !== undefined) return { claim, problem }
  }
  return undefined
}
