/**
 * JSON Schema (TypeBox) of the raw YAML file, before normalisation.
 * Structural checks only (types, unknown keys, enums, ranges); cross-field and value-format
 * rules (URLs, keys, durations) live in loader.ts so their messages can be specific.
 */
import { Type, type Static, type TSchema, type ObjectOptions, type TProperties } from '@sinclair/typebox'

/** Defaults of CONTRACT section 2; the loader applies them, the schema documents them. */
export const DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8080 },
  adminListen: { host: '127.0.0.1', port: 9090 },
  authPrefix: '/auth',
  trustProxy: false,
  logLevel: 'info',
  workers: 1,
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  allowInsecureHttp: false,
  sessionTtl: '5m',
  absoluteTtl: '12h',
  rememberMe: { enabled: true, ttl: '30d', rotationGrace: '5s', checkIdp: false, ask: false },
  store: { kind: 'memory', failMode: 'closed', nearCache: false },
  redis: { keyPrefix: 'sg:', commandTimeout: '1s' },
  route: { auth: 'required', forwardAccessToken: false, csrf: false, bearer: false },
  accessTokenMaxAge: '1h',
  timeouts: { headers: '10s', request: '60s' },
  identity: { user: 'sub', groups: 'groups' },
  // Per client IP and endpoint: far above one person's logins, low enough to stop a flood (issue 15).
  rateLimit: { enabled: true, perMinute: 300 },
  tracing: { serviceName: 'sessiongate', sampleRatio: 1 }
} as const

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Every object in the file is closed: an unknown key is an error, not a silent no-op. */
const Closed = <T extends TProperties>(props: T, opts: ObjectOptions = {}) =>
  Type.Object(props, { ...opts, additionalProperties: false })

const Opt = <T extends TSchema>(s: T) => Type.Optional(s)

/** `"5m"` or an integer number of seconds; the format itself is checked by parseDuration. */
const Duration = (def?: string) =>
  Type.Unsafe<string | number>({ type: ['string', 'integer'], ...(def === undefined ? {} : { default: def }) })

const Port = (def?: number) => Type.Integer({ minimum: 0, maximum: 65535, ...(def === undefined ? {} : { default: def }) })

const Listen = (def: { host: string, port: number }) =>
  Closed({ host: Opt(Type.String({ minLength: 1, default: def.host })), port: Opt(Port(def.port)) }, { default: {} })

/** Turns a list of literals into a single `enum` keyword, so Ajv reports one clear error. */
const Enum = <T extends string>(values: readonly T[], def?: T) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...(def === undefined ? {} : { default: def }) })

const NonEmpty = Type.String({ minLength: 1 })
/** `host:port`, `[v6addr]:port`; split by the loader. */
const HostPort = Type.String({ minLength: 1 })
const Nodes = Type.Array(HostPort, { minItems: 1 })

/** TLS towards an upstream or Redis: files read at start-up. */
export const RawTlsSchema = Closed({
  caFile: Opt(NonEmpty),
  certFile: Opt(NonEmpty),
  keyFile: Opt(NonEmpty),
  serverName: Opt(NonEmpty),
  insecureSkipVerify: Opt(Type.Boolean({ default: false }))
})

export const RawRedisSchema = Closed({
  url: Opt(NonEmpty),
  sentinel: Opt(Closed({ name: NonEmpty, nodes: Nodes, password: Opt(Type.String()) })),
  cluster: Opt(Closed({ nodes: Nodes })),
  username: Opt(Type.String()),
  password: Opt(Type.String()),
  keyPrefix: Opt(Type.String({ default: DEFAULTS.redis.keyPrefix })),
  tls: Opt(RawTlsSchema),
  commandTimeout: Opt(Duration(DEFAULTS.redis.commandTimeout))
})

const NonEmptyList = Type.Array(NonEmpty, { minItems: 1 })
const ClaimValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()])

/** One `authorize` rule: every field present must match; at least one field. */
export const RawRuleSchema = Closed({
  subjects: Opt(NonEmptyList),
  emails: Opt(NonEmptyList),
  emailDomains: Opt(NonEmptyList),
  groups: Opt(NonEmptyList),
  claims: Opt(Type.Record(Type.String({ minLength: 1 }), Type.Array(ClaimValue, { minItems: 1 }), { minProperties: 1 }))
}, { minProperties: 1 })

const Authorize = Type.Array(RawRuleSchema, { minItems: 1 })

export const RawRouteSchema = Closed({
  prefix: NonEmpty,
  host: Opt(NonEmpty),
  upstream: Opt(NonEmpty),
  auth: Opt(Enum(['required', 'optional', 'none'] as const, DEFAULTS.route.auth)),
  forwardAccessToken: Opt(Type.Boolean({ default: DEFAULTS.route.forwardAccessToken })),
  csrf: Opt(Type.Boolean({ default: DEFAULTS.route.csrf })),
  bearer: Opt(Type.Boolean({ default: DEFAULTS.route.bearer })),
  authorize: Opt(Authorize),
  tls: Opt(RawTlsSchema)
})

/** One Shared Signals transmitter (CONTRACT section 12); cross-field rules in ssf.ts. */
export const RawTransmitterSchema = Closed({
  issuer: NonEmpty,
  jwksUri: Opt(NonEmpty),
  configurationUrl: Opt(NonEmpty),
  audience: Opt(NonEmpty),
  delivery: Opt(Enum(['push', 'poll'] as const, 'push')),
  pushToken: Opt(Type.String()),
  pollUrl: Opt(NonEmpty),
  pollToken: Opt(Type.String()),
  manageStream: Opt(Type.Boolean({ default: false })),
  managementToken: Opt(Type.String())
})

