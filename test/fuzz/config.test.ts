/**
 * Property-based fuzzing of config loading (src/config/loader.ts): any YAML text either loads into a
 * sane Config or is refused with a ConfigError whose message starts with the offending key, and that
 * key is a place in the file; never another exception, never a crash.
 */
import t from 'tap'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { parse as parseYaml, parseDocument, stringify } from 'yaml'
import { ConfigError, parseConfig } from '../../src/config/loader.js'
import type { Config } from '../../src/config/types.js'
import { property } from '../helpers/fuzz.js'

const FILE = 'test/fuzz/config.test.ts'
const root = fileURLToPath(new URL('../../', import.meta.url))
const exampleText = readFileSync(`${root}config/example.yaml`, 'utf8')
const example = parseYaml(exampleText.replace(/\$\{(\w+)\}/g, 'ENV_$1')) as Record<string, unknown>
const env = {
  SG_ADMIN_TOKEN: 'admin-token-0123456789',
  SG_CLIENT_SECRET: 'client-secret',
  SG_SESSION_KEY: Buffer.alloc(32, 7).toString('base64url'),
  SG_SHORT: 'x',
  SG_EMPTY: ''
}
/** The example with `${NAME}` back in place of the ENV_NAME words used to parse it. */
function withRefs (v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/ENV_(\w+)/g, '${$1}')
  if (Array.isArray(v)) return v.map(withRefs)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withRefs(x)]))
  return v
}
const exampleTree = withRefs(example) as Record<string, unknown>

// Silence yaml's "keys with collection values will be stringified" process warnings.
process.removeAllListeners('warning')

/** `routes[0].upstream`, `oidc["a b"]` -> path segments (the loader's formatPath, read back). */
function keyPath (key: string): Array<string | number> | undefined {
  const out: Array<string | number> = []
  const re = /^(?:([A-Za-z_$][\w$-]*)|\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/
  let rest = key
  while (rest !== '') {
    const m = re.exec(rest)
    if (m === null) return undefined
    if (m[1] !== undefined) {
      if (out.length > 0) return undefined
      out.push(m[1])
    } else if (m[2] !== undefined) out.push(m[2])
    else if (m[3] !== undefined) out.push(Number(m[3]))
    else out.push(JSON.parse(m[4]!) as string)
    rest = rest.slice(m[0].length)
  }
  return out
}

function isNode (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null
}

/** What the YAML text is as a tree, as far as it parses without the loader (undefined if it does not). */
function treeOf (text: string): unknown {
  // `${NAME}` is not always valid YAML: parse with a word in its place, then put it back in keys.
  const refs: string[] = []
  const restore = (s: string): string => s.replace(/fuzzref(\d+)x/g, (_m, i: string) => refs[Number(i)] ?? '')
  const renamed = (v: unknown, seen = new Set<unknown>()): unknown => {
    if (!isNode(v) || seen.has(v)) return v
    seen.add(v)
    if (Array.isArray(v)) return v.map((x) => renamed(x, seen))
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, restore(k), { value: renamed(x, seen), enumerable: true })
    return out
  }
  try {
    const doc = parseDocument(text.replace(/\$?\$\{\w+\}/g, (ref) => `fuzzref${refs.push(ref) - 1}x`), { prettyErrors: false })
    return doc.errors.length > 0 ? undefined : renamed(doc.toJS({ maxAliasCount: 100 }))
  } catch {
    return undefined
  }
}

