/**
 * A `helm template` stand-in for the chart tests: there is no helm binary (nor Go) on the machines
 * that run the suite, and no maintained Go-template engine on npm. It implements what a chart needs:
 *
 * - Go text/template: actions with `{{-`/`-}}` trimming and comments; if / else if / else, with (and
 *   else with), range over lists, maps (sorted keys) and integers with one or two variables, break and
 *   continue; define / template / block; pipelines, parenthesised pipelines, variables (`:=`, `=`, block
 *   scoping, `$`), field chains on maps (a missing key is nil), on nil ("nil pointer evaluating") and on
 *   Helm's structs (an unknown field is an error); Go's truth, `and`/`or` short-circuit and return an
 *   operand; `eq`/`lt`/... with Go's kind rules (int vs float64 is an error, nil only equals nil);
 *   printing with Go's `%v` (float64 1000000 prints `1e+06`, 1.1 prints `1.1`, nil prints nothing).
 * - The Sprig functions charts use (strings, lists, dicts, defaults, type tests, math, encodings) and
 *   Helm's own: include, tpl, required, fail, toYaml, fromYaml, toJson, fromJson, lookup.
 * - Helm's values: values.yaml and each override read as YAML 1.1 into JSON types (every number is a
 *   float64, `1.10` is 1.1, `yes` is true), coalesced (maps merge, null deletes a key), then validated
 *   against values.schema.json (JSON Schema draft-07, as helm does) when the chart has one.
 * - .Release, .Chart (Chart.yaml fields), .Capabilities (KubeVersion, APIVersions.Has), .Template,
 *   .Values. NOTES.txt is rendered too; files starting with `_` render nothing.
 *
 * Output: each manifest split into documents (`---`) and parsed strictly (a duplicate key is an error,
 * as it is for the API server), with the file each came from. A `fail`, `required` or template error
 * throws HelmError with helm's "execution error at (file): message" shape.
 */
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parse as parseYaml, stringify as stringifyYaml, parseAllDocuments } from 'yaml'
import { Ajv, type ErrorObject } from 'ajv'

type Obj = Record<string, unknown>

export class HelmError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'HelmError'
  }
}

const isMap = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof GoStruct) && typeof v !== 'function'

/** Helm's built-in objects (.Release, .Chart, ...): a field they do not have is an error, not nil. */
class GoStruct {
  constructor (readonly typeName: string, readonly fields: Obj) {}
}

/** A method value (.Capabilities.APIVersions.Has): called with the command's arguments. */
type Method = (...args: unknown[]) => unknown

// ---------------------------------------------------------------- values as helm reads them

/** YAML as helm reads values and Chart.yaml (sigs.k8s.io/yaml: YAML 1.1 into JSON types). */
export function readHelmYaml (text: string): unknown {
  const v = parseYaml(text, { version: '1.1', merge: true }) as unknown
  return toJsonTypes(v)
}

function toJsonTypes (v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v)
  if (v instanceof Date) return v.toISOString()
  if (Array.isArray(v)) return v.map(toJsonTypes)
  if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJsonTypes(x)]))
  return v
}

/** helm's coalescing of a user values file over the defaults: maps merge, null deletes, else replace. */
export function helmMerge (base: unknown, over: unknown): unknown {
  if (!isMap(base) || !isMap(over)) return structuredClone(over)
  const out: Obj = structuredClone(base)
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k]
    else out[k] = isMap(v) && isMap(out[k]) ? helmMerge(out[k], v) : structuredClone(v)
  }
  return out
}

// ---------------------------------------------------------------- printing (Go's fmt %v)

/** strconv.FormatFloat(f, 'g', -1, 64), as fmt's %v prints a float64. */
export function goFloat (n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : '-Inf'
  if (n === 0) return Object.is(n, -0) ? '-0' : '0'
  const [mant = '', expText = '0'] = n.toExponential().split('e')
  const exp = Number(expText)
  if (exp < -4 || exp >= 6) {
    const e = Math.abs(exp)
    return `${mant}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`
  }
  return String(n)
}

