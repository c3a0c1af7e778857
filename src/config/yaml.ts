/**
 * Config text -> plain JS tree: YAML parsing with the guards a hostile or broken file needs
 * (nesting depth, missing anchors, alias bombs). `${NAME}` references are protected before parsing.
 */
import { parseDocument, visit, type Document } from 'yaml'
import { ConfigError } from './errors.js'

/**
 * Deepest nesting the loader hands to the YAML parser: far beyond any config, far below the ~900 levels
 * where yaml's recursive parser exhausts the stack (and V8 may then abort the process instead of
 * throwing, when it compiles a regular expression there).
 */
const MAX_NESTING = 200

/**
 * Line of the first place nested deeper than MAX_NESTING, else undefined. An over-estimate: flow
 * brackets outside quotes and comments, and on each line the indentation plus leading `- `, `? `, `: `.
 */
function tooDeep (text: string): number | undefined {
  let flow = 0
  let quote: string | undefined
  let line = 1
  let lineStart = true
  let lead = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === '\n') {
      line++
      lineStart = true
      lead = 0
      continue
    }
    if (lineStart) {
      if (c === ' ' || c === '\t' || ((c === '-' || c === '?' || c === ':') && /[ \t]/.test(text[i + 1] ?? ''))) {
        if (++lead > MAX_NESTING) return line
        continue
      }
      lineStart = false
    }
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === '#' && /[ \t]/.test(text[i - 1] ?? ' ')) {
      const end = text.indexOf('\n', i)
      i = (end === -1 ? text.length : end) - 1
    } else if (c === '[' || c === '{') {
      if (++flow > MAX_NESTING) return line
    } else if ((c === ']' || c === '}') && flow > 0) flow--
  }
  return undefined
}

/** Parses protected config text; `restore` puts `${NAME}` references back into messages. */
export function parseYaml (text: string, restore: (s: string) => string): unknown {
  const deep = tooDeep(text)
  if (deep !== undefined) throw new ConfigError('', `invalid YAML at line ${deep}: nested too deep (more than ${MAX_NESTING} brackets or columns of indentation)`)
  const doc = parseDocument(text, { prettyErrors: false })
  const yamlError = doc.errors[0]
  if (yamlError !== undefined) {
    // Line numbers survive protectRefs (it adds no newlines); columns might not, so leave them out.
    const line = text.slice(0, yamlError.pos[0]).split('\n').length
    throw new ConfigError('', `invalid YAML at line ${line}: ${restore(yamlError.message)}`)
  }
  try {
    return doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // yaml resolves aliases only here, and throws a ReferenceError for a missing anchor or an alias bomb.
    throw new ConfigError('', aliasProblem(doc, text) ?? `invalid YAML: ${restore((err as Error).message)}`, { cause: err })
  }
}

/** `invalid YAML at line N: ...` for the first alias (`*name`) with no anchor (`&name`) before it. */
function aliasProblem (doc: Document, text: string): string | undefined {
  let problem: string | undefined
  visit(doc, {
    Alias (_key, node) {
      if (node.resolve(doc) !== undefined) return undefined
      const line = text.slice(0, node.range?.[0] ?? 0).split('\n').length
      problem = `invalid YAML at line ${line}: alias *${node.source} has no anchor &${node.source} before it`
      return visit.BREAK
    }
  })
  return problem
}
