/**
 * Structural validation of the file against RawConfigSchema (Ajv), which also fills in each default
 * the schema declares. Every schema error becomes a ConfigError in YAML words, naming its key.
 */
import { Ajv, type ErrorObject } from 'ajv'
import { RawConfigSchema, type FilledConfig } from './schema.js'
import { ConfigError, formatPath } from './errors.js'
import { isObject } from './env.js'

// allErrors: every error in one run. useDefaults: the schema's defaults are filled in here, once.
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true, useDefaults: true })
const validateRaw = ajv.compile<FilledConfig>(RawConfigSchema)

/**
 * Validates `tree` in place (defaults filled in). Returns the problems, the one to lead with first:
 * an unknown key (a typo such as `isuer` is the real error, not the missing `issuer` it causes).
 * One problem per key; a key's `required` error is dropped when a misspelling of it was found.
 */
export function validateTree (tree: Record<string, unknown>): { ok: true, config: FilledConfig } | { ok: false, problems: ConfigError[], keys: string[] } {
  if (validateRaw(tree)) return { ok: true, config: tree }
  const errors = validateRaw.errors ?? []
  const lead = errors.find(e => e.keyword === 'additionalProperties') ?? errors[0]
  const ordered = lead === undefined ? [] : [lead, ...errors.filter(e => e !== lead)]
  const misspelt = new Set<string>()
  const out = new Map<string, ConfigError>()
  for (const e of ordered) {
    const { error, meant } = schemaError(e, tree)
    if (meant !== undefined) misspelt.add(meant)
    if (!out.has(error.key)) out.set(error.key, error)
  }
  const problems = [...out.values()].filter((p, i) => i === 0 || !(misspelt.has(p.key) && p.message.endsWith('required key is missing')))
  // `keys`: every key the schema refused, reported or not (what normalisation must not report again).
  return { ok: false, problems: problems.length > 0 ? problems : [new ConfigError('', 'invalid config')], keys: [...out.keys()] }
}

/** JSON pointer -> key path, using the data to tell array indices from map keys. */
function pointerPath (pointer: string, root: unknown): Array<string | number> {
  const path: Array<string | number> = []
  let node = root
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(node)) {
      path.push(Number(seg))
      node = node[Number(seg)]
    } else {
      path.push(seg)
      node = isObject(node) ? node[seg] : undefined
    }
  }
  return path
}

/** YAML words for JSON types. */
const YAML_TYPE: Record<string, string> = { object: 'mapping', array: 'list' }

function typeName (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'list'
  if (typeof v === 'object') return 'mapping'
  if (typeof v === 'number' && Number.isInteger(v)) return 'integer'
  return typeof v
}

function editDistance (a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}

function closeKey (key: string, parentSchema: unknown): { hint: string, close?: string } {
  const props = isObject(parentSchema) && isObject(parentSchema['properties']) ? Object.keys(parentSchema['properties']) : []
  const close = props.find(p => editDistance(p.toLowerCase(), key.toLowerCase()) <= 2)
  if (close !== undefined) return { hint: ` (did you mean "${close}"?)`, close }
  return { hint: props.length > 0 ? ` (allowed: ${props.join(', ')})` : '' }
}

/** One Ajv error in YAML words; `meant` is the key a misspelt one was close to. */
function schemaError (e: ErrorObject, root: unknown): { error: ConfigError, meant?: string } {
  const path = pointerPath(e.instancePath, root)
  const at = formatPath(path)
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p['additionalProperty'])
      const { hint, close } = closeKey(key, e.parentSchema)
      const error = new ConfigError(formatPath([...path, key]), `unknown key${hint}`)
      return close === undefined ? { error } : { error, meant: formatPath([...path, close]) }
    }
    case 'required':
      return { error: new ConfigError(formatPath([...path, String(p['missingProperty'])]), 'required key is missing') }
    case 'type':
      return { error: new ConfigError(at, `expected ${[p['type']].flat().map(t => YAML_TYPE[String(t)] ?? t).join(' or ')}, got ${typeName(e.data)}`) }
    case 'enum':
      return { error: new ConfigError(at, `must be one of ${(p['allowedValues'] as unknown[]).join(', ')} (got ${JSON.stringify(e.data)})`) }
    case 'minItems':
    case 'minLength':
    case 'minProperties':
      if (p['limit'] === 1) return { error: new ConfigError(at, 'must not be empty') }
  }
  return { error: new ConfigError(at, e.message ?? 'is invalid') }
}