function fmtV (v: unknown): string {
  if (v === undefined || v === null) return '<no value>'
  if (typeof v === 'string') return v
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') return goFloat(v)
  if (typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return `[${v.map(x => (x === null || x === undefined) ? '<nil>' : fmtV(x)).join(' ')}]`
  if (v instanceof GoStruct) return `{${Object.values(v.fields).map(fmtV).join(' ')}}`
  if (typeof v === 'function') return '<func>'
  if (isMap(v)) return `map[${Object.keys(v).sort().map(k => `${k}:${v[k] === null || v[k] === undefined ? '<nil>' : fmtV(v[k])}`).join(' ')}]`
  return String(v)
}

/** Sprig's strval. */
function strval (v: unknown): string {
  if (typeof v === 'string') return v
  if (v === null || v === undefined) return '<nil>'
  return fmtV(v)
}

const goQuote = (s: string): string => JSON.stringify(s)

/** Go's fmt.Sprintf for the verbs charts use. */
function sprintf (format: string, args: unknown[]): string {
  let i = 0
  const out = format.replace(/%([-+# 0]*)(\d+)?(?:\.(\d+))?([%svdqtxXfgTe])/g, (whole, flags: string, width: string | undefined, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%'
    if (i >= args.length) return `%!${verb}(MISSING)`
    const a = args[i++]
    let s: string
    switch (verb) {
      case 's': case 'v': s = a === undefined || a === null ? '<nil>' : fmtV(a); break
      case 'q': s = goQuote(strval(a)); break
      case 'd': s = typeof a === 'bigint' ? a.toString() : `%!d(${typeName(a)}=${fmtV(a)})`; break
      case 't': s = typeof a === 'boolean' ? String(a) : `%!t(${typeName(a)}=${fmtV(a)})`; break
      case 'x': case 'X': s = typeof a === 'string' ? Buffer.from(a).toString('hex') : (typeof a === 'bigint' ? a.toString(16) : fmtV(a)); if (verb === 'X') s = s.toUpperCase(); break
      case 'f': s = typeof a === 'number' ? a.toFixed(prec === undefined ? 6 : Number(prec)) : fmtV(a); break
      case 'T': s = typeName(a); break
      default: s = fmtV(a)
    }
    const w = width === undefined ? 0 : Number(width)
    if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : s.padStart(w, flags.includes('0') && verb !== 's' ? '0' : ' ')
    return s
  })
  return i < args.length ? `${out}%!(EXTRA ${args.slice(i).map(a => `${typeName(a)}=${fmtV(a)}`).join(', ')})` : out
}

/** Go's reflect type name of a value as helm holds it. */
function typeName (v: unknown): string {
  if (v === undefined || v === null) return '<nil>'
  if (typeof v === 'string') return 'string'
  if (typeof v === 'bigint') return 'int64'
  if (typeof v === 'number') return 'float64'
  if (typeof v === 'boolean') return 'bool'
  if (Array.isArray(v)) return '[]interface {}'
  if (v instanceof GoStruct) return v.typeName
  if (typeof v === 'function') return 'func'
  return 'map[string]interface {}'
}

/** Go's reflect Kind name (sprig's kindOf / kindIs). */
function kindOf (v: unknown): string {
  if (v === undefined || v === null) return 'invalid'
  if (typeof v === 'string') return 'string'
  if (typeof v === 'bigint') return 'int64'
  if (typeof v === 'number') return 'float64'
  if (typeof v === 'boolean') return 'bool'
  if (Array.isArray(v)) return 'slice'
  if (v instanceof GoStruct) return 'struct'
  if (typeof v === 'function') return 'func'
  return 'map'
}

// ---------------------------------------------------------------- truth and comparison (text/template)

function truth (v: unknown): boolean {
  if (v === undefined || v === null) return false
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return v !== 0
  if (typeof v === 'bigint') return v !== 0n
  if (typeof v === 'string') return v !== ''
  if (Array.isArray(v)) return v.length > 0
  if (isMap(v)) return Object.keys(v).length > 0
  return true
}

/** Sprig's `empty`. */
const empty = (v: unknown): boolean => !truth(v)

type Kind = 'invalid' | 'bool' | 'int' | 'float' | 'string' | 'complex'
function basicKind (v: unknown): Kind {
  if (v === undefined || v === null) return 'invalid'
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'bigint') return 'int'
  if (typeof v === 'number') return 'float'
  if (typeof v === 'string') return 'string'
  return 'complex'
}

function goEq (a: unknown, ...rest: unknown[]): boolean {
  if (rest.length === 0) throw new Error('missing argument for comparison')
  const k1 = basicKind(a)
  for (const b of rest) {
    const k2 = basicKind(b)
    if (k1 !== k2) {
      if (k1 !== 'invalid' && k2 !== 'invalid') throw new Error(`error calling eq: incompatible types for comparison (${typeName(a)} and ${typeName(b)})`)
      continue // nil equals only nil
    }
    if (k1 === 'complex') throw new Error(`error calling eq: non-comparable types ${typeName(a)}: ${typeName(b)}`)
    if (a === b || (k1 === 'invalid')) return true
  }
  return false
}

function goLess (op: string, a: unknown, b: unknown): boolean {
  const k1 = basicKind(a)
  const k2 = basicKind(b)
  if (k1 === 'invalid' || k2 === 'invalid' || k1 === 'bool' || k1 === 'complex' || k2 === 'complex') throw new Error(`error calling ${op}: invalid type for comparison`)
  if (k1 !== k2) throw new Error(`error calling ${op}: incompatible types for comparison (${typeName(a)} and ${typeName(b)})`)
  return (a as number) < (b as number)
}

// ---------------------------------------------------------------- conversions (spf13/cast, as sprig uses it)

function toInt64 (v: unknown): bigint {
  if (typeof v === 'bigint') return v
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n
  if (typeof v === 'boolean') return v ? 1n : 0n
  if (typeof v === 'string') {
    const s = v.trim()
    if (/^[+-]?\d+$/.test(s)) return BigInt(s)
    if (/^[+-]?0x[0-9a-f]+$/i.test(s)) return BigInt(s.replace(/^\+/, ''))
    return 0n
  }
  return 0n
}

function toFloat64 (v: unknown): number {
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return Number(v)
  if (typeof v === 'boolean') return v ? 1 : 0
  if (typeof v === 'string') { const n = Number(v.trim()); return v.trim() !== '' && Number.isFinite(n) ? n : 0 }
  return 0
}

function toList (v: unknown, fn: string): unknown[] {
  if (Array.isArray(v)) return v
  if (v === undefined || v === null) return []
  throw new Error(`error calling ${fn}: Cannot ${fn} on type ${typeName(v)}`)
}

function toMap (v: unknown, fn: string): Obj {
  if (isMap(v)) return v
  throw new Error(`error calling ${fn}: wrong type for value; expected map[string]interface {}; got ${typeName(v)}`)
}

// ---------------------------------------------------------------- YAML / JSON (sigs.k8s.io/yaml, encoding/json)

/** Plain JSON-compatible copy: bigint -> number, Helm structs -> their fields. */
function plain (v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v)
  if (v instanceof GoStruct) return plain(v.fields)
  if (Array.isArray(v)) return v.map(plain)
  if (isMap(v)) {
    const out: Obj = {}
    for (const k of Object.keys(v).sort()) if (v[k] !== undefined && typeof v[k] !== 'function') out[k] = plain(v[k])
    return out
  }
  return v === undefined ? null : v
}

export function toYaml (v: unknown): string {
  const p = plain(v)
  // go-yaml: block style, keys sorted, sequences not indented under their key, YAML 1.1 quoting
  return stringifyYaml(p, { version: '1.1', sortMapEntries: true, indentSeq: false, lineWidth: 0, minContentWidth: 0 }).replace(/\n$/, '')
}

const toJson = (v: unknown): string => JSON.stringify(plain(v))
  .replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')

// ---------------------------------------------------------------- lexer

type Tok =
  | { t: 'field', v: string[] } // .a.b  ('.' alone: [])
  | { t: 'var', v: string, path: string[] } // $x.a
  | { t: 'ident', v: string }
  | { t: 'string', v: string }
  | { t: 'number', v: unknown }
  | { t: 'bool', v: boolean }
  | { t: 'nil' }
  | { t: 'pipe' } | { t: 'lparen' } | { t: 'rparen', path: string[] } | { t: 'declare' } | { t: 'assign' } | { t: 'comma' }

