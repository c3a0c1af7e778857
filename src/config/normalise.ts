/**
 * Validated file -> Config: cross-field rules and value formats, each problem a ConfigError naming its
 * key, all of them collected (Problems) so one run reports every one. Defaults are already filled in
 * (validate.ts), so nothing here repeats one. Checks run in a fixed order: the first problem is the
 * one an error message leads with.
 */
import { HOST_PATTERN } from '../core/hosts.js'
import { usableCpus } from './cpus.js'
import { ConfigError, formatPath, Problems, type Path } from './errors.js'
import type { FilledConfig, RawRedis, RawRoute, RawRule } from './schema.js'
import { ssfConfig } from './ssf.js'
import type { AuthzRule, Config, RedisConfig, RouteConfig, TlsConfig } from './types.js'
import { authPrefix, cookieDomain, duration, HTTP, HTTP_LABEL, noQueryOrFragment, origin, publicUrl, readPem, redisNodes, sessionKey, tls, url } from './values.js'

/** Normalises a validated file; throws the first ConfigError, carrying every one in `problems`. */
export function normalise (raw: FilledConfig, p = new Problems()): Config {
  const { oidc: rawOidc, session: rawSession } = raw
  const allowInsecureHttp = rawOidc.allowInsecureHttp
  p.check(() => {
    const issuer = url(rawOidc.issuer, 'oidc.issuer', HTTP, HTTP_LABEL)
    noQueryOrFragment(rawOidc.issuer, 'oidc.issuer')
    if (issuer.protocol === 'http:' && !allowInsecureHttp) {
      throw new ConfigError('oidc.issuer', 'http:// issuer refused; use https, or set oidc.allowInsecureHttp: true for a local test IdP')
    }
  }, undefined)
  const scopes = rawOidc.scopes
  p.check(() => { if (!scopes.includes('openid')) throw new ConfigError('oidc.scopes', 'must include "openid"') }, undefined)
  p.check(() => {
    if (raw.admin.token.length < 16) throw new ConfigError('admin.token', `must be at least 16 characters (got ${raw.admin.token.length})`)
  }, undefined)

  const ttl = p.check(() => duration(rawSession.ttl, 'session.ttl'), 0)
  const absoluteTtl = p.check(() => duration(rawSession.absoluteTtl, 'session.absoluteTtl'), 0)
  p.check(() => { if (absoluteTtl < ttl) throw new ConfigError('session.absoluteTtl', `must be at least session.ttl (${ttl}s), got ${absoluteTtl}s`) }, undefined)
  const keys = rawSession.keys.map((k, i) => p.check(() => sessionKey(k, formatPath(['session', 'keys', i])), Buffer.alloc(0)))

  const globalRules = raw.authorize === undefined ? undefined : p.check(() => rules(raw.authorize!, ['authorize']), [])
  const forwardAuth = p.check(() => forwardAuthConfig(raw.forwardAuth), { enabled: raw.forwardAuth.enabled, allowedHosts: [] })
  const routes = raw.routes.map((r, i) => p.check(() => route(r, i, globalRules, forwardAuth.enabled), undefined))
  const prefix = p.check(() => authPrefix(raw.authPrefix), undefined)
  const seen = new Map<string, number>()
  routes.forEach((r, i) => {
    if (r === undefined) return
    p.check(() => {
      const id = `${r.host ?? ''} ${r.prefix}`
      const first = seen.get(id)
      if (first !== undefined) {
        throw new ConfigError(formatPath(['routes', i, 'prefix']), `duplicate prefix ${JSON.stringify(r.prefix)}${r.host !== undefined ? ` for host ${r.host}` : ''} (also routes[${first}].prefix)`)
      }
      seen.set(id, i)
      // The gateway's own endpoints are never proxied: a route there would be unreachable or shadow them.
      if (prefix !== undefined && (r.prefix === prefix || r.prefix.startsWith(`${prefix}/`))) {
        throw new ConfigError(formatPath(['routes', i, 'prefix']), `must not be under authPrefix ${prefix} (the gateway's own endpoints)`)
      }
    }, undefined)
  })

  const { kind, failMode, nearCache } = raw.store
  if (kind === 'redis' && raw.store.redis === undefined) p.check(() => { throw new ConfigError('store.redis', 'required when store.kind is redis') }, undefined)

  const bearerRoute = routes.findIndex((r) => r?.bearer === true)
  if (bearerRoute >= 0 && rawOidc.audience === undefined) {
    p.check(() => { throw new ConfigError('oidc.audience', `required when a route has bearer: true (routes[${bearerRoute}]): the aud that access tokens for this gateway carry`) }, undefined)
  }
  const accessTokenMaxAge = p.check(() => duration(rawOidc.accessTokenMaxAge, 'oidc.accessTokenMaxAge'), 0)
  const client = p.check(() => oidcClient(rawOidc), undefined)
  // A redis block is checked even with the memory store: it is in the file, and may be switched on later.
  const rawRedis = raw.store.redis
  const redisConfig = rawRedis === undefined ? undefined : p.check(() => redis(rawRedis), undefined)
  const base = p.check(() => publicUrl(raw.publicUrl), '')

  const config: Config = {
    publicUrl: base,
    listen: raw.listen,
    admin: { listen: raw.admin.listen, token: raw.admin.token },
    authPrefix: prefix ?? raw.authPrefix,
    trustProxy: raw.trustProxy,
    logLevel: raw.logLevel,
    workers: p.check(() => workerCount(raw.workers, kind), 1),
    oidc: { ...(client ?? oidcFallback(rawOidc)), scopes, allowInsecureHttp, audience: rawOidc.audience ?? [], accessTokenMaxAge },
    session: {
      ttl,
      absoluteTtl,
      keys,
      ...(rawSession.cookieDomain !== undefined ? { cookieDomain: p.check(() => cookieDomain(rawSession.cookieDomain!, raw.publicUrl), '') } : {})
    },
    forwardAuth,
    rememberMe: {
      ...raw.rememberMe,
      ttl: p.check(() => duration(raw.rememberMe.ttl, 'rememberMe.ttl'), 0),
      rotationGrace: p.check(() => duration(raw.rememberMe.rotationGrace, 'rememberMe.rotationGrace'), 0)
    },
    store: kind === 'redis' && redisConfig !== undefined
      ? { kind, failMode, nearCache, redis: redisConfig }
      : { kind: 'memory', failMode, nearCache, ...(redisConfig !== undefined ? { redis: redisConfig } : {}) },
    routes: routes.filter((r): r is RouteConfig => r !== undefined),
    identity: p.check(() => identity(raw.identity), { user: '', groups: '', headers: {} }),
    timeouts: p.check(() => timeouts(raw.timeouts), { headers: 0, request: 0 }),
    pages: p.check(() => pages(raw.pages), {}),
    websocket: { allowedOrigins: raw.websocket.allowedOrigins.map((o, i) => p.check(() => origin(o, formatPath(['websocket', 'allowedOrigins', i])), '')) },
    ssf: ssfConfig(raw.ssf, base, allowInsecureHttp, p),
    rateLimit: raw.rateLimit,
    // The key is absent, not undefined, when the tracing block is missing or wrong.
    ...(raw.tracing !== undefined ? p.check<Pick<Config, 'tracing'>>(() => ({ tracing: tracing(raw.tracing!) }), {}) : {})
  }
  const [first] = p.list
  if (first !== undefined) {
    first.problems = p.list
    throw first
  }
  return config
}

