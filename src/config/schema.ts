/**
 * JSON Schema (TypeBox) of the raw YAML file, before normalisation.
 * Structural checks only (types, unknown keys, enums, ranges); cross-field and value-format
 * rules (URLs, keys, durations) live in normalise.ts so their messages can be specific.
 * Defaults: DEFAULTS holds each one; the schema declares it (`Def`) and Ajv fills it in while
 * validating (useDefaults), so normalise.ts never applies a default again.
 */
import { Type, type Static, type TSchema, type ObjectOptions, type TProperties, type TObject, type TArray, type TOptional, type Evaluate } from '@sinclair/typebox'

/** Defaults of README section "Configuration". */
export const DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8080 },
  adminListen: { host: '127.0.0.1', port: 9090 },
  authPrefix: '/auth',
  trustProxy: false,
  logLevel: 'info',
  workers: 1,
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  allowInsecureHttp: false,
  par: 'auto',
  sessionTtl: '5m',
  absoluteTtl: '12h',
  rememberMe: { enabled: true, ttl: '30d', rotationGrace: '5s', checkIdp: false, ask: false },
  store: { kind: 'memory', failMode: 'closed', nearCache: false },
  redis: { keyPrefix: 'sg:', commandTimeout: '1s' },
  tls: { insecureSkipVerify: false },
  route: { auth: 'required', forwardAccessToken: false, csrf: false, bearer: false },
  accessTokenMaxAge: '1h',
  timeouts: { headers: '10s', request: '60s' },
  identity: { user: 'sub', groups: 'groups' },
  forwardAuth: { enabled: false },
  // Per client IP and endpoint: far above one person's logins, low enough to stop a flood (issue 15).
  rateLimit: { enabled: true, perMinute: 300 },
  tracing: { serviceName: 'sessiongate', sampleRatio: 1 },
  transmitter: { delivery: 'push', manageStream: false }
} as const

declare const DEFAULTED: unique symbol
/** An optional key with a default: present (filled in) once the file has been validated. */
export type TDefault<T extends TSchema> = TOptional<T> & { [DEFAULTED]: true }

/** Declares a key's default; `value` is checked against the key's own type. */
const Def = <T extends TSchema>(schema: T, value: Static<T>): TDefault<T> =>
  Type.Optional({ default: value, ...schema }) as unknown as TDefault<T>

/**
 * The type of a validated file: like Static, except that keys with a default are required.
 * (Objects and lists are walked; anything else is its Static.)
 */
export type Filled<T extends TSchema> =
  T extends TObject<infer P> ? FilledObject<P>
    : T extends TArray<infer I> ? Array<Filled<I>>
      : Static<T>
type FilledObject<P extends TProperties> = Evaluate<
  { [K in keyof P as P[K] extends { [DEFAULTED]: true } ? K : P[K] extends TOptional<TSchema> ? never : K]: Filled<P[K]> } &
  { [K in keyof P as P[K] extends { [DEFAULTED]: true } ? never : P[K] extends TOptional<TSchema> ? K : never]?: Filled<P[K]> }
>

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Every object in the file is closed: an unknown key is an error, not a silent no-op. */
const Closed = <T extends TProperties>(props: T, opts: ObjectOptions = {}) =>
  Type.Object(props, { ...opts, additionalProperties: false })

const Opt = <T extends TSchema>(s: T) => Type.Optional(s)

/** `"5m"` or an integer number of seconds; the format itself is checked by parseDuration. */
const Duration = Type.Unsafe<string | number>({ type: ['string', 'integer'] })

const Port = Type.Integer({ minimum: 0, maximum: 65535 })

const Listen = (def: { host: string, port: number }) =>
  Def(Closed({ host: Def(Type.String({ minLength: 1 }), def.host), port: Def(Port, def.port) }), {})

/** Turns a list of literals into a single `enum` keyword, so Ajv reports one clear error. */
const Enum = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: 'string', enum: [...values] })

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
  insecureSkipVerify: Def(Type.Boolean(), DEFAULTS.tls.insecureSkipVerify)
})

export const RawRedisSchema = Closed({
  url: Opt(NonEmpty),
  sentinel: Opt(Closed({ name: NonEmpty, nodes: Nodes, password: Opt(Type.String()) })),
  cluster: Opt(Closed({ nodes: Nodes })),
  username: Opt(Type.String()),
  password: Opt(Type.String()),
  keyPrefix: Def(Type.String(), DEFAULTS.redis.keyPrefix),
  tls: Opt(RawTlsSchema),
  commandTimeout: Def(Duration, DEFAULTS.redis.commandTimeout)
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
  auth: Def(Enum(['required', 'optional', 'none'] as const), DEFAULTS.route.auth),
  forwardAccessToken: Def(Type.Boolean(), DEFAULTS.route.forwardAccessToken),
  csrf: Def(Type.Boolean(), DEFAULTS.route.csrf),
  bearer: Def(Type.Boolean(), DEFAULTS.route.bearer),
  authorize: Opt(Authorize),
  tls: Opt(RawTlsSchema)
})

/** One Shared Signals transmitter (README section "Shared Signals"); cross-field rules in ssf.ts. */
export const RawTransmitterSchema = Closed({
  issuer: NonEmpty,
  jwksUri: Opt(NonEmpty),
  configurationUrl: Opt(NonEmpty),
  audience: Opt(NonEmpty),
  delivery: Def(Enum(['push', 'poll'] as const), DEFAULTS.transmitter.delivery),
  pushToken: Opt(Type.String()),
  pollUrl: Opt(NonEmpty),
  pollToken: Opt(Type.String()),
  manageStream: Def(Type.Boolean(), DEFAULTS.transmitter.manageStream),
  managementToken: Opt(Type.String())
})