function lexAction (src: string, where: string): Tok[] {
  const toks: Tok[] = []
  let i = 0
  const fieldChain = (): string[] => {
    const path: string[] = []
    while (src[i] === '.' && /[A-Za-z_]/.test(src[i + 1] ?? '')) {
      i++
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))
      path.push(m![0])
      i += m![0].length
    }
    return path
  }
  while (i < src.length) {
    const c = src[i] ?? ''
    if (/\s/.test(c)) { i++; continue }
    if (c === '|') { toks.push({ t: 'pipe' }); i++; continue }
    if (c === '(') { toks.push({ t: 'lparen' }); i++; continue }
    if (c === ')') { i++; toks.push({ t: 'rparen', path: fieldChain() }); continue }
    if (c === ',') { toks.push({ t: 'comma' }); i++; continue }
    if (c === ':' && src[i + 1] === '=') { toks.push({ t: 'declare' }); i += 2; continue }
    if (c === '=') { toks.push({ t: 'assign' }); i++; continue }
    if (c === '"') {
      let j = i + 1
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1
      const lit = src.slice(i, j + 1)
      toks.push({ t: 'string', v: JSON.parse(lit.replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1').replace(/\\'/g, "'")) as string })
      i = j + 1
      continue
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1)
      toks.push({ t: 'string', v: src.slice(i + 1, j) })
      i = j + 1
      continue
    }
    if (c === "'") {
      const m = /^'(\\.|[^'])'/.exec(src.slice(i))
      if (m === null) throw new HelmError(`${where}: bad character constant`)
      toks.push({ t: 'number', v: BigInt((JSON.parse(`"${m[1]}"`) as string).codePointAt(0) ?? 0) })
      i += m[0].length
      continue
    }
    if (c === '.') {
      if (/[A-Za-z_]/.test(src[i + 1] ?? '')) { toks.push({ t: 'field', v: fieldChain() }); continue }
      if (!/\d/.test(src[i + 1] ?? '')) { toks.push({ t: 'field', v: [] }); i++; continue }
    }
    if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*/.exec(src.slice(i))!
      i += m[0].length
      toks.push({ t: 'var', v: m[0], path: fieldChain() })
      continue
    }
    const num = /^[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?)/.exec(src.slice(i))
    if (num !== null && num[0] !== '' && /[\d.+-]/.test(c) && !/^[+-]$/.test(num[0])) {
      const text = num[0].replace(/_/g, '')
      const isFloat = /[.eE]/.test(text) && !/^[+-]?0[xX]/.test(text)
      toks.push({ t: 'number', v: isFloat ? Number(text) : BigInt(text.startsWith('+') ? text.slice(1) : text) })
      i += num[0].length
      continue
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))
    if (id !== null) {
      const w = id[0]
      i += w.length
      if (w === 'true' || w === 'false') toks.push({ t: 'bool', v: w === 'true' })
      else if (w === 'nil') toks.push({ t: 'nil' })
      else toks.push({ t: 'ident', v: w })
      continue
    }
    throw new HelmError(`${where}: unexpected "${c}" in action`)
  }
  return toks
}

// ---------------------------------------------------------------- parser

type Arg =
  | { k: 'field', path: string[] }
  | { k: 'var', name: string, path: string[] }
  | { k: 'fn', name: string }
  | { k: 'lit', v: unknown }
  | { k: 'pipe', pipe: Pipeline, path: string[] }
interface Command { args: Arg[] }
interface Pipeline { decl: string[], assign: boolean, cmds: Command[] }

type Node =
  | { n: 'text', s: string }
  | { n: 'out', pipe: Pipeline, line: number }
  | { n: 'if', pipe: Pipeline, then: Node[], else: Node[], line: number }
  | { n: 'with', pipe: Pipeline, then: Node[], else: Node[], line: number }
  | { n: 'range', pipe: Pipeline, then: Node[], else: Node[], line: number }
  | { n: 'template', name: string, pipe: Pipeline | null, line: number }
  | { n: 'break' } | { n: 'continue' }

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue'])

function parsePipeline (toks: Tok[], where: string): Pipeline {
  let pos = 0
  const decl: string[] = []
  let assign = false
  // $x := ...   $i, $e := ...   $x = ...
  const save = pos
  while (toks[pos]?.t === 'var' && (toks[pos] as { path: string[] }).path.length === 0) {
    const name = (toks[pos] as { v: string }).v
    const next = toks[pos + 1]
    if (next?.t === 'comma') { decl.push(name); pos += 2; continue }
    if (next?.t === 'declare' || next?.t === 'assign') { decl.push(name); assign = next.t === 'assign'; pos += 2; break }
    decl.length = 0
    pos = save
    break
  }
  if (decl.length > 0 && !(toks[pos - 1]?.t === 'declare' || toks[pos - 1]?.t === 'assign')) { decl.length = 0; pos = save }

  const parseArgsUntil = (stop: (t: Tok | undefined) => boolean): Pipeline => {
    const cmds: Command[] = []
    let cur: Arg[] = []
    for (;;) {
      const tk = toks[pos]
      if (stop(tk)) break
      if (tk === undefined) throw new HelmError(`${where}: unclosed parenthesis`)
      pos++
      switch (tk.t) {
        case 'pipe': if (cur.length === 0) throw new HelmError(`${where}: missing command before |`); cmds.push({ args: cur }); cur = []; break
        case 'field': cur.push({ k: 'field', path: tk.v }); break
        case 'var': cur.push({ k: 'var', name: tk.v, path: tk.path }); break
        case 'ident':
          if (KEYWORDS.has(tk.v)) throw new HelmError(`${where}: unexpected keyword ${tk.v}`)
          cur.push({ k: 'fn', name: tk.v })
          break
        case 'string': case 'number': case 'bool': cur.push({ k: 'lit', v: tk.v }); break
        case 'nil': cur.push({ k: 'lit', v: null }); break
        case 'lparen': {
          const inner = parseArgsUntil(t => t?.t === 'rparen')
          const close = toks[pos++] as { t: 'rparen', path: string[] }
          cur.push({ k: 'pipe', pipe: inner, path: close.path })
          break
        }
        default: throw new HelmError(`${where}: unexpected ${tk.t} in pipeline`)
      }
    }
    if (cur.length > 0) cmds.push({ args: cur })
    return { decl: [], assign: false, cmds }
  }
  const p = parseArgsUntil(t => t === undefined || t.t === 'rparen')
  if (pos < toks.length) throw new HelmError(`${where}: unexpected ")"`)
  if (p.cmds.length === 0) throw new HelmError(`${where}: missing value for command`)
  return { ...p, decl, assign }
}

interface Parsed { root: Node[], defines: Map<string, Node[]> }

