/**
 * Reads the YAML config file, substitutes `${NAME}` from the environment, validates it and
 * returns the normalised Config. Every failure is a ConfigError naming the offending key.
 */
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { usableCpus } from './cpus.js'
import { parseDocument, visit, type Document } from 'yaml'
import { Ajv, type ErrorObject } from 'ajv'
import { parseDuration, parseDurationMs } from './duration.js'
import { DEFAULTS, RawConfigSchema, type RawConfig, type RawRedis, type RawRoute, type RawRule } from './schema.js'
import type { AuthzRule, Config, ListenConfig, RedisConfig, RedisNode, RouteConfig, TlsConfig } from './types.js'
import { HOST_PATTERN } from '../core/hosts.js'
import { ssfConfig } from './ssf.js'

type Env = Readonly<Record<string, string | undefined>>
type Path = ReadonlyArray<string | number>

/** A bad config file; `key` is the dotted path of the offending value ('' for file-level problems). */
export class ConfigError extends Error {
  readonly code = 'SG_CONFIG_INVALID'
  readonly key: string
  /** The file (or '<inline>') the config came from; set by parseConfig. */
  source?: string

  constructor (key: string, problem: string, options?: ErrorOptions) {
    super(key === '' ? problem : `${key}: ${problem}`, options)
    this.name = 'ConfigError'
    this.key = key
  }
}

/** Formats a key path as `routes[0].upstream`; odd keys are quoted: `oidc["a b"]`. */
function formatPath (path: Path): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

// ---------------------------------------------------------------- environment substitution

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
function protectRefs (text: string): { text: string, restore: (s: string) => string } {
  const nonce = randomBytes(6).toString('hex')
  const refs: string[] = []
  const out = text.replace(REF_RE, ref => `sgref${nonce}n${refs.push(ref) - 1}x`)
  const back = new RegExp(`sgref${nonce}n(\\d+)x`, 'g')
  return { text: out, restore: s => s.replace(back, (_m, i: string) => refs[Number(i)] ?? '') }
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Substitutes in every string scalar; map keys only get their references restored, never substituted.
 * `inside` holds the lists and mappings being walked: a YAML alias to its own ancestor (`a: &x [*x]`)
 * makes a cycle, which no config needs.
 */
function substituteTree (node: unknown, path: Path, env: Env, restore: (s: string) => string, inside = new Set<object>()): unknown {
  if (typeof node === 'string') return substituteEnv(restore(node), env, formatPath(path))
  if (typeof node !== 'object' || node === null) return node
  if (inside.has(node)) throw new ConfigError(formatPath(path), 'refers to itself (a YAML alias inside its own anchor)')
  inside.add(node)
  try {
    if (Array.isArray(node)) return node.map((v, i) => substituteTree(v, [...path, i], env, restore, inside))
    if (!isObject(node)) return node
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(node)) {
      const key = restore(k)
      // defineProperty: a `__proto__` key stays an ordinary (unknown) key.
      Object.defineProperty(out, key, { value: substituteTree(v, [...path, key], env, restore, inside), enumerable: true, writable: true, configurable: true })
    }
    return out
  } finally {
    inside.delete(node)
  }
}

// ---------------------------------------------------------------- schema validation

// allErrors: so a typo (`isuer`) is reported as the unknown key, not as the missing `issuer`.
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true })
const validateRaw = ajv.compile<RawConfig>(RawConfigSchema)

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

function unknownKeyHint (key: string, parentSchema: unknown): string {
  const props = isObject(parentSchema) && isObject(parentSchema['properties']) ? Object.keys(parentSchema['properties']) : []
  const close = props.find(p => editDistance(p.toLowerCase(), key.toLowerCase()) <= 2)
  if (close !== undefined) return ` (did you mean "${close}"?)`
  return props.length > 0 ? ` (allowed: ${props.join(', ')})` : ''
}