/** A loaded Config keeps the rules the loader promises. */
function assertSane (c: Config): void {
  assert.ok(c.routes.length >= 1, 'a route')
  assert.equal(new Set(c.routes.map((r) => `${r.host ?? ''} ${r.prefix}`)).size, c.routes.length, 'unique prefixes per host')
  for (const r of c.routes) {
    assert.ok(r.prefix.startsWith('/'), `prefix ${r.prefix}`)
    // What the loader checks (WHATWG URL, http or https); it keeps the text as written.
    if (r.upstream !== undefined) assert.ok(['http:', 'https:'].includes(new URL(r.upstream).protocol), `upstream ${r.upstream}`)
  }
  assert.ok(c.session.keys.length >= 1 && c.session.keys.every((k) => k.length === 32), 'session keys of 32 bytes')
  assert.ok(Number.isSafeInteger(c.session.ttl) && c.session.ttl > 0 && c.session.absoluteTtl >= c.session.ttl, 'ttl <= absoluteTtl')
  assert.ok(c.authPrefix.startsWith('/') && !c.authPrefix.endsWith('/'), `authPrefix ${c.authPrefix}`)
  assert.ok(c.admin.token.length >= 16, 'admin token of 16 characters or more')
  assert.ok(c.oidc.scopes.includes('openid'), 'openid scope')
  assert.match(c.publicUrl, /^https?:\/\/[^?#]*[^/]$/)
}

/** Loads `text`: a sane Config, or a ConfigError naming a key that is a place in the file. */
function assertLoadsOrNamesKey (text: string): void {
  let config: Config
  try {
    config = parseConfig(text, env)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `threw ${(err as Error)?.name}: ${(err as Error)?.message}, not a ConfigError`)
    assert.equal(err.code, 'SG_CONFIG_INVALID')
    if (err.key === '') {
      // Problems of the file as a whole have no key to name.
      assert.match(err.message, /^(invalid YAML( at line \d+)?: |the config must be a YAML mapping)/, `no key named: ${err.message}`)
      return
    }
    assert.ok(err.message.startsWith(`${err.key}: `), `message starts with the key: ${err.message}`)
    const path = keyPath(err.key)
    assert.ok(path !== undefined, `key ${err.key} is a key path`)
    // The named key's parent is in the file (the key itself may be the missing one).
    const tree = treeOf(text)
    if (tree === undefined) return
    let node: unknown = tree
    for (const seg of path.slice(0, -1)) {
      assert.ok(isNode(node) && Object.hasOwn(node, seg), `${err.key}: ${JSON.stringify(seg)} is not in the file`)
      node = node[seg]
    }
    assert.ok(isNode(node), `${err.key}: its parent is not a mapping or list in the file`)
    return
  }
  assertSane(config)
}

// ------------------------------------------------------------------------------------------ generators

const KEYS = ['publicUrl', 'listen', 'host', 'port', 'admin', 'token', 'authPrefix', 'trustProxy', 'logLevel', 'oidc', 'issuer',
  'clientId', 'clientSecret', 'scopes', 'allowInsecureHttp', 'session', 'ttl', 'absoluteTtl', 'keys', 'rememberMe', 'enabled',
  'rotationGrace', 'checkIdp', 'ask', 'store', 'kind', 'failMode', 'nearCache', 'redis', 'url', 'sentinel', 'name', 'nodes',
  'password', 'cluster', 'username', 'keyPrefix', 'commandTimeout', 'routes', 'prefix', 'upstream', 'auth', 'forwardAccessToken',
  'csrf', 'timeouts', 'headers', 'request', 'websocket', 'allowedOrigins', 'identity', 'user', 'groups', 'authorize', 'subjects',
  'emails', 'emailDomains', 'claims', 'forwardAuth', 'allowedHosts', 'cookieDomain', 'bearer', 'tls', 'caFile', 'certFile', 'keyFile',
  'serverName', 'insecureSkipVerify', 'prompt', 'par', 'privateKey', 'tokenEndpointAuthMethod', 'audience', 'accessTokenMaxAge',
  'pages', 'title', 'logoUrl', 'accentColor', 'rateLimit', 'perMinute', 'tracing', 'otlpEndpoint', 'serviceName', 'sampleRatio', '__proto__', 'constructor', 'toString', 'isuer', 'Routes', '', ' ', 'a b', 'a.b', '[0]', '"q"', '${SG_SHORT}']

const scalar: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('', ' ', 'x', '/', '/auth', '/auth/', '//', '/api', 'auth', 'https://app.example.com',
    'http://127.0.0.1:3000', 'ftp://x', 'https://u:p@x', 'https://x/?q', 'redis://127.0.0.1:6379', 'rediss://x', 'redis://',
    'host:1', '[::1]:6379', 'h:0', 'h:99999', '5m', '0s', '0', '-1s', '1ms', '500ms', '12h', '30d', '99999999999999999d',
    '9007199254740993', 'required', 'optional', 'none', 'memory', 'redis', 'closed', 'open', 'info', 'silent', 'openid',
    '${SG_ADMIN_TOKEN}', '${SG_SESSION_KEY}', '${SG_SHORT}', '${SG_EMPTY}', '${NOPE}', '$${SG_SHORT}', '$$${SG_SHORT}',
    '${SG_SESSION_KEY}=', 'A'.repeat(43), 'A'.repeat(44), '+/+/', '\u0000', 'é', '~', 'null', 'true', '.inf', '0x1F',
    '2001-12-14', '*.example.com', 'app.example.com', '.example.com', 'example.com', 'https://*.example.com', 'sub', 'email',
    'x-user', 'X-Forwarded-User', 'Authorization', 'host', 'cookie', '/', '/nonexistent.pem', 'config/example.yaml', 'login consent',
    'none login', 'private_key_jwt', 'client_secret_post', 'auto', '#fff', 'red; x', 'javascript:alert(1)') },
  { weight: 2, arbitrary: fc.constantFrom(null, true, false, 0, 1, -1, 1.5, 65535, 65536, 8080, 2 ** 53, 1e300, -0) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.double() }
)