/** Parses one template file (or tpl string) into nodes and the templates it defines. */
function parseTemplate (text: string, name: string): Parsed {
  // 1. split into text and actions, applying the trim markers
  interface Piece { text?: string, action?: string, line: number }
  const pieces: Piece[] = []
  let i = 0
  let trimNext = false
  const lineAt = (idx: number): number => text.slice(0, idx).split('\n').length
  while (i < text.length) {
    const open = text.indexOf('{{', i)
    let chunk = open < 0 ? text.slice(i) : text.slice(i, open)
    if (trimNext) chunk = chunk.replace(/^\s+/, '')
    trimNext = false
    if (open < 0) { pieces.push({ text: chunk, line: lineAt(i) }); break }
    let start = open + 2
    const leftTrim = /^-[ \t\r\n]/.test(text.slice(start))
    if (leftTrim) { chunk = chunk.replace(/\s+$/, ''); start += 1 }
    pieces.push({ text: chunk, line: lineAt(i) })
    // the action ends at the first }} outside a string or a comment
    let j = start
    let body = ''
    const trimmedStart = text.slice(start).replace(/^\s*/, '')
    if (trimmedStart.startsWith('/*')) {
      const endComment = text.indexOf('*/', start)
      if (endComment < 0) throw new HelmError(`${name}:${lineAt(open)}: unclosed comment`)
      j = endComment + 2
      const rest = /^\s*(-\s*)?\}\}/.exec(text.slice(j))
      if (rest === null) throw new HelmError(`${name}:${lineAt(open)}: comment ends before }}`)
      trimNext = rest[1] !== undefined
      i = j + rest[0].length
      continue
    }
    for (;;) {
      const ch = text[j]
      if (ch === undefined) throw new HelmError(`${name}:${lineAt(open)}: unclosed action`)
      if (ch === '"') { j++; while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1; j++; continue }
      if (ch === '`') { j = text.indexOf('`', j + 1) + 1; continue }
      if (ch === '}' && text[j + 1] === '}') break
      j++
    }
    body = text.slice(start, j)
    const rightTrim = /[ \t\r\n]-$/.test(body)
    if (rightTrim) body = body.slice(0, -1)
    trimNext = rightTrim
    pieces.push({ action: body.trim(), line: lineAt(open) })
    i = j + 2
  }

  // 2. build the tree
  const defines = new Map<string, Node[]>()
  let k = 0
  const where = (p: Piece): string => `${name}:${p.line}`
  /** Parses nodes until {{end}} / {{else}}; returns the nodes and what stopped them. */
  const parseList = (): { nodes: Node[], stop: 'end' | 'else' | 'eof', elseRest?: string, piece?: Piece } => {
    const nodes: Node[] = []
    while (k < pieces.length) {
      const p = pieces[k++]!
      if (p.text !== undefined) { if (p.text !== '') nodes.push({ n: 'text', s: p.text }); continue }
      const a = p.action ?? ''
      const kw = /^([a-z]+)\b\s*([\s\S]*)$/.exec(a)
      const word = kw?.[1] ?? ''
      const rest = kw?.[2] ?? ''
      if (word === 'end' && KEYWORDS.has(word)) return { nodes, stop: 'end', piece: p }
      if (word === 'else') return { nodes, stop: 'else', elseRest: rest, piece: p }
      if (word === 'if' || word === 'with' || word === 'range') {
        nodes.push(parseControl(word, rest, p))
        continue
      }
      if (word === 'define' || word === 'block') {
        const m = /^("(?:[^"\\]|\\.)*"|`[^`]*`)\s*([\s\S]*)$/.exec(rest)
        if (m === null) throw new HelmError(`${where(p)}: ${word} needs a quoted name`)
        const tname = m[1]!.startsWith('`') ? m[1]!.slice(1, -1) : JSON.parse(m[1]!) as string
        const body = parseList()
        if (body.stop !== 'end') throw new HelmError(`${where(p)}: unexpected ${body.stop} in ${word}`)
        defines.set(tname, body.nodes)
        if (word === 'block') nodes.push({ n: 'template', name: tname, pipe: parsePipeline(lexAction(m[2] ?? '', where(p)), where(p)), line: p.line })
        continue
      }
      if (word === 'template') {
        const m = /^("(?:[^"\\]|\\.)*"|`[^`]*`)\s*([\s\S]*)$/.exec(rest)
        if (m === null) throw new HelmError(`${where(p)}: template needs a quoted name`)
        const tname = m[1]!.startsWith('`') ? m[1]!.slice(1, -1) : JSON.parse(m[1]!) as string
        nodes.push({ n: 'template', name: tname, pipe: (m[2] ?? '').trim() === '' ? null : parsePipeline(lexAction(m[2] ?? '', where(p)), where(p)), line: p.line })
        continue
      }
      if (word === 'break' || word === 'continue') { nodes.push({ n: word }); continue }
      nodes.push({ n: 'out', pipe: parsePipeline(lexAction(a, where(p)), where(p)), line: p.line })
    }
    return { nodes, stop: 'eof' }
  }
  const parseControl = (word: 'if' | 'with' | 'range', rest: string, p: Piece): Node => {
    const pipe = parsePipeline(lexAction(rest, where(p)), where(p))
    const body = parseList()
    let elseNodes: Node[] = []
    if (body.stop === 'eof') throw new HelmError(`${where(p)}: unexpected EOF: ${word} without end`)
    if (body.stop === 'else') {
      const er = (body.elseRest ?? '').trim()
      const chained = /^(if|with)\b\s*([\s\S]*)$/.exec(er)
      if (chained !== null) {
        // else if / else with: a nested control that consumes the shared {{end}}
        elseNodes = [parseControl(chained[1] as 'if' | 'with', chained[2] ?? '', body.piece!)]
      } else {
        const e = parseList()
        if (e.stop !== 'end') throw new HelmError(`${where(p)}: expected end after else, got ${e.stop}`)
        elseNodes = e.nodes
      }
    }
    return { n: word, pipe, then: body.nodes, else: elseNodes, line: p.line }
  }
  const top = parseList()
  if (top.stop !== 'eof') throw new HelmError(`${name}:${top.piece?.line ?? 0}: unexpected {{${top.stop}}}`)
  return { root: top.nodes, defines }
}

// ---------------------------------------------------------------- execution

class BreakSignal {}
class ContinueSignal {}

interface Engine {
  /** name -> body and the file it was defined in */
  templates: Map<string, { nodes: Node[], file: string }>
  /** Renders a template string (tpl) with the engine's named templates. */
  tpl: (text: string, dot: unknown, name: string) => string
  depth: number
}

interface Scope { vars: Array<{ name: string, value: unknown }> }