/** `auto` is one worker per usable CPU (cgroup quota included); several workers share revocation state only through Redis. */
function workerCount (raw: number | 'auto', kind: Config['store']['kind']): number {
  const n = raw === 'auto' ? usableCpus() : raw
  if (n > 1 && kind !== 'redis') throw new ConfigError('workers', `${n} workers need store.kind: redis (each worker would keep its own memory store, and a logout on one would not reach the others)`)
  return n
}

function route (r: RawRoute, i: number, global: AuthzRule[] | undefined, forwardAuth: boolean): RouteConfig {
  const key = (k: string): string => formatPath(['routes', i, k])
  if (!r.prefix.startsWith('/')) throw new ConfigError(key('prefix'), 'must start with "/"')
  noQueryOrFragment(r.prefix, key('prefix'))
  if (r.upstream !== undefined) url(r.upstream, key('upstream'), HTTP, HTTP_LABEL)
  else if (!forwardAuth) throw new ConfigError(key('upstream'), 'required key is missing (only forward-auth routes, with forwardAuth.enabled, may omit it)')
  if (r.host !== undefined && !HOST_PATTERN.test(r.host)) throw new ConfigError(key('host'), `must be a host name such as app.example.com or *.example.com (got ${JSON.stringify(r.host)})`)
  const { auth, bearer } = r
  const own = r.authorize === undefined ? undefined : rules(r.authorize, ['routes', i, 'authorize'])
  if (own !== undefined && auth === 'none') throw new ConfigError(key('authorize'), 'needs auth: required or optional (an auth: none route never looks at the session)')
  const authorize = auth === 'none' ? undefined : own ?? global
  if (bearer && auth === 'none') throw new ConfigError(key('bearer'), 'needs auth: required or optional (an auth: none route checks no credential)')
  return {
    prefix: r.prefix,
    ...(r.host !== undefined ? { host: r.host.toLowerCase() } : {}),
    ...(r.upstream !== undefined ? { upstream: r.upstream } : {}),
    auth,
    forwardAccessToken: r.forwardAccessToken,
    csrf: r.csrf,
    bearer,
    ...(authorize !== undefined ? { authorize } : {}),
    ...(r.tls !== undefined ? { tls: routeTls(r, r.tls, i) } : {})
  }
}