function schemaError (e: ErrorObject, root: unknown): ConfigError {
  const path = pointerPath(e.instancePath, root)
  const at = formatPath(path)
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p['additionalProperty'])
      return new ConfigError(formatPath([...path, key]), `unknown key${unknownKeyHint(key, e.parentSchema)}`)
    }
    case 'required':
      return new ConfigError(formatPath([...path, String(p['missingProperty'])]), 'required key is missing')
    case 'type':
      return new ConfigError(at, `expected ${[p['type']].flat().map(t => YAML_TYPE[String(t)] ?? t).join(' or ')}, got ${typeName(e.data)}`)
    case 'enum':
      return new ConfigError(at, `must be one of ${(p['allowedValues'] as unknown[]).join(', ')} (got ${JSON.stringify(e.data)})`)
    case 'minItems':
    case 'minLength':
    case 'minProperties':
      if (p['limit'] === 1) return new ConfigError(at, 'must not be empty')
  }
  return new ConfigError(at, e.message ?? 'is invalid')
}

// ---------------------------------------------------------------- semantic checks + normalisation

function url (value: string, key: string, protocols: readonly string[], label: string): URL {
  let u: URL
  try {
    u = new URL(value)
  } catch {
    throw new ConfigError(key, `must be an absolute ${label} URL`)
  }
  if (!protocols.includes(u.protocol)) throw new ConfigError(key, `must be an absolute ${label} URL (got scheme ${u.protocol})`)
  return u
}

const HTTP = ['http:', 'https:'] as const
const HTTP_LABEL = 'http(s)'

function noQueryOrFragment (value: string, key: string): void {
  if (value.includes('?') || value.includes('#')) throw new ConfigError(key, 'must not contain a query or fragment')
}

function duration (value: string | number, key: string, ms = false): number {
  try {
    return ms ? parseDurationMs(value) : parseDuration(value)
  } catch (err) {
    throw new ConfigError(key, (err as Error).message)
  }
}

function listen (raw: { host?: string, port?: number } | undefined, def: ListenConfig): ListenConfig {
  return { host: raw?.host ?? def.host, port: raw?.port ?? def.port }
}

function publicUrl (value: string): string {
  const u = url(value, 'publicUrl', HTTP, HTTP_LABEL)
  noQueryOrFragment(value, 'publicUrl')
  if (u.username !== '' || u.password !== '') throw new ConfigError('publicUrl', 'must not contain credentials')
  return (u.origin + u.pathname).replace(/\/+$/, '')
}