function execute (engine: Engine, nodes: Node[], dot: unknown, file: string): string {
  const scope: Scope = { vars: [{ name: '$', value: dot }] }
  let out = ''
  const lookupVar = (name: string): unknown => {
    for (let i = scope.vars.length - 1; i >= 0; i--) if (scope.vars[i]!.name === name) return scope.vars[i]!.value
    throw new Error(`undefined variable "${name}"`)
  }
  const setVar = (name: string, value: unknown): void => {
    for (let i = scope.vars.length - 1; i >= 0; i--) if (scope.vars[i]!.name === name) { scope.vars[i]!.value = value; return }
    throw new Error(`undefined variable "${name}"`)
  }
  const field = (recv: unknown, path: string[], args: unknown[], final: unknown[]): unknown => {
    let v = recv
    for (let i = 0; i < path.length; i++) {
      const f = path[i]!
      if (v === null || v === undefined) throw new Error(`nil pointer evaluating interface {}.${f}`)
      if (v instanceof GoStruct) {
        if (!Object.hasOwn(v.fields, f)) throw new Error(`can't evaluate field ${f} in type ${v.typeName}`)
        v = v.fields[f]
      } else if (isMap(v)) {
        v = Object.hasOwn(v, f) ? v[f] : undefined
      } else {
        throw new Error(`can't evaluate field ${f} in type ${typeName(v)}`)
      }
      if (typeof v === 'function' && i === path.length - 1) return (v as Method)(...args, ...final)
    }
    if (args.length > 0 || final.length > 0) throw new Error(`can't give argument to non-function ${path.join('.')}`)
    return v
  }
  const evalArg = (a: Arg, d: unknown): unknown => {
    switch (a.k) {
      case 'lit': return a.v
      case 'field': return field(d, a.path, [], [])
      case 'var': return field(lookupVar(a.name), a.path, [], [])
      case 'pipe': return field(evalPipe(a.pipe, d), a.path, [], [])
      case 'fn': return callFn(a.name, [], d, [])
    }
  }
  const callFn = (name: string, rawArgs: Arg[], d: unknown, final: unknown[]): unknown => {
    if (name === 'and' || name === 'or') {
      const all = [...rawArgs.map(a => () => evalArg(a, d)), ...final.map(f => () => f)]
      if (all.length === 0) throw new Error(`wrong number of args for ${name}: want at least 1 got 0`)
      let v: unknown
      for (const get of all) {
        v = get()
        if (name === 'and' ? !truth(v) : truth(v)) return v
      }
      return v
    }
    const args = [...rawArgs.map(a => evalArg(a, d)), ...final]
    if (name === 'include') {
      const [tname, data] = args
      if (typeof tname !== 'string') throw new Error('include: template name must be a string')
      const body = engine.templates.get(tname)
      if (body === undefined) throw new Error(`error calling include: template: no template "${tname}" associated with template "gotpl"`)
      if (++engine.depth > 1000) throw new Error('rendering template has a nested reference name')
      try { return execute(engine, body.nodes, data, body.file) } finally { engine.depth-- }
    }
    if (name === 'tpl') {
      const [text, data] = args
      if (typeof text !== 'string') throw new Error(`error calling tpl: expected string, got ${typeName(text)}`)
      return engine.tpl(text, data, file)
    }
    const fn = FUNCS[name]
    if (fn === undefined) throw new Error(`function "${name}" not defined`)
    return fn(...args)
  }
  const evalCommand = (cmd: Command, d: unknown, final: unknown[]): unknown => {
    const [first, ...rest] = cmd.args
    if (first === undefined) throw new Error('empty command')
    switch (first.k) {
      case 'fn': return callFn(first.name, rest, d, final)
      case 'field': return field(d, first.path, rest.map(a => evalArg(a, d)), final)
      case 'var': {
        if (first.path.length === 0 && (rest.length > 0 || final.length > 0)) throw new Error(`can't give argument to non-function ${first.name}`)
        return field(lookupVar(first.name), first.path, rest.map(a => evalArg(a, d)), final)
      }
      case 'pipe': {
        const v = evalPipe(first.pipe, d)
        if (first.path.length === 0 && (rest.length > 0 || final.length > 0)) throw new Error("can't give argument to non-function")
        return field(v, first.path, rest.map(a => evalArg(a, d)), final)
      }
      case 'lit':
        if (rest.length > 0 || final.length > 0) throw new Error(`can't give argument to non-function ${fmtV(first.v)}`)
        return first.v
    }
  }
  const evalPipe = (p: Pipeline, d: unknown): unknown => {
    let v: unknown
    p.cmds.forEach((c, i) => { v = evalCommand(c, d, i === 0 ? [] : [v]) })
    if (p.decl.length > 0) {
      if (p.assign) setVar(p.decl[0]!, v)
      else scope.vars.push({ name: p.decl[0]!, value: v })
    }
    return v
  }
  const run = (list: Node[], d: unknown): void => {
    for (const node of list) {
      try {
        switch (node.n) {
          case 'text': out += node.s; break
          case 'out': {
            const v = evalPipe(node.pipe, d)
            if (node.pipe.decl.length === 0) out += fmtV(v)
            break
          }
          case 'if': case 'with': {
            const mark = scope.vars.length
            const v = evalPipe(node.pipe, d)
            if (truth(v)) run(node.then, node.n === 'with' ? v : d)
            else { scope.vars.length = mark; run(node.else, d) }
            scope.vars.length = mark
            break
          }
          case 'range': {
            const mark = scope.vars.length
            const decl = node.pipe.decl
            const v = evalPipe({ ...node.pipe, decl: [] }, d)
            let entries: Array<[unknown, unknown]>
            if (v === null || v === undefined) entries = []
            else if (Array.isArray(v)) entries = v.map((x, i) => [BigInt(i), x])
            else if (isMap(v)) entries = Object.keys(v).sort().map(k => [k, v[k]])
            else if (typeof v === 'bigint') entries = Array.from({ length: Number(v) }, (_, i) => [BigInt(i), BigInt(i)])
            else throw new Error(`range can't iterate over ${fmtV(v)}`)
            if (entries.length === 0) { run(node.else, d); break }
            for (const [key, elem] of entries) {
              scope.vars.length = mark
              if (decl.length === 1) scope.vars.push({ name: decl[0]!, value: elem })
              if (decl.length === 2) scope.vars.push({ name: decl[0]!, value: key }, { name: decl[1]!, value: elem })
              try { run(node.then, elem) } catch (e) {
                if (e instanceof BreakSignal) break
                if (!(e instanceof ContinueSignal)) throw e
              }
            }
            scope.vars.length = mark
            break
          }
          case 'template': {
            const body = engine.templates.get(node.name)
            if (body === undefined) throw new Error(`no such template "${node.name}"`)
            out += execute(engine, body.nodes, node.pipe === null ? null : evalPipe(node.pipe, d), body.file)
            break
          }
          case 'break': throw new BreakSignal()
          case 'continue': throw new ContinueSignal()
        }
      } catch (e) {
        if (e instanceof BreakSignal || e instanceof ContinueSignal || e instanceof HelmError) throw e
        const line = 'line' in node ? node.line : 0
        const msg = (e as Error).message
        // helm: "execution error at (chart/templates/x.yaml:LINE:COL): <fail message>"
        throw new HelmError(msg.startsWith('\u0000fail:') ? `execution error at (${file}:${line}): ${msg.slice(6)}` : `template: ${file}:${line}: ${msg}`)
      }
    }
  }
  run(nodes, dot)
  return out
}

/** A `fail` (or `required`) message, told apart from template errors. */
const failure = (msg: string): Error => new Error(`\u0000fail:${msg}`)

// ---------------------------------------------------------------- functions (Sprig and Helm)

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')

function indent (n: unknown, s: unknown): string {
  const pad = ' '.repeat(Number(toInt64(n)))
  return pad + strval(s).replace(/\n/g, `\n${pad}`)
}

