/**
 * `${NAME}` references in the config file, replaced from the environment. References are protected
 * before YAML parsing and substituted per string scalar after it, so a value can never inject YAML.
 */
import { randomBytes } from 'node:crypto'
import { ConfigError, formatPath, type Path } from './errors.js'

export type Env = Readonly<Record<string, string | undefined>>

const REF_RE = /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/**
 * Replaces each `${NAME}` in one string value with env[NAME]; `$${NAME}` stays a literal `${NAME}`.
 * A variable that is not set is a ConfigError naming it and `key` (where the value sits).
 */
export function substituteEnv (text: string, env: Env, key = ''): string {
  return text.replace(REF_RE, (ref, name: string) => {
    if (ref.startsWith('$$')) return ref.slice(1)
    const value = env[name]
    if (value === undefined) throw new ConfigError(key, `environment variable ${name} is not set`)
    return value
  })
}

/**
 * `[${KEY}]` is not valid YAML (braces are flow indicators), yet the contract uses it. So before
 * parsing, each reference becomes an inert word; it is put back and substituted per string scalar
 * after parsing, which also means an env value can never inject YAML structure.
 */
export function protectRefs (text: string): { text: string, restore: (s: string) => string } {
  const nonce = randomBytes(6).toString('hex')
  const refs: string[] = []
  const out = text.replace(REF_RE, ref => `sgref${nonce}n${refs.push(ref) - 1}x`)
  const back = new RegExp(`sgref${nonce}n(\\d+)x`, 'g')
  return { text: out, restore: s => s.replace(back, (_m, i: string) => refs[Number(i)] ?? '') }
}

export function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Substitutes in every string scalar; map keys only get their references restored, never substituted.
 * `inside` holds the lists and mappings being walked: a YAML alias to its own ancestor (`a: &x [*x]`)
 * makes a cycle, which no config needs. Every unset variable is reported (into `problems`), not only the first.
 */
export function substituteTree (node: unknown, path: Path, env: Env, restore: (s: string) => string, problems: ConfigError[], inside = new Set<object>()): unknown {
  if (typeof node === 'string') {
    try {
      return substituteEnv(restore(node), env, formatPath(path))
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      problems.push(err)
      return ''
    }
  }
  if (typeof node !== 'object' || node === null) return node
  if (inside.has(node)) throw new ConfigError(formatPath(path), 'refers to itself (a YAML alias inside its own anchor)')
  inside.add(node)
  try {
    if (Array.isArray(node)) return node.map((v, i) => substituteTree(v, [...path, i], env, restore, problems, inside))
    if (!isObject(node)) return node
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(node)) {
      const key = restore(k)
      // defineProperty: a `__proto__` key stays an ordinary (unknown) key.
      Object.defineProperty(out, key, { value: substituteTree(v, [...path, key], env, restore, problems, inside), enumerable: true, writable: true, configurable: true })
    }
    return out
  } finally {
    inside.delete(node)
  }
}
