/**
 * Who may pass: `authorize` rules (README section "Who may pass"). Any one rule admits; inside a rule every field
 * that is present must match. Pure: the subject is built by the caller from a session or a bearer token.
 */

export interface AuthzRule {
  subjects?: string[]
  /** Lower-cased. */
  emails?: string[]
  /** Lower-cased, without `@`. */
  emailDomains?: string[]
  groups?: string[]
  /** claim path -> accepted values (any one), compared as strings. */
  claims?: Record<string, string[]>
}

/** What the rules look at. */
export interface AuthzSubject {
  sub: string
  email?: string
  /** An email the IdP says is unverified never matches an email rule. */
  emailVerified?: boolean
  groups?: readonly string[]
  /** The values of a kept claim path, or undefined when the claim is absent. */
  claim (path: string): readonly string[] | undefined
}

function ruleAdmits (rule: AuthzRule, s: AuthzSubject): boolean {
  if (rule.subjects !== undefined && !rule.subjects.includes(s.sub)) return false
  if (rule.emails !== undefined || rule.emailDomains !== undefined) {
    if (s.email === undefined || s.emailVerified === false) return false
    const email = s.email.toLowerCase()
    if (rule.emails !== undefined && !rule.emails.includes(email)) return false
    if (rule.emailDomains !== undefined) {
      const at = email.lastIndexOf('@')
      if (at < 1 || !rule.emailDomains.includes(email.slice(at + 1))) return false
    }
  }
  if (rule.groups !== undefined && !rule.groups.some((g) => s.groups?.includes(g) === true)) return false
  if (rule.claims !== undefined) {
    for (const [path, accepted] of Object.entries(rule.claims)) {
      const values = s.claim(path)
      if (values === undefined || !values.some((v) => accepted.includes(v))) return false
    }
  }
  return true
}

/** True when some rule admits the subject. An empty list admits nobody (the config refuses one). */
export function admits (rules: readonly AuthzRule[], subject: AuthzSubject): boolean {
  return rules.some((r) => ruleAdmits(r, subject))
}

/** Every claim path the rules read, so a session keeps exactly those. */
export function claimPathsOf (rules: readonly AuthzRule[]): string[] {
  return rules.flatMap((r) => Object.keys(r.claims ?? {}))
}