function dig (...args: unknown[]): unknown {
  if (args.length < 3) throw new Error('dig needs at least three arguments')
  const dict = args[args.length - 1]
  const def = args[args.length - 2]
  const keys = args.slice(0, -2).map(strval)
  let node: unknown = dict
  for (const k of keys) {
    if (!isMap(node)) throw new Error(`interface conversion: interface {} is ${typeName(node)}, not map[string]interface {}`)
    if (!Object.hasOwn(node, k)) return def
    node = node[k]
  }
  return node
}

function mergeInto (dst: Obj, src: unknown, overwrite: boolean): void {
  if (!isMap(src)) return
  for (const [k, v] of Object.entries(src)) {
    if (isMap(dst[k]) && isMap(v)) mergeInto(dst[k], v, overwrite)
    else if (overwrite ? v !== undefined : (!Object.hasOwn(dst, k) || empty(dst[k]))) dst[k] = structuredClone(v)
  }
}

function semverParts (v: string): number[] {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim())
  if (m === null) throw new Error(`invalid semantic version "${v}"`)
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)]
}

function semverCompare (constraint: string, version: string): boolean {
  const cmp = (a: number[], b: number[]): number => { for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0); return 0 }
  const v = semverParts(version)
  return constraint.split('||').some(alt => alt.trim().split(/[\s,]+/).filter(Boolean).every(c => {
    const m = /^(>=|<=|>|<|=|!=|~|\^)?\s*(.+)$/.exec(c)!
    const target = semverParts(m[2]!.replace(/-.*$/, ''))
    const r = cmp(v, target)
    switch (m[1] ?? '=') {
      case '>=': return r >= 0
      case '<=': return r <= 0
      case '>': return r > 0
      case '<': return r < 0
      case '!=': return r !== 0
      case '~': return r >= 0 && v[0] === target[0] && v[1] === target[1]
      case '^': return r >= 0 && v[0] === target[0]
      default: return r === 0
    }
  }))
}