function routeTls (r: RawRoute, raw: NonNullable<RawRoute['tls']>, i: number): TlsConfig {
  if (r.upstream === undefined || !r.upstream.startsWith('https:')) throw new ConfigError(formatPath(['routes', i, 'tls']), 'applies to an https upstream only')
  return tls(raw, ['routes', i, 'tls'])
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

function identity (raw: FilledConfig['identity']): Config['identity'] {
  const headers: Record<string, string> = {}
  for (const [name, path] of Object.entries(raw.headers)) {
    const key = formatPath(['identity', 'headers', name])
    if (!TOKEN_RE.test(name)) throw new ConfigError(key, 'is not a valid header name (letters, digits and !#$%&\'*+.^_`|~- only)')
    const lower = name.toLowerCase()
    if (RESERVED_HEADERS.has(lower)) throw new ConfigError(key, 'is a header the gateway or HTTP itself sets; choose another name')
    if (headers[lower] !== undefined) throw new ConfigError(key, 'is listed twice (header names are case-insensitive)')
    headers[lower] = path
  }
  return { user: raw.user, groups: raw.groups, headers }
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
    keyPrefix: r.keyPrefix,
    ...(r.tls !== undefined && { tls: tls(r.tls, [...base, 'tls']) }),
    commandTimeoutMs: duration(r.commandTimeout, 'store.redis.commandTimeout', true)
  }
}

type OidcClientConfig = Pick<Config['oidc'], 'issuer' | 'clientId' | 'clientSecret' | 'tokenEndpointAuthMethod' | 'par' | 'prompt' | 'privateKey' | 'ca'>

