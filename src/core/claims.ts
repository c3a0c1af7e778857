/**
 * Claim paths: `realm_access.roles` reaches a nested claim, and a claim whose own name has dots
 * (`https://example.com/roles`, as Auth0 namespaces them) is found by its whole name first.
 */

/** The value at `path` in `claims`, or undefined. */
export function claimAt (claims: Record<string, unknown>, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(claims, path)) return claims[path]
  for (let i = path.indexOf('.'); i !== -1; i = path.indexOf('.', i + 1)) {
    const head = path.slice(0, i)
    const next = Object.prototype.hasOwnProperty.call(claims, head) ? claims[head] : undefined
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      const found = claimAt(next as Record<string, unknown>, path.slice(i + 1))
      if (found !== undefined) return found
    }
  }
  return undefined
}

/** A claim value as a list of strings: scalars become one item, arrays keep their scalar items. */
export function claimValues (value: unknown): string[] | undefined {
  const scalar = (v: unknown): string | undefined =>
    typeof v === 'string' ? v : (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean' ? String(v) : undefined
  if (Array.isArray(value)) {
    const out: string[] = []
    for (const v of value) { const s = scalar(v); if (s !== undefined) out.push(s) }
    return out
  }
  const s = scalar(value)
  return s === undefined ? undefined : [s]
}

/** Groups from a claim that is an array, or one string of names separated by spaces or commas. */
export function groupValues (value: unknown): string[] | undefined {
  if (typeof value === 'string') return value.split(/[\s,]+/).filter((g) => g !== '')
  return claimValues(value)
}

/** Looks a path up in userinfo first, then in the ID token (userinfo is the fresher source). */
export function lookup (sources: ReadonlyArray<Record<string, unknown>>, path: string): unknown {
  for (const s of sources) {
    const v = claimAt(s, path)
    if (v !== undefined) return v
  }
  return undefined
}