const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  // text/template built-ins
  not: (a) => !truth(a),
  eq: (a, ...b) => goEq(a, ...b),
  ne: (a, b) => !goEq(a, b),
  lt: (a, b) => goLess('lt', a, b),
  le: (a, b) => goLess('le', a, b) || goEq(a, b),
  gt: (a, b) => goLess('gt', b, a),
  ge: (a, b) => goLess('ge', b, a) || goEq(a, b),
  len: (a) => {
    if (typeof a === 'string') return BigInt(Buffer.byteLength(a))
    if (Array.isArray(a)) return BigInt(a.length)
    if (isMap(a)) return BigInt(Object.keys(a).length)
    throw new Error(`error calling len: len of ${a === null || a === undefined ? 'nil pointer' : `type ${typeName(a)}`}`)
  },
  index: (a, ...keys) => {
    let v = a
    for (const k of keys) {
      if (Array.isArray(v)) {
        const i = Number(toInt64(k))
        if (i < 0 || i >= v.length) throw new Error(`error calling index: index out of range: ${i}`)
        v = v[i]
      } else if (isMap(v)) v = v[strval(k)]
      else if (v === null || v === undefined) throw new Error('error calling index: index of untyped nil')
      else throw new Error(`error calling index: can't index item of type ${typeName(v)}`)
    }
    return v
  },
  print: (...a) => a.map((x, i) => (i > 0 && typeof x !== 'string' && typeof a[i - 1] !== 'string' ? ' ' : '') + (x === null || x === undefined ? '<nil>' : fmtV(x))).join(''),
  println: (...a) => `${a.map(x => x === null || x === undefined ? '<nil>' : fmtV(x)).join(' ')}\n`,
  printf: (f, ...a) => sprintf(strval(f), a),
  html: (s) => strval(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;'),
  urlquery: (s) => encodeURIComponent(strval(s)),
  // Helm
  required: (msg, v) => {
    if (v === null || v === undefined || v === '') throw failure(strval(msg))
    return v
  },
  fail: (msg) => { throw failure(strval(msg)) },
  toYaml: (v) => toYaml(v),
  fromYaml: (s) => { try { const v = readHelmYaml(strval(s)); return isMap(v) ? v : {} } catch (e) { return { Error: (e as Error).message } } },
  fromYamlArray: (s) => { const v = readHelmYaml(strval(s)); return Array.isArray(v) ? v : [] },
  toJson: (v) => toJson(v),
  mustToJson: (v) => toJson(v),
  toPrettyJson: (v) => JSON.stringify(plain(v), null, 2),
  fromJson: (s) => { try { const v = JSON.parse(strval(s)) as unknown; return isMap(v) ? v : {} } catch (e) { return { Error: (e as Error).message } } },
  fromJsonArray: (s) => { try { const v = JSON.parse(strval(s)) as unknown; return Array.isArray(v) ? v : [] } catch { return [] } },
  lookup: () => ({}),
  // Sprig: defaults and logic
  default: (d, ...given) => (given.length === 0 || empty(given[0]) ? d : given[0]),
  empty: (v) => empty(v),
  coalesce: (...a) => a.find(x => !empty(x)),
  ternary: (t, f, c) => (truth(c) ? t : f),
  kindOf: (v) => kindOf(v),
  kindIs: (k, v) => kindOf(v) === k,
  typeOf: (v) => typeName(v),
  typeIs: (t, v) => typeName(v) === t,
  deepEqual: (a, b) => JSON.stringify(plain(a)) === JSON.stringify(plain(b)),
  // strings
  quote: (...a) => a.filter(x => x !== null && x !== undefined).map(x => goQuote(strval(x))).join(' '),
  squote: (...a) => a.filter(x => x !== null && x !== undefined).map(x => `'${strval(x)}'`).join(' '),
  toString: (v: unknown) => strval(v),
  upper: (s) => strval(s).toUpperCase(),
  lower: (s) => strval(s).toLowerCase(),
  title: (s) => strval(s).replace(/(^|\s)(\S)/g, (_m, a: string, b: string) => a + b.toUpperCase()),
  trim: (s) => strval(s).trim(),
  trimAll: (c, s) => { const cs = strval(c); let x = strval(s); while (x !== '' && cs.includes(x[0]!)) x = x.slice(1); while (x !== '' && cs.includes(x.at(-1)!)) x = x.slice(0, -1); return x },
  trimPrefix: (p, s) => { const x = strval(s); const pp = strval(p); return x.startsWith(pp) ? x.slice(pp.length) : x },
  trimSuffix: (p, s) => { const x = strval(s); const pp = strval(p); return pp !== '' && x.endsWith(pp) ? x.slice(0, -pp.length) : x },
  contains: (sub, s) => strval(s).includes(strval(sub)),
  hasPrefix: (p, s) => strval(s).startsWith(strval(p)),
  hasSuffix: (p, s) => strval(s).endsWith(strval(p)),
  replace: (o, n, s) => strval(s).split(strval(o)).join(strval(n)),
  trunc: (c, s) => { const n = Number(toInt64(c)); const x = strval(s); if (n < 0 && x.length + n > 0) return x.slice(x.length + n); if (n >= 0 && x.length > n) return x.slice(0, n); return x },
  indent: (n, s) => indent(n, s),
  nindent: (n, s) => `\n${indent(n, s)}`,
  repeat: (n, s) => strval(s).repeat(Number(toInt64(n))),
  substr: (a, b, s) => strval(s).slice(Number(toInt64(a)), Number(toInt64(b)) < 0 ? undefined : Number(toInt64(b))),
  nospace: (s) => strval(s).replace(/\s/g, ''),
  cat: (...a) => a.filter(x => x !== null && x !== undefined).map(strval).join(' '),
  splitList: (sep, s) => strval(s).split(strval(sep)),
  split: (sep, s) => Object.fromEntries(strval(s).split(strval(sep)).map((x, i) => [`_${i}`, x])),
  join: (sep, l) => (Array.isArray(l) ? l.map(strval) : [strval(l)]).join(strval(sep)),
  sortAlpha: (l) => toList(l, 'sortAlpha').map(strval).sort(),
  regexMatch: (re, s) => new RegExp(strval(re)).test(strval(s)),
  regexReplaceAll: (re, s, r) => strval(s).replace(new RegExp(strval(re), 'g'), strval(r).replace(/\$\{(\d+)\}/g, '$$$1')),
  regexFind: (re, s) => new RegExp(strval(re)).exec(strval(s))?.[0] ?? '',
  b64enc: (s) => b64(strval(s)),
  b64dec: (s) => Buffer.from(strval(s), 'base64').toString('utf8'),
  sha256sum: (s) => createHash('sha256').update(strval(s)).digest('hex'),
  sha1sum: (s) => createHash('sha1').update(strval(s)).digest('hex'),
  semverCompare: (c, v) => semverCompare(strval(c), strval(v)),
  // numbers
  int: (v) => toInt64(v),
  int64: (v) => toInt64(v),
  float64: (v) => toFloat64(v),
  atoi: (v) => toInt64(strval(v)),
  add: (...a) => a.reduce<bigint>((s, x) => s + toInt64(x), 0n),
  add1: (a) => toInt64(a) + 1n,
  sub: (a, b) => toInt64(a) - toInt64(b),
  mul: (...a) => a.reduce<bigint>((s, x) => s * toInt64(x), 1n),
  div: (a, b) => toInt64(a) / toInt64(b),
  mod: (a, b) => toInt64(a) % toInt64(b),
  max: (...a) => a.map(toInt64).reduce((m, x) => (x > m ? x : m)),
  min: (...a) => a.map(toInt64).reduce((m, x) => (x < m ? x : m)),
  // lists
  list: (...a) => a,
  append: (l, v) => [...toList(l, 'push'), v],
  mustAppend: (l, v) => [...toList(l, 'push'), v],
  prepend: (l, v) => [v, ...toList(l, 'prepend')],
  concat: (...ls) => ls.flatMap(l => toList(l, 'concat')),
  first: (l) => toList(l, 'first')[0],
  last: (l) => toList(l, 'last').at(-1),
  rest: (l) => toList(l, 'rest').slice(1),
  initial: (l) => toList(l, 'initial').slice(0, -1),
  has: (needle, l) => toList(l, 'has').some(x => JSON.stringify(plain(x)) === JSON.stringify(plain(needle))),
  without: (l, ...omit) => toList(l, 'without').filter(x => !omit.some(o => JSON.stringify(plain(o)) === JSON.stringify(plain(x)))),
  uniq: (l) => toList(l, 'uniq').filter((x, i, all) => all.findIndex(y => JSON.stringify(plain(y)) === JSON.stringify(plain(x))) === i),
  compact: (l) => toList(l, 'compact').filter(x => !empty(x)),
  // dicts
  dict: (...a) => { const d: Obj = {}; for (let i = 0; i < a.length; i += 2) d[strval(a[i])] = a[i + 1]; return d },
  get: (d, k) => { const m = toMap(d, 'get'); return Object.hasOwn(m, strval(k)) ? m[strval(k)] : '' },
  set: (d, k, v) => { toMap(d, 'set')[strval(k)] = v; return d },
  unset: (d, k) => { delete toMap(d, 'unset')[strval(k)]; return d },
  hasKey: (d, k) => Object.hasOwn(toMap(d, 'hasKey'), strval(k)),
  keys: (...ds) => ds.flatMap(d => Object.keys(toMap(d, 'keys'))),
  values: (d) => Object.values(toMap(d, 'values')),
  pick: (d, ...ks) => Object.fromEntries(Object.entries(toMap(d, 'pick')).filter(([k]) => ks.map(strval).includes(k))),
  omit: (d, ...ks) => Object.fromEntries(Object.entries(toMap(d, 'omit')).filter(([k]) => !ks.map(strval).includes(k))),
  dig,
  deepCopy: (v) => structuredClone(v),
  mustDeepCopy: (v) => structuredClone(v),
  merge: (dst, ...srcs) => { const d = toMap(dst, 'merge'); for (const s of srcs) mergeInto(d, s, false); return d },
  mergeOverwrite: (dst, ...srcs) => { const d = toMap(dst, 'mergeOverwrite'); for (const s of srcs) mergeInto(d, s, true); return d }
}

// ---------------------------------------------------------------- the chart

export interface Chart {
  dir: string
  name: string
  metadata: Obj
  values: Obj
  schema: Obj | undefined
  /** "<chart>/templates/<file>" -> source */
  templates: Map<string, string>
}

export function loadChart (dir: string): Chart {
  const metadata = readHelmYaml(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Obj
  const values = (readHelmYaml(readFileSync(join(dir, 'values.yaml'), 'utf8')) ?? {}) as Obj
  const schemaPath = join(dir, 'values.schema.json')
  const schema = existsSync(schemaPath) ? JSON.parse(readFileSync(schemaPath, 'utf8')) as Obj : undefined
  const name = String(metadata['name'])
  const templates = new Map<string, string>()
  const walk = (d: string): void => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f)
      if (statSync(p).isDirectory()) walk(p)
      else templates.set(`${name}/${relative(dir, p).split('\\').join('/')}`, readFileSync(p, 'utf8'))
    }
  }
  walk(join(dir, 'templates'))
  return { dir, name, metadata, values, schema, templates }
}

export interface RenderOptions {
  releaseName?: string
  namespace?: string
  /** Values files' contents (YAML text, read as helm reads -f files) or objects, applied in order. */
  values?: Array<string | Obj>
  /** API versions the cluster serves besides the built-in ones (helm template --api-versions). */
  apiVersions?: string[]
  kubeVersion?: string
  /** Only render: do not parse the output as Kubernetes manifests (for testing template snippets). */
  raw?: boolean
}

