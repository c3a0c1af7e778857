/**
 * Reads the YAML config file, substitutes `${NAME}` from the environment (env.ts), validates it
 * (validate.ts, which fills in defaults) and returns the normalised Config (normalise.ts). Every
 * failure is a ConfigError naming the offending key; the thrown one carries all of them in `problems`.
 */
import { readFileSync } from 'node:fs'
import { ConfigError, keyWithin, Problems } from './errors.js'
import { isObject, protectRefs, substituteTree, type Env } from './env.js'
import { normalise } from './normalise.js'
import type { FilledConfig } from './schema.js'
import type { Config } from './types.js'
import { validateTree } from './validate.js'
import { parseYaml } from './yaml.js'

export { ConfigError } from './errors.js'
export { substituteEnv } from './env.js'

const NOT_A_MAPPING = 'the config must be a YAML mapping (key: value lines)'

function parseUnchecked (rawText: string, env: Env): Config {
  const { text, restore } = protectRefs(rawText)
  const js = parseYaml(text, restore)
  // Before substitution: a document that is one `${NAME}` is not a config, whatever NAME holds.
  if (!isObject(js)) throw new ConfigError('', NOT_A_MAPPING)
  const unset: ConfigError[] = []
  const tree = substituteTree(js, [], env, restore, unset)
  if (!isObject(tree)) throw new ConfigError('', NOT_A_MAPPING)
  const checked = validateTree(tree)
  if (checked.ok && unset.length === 0) return normalise(checked.config)

  // Report everything: unset variables, schema errors, and what normalisation finds in the rest
  // (leniently: a value the schema refused is not looked at again).
  const found = [...unset, ...(checked.ok ? [] : checked.problems).filter(s => !unset.some(u => u.key === s.key))]
  const p = new Problems(true)
  try {
    normalise(tree as FilledConfig, p)
  } catch { /* the problems are in p.list */ }
  const refused = [...found.map(f => f.key), ...(checked.ok ? [] : checked.keys)]
  const more = p.list.filter(n => !refused.some(k => keyWithin(n.key, k) || keyWithin(k, n.key)))
  const problems = [...found, ...more]
  const first = problems[0]!
  first.problems = problems
  throw first
}

/** Parses, validates and normalises config text; throws ConfigError naming the offending key. */
export function parseConfig (rawText: string, env: Env = process.env, source = '<inline>'): Config {
  try {
    return parseUnchecked(rawText, env)
  } catch (err) {
    if (err instanceof ConfigError) for (const e of err.problems) e.source = source
    throw err
  }
}

/** Reads and parses the config file at `path`; a missing or unreadable file is a ConfigError. */
export function loadConfig (path: string, env: Env = process.env): Config {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const problem = e.code === 'ENOENT' ? `config file not found: ${path}` : `cannot read config file ${path}: ${e.message}`
    const ce = new ConfigError('', problem, { cause: err })
    ce.source = path
    throw ce
  }
  return parseConfig(text, env, path)
}