/** Any YAML-representable value, keys mostly from the config's vocabulary. */
const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 5, arbitrary: scalar },
    { weight: 1, arbitrary: fc.array(tie('v'), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 })), tie('v'), { maxKeys: 4 }) }
  )
})).v

/** Every path (list indices included) of a tree. */
function paths (v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix]
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])))
  else if (isNode(v)) for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]))
  return out
}
const examplePaths = paths(exampleTree).filter((p) => p.length > 0)

type Edit =
  | { op: 'set', path: Array<string | number>, value: unknown }
  | { op: 'delete', path: Array<string | number> }
  | { op: 'add', path: Array<string | number>, key: string, value: unknown }
  | { op: 'typo', path: Array<string | number>, at: number, char: string }

const edit: fc.Arbitrary<Edit> = fc.constantFrom(...examplePaths).chain((path) => fc.oneof(
  fc.record({ op: fc.constant('set' as const), path: fc.constant(path), value }),
  fc.constant({ op: 'delete' as const, path }),
  fc.record({ op: fc.constant('add' as const), path: fc.constant(path), key: fc.constantFrom(...KEYS), value }),
  fc.record({ op: fc.constant('typo' as const), path: fc.constant(path), at: fc.nat(), char: fc.constantFrom('', 'x', 's', ' ', '_') })
))

function applyEdit (tree: unknown, e: Edit): void {
  const parentPath = e.path.slice(0, -1)
  const last = e.path[e.path.length - 1]!
  let parent: unknown = tree
  for (const seg of parentPath) parent = isNode(parent) ? parent[seg] : undefined
  if (!isNode(parent)) return
  const node = parent as Record<string | number, unknown>
  if (e.op === 'set') node[last] = e.value
  if (e.op === 'delete') {
    if (Array.isArray(node) && typeof last === 'number') node.splice(last, 1)
    else delete node[last]
  }
  if (e.op === 'add') {
    const target = node[last]
    if (isNode(target) && !Array.isArray(target)) Object.defineProperty(target, e.key, { value: e.value, enumerable: true, writable: true, configurable: true })
    else if (Array.isArray(target)) target.push(e.value)
  }
  if (e.op === 'typo' && typeof last === 'string' && !Array.isArray(node)) {
    const at = e.at % (last.length + 1)
    const renamed = last.slice(0, at) + e.char + last.slice(at + 1)
    const v = node[last]
    delete node[last]
    Object.defineProperty(node, renamed, { value: v, enumerable: true, writable: true, configurable: true })
  }
}