/** How the gateway authenticates at the token endpoint, and what it trusts and sends the IdP. */
function oidcClient (raw: FilledConfig['oidc']): OidcClientConfig {
  const method = raw.tokenEndpointAuthMethod ?? (raw.clientSecret !== undefined ? 'client_secret_basic' : 'none')
  if ((method === 'client_secret_basic' || method === 'client_secret_post') && raw.clientSecret === undefined) {
    throw new ConfigError('oidc.clientSecret', `required with tokenEndpointAuthMethod ${method}`)
  }
  if (method === 'private_key_jwt' && raw.privateKey === undefined) throw new ConfigError('oidc.privateKey', 'required with tokenEndpointAuthMethod private_key_jwt (a PEM PKCS#8 key or a JWK)')
  if (raw.privateKey !== undefined && method !== 'private_key_jwt') throw new ConfigError('oidc.privateKey', 'used only with tokenEndpointAuthMethod: private_key_jwt')
  if (raw.prompt !== undefined && raw.prompt !== '' && !/^(none|login|consent|select_account|create)( (login|consent|select_account|create))*$/.test(raw.prompt)) {
    throw new ConfigError('oidc.prompt', `must be one or more of none, login, consent, select_account, create (got ${JSON.stringify(raw.prompt)})`)
  }
  const out: OidcClientConfig = { ...oidcFallback(raw), tokenEndpointAuthMethod: method }
  if (raw.clientSecret !== undefined) out.clientSecret = raw.clientSecret
  if (raw.prompt !== undefined && raw.prompt !== '') out.prompt = raw.prompt
  if (raw.privateKey !== undefined) out.privateKey = raw.privateKey
  if (raw.caFile !== undefined) out.ca = readPem(raw.caFile, 'oidc.caFile')
  return out
}

/** The plain part of the client settings (what stands in when oidcClient found a problem). */
function oidcFallback (raw: FilledConfig['oidc']): OidcClientConfig {
  return { issuer: raw.issuer, clientId: raw.clientId, tokenEndpointAuthMethod: 'none', par: raw.par }
}

function pages (raw: FilledConfig['pages']): Config['pages'] {
  const out: Config['pages'] = {}
  if (raw.title !== undefined) out.title = raw.title
  if (raw.logoUrl !== undefined) {
    if (!/^(\/[^/\\]|https:\/\/)/.test(raw.logoUrl) || /["'<>\s]/.test(raw.logoUrl)) throw new ConfigError('pages.logoUrl', 'must be a path on this site (/static/logo.svg) or an https URL')
    out.logoUrl = raw.logoUrl
  }
  if (raw.accentColor !== undefined) {
    if (!/^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/.test(raw.accentColor)) throw new ConfigError('pages.accentColor', `must be a hex colour such as #2450d8 (got ${JSON.stringify(raw.accentColor)})`)
    out.accentColor = raw.accentColor
  }
  return out
}

/** The collector's OTLP/HTTP base URL (as OTEL_EXPORTER_OTLP_ENDPOINT) becomes its traces URL. */
function tracing (raw: NonNullable<FilledConfig['tracing']>): NonNullable<Config['tracing']> {
  const u = url(raw.otlpEndpoint, 'tracing.otlpEndpoint', HTTP, HTTP_LABEL)
  noQueryOrFragment(raw.otlpEndpoint, 'tracing.otlpEndpoint')
  if (u.username !== '' || u.password !== '') throw new ConfigError('tracing.otlpEndpoint', 'must not contain credentials (the exporter reads OTEL_EXPORTER_OTLP_HEADERS)')
  const base = (u.origin + u.pathname).replace(/\/+$/, '')
  return { otlpEndpoint: base.endsWith('/v1/traces') ? base : `${base}/v1/traces`, serviceName: raw.serviceName, sampleRatio: raw.sampleRatio }
}

function forwardAuthConfig (raw: FilledConfig['forwardAuth']): Config['forwardAuth'] {
  const allowedHosts = raw.allowedHosts.map((h, i) => {
    if (!HOST_PATTERN.test(h)) throw new ConfigError(formatPath(['forwardAuth', 'allowedHosts', i]), `must be a host name such as app.example.com or *.example.com (got ${JSON.stringify(h)})`)
    return h.toLowerCase()
  })
  return { enabled: raw.enabled, allowedHosts }
}

function timeouts (raw: FilledConfig['timeouts']): Config['timeouts'] {
  const headers = duration(raw.headers, 'timeouts.headers')
  const request = duration(raw.request, 'timeouts.request')
  if (headers < 1) throw new ConfigError('timeouts.headers', 'must be at least 1s')
  if (request < headers) throw new ConfigError('timeouts.request', `must be at least timeouts.headers (${headers}s), got ${request}s`)
  return { headers, request }
}