function authPrefix (value: string): string {
  const key = 'authPrefix'
  if (!value.startsWith('/')) throw new ConfigError(key, 'must start with "/"')
  if (value === '/') throw new ConfigError(key, 'must not be "/" (the gateway\'s endpoints need their own path, e.g. /auth)')
  if (value.endsWith('/')) throw new ConfigError(key, 'must not end with "/"')
  if (/[?#\s]|\/\//.test(value)) throw new ConfigError(key, 'must be a plain path such as /auth')
  return value
}

const B64URL_RE = /^[A-Za-z0-9_-]+={0,2}$/
const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/

function sessionKey (value: string, key: string): Buffer {
  // Buffer's strict-enough check: it silently skips bad characters, so test the alphabet first.
  if (!B64URL_RE.test(value) && !B64_RE.test(value)) {
    throw new ConfigError(key, 'must be base64url (generate one with `sessiongate keygen`)')
  }
  const buf = Buffer.from(value, 'base64') // also accepts the url-safe alphabet
  if (buf.length !== 32) throw new ConfigError(key, `must decode to 32 bytes (got ${buf.length})`)
  return buf
}

function route (r: RawRoute, i: number, global: AuthzRule[] | undefined, forwardAuth: boolean): RouteConfig {
  const key = (k: string): string => formatPath(['routes', i, k])
  if (!r.prefix.startsWith('/')) throw new ConfigError(key('prefix'), 'must start with "/"')
  noQueryOrFragment(r.prefix, key('prefix'))
  if (r.upstream !== undefined) url(r.upstream, key('upstream'), HTTP, HTTP_LABEL)
  else if (!forwardAuth) throw new ConfigError(key('upstream'), 'required key is missing (only forward-auth routes, with forwardAuth.enabled, may omit it)')
  if (r.host !== undefined && !HOST_PATTERN.test(r.host)) throw new ConfigError(key('host'), `must be a host name such as app.example.com or *.example.com (got ${JSON.stringify(r.host)})`)
  const auth = r.auth ?? DEFAULTS.route.auth
  const own = r.authorize === undefined ? undefined : rules(r.authorize, ['routes', i, 'authorize'])
  if (own !== undefined && auth === 'none') throw new ConfigError(key('authorize'), 'needs auth: required or optional (an auth: none route never looks at the session)')
  const authorize = auth === 'none' ? undefined : own ?? global
  const bearer = r.bearer ?? DEFAULTS.route.bearer
  if (bearer && auth === 'none') throw new ConfigError(key('bearer'), 'needs auth: required or optional (an auth: none route checks no credential)')
  return {
    prefix: r.prefix,
    ...(r.host !== undefined ? { host: r.host.toLowerCase() } : {}),
    ...(r.upstream !== undefined ? { upstream: r.upstream } : {}),
    auth,
    forwardAccessToken: r.forwardAccessToken ?? DEFAULTS.route.forwardAccessToken,
    csrf: r.csrf ?? DEFAULTS.route.csrf,
    bearer,
    ...(authorize !== undefined ? { authorize } : {}),
    ...(r.tls !== undefined ? { tls: routeTls(r, i) } : {})
  }
}

function routeTls (r: RawRoute, i: number): TlsConfig {
  if (r.upstream === undefined || !r.upstream.startsWith('https:')) throw new ConfigError(formatPath(['routes', i, 'tls']), 'applies to an https upstream only')
  return tls(r.tls!, ['routes', i, 'tls'])
}

/** Normalises `authorize` rules: emails and domains lower-cased, claim values as strings. */
function rules (raw: RawRule[], base: Path): AuthzRule[] {
  return raw.map((r, i) => {
    const out: AuthzRule = {}
    if (r.subjects !== undefined) out.subjects = r.subjects
    if (r.emails !== undefined) {
      out.emails = r.emails.map((e, j) => {
        if (!/^[^@\s]+@[^@\s]+$/.test(e)) throw new ConfigError(formatPath([...base, i, 'emails', j]), `must be an email address (got ${JSON.stringify(e)})`)
        return e.toLowerCase()
      })
    }
    if (r.emailDomains !== undefined) {
      out.emailDomains = r.emailDomains.map((d, j) => {
        if (!/^[A-Za-z0-9.-]+$/.test(d)) throw new ConfigError(formatPath([...base, i, 'emailDomains', j]), `must be a domain such as example.com, without @ (got ${JSON.stringify(d)})`)
        return d.toLowerCase()
      })
    }
    if (r.groups !== undefined) out.groups = r.groups
    if (r.claims !== undefined) out.claims = Object.fromEntries(Object.entries(r.claims).map(([k, v]) => [k, v.map(String)]))
    return out
  })
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Headers a mapping may not set: the built-in identity headers, and what HTTP or the proxy owns. */
const RESERVED_HEADERS = new Set([
  'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-preferred-username', 'x-forwarded-groups', 'x-forwarded-access-token',
  'authorization', 'cookie', 'host', 'connection', 'content-length', 'content-type', 'transfer-encoding', 'upgrade', 'te',
  'trailer', 'keep-alive', 'proxy-authorization', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded'
])

function identity (raw: RawConfig['identity']): Config['identity'] {
  const headers: Record<string, string> = {}
  for (const [name, path] of Object.entries(raw?.headers ?? {})) {
    const key = formatPath(['identity', 'headers', name])
    if (!TOKEN_RE.test(name)) throw new ConfigError(key, 'is not a valid header name (letters, digits and !#$%&\'*+.^_`|~- only)')
    const lower = name.toLowerCase()
    if (RESERVED_HEADERS.has(lower)) throw new ConfigError(key, 'is a header the gateway or HTTP itself sets; choose another name')
    if (headers[lower] !== undefined) throw new ConfigError(key, 'is listed twice (header names are case-insensitive)')
    headers[lower] = path
  }
  return { user: raw?.user ?? DEFAULTS.identity.user, groups: raw?.groups ?? DEFAULTS.identity.groups, headers }
}

const NODE_RE = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/

function redisNodes (nodes: string[], base: Path): RedisNode[] {
  return nodes.map((n, i) => {
    const m = NODE_RE.exec(n)
    const port = Number(m?.[3])
    if (m === null || port < 1 || port > 65535) {
      throw new ConfigError(formatPath([...base, i]), `must be "host:port" (got ${JSON.stringify(n)})`)
    }
    return { host: (m[1] ?? m[2]) as string, port }
  })
}

function redis (r: RawRedis): RedisConfig {
  const base = ['store', 'redis']
  const modes = (['url', 'sentinel', 'cluster'] as const).filter(k => r[k] !== undefined)
  if (modes.length !== 1) {
    throw new ConfigError(formatPath(base), modes.length === 0
      ? 'needs one of url, sentinel, cluster'
      : `set only one of url, sentinel, cluster (got ${modes.join(' and ')})`)
  }
  // The URL may hold a password: never echo it.
  if (r.url !== undefined) url(r.url, 'store.redis.url', ['redis:', 'rediss:'], 'redis:// or rediss://')
  return {
    ...(r.url !== undefined && { url: r.url }),
    ...(r.sentinel !== undefined && {
      sentinel: {
        name: r.sentinel.name,
        nodes: redisNodes(r.sentinel.nodes, [...base, 'sentinel', 'nodes']),
        ...(r.sentinel.password !== undefined && { password: r.sentinel.password })
      }
    }),
    ...(r.cluster !== undefined && { cluster: { nodes: redisNodes(r.cluster.nodes, [...base, 'cluster', 'nodes']) } }),
    ...(r.username !== undefined && { username: r.username }),
    ...(r.password !== undefined && { password: r.password }),
    keyPrefix: r.keyPrefix ?? DEFAULTS.redis.keyPrefix,
    ...(r.tls !== undefined && { tls: tls(r.tls, [...base, 'tls']) }),
    commandTimeoutMs: duration(r.commandTimeout ?? DEFAULTS.redis.commandTimeout, 'store.redis.commandTimeout', true)
  }
}

function normalise (raw: RawConfig): Config {
  const allowInsecureHttp = raw.oidc.allowInsecureHttp ?? DEFAULTS.allowInsecureHttp
  const issuer = url(raw.oidc.issuer, 'oidc.issuer', HTTP, HTTP_LABEL)
  noQueryOrFragment(raw.oidc.issuer, 'oidc.issuer')
  if (issuer.protocol === 'http:' && !allowInsecureHttp) {
    throw new ConfigError('oidc.issuer', 'http:// issuer refused; use https, or set oidc.allowInsecureHttp: true for a local test IdP')
  }
  const scopes = raw.oidc.scopes ?? [...DEFAULTS.scopes]
  if (!scopes.includes('openid')) throw new ConfigError('oidc.scopes', 'must include "openid"')

  if (raw.admin.token.length < 16) {
    throw new ConfigError('admin.token', `must be at least 16 characters (got ${raw.admin.token.length})`)
  }

  const ttl = duration(raw.session.ttl ?? DEFAULTS.sessionTtl, 'session.ttl')
  const absoluteTtl = duration(raw.session.absoluteTtl ?? DEFAULTS.absoluteTtl, 'session.absoluteTtl')
  if (absoluteTtl < ttl) throw new ConfigError('session.absoluteTtl', `must be at least session.ttl (${ttl}s), got ${absoluteTtl}s`)
  const keys = raw.session.keys.map((k, i) => sessionKey(k, formatPath(['session', 'keys', i])))

  const globalRules = raw.authorize === undefined ? undefined : rules(raw.authorize, ['authorize'])
  const forwardAuth = forwardAuthConfig(raw.forwardAuth)
  const routes = raw.routes.map((r, i) => route(r, i, globalRules, forwardAuth.enabled))
  const seen = new Map<string, number>()
  routes.forEach((r, i) => {
    const id = `${r.host ?? ''} ${r.prefix}`
    const first = seen.get(id)
    if (first !== undefined) {
      throw new ConfigError(formatPath(['routes', i, 'prefix']), `duplicate prefix ${JSON.stringify(r.prefix)}${r.host !== undefined ? ` for host ${r.host}` : ''} (also routes[${first}].prefix)`)
    }
    seen.set(id, i)
    // The gateway's own endpoints are never proxied: a route there would be unreachable or shadow them.
    const ap = authPrefix(raw.authPrefix ?? DEFAULTS.authPrefix)
    if (r.prefix === ap || r.prefix.startsWith(`${ap}/`)) {
      throw new ConfigError(formatPath(['routes', i, 'prefix']), `must not be under authPrefix ${ap} (the gateway's own endpoints)`)
    }
  })

  const kind = raw.store?.kind ?? DEFAULTS.store.kind
  if (kind === 'redis' && raw.store?.redis === undefined) throw new ConfigError('store.redis', 'required when store.kind is redis')

  const bearerRoute = routes.findIndex((r) => r.bearer)
  if (bearerRoute >= 0 && raw.oidc.audience === undefined) {
    throw new ConfigError('oidc.audience', `required when a route has bearer: true (routes[${bearerRoute}]): the aud that access tokens for this gateway carry`)
  }
  const accessTokenMaxAge = duration(raw.oidc.accessTokenMaxAge ?? DEFAULTS.accessTokenMaxAge, 'oidc.accessTokenMaxAge')
  const oidc = { ...oidcClient(raw.oidc, scopes, allowInsecureHttp), audience: raw.oidc.audience ?? [], accessTokenMaxAge }
  const store: Config['store'] = { kind, failMode: raw.store?.failMode ?? DEFAULTS.store.failMode, nearCache: raw.store?.nearCache ?? DEFAULTS.store.nearCache }
  if (raw.store?.redis !== undefined) store.redis = redis(raw.store.redis)

  return {
    publicUrl: publicUrl(raw.publicUrl),
    listen: listen(raw.listen, DEFAULTS.listen),
    admin: { listen: listen(raw.admin.listen, DEFAULTS.adminListen), token: raw.admin.token },
    authPrefix: authPrefix(raw.authPrefix ?? DEFAULTS.authPrefix),
    trustProxy: raw.trustProxy ?? DEFAULTS.trustProxy,
    logLevel: raw.logLevel ?? DEFAULTS.logLevel,
    workers: workerCount(raw.workers ?? DEFAULTS.workers, kind),
    oidc,
    session: { ttl, absoluteTtl, keys, ...(raw.session.cookieDomain !== undefined ? { cookieDomain: cookieDomain(raw.session.cookieDomain, raw.publicUrl) } : {}) },
    forwardAuth,
    rememberMe: {
      enabled: raw.rememberMe?.enabled ?? DEFAULTS.rememberMe.enabled,
      ttl: duration(raw.rememberMe?.ttl ?? DEFAULTS.rememberMe.ttl, 'rememberMe.ttl'),
      rotationGrace: duration(raw.rememberMe?.rotationGrace ?? DEFAULTS.rememberMe.rotationGrace, 'rememberMe.rotationGrace'),
      checkIdp: raw.rememberMe?.checkIdp ?? DEFAULTS.rememberMe.checkIdp,
      ask: raw.rememberMe?.ask ?? DEFAULTS.rememberMe.ask
    },
    store,
    routes,
    identity: identity(raw.identity),
    timeouts: timeouts(raw.timeouts),
    pages: pages(raw.pages),
    websocket: { allowedOrigins: (raw.websocket?.allowedOrigins ?? []).map((o, i) => origin(o, formatPath(['websocket', 'allowedOrigins', i]))) },
    ssf: ssfConfig(raw.ssf, publicUrl(raw.publicUrl), allowInsecureHttp),
    rateLimit: { enabled: raw.rateLimit?.enabled ?? DEFAULTS.rateLimit.enabled, perMinute: raw.rateLimit?.perMinute ?? DEFAULTS.rateLimit.perMinute },
    ...(raw.tracing !== undefined ? { tracing: tracing(raw.tracing) } : {})
  }
}

/** `auto` is one worker per usable CPU (cgroup quota included); several workers share revocation state only through Redis. */
function workerCount (raw: number | 'auto', kind: Config['store']['kind']): number {
  const n = raw === 'auto' ? usableCpus() : raw
  if (n > 1 && kind !== 'redis') throw new ConfigError('workers', `${n} workers need store.kind: redis (each worker would keep its own memory store, and a logout on one would not reach the others)`)
  return n
}

/** How the gateway authenticates at the token endpoint, and what it trusts and sends the IdP. */
function oidcClient (raw: RawConfig['oidc'], scopes: string[], allowInsecureHttp: boolean): Omit<Config['oidc'], 'audience' | 'accessTokenMaxAge'> {
  const method = raw.tokenEndpointAuthMethod ?? (raw.clientSecret !== undefined ? 'client_secret_basic' : 'none')
  if ((method === 'client_secret_basic' || method === 'client_secret_post') && raw.clientSecret === undefined) {
    throw new ConfigError('oidc.clientSecret', `required with tokenEndpointAuthMethod ${method}`)
  }
  if (method === 'private_key_jwt' && raw.privateKey === undefined) throw new ConfigError('oidc.privateKey', 'required with tokenEndpointAuthMethod private_key_jwt (a PEM PKCS#8 key or a JWK)')
  if (raw.privateKey !== undefined && method !== 'private_key_jwt') throw new ConfigError('oidc.privateKey', 'used only with tokenEndpointAuthMethod: private_key_jwt')
  if (raw.prompt !== undefined && raw.prompt !== '' && !/^(none|login|consent|select_account|create)( (login|consent|select_account|create))*$/.test(raw.prompt)) {
    throw new ConfigError('oidc.prompt', `must be one or more of none, login, consent, select_account, create (got ${JSON.stringify(raw.prompt)})`)
  }
  const out: Omit<Config['oidc'], 'audience' | 'accessTokenMaxAge'> = { issuer: raw.issuer, clientId: raw.clientId, scopes, allowInsecureHttp, tokenEndpointAuthMethod: method, par: raw.par ?? 'auto' }
  if (raw.clientSecret !== undefined) out.clientSecret = raw.clientSecret
  if (raw.prompt !== undefined && raw.prompt !== '') out.prompt = raw.prompt
  if (raw.privateKey !== undefined) out.privateKey = raw.privateKey
  if (raw.caFile !== undefined) out.ca = readPem(raw.caFile, 'oidc.caFile')
  return out
}

function readPem (file: string, key: string): Buffer {
  let buf: Buffer
  try { buf = readFileSync(file) } catch (err) { throw new ConfigError(key, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err }) }
  if (!buf.toString('latin1').includes('-----BEGIN ')) throw new ConfigError(key, `${file} is not a PEM file`)
  return buf
}

/** TLS material for an upstream or Redis, read once at start-up. */
function tls (raw: NonNullable<RawRoute['tls']>, base: Path): TlsConfig {
  const key = (k: string): string => formatPath([...base, k])
  if ((raw.certFile === undefined) !== (raw.keyFile === undefined)) throw new ConfigError(key(raw.certFile === undefined ? 'certFile' : 'keyFile'), 'certFile and keyFile go together (a client certificate and its key)')
  const out: TlsConfig = { insecureSkipVerify: raw.insecureSkipVerify ?? false }
  if (raw.caFile !== undefined) out.ca = readPem(raw.caFile, key('caFile'))
  if (raw.certFile !== undefined) out.cert = readPem(raw.certFile, key('certFile'))
  if (raw.keyFile !== undefined) out.key = readPem(raw.keyFile, key('keyFile'))
  if (raw.serverName !== undefined) out.serverName = raw.serverName
  return out
}

function pages (raw: RawConfig['pages']): Config['pages'] {
  const out: Config['pages'] = {}
  if (raw?.title !== undefined) out.title = raw.title
  if (raw?.logoUrl !== undefined) {
    if (!/^(\/[^/\\]|https:\/\/)/.test(raw.logoUrl) || /["'<>\s]/.test(raw.logoUrl)) throw new ConfigError('pages.logoUrl', 'must be a path on this site (/static/logo.svg) or an https URL')
    out.logoUrl = raw.logoUrl
  }
  if (raw?.accentColor !== undefined) {
    if (!/^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/.test(raw.accentColor)) throw new ConfigError('pages.accentColor', `must be a hex colour such as #2450d8 (got ${JSON.stringify(raw.accentColor)})`)
    out.accentColor = raw.accentColor
  }
  return out
}

/** The collector's OTLP/HTTP base URL (as OTEL_EXPORTER_OTLP_ENDPOINT) becomes its traces URL. */
function tracing (raw: NonNullable<RawConfig['tracing']>): NonNullable<Config['tracing']> {
  const u = url(raw.otlpEndpoint, 'tracing.otlpEndpoint', HTTP, HTTP_LABEL)
  noQueryOrFragment(raw.otlpEndpoint, 'tracing.otlpEndpoint')
  if (u.username !== '' || u.password !== '') throw new ConfigError('tracing.otlpEndpoint', 'must not contain credentials (the exporter reads OTEL_EXPORTER_OTLP_HEADERS)')
  const base = (u.origin + u.pathname).replace(/\/+$/, '')
  return {
    otlpEndpoint: base.endsWith('/v1/traces') ? base : `${base}/v1/traces`,
    serviceName: raw.serviceName ?? DEFAULTS.tracing.serviceName,
    sampleRatio: raw.sampleRatio ?? DEFAULTS.tracing.sampleRatio
  }
}

function forwardAuthConfig (raw: RawConfig['forwardAuth']): Config['forwardAuth'] {
  const allowedHosts = (raw?.allowedHosts ?? []).map((h, i) => {
    if (!HOST_PATTERN.test(h)) throw new ConfigError(formatPath(['forwardAuth', 'allowedHosts', i]), `must be a host name such as app.example.com or *.example.com (got ${JSON.stringify(h)})`)
    return h.toLowerCase()
  })
  return { enabled: raw?.enabled ?? false, allowedHosts }
}

/** The cookie Domain: a parent of publicUrl's host (a browser refuses any other). */
function cookieDomain (value: string, rawPublicUrl: string): string {
  const d = value.toLowerCase().replace(/^\./, '')
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d)) throw new ConfigError('session.cookieDomain', `must be a domain such as example.com (got ${JSON.stringify(value)})`)
  let host = ''
  try { host = new URL(rawPublicUrl).hostname } catch { /* publicUrl reports its own error */ }
  if (host !== d && !host.endsWith(`.${d}`)) throw new ConfigError('session.cookieDomain', `must be publicUrl's host or a parent of it (${host})`)
  return d
}

function timeouts (raw: RawConfig['timeouts']): Config['timeouts'] {
  const headers = duration(raw?.headers ?? DEFAULTS.timeouts.headers, 'timeouts.headers')
  const request = duration(raw?.request ?? DEFAULTS.timeouts.request, 'timeouts.request')
  if (headers < 1) throw new ConfigError('timeouts.headers', 'must be at least 1s')
  if (request < headers) throw new ConfigError('timeouts.request', `must be at least timeouts.headers (${headers}s), got ${request}s`)
  return { headers, request }
}

/** An origin as browsers send it in `Origin`: scheme://host[:port], nothing else. */
function origin (value: string, key: string): string {
  const u = url(value, key, HTTP, HTTP_LABEL)
  if (u.origin !== value.replace(/\/$/, '')) throw new ConfigError(key, `must be an origin such as https://app.example.com (got ${JSON.stringify(value)})`)
  return u.origin
}

// ---------------------------------------------------------------- entry points

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

function parseUnchecked (rawText: string, env: Env): Config {
  const { text, restore } = protectRefs(rawText)
  const deep = tooDeep(text)
  if (deep !== undefined) throw new ConfigError('', `invalid YAML at line ${deep}: nested too deep (more than ${MAX_NESTING} brackets or columns of indentation)`)
  const doc = parseDocument(text, { prettyErrors: false })
  const yamlError = doc.errors[0]
  if (yamlError !== undefined) {
    // Line numbers survive protectRefs (it adds no newlines); columns might not, so leave them out.
    const line = text.slice(0, yamlError.pos[0]).split('\n').length
    throw new ConfigError('', `invalid YAML at line ${line}: ${restore(yamlError.message)}`)
  }
  let js: unknown
  try {
    js = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // yaml resolves aliases only here, and throws a ReferenceError for a missing anchor or an alias bomb.
    throw new ConfigError('', aliasProblem(doc, text) ?? `invalid YAML: ${restore((err as Error).message)}`, { cause: err })
  }
  // Before substitution: a document that is one `${NAME}` is not a config, whatever NAME holds.
  if (!isObject(js)) throw new ConfigError('', 'the config must be a YAML mapping (key: value lines)')
  const tree = substituteTree(js, [], env, restore)
  if (!isObject(tree)) throw new ConfigError('', 'the config must be a YAML mapping (key: value lines)')
  if (!validateRaw(tree)) {
    const errors = validateRaw.errors ?? []
    const first = errors.find(e => e.keyword === 'additionalProperties') ?? errors[0]
    throw first === undefined ? new ConfigError('', 'invalid config') : schemaError(first, tree)
  }
  return normalise(tree)
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

/** Parses, validates and normalises config text; throws ConfigError naming the offending key. */
export function parseConfig (rawText: string, env: Env = process.env, source = '<inline>'): Config {
  try {
    return parseUnchecked(rawText, env)
  } catch (err) {
    if (err instanceof ConfigError) err.source = source
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