export const RawConfigSchema = Closed({
  publicUrl: NonEmpty,
  listen: Opt(Listen(DEFAULTS.listen)),
  admin: Closed({ listen: Opt(Listen(DEFAULTS.adminListen)), token: Type.String() }),
  authPrefix: Def(Type.String(), DEFAULTS.authPrefix),
  trustProxy: Def(Type.Boolean(), DEFAULTS.trustProxy),
  logLevel: Def(Enum(LOG_LEVELS), DEFAULTS.logLevel),
  // README section "Workers": one process (default), N, or one per CPU.
  workers: Def(Type.Union([Type.Integer({ minimum: 1, maximum: 256 }), Type.Literal('auto')]), DEFAULTS.workers),
  oidc: Closed({
    issuer: NonEmpty,
    clientId: NonEmpty,
    clientSecret: Opt(Type.String()),
    scopes: Def(Type.Array(NonEmpty), [...DEFAULTS.scopes]),
    allowInsecureHttp: Def(Type.Boolean(), DEFAULTS.allowInsecureHttp),
    audience: Opt(NonEmptyList),
    accessTokenMaxAge: Def(Duration, DEFAULTS.accessTokenMaxAge),
    prompt: Opt(Type.String()),
    tokenEndpointAuthMethod: Opt(Enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const)),
    privateKey: Opt(NonEmpty),
    par: Def(Enum(['auto', 'never'] as const), DEFAULTS.par),
    caFile: Opt(NonEmpty)
  }),
  session: Closed({
    ttl: Def(Duration, DEFAULTS.sessionTtl),
    absoluteTtl: Def(Duration, DEFAULTS.absoluteTtl),
    keys: Type.Array(Type.String(), { minItems: 1 }),
    cookieDomain: Opt(NonEmpty)
  }),
  rememberMe: Def(Closed({
    enabled: Def(Type.Boolean(), DEFAULTS.rememberMe.enabled),
    ttl: Def(Duration, DEFAULTS.rememberMe.ttl),
    rotationGrace: Def(Duration, DEFAULTS.rememberMe.rotationGrace),
    checkIdp: Def(Type.Boolean(), DEFAULTS.rememberMe.checkIdp),
    ask: Def(Type.Boolean(), DEFAULTS.rememberMe.ask)
  }), {}),
  store: Def(Closed({
    kind: Def(Enum(['memory', 'redis'] as const), DEFAULTS.store.kind),
    failMode: Def(Enum(['closed', 'open'] as const), DEFAULTS.store.failMode),
    nearCache: Def(Type.Boolean(), DEFAULTS.store.nearCache),
    redis: Opt(RawRedisSchema)
  }), {}),
  routes: Type.Array(RawRouteSchema, { minItems: 1 }),
  authorize: Opt(Authorize),
  forwardAuth: Def(Closed({
    enabled: Def(Type.Boolean(), DEFAULTS.forwardAuth.enabled),
    allowedHosts: Def(Type.Array(NonEmpty), [])
  }), {}),
  identity: Def(Closed({
    user: Def(Type.String({ minLength: 1 }), DEFAULTS.identity.user),
    groups: Def(Type.String({ minLength: 1 }), DEFAULTS.identity.groups),
    headers: Def(Type.Record(Type.String({ minLength: 1 }), NonEmpty), {})
  }), {}),
  timeouts: Def(Closed({
    headers: Def(Duration, DEFAULTS.timeouts.headers),
    request: Def(Duration, DEFAULTS.timeouts.request)
  }), {}),
  pages: Def(Closed({
    title: Opt(NonEmpty),
    logoUrl: Opt(NonEmpty),
    accentColor: Opt(NonEmpty)
  }), {}),
  websocket: Def(Closed({
    allowedOrigins: Def(Type.Array(NonEmpty), [])
  }), {}),
  // ---- observability and rate limits (README section "Configuration")
  rateLimit: Def(Closed({
    enabled: Def(Type.Boolean(), DEFAULTS.rateLimit.enabled),
    perMinute: Def(Type.Integer({ minimum: 1 }), DEFAULTS.rateLimit.perMinute)
  }), {}),
  tracing: Opt(Closed({
    otlpEndpoint: NonEmpty,
    serviceName: Def(Type.String({ minLength: 1 }), DEFAULTS.tracing.serviceName),
    sampleRatio: Def(Type.Number({ minimum: 0, maximum: 1 }), DEFAULTS.tracing.sampleRatio)
  })),
  ssf: Def(Closed({
    transmitters: Def(Type.Array(RawTransmitterSchema), [])
  }), {})
})

/** The file as written (defaults not yet filled in). */
export type RawConfig = Static<typeof RawConfigSchema>
/** The file once validated: every key with a default is present. */
export type FilledConfig = Filled<typeof RawConfigSchema>
export type RawRedis = Filled<typeof RawRedisSchema>
export type RawRoute = Filled<typeof RawRouteSchema>
export type RawRule = Filled<typeof RawRuleSchema>
export type RawTransmitter = Filled<typeof RawTransmitterSchema>
export type RawTls = Filled<typeof RawTlsSchema>