export const RawConfigSchema = Closed({
  publicUrl: NonEmpty,
  listen: Opt(Listen(DEFAULTS.listen)),
  admin: Closed({ listen: Opt(Listen(DEFAULTS.adminListen)), token: Type.String() }),
  authPrefix: Opt(Type.String({ default: DEFAULTS.authPrefix })),
  trustProxy: Opt(Type.Boolean({ default: DEFAULTS.trustProxy })),
  logLevel: Opt(Enum(LOG_LEVELS, DEFAULTS.logLevel)),
  // CONTRACT section 11: one process (default), N, or one per CPU.
  workers: Opt(Type.Union([Type.Integer({ minimum: 1, maximum: 256 }), Type.Literal('auto')], { default: DEFAULTS.workers })),
  oidc: Closed({
    issuer: NonEmpty,
    clientId: NonEmpty,
    clientSecret: Opt(Type.String()),
    scopes: Opt(Type.Array(NonEmpty, { default: [...DEFAULTS.scopes] })),
    allowInsecureHttp: Opt(Type.Boolean({ default: DEFAULTS.allowInsecureHttp })),
    audience: Opt(NonEmptyList),
    accessTokenMaxAge: Opt(Duration(DEFAULTS.accessTokenMaxAge)),
    prompt: Opt(Type.String()),
    tokenEndpointAuthMethod: Opt(Enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const)),
    privateKey: Opt(NonEmpty),
    par: Opt(Enum(['auto', 'never'] as const, 'auto')),
    caFile: Opt(NonEmpty)
  }),
  session: Closed({
    ttl: Opt(Duration(DEFAULTS.sessionTtl)),
    absoluteTtl: Opt(Duration(DEFAULTS.absoluteTtl)),
    keys: Type.Array(Type.String(), { minItems: 1 }),
    cookieDomain: Opt(NonEmpty)
  }),
  rememberMe: Opt(Closed({
    enabled: Opt(Type.Boolean({ default: DEFAULTS.rememberMe.enabled })),
    ttl: Opt(Duration(DEFAULTS.rememberMe.ttl)),
    rotationGrace: Opt(Duration(DEFAULTS.rememberMe.rotationGrace)),
    checkIdp: Opt(Type.Boolean({ default: DEFAULTS.rememberMe.checkIdp })),
    ask: Opt(Type.Boolean({ default: DEFAULTS.rememberMe.ask }))
  }, { default: {} })),
  store: Opt(Closed({
    kind: Opt(Enum(['memory', 'redis'] as const, DEFAULTS.store.kind)),
    failMode: Opt(Enum(['closed', 'open'] as const, DEFAULTS.store.failMode)),
    nearCache: Opt(Type.Boolean({ default: DEFAULTS.store.nearCache })),
    redis: Opt(RawRedisSchema)
  }, { default: {} })),
  routes: Type.Array(RawRouteSchema, { minItems: 1 }),
  authorize: Opt(Authorize),
  forwardAuth: Opt(Closed({
    enabled: Opt(Type.Boolean({ default: false })),
    allowedHosts: Opt(Type.Array(NonEmpty, { default: [] }))
  }, { default: {} })),
  identity: Opt(Closed({
    user: Opt(Type.String({ minLength: 1, default: DEFAULTS.identity.user })),
    groups: Opt(Type.String({ minLength: 1, default: DEFAULTS.identity.groups })),
    headers: Opt(Type.Record(Type.String({ minLength: 1 }), NonEmpty))
  }, { default: {} })),
  timeouts: Opt(Closed({
    headers: Opt(Duration(DEFAULTS.timeouts.headers)),
    request: Opt(Duration(DEFAULTS.timeouts.request))
  }, { default: {} })),
  pages: Opt(Closed({
    title: Opt(NonEmpty),
    logoUrl: Opt(NonEmpty),
    accentColor: Opt(NonEmpty)
  }, { default: {} })),
  websocket: Opt(Closed({
    allowedOrigins: Opt(Type.Array(NonEmpty, { default: [] }))
  }, { default: {} })),
  // ---- observability and rate limits (CONTRACT section 13)
  rateLimit: Opt(Closed({
    enabled: Opt(Type.Boolean({ default: DEFAULTS.rateLimit.enabled })),
    perMinute: Opt(Type.Integer({ minimum: 1, default: DEFAULTS.rateLimit.perMinute }))
  }, { default: {} })),
  tracing: Opt(Closed({
    otlpEndpoint: NonEmpty,
    serviceName: Opt(Type.String({ minLength: 1, default: DEFAULTS.tracing.serviceName })),
    sampleRatio: Opt(Type.Number({ minimum: 0, maximum: 1, default: DEFAULTS.tracing.sampleRatio }))
  })),
  ssf: Opt(Closed({
    transmitters: Opt(Type.Array(RawTransmitterSchema, { default: [] }))
  }, { default: {} }))
})

export type RawConfig = Static<typeof RawConfigSchema>
export type RawRedis = Static<typeof RawRedisSchema>
export type RawRoute = Static<typeof RawRouteSchema>
export type RawRule = Static<typeof RawRuleSchema>
export type RawTransmitter = Static<typeof RawTransmitterSchema>