/** YAML-specific pieces, for text-level mutations. */
const YAML_BITS = ['\n', ' ', '  ', '\t', ':', ': ', '- ', '-', '[', ']', '{', '}', ',', '#', '"', '\'', '|', '>', '&a ', '*a', '&a', '<<: *a',
  '!!binary ', '!!str ', '!!int ', '!!float ', '!!map ', '!!seq ', '!!set ', '!!omap ', '!!timestamp ', '!custom ', '%YAML 1.1\n---\n',
  '---\n', '...\n', '? ', '~', 'null', '.nan', '${SG_SHORT}', '${NOPE}', '$${X}', '${', '}', '\\', '\u0000', '\ufeff', 'é', '\r\n']

const textEdit = fc.tuple(fc.nat(), fc.nat({ max: 20 }), fc.array(fc.constantFrom(...YAML_BITS), { maxLength: 3 }))

// ------------------------------------------------------------------------------------------ properties

t.test('config loading', async (t) => {
  await property(t, FILE, 'config.any-document', fc.property(value, (doc) => {
    assertLoadsOrNamesKey(stringify(doc))
  }), 1)

  await property(t, FILE, 'config.example-edited', fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
    const tree = structuredClone(exampleTree)
    for (const e of edits) applyEdit(tree, e)
    assertLoadsOrNamesKey(stringify(tree))
  }), 1)

  await property(t, FILE, 'config.example-text-edited', fc.property(fc.array(textEdit, { minLength: 1, maxLength: 4 }), (edits) => {
    let text = exampleText
    for (const [at, del, insert] of edits) {
      const i = at % (text.length + 1)
      text = text.slice(0, i) + insert.join('') + text.slice(i + del)
    }
    assertLoadsOrNamesKey(text)
  }), 1)

  await property(t, FILE, 'config.any-text', fc.property(
    fc.oneof(
      fc.array(fc.oneof(fc.constantFrom(...YAML_BITS, ...KEYS.map((k) => `${k}: `)), fc.string({ maxLength: 4 })), { maxLength: 30 }).map((p) => p.join('')),
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.tuple(fc.constantFrom('[', '{', '- ', '{"a":', 'a:\n  ', '&a [*a, '), fc.nat({ max: 3000 })).map(([s, n]) => s.repeat(n))
    ),
    (text) => { assertLoadsOrNamesKey(text) }), 1)

  // YAML shapes the properties found or that are known to hurt parsers: each checked on every run.
  t.test('config.yaml-specials', async (t) => {
    const specials = [
      'a: &x [*x]', '&a [*a]', '&a {b: *a}', 'publicUrl: &u [*u]', `${exampleText}\nextra: &loop {self: *loop}\n`,
      '*a', 'a: *b', 'a: &b x\nc: *b\nd: *e\n', `${exampleText}\nx: *nope\n`,
      'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n',
      '['.repeat(3000), '{a: '.repeat(3000), '- '.repeat(3000), Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i)}a:`).join('\n'),
      '${NOPE}', '"${SG_SHORT}"', '[${SG_SHORT}]', '%YAML 1.1\n---\npublicUrl: 2001-12-14\n', '? [a, b]\n: c',
      exampleText.replace('ttl: 5m', 'ttl: !!binary aGVsbG8=')
    ]
    for (const text of specials) t.doesNotThrow(() => { assertLoadsOrNamesKey(text) }, JSON.stringify(text.slice(0, 50)))
    const errorOf = (text: string): ConfigError | undefined => {
      try {
        parseConfig(text, env)
      } catch (err) {
        return err as ConfigError
      }
      return undefined
    }
    t.match(errorOf('a: &x [*x]'), { key: 'a[0]', message: /refers to itself/ })
    t.match(errorOf('x: 1\ny:\n  a: *b'), { key: '', message: /^invalid YAML at line 3: alias \*b has no anchor &b/ })
    t.match(errorOf('['.repeat(3000)), { key: '', message: /^invalid YAML at line 1: nested too deep/ })
    t.match(errorOf('${NOPE}'), { key: '', message: /must be a YAML mapping/ })
  })
})