export interface Manifest { file: string, doc: Obj }

export interface Rendered {
  /** Rendered text per template file (files with nothing but whitespace left out). */
  files: Map<string, string>
  /** Every Kubernetes object, parsed strictly. */
  manifests: Manifest[]
  notes: string
  values: Obj
  /** The objects of one kind (and name, if given). */
  find: (kind: string, name?: string) => Obj[]
  /** The one object of that kind; throws if there is not exactly one. */
  one: (kind: string) => Obj
}

const BUILTIN_APIS = [
  'v1', 'apps/v1', 'batch/v1', 'autoscaling/v1', 'autoscaling/v2', 'policy/v1', 'networking.k8s.io/v1',
  'rbac.authorization.k8s.io/v1', 'storage.k8s.io/v1', 'apiextensions.k8s.io/v1', 'admissionregistration.k8s.io/v1',
  'coordination.k8s.io/v1', 'discovery.k8s.io/v1', 'scheduling.k8s.io/v1', 'node.k8s.io/v1', 'certificates.k8s.io/v1'
]

function schemaMessage (errors: ErrorObject[]): string {
  return errors.map(e => {
    const where = e.instancePath === '' ? '(root)' : e.instancePath.slice(1).split('/').join('.')
    if (e.keyword === 'additionalProperties') return `- ${where}: Additional property ${String((e.params as { additionalProperty: string }).additionalProperty)} is not allowed`
    return `- ${where}: ${e.message ?? e.keyword}`
  }).join('\n')
}

const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true })

/** Validates values as helm does before rendering; returns helm's message or undefined. */
export function validateValues (chart: Chart, values: unknown): string | undefined {
  if (chart.schema === undefined) return undefined
  const validate = ajv.compile(chart.schema)
  if (validate(plain(values))) return undefined
  return `values don't meet the specifications of the schema(s) in the following chart(s):\n${chart.name}:\n${schemaMessage(validate.errors ?? [])}`
}

/** `helm template RELEASE CHART -n NAMESPACE -f ...`: renders every template, or throws HelmError. */
export function renderChart (chart: Chart, opts: RenderOptions = {}): Rendered {
  let values: unknown = structuredClone(chart.values)
  for (const v of opts.values ?? []) values = helmMerge(values, typeof v === 'string' ? (readHelmYaml(v) ?? {}) : v)
  const schemaError = validateValues(chart, values)
  if (schemaError !== undefined) throw new HelmError(schemaError)

  const kube = opts.kubeVersion ?? 'v1.30.0'
  const [major = '1', minor = '30'] = kube.replace(/^v/, '').split('.')
  const apis = new Set([...BUILTIN_APIS, ...(opts.apiVersions ?? [])])
  const chartFields: Obj = {}
  const rename: Record<string, string> = { apiVersion: 'APIVersion', appVersion: 'AppVersion', kubeVersion: 'KubeVersion' }
  for (const [k, v] of Object.entries(chart.metadata)) chartFields[rename[k] ?? k.charAt(0).toUpperCase() + k.slice(1)] = v
  for (const k of ['Name', 'Version', 'AppVersion', 'Description', 'Type', 'KubeVersion', 'Keywords', 'Home', 'Sources', 'Maintainers', 'Icon', 'APIVersion', 'Annotations', 'Dependencies', 'Deprecated']) {
    if (!Object.hasOwn(chartFields, k)) chartFields[k] = undefined
  }
  const top = (file: string): GoStruct => new GoStruct('chartutil.Values', {
    Values: values,
    Release: new GoStruct('release', { Name: opts.releaseName ?? 'sg', Namespace: opts.namespace ?? 'default', IsInstall: true, IsUpgrade: false, Revision: 1n, Service: 'Helm' }),
    Chart: new GoStruct('chart.Metadata', chartFields),
    Capabilities: new GoStruct('chartutil.Capabilities', {
      KubeVersion: new GoStruct('chartutil.KubeVersion', { Version: kube, Major: major, Minor: minor, GitVersion: kube }),
      APIVersions: new GoStruct('chartutil.VersionSet', { Has: (v: unknown) => apis.has(strval(v)) }),
      HelmVersion: new GoStruct('chartutil.HelmVersion', { Version: 'v3.16.0' })
    }),
    Template: new GoStruct('chartutil.Template', { Name: file, BasePath: `${chart.name}/templates` }),
    Files: new GoStruct('files', { Get: () => '' })
  })

  // every file is a template of its own name; defines from every file share one namespace
  const templates = new Map<string, { nodes: Node[], file: string }>()
  const parsed = new Map<string, Parsed>()
  for (const [file, text] of chart.templates) {
    const p = parseTemplate(text, file)
    parsed.set(file, p)
    templates.set(file, { nodes: p.root, file })
  }
  for (const [file, p] of parsed) for (const [n, nodes] of p.defines) templates.set(n, { nodes, file })
  const engine: Engine = {
    templates,
    depth: 0,
    tpl: (text, dot, file) => {
      const p = parseTemplate(text, file)
      const local: Engine = { ...engine, templates: new Map([...templates, ...[...p.defines].map(([n, nodes]) => [n, { nodes, file }] as const)]) }
      return execute(local, p.root, dot, file)
    }
  }

  const files = new Map<string, string>()
  let notes = ''
  for (const file of chart.templates.keys()) {
    const base = file.split('/').at(-1) ?? ''
    if (base.startsWith('_')) continue
    const text = execute(engine, templates.get(file)!.nodes, top(file), file).replace(/<no value>/g, '')
    if (base === 'NOTES.txt') { notes = text; continue }
    if (!/\.(ya?ml|tpl)$/.test(base)) continue
    if (text.trim() !== '') files.set(file, text)
  }

  const manifests: Manifest[] = []
  for (const [file, text] of opts.raw === true ? [] : files) {
    for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
      if (doc.errors.length > 0) throw new HelmError(`YAML parse error on ${file}: ${doc.errors.map(e => e.message).join('; ')}\n${text}`)
      const v = doc.toJS() as unknown
      if (v === null || v === undefined) continue
      if (!isMap(v)) throw new HelmError(`${file}: a manifest is not a mapping`)
      manifests.push({ file, doc: v })
    }
  }
  const find = (kind: string, name?: string): Obj[] => manifests.map(m => m.doc).filter(d => d['kind'] === kind && (name === undefined || (d['metadata'] as Obj | undefined)?.['name'] === name))
  return {
    files,
    manifests,
    notes,
    values: values as Obj,
    find,
    one: (kind) => {
      const all = find(kind)
      if (all.length !== 1) throw new Error(`expected one ${kind}, found ${all.length}`)
      return all[0]!
    }
  }
}
