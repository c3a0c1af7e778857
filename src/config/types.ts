/**
 * The validated, normalised configuration the rest of the gateway works with, as TypeBox schemas: each
 * type is the `Static` of its schema, so the shape is written once (a test checks a loaded config
 * against ConfigSchema). Durations are whole seconds; session keys are decoded 32-byte buffers.
 * Produced only by `loadConfig` / `parseConfig` in ./loader.ts; the file format is ./schema.ts.
 */
import { Kind, Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox'
import type { AuthzRule } from '../core/authorize.js'

export type { AuthzRule } from '../core/authorize.js'

const Opt = <T extends TSchema>(s: T) => Type.Optional(s)
const Str = Type.String()
const Bool = Type.Boolean()
const Int = Type.Integer()
const Strings = Type.Array(Str)
/** A Buffer read or decoded at start-up (checked as a Uint8Array). */
const Bytes = Type.Unsafe<Buffer>({ [Kind]: 'Uint8Array', type: 'Uint8Array' })
const Literals = <T extends string>(...values: T[]) => Type.Union(values.map(v => Type.Literal(v))) as unknown as TUnsafe<T>

/** `authorize` rule, as core/authorize.ts evaluates it (emails and domains lower-cased, claim values strings). */
export const AuthzRuleSchema = Type.Unsafe<AuthzRule>(Type.Object({
  subjects: Opt(Strings),
  emails: Opt(Strings),
  emailDomains: Opt(Strings),
  groups: Opt(Strings),
  claims: Opt(Type.Record(Str, Strings))
}, { additionalProperties: false }))

export const AuthModeSchema = Literals('required', 'optional', 'none')
export type AuthMode = Static<typeof AuthModeSchema>
export const FailModeSchema = Literals('closed', 'open')
export type FailMode = Static<typeof FailModeSchema>

export const ListenSchema = Type.Object({ host: Str, port: Int })
export type ListenConfig = Static<typeof ListenSchema>

/** TLS material, read from the configured files at start-up. */
export const TlsSchema = Type.Object({
  ca: Opt(Bytes),
  cert: Opt(Bytes),
  key: Opt(Bytes),
  serverName: Opt(Str),
  /** Accept any certificate (tests, never production). */
  insecureSkipVerify: Bool
})
export type TlsConfig = Static<typeof TlsSchema>

export const RouteSchema = Type.Object({
  /** Path prefix, starts with '/'; longest prefix wins. */
  prefix: Str,
  /** Host pattern (`app.example.com`, `*.example.com`): the route applies to requests for that host only. */
  host: Opt(Str),
  /** Absolute http(s) URL of the upstream; absent on routes that serve forward-auth only. */
  upstream: Opt(Str),
  auth: AuthModeSchema,
  forwardAccessToken: Bool,
  csrf: Bool,
  /** A request with `Authorization: Bearer <JWT>` is judged by the access token alone (README section "API clients"). */
  bearer: Bool,
  /** The route's own rules, else the global ones; undefined: every signed-in user passes. */
  authorize: Opt(Type.Array(AuthzRuleSchema)),
  /** TLS towards an https upstream: private CA, client certificate (mTLS), SNI name. */
  tls: Opt(TlsSchema)
})
export type RouteConfig = Static<typeof RouteSchema>

export const RedisNodeSchema = Type.Object({ host: Str, port: Int })
export type RedisNode = Static<typeof RedisNodeSchema>

export const RedisSchema = Type.Object({
  /** redis:// or rediss:// URL (standalone). */
  url: Opt(Str),
  sentinel: Opt(Type.Object({ name: Str, nodes: Type.Array(RedisNodeSchema), password: Opt(Str) })),
  cluster: Opt(Type.Object({ nodes: Type.Array(RedisNodeSchema) })),
  username: Opt(Str),
  password: Opt(Str),
  keyPrefix: Str,
  /** TLS for every connection (standalone, Sentinel and its master, Cluster nodes). */
  tls: Opt(TlsSchema),
  commandTimeoutMs: Int // bound on one command, in milliseconds
})
export type RedisConfig = Static<typeof RedisSchema>

/** One Shared Signals transmitter whose Security Event Tokens the gateway receives (README section "Shared Signals"). */
export const SsfTransmitterSchema = Type.Object({
  issuer: Str, // `iss` of its SETs
  jwksUri: Opt(Str), // its signing keys; else `jwks_uri` of the configuration document
  /** Its SSF configuration document (`/.well-known/ssf-configuration`). */
  configurationUrl: Opt(Str),
  /** The `aud` its SETs must carry (default: publicUrl). */
  audience: Str,
  /** push: it POSTs SETs to <authPrefix>/ssf/push (RFC 8935) | poll: the gateway polls it (RFC 8936). */
  delivery: Literals('push', 'poll'),
  /** The bearer token it sends on push (push only). */
  pushToken: Opt(Str),
  /** Its poll endpoint (poll only; with manageStream, the stream's endpoint when absent). */
  pollUrl: Opt(Str),
  /** The bearer token the gateway sends when polling (poll only). */
  pollToken: Opt(Str),
  /** Create or update the stream at start-up and request a verification event (needs configurationUrl). */
  manageStream: Bool,
  /** The bearer token for its stream management endpoints (with manageStream). */
  managementToken: Opt(Str)
})
export type SsfTransmitterConfig = Static<typeof SsfTransmitterSchema>

export const OidcSchema = Type.Object({
  issuer: Str,
  clientId: Str,
  clientSecret: Opt(Str),
  scopes: Strings,
  allowInsecureHttp: Bool,
  /** `aud` values a bearer access token may carry (one is enough); empty when no route has `bearer`. */
  audience: Strings,
  /** seconds: the longest an access token lives (by its iat); logout markers are kept this long */
  accessTokenMaxAge: Int,
  /** Sent as prompt= only when set. */
  prompt: Opt(Str),
  tokenEndpointAuthMethod: Literals('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'),
  /** PEM (PKCS#8) or JWK JSON, for private_key_jwt. */
  privateKey: Opt(Str),
  /** Pushed authorization requests (RFC 9126) when the IdP advertises them: auto | never. */
  par: Literals('auto', 'never'),
  /** Extra CA certificates trusted for the IdP (discovery, tokens, userinfo, JWKS). */
  ca: Opt(Bytes)
})

const StoreCommon = {
  failMode: FailModeSchema,
  /** per-replica cache of revocation state, kept true by revocation events */
  nearCache: Bool
}
/**
 * Discriminated on `kind`: the Redis store always has its connection settings. The memory store keeps
 * a `redis` block that the file has (it is checked whenever present) but never connects with it.
 */
export const StoreSchema = Type.Union([
  Type.Object({ kind: Type.Literal('memory'), ...StoreCommon, redis: Opt(RedisSchema) }),
  Type.Object({ kind: Type.Literal('redis'), ...StoreCommon, redis: RedisSchema })
])

export const ConfigSchema = Type.Object({
  /** External base URL without trailing slash, e.g. https://app.example.com */
  publicUrl: Str,
  listen: ListenSchema,
  admin: Type.Object({ listen: ListenSchema, token: Str }),
  /** Starts with '/', no trailing slash, e.g. /auth */
  authPrefix: Str,
  trustProxy: Bool,
  logLevel: Literals('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  /** Worker processes sharing the listen ports: a number, resolved from `auto` to the CPU count. */
  workers: Int,
  oidc: OidcSchema,
  session: Type.Object({
    /** seconds */
    ttl: Int,
    /** seconds */
    absoluteTtl: Int,
    /** 32-byte keys; the first one encrypts, all decrypt. */
    keys: Type.Array(Bytes),
    /** Domain attribute of the cookies (one session across subdomains); names become `__Secure-`. */
    cookieDomain: Opt(Str)
  }),
  rememberMe: Type.Object({
    enabled: Bool,
    /** seconds */
    ttl: Int,
    /** seconds: the previous device credential still works this long after a rotation (parallel requests) */
    rotationGrace: Int,
    /** renewal also refreshes at the IdP; invalid_grant revokes the device */
    checkIdp: Bool,
    /** /auth/login without `remember` shows a small page asking whether to remember this device */
    ask: Bool
  }),
  store: StoreSchema,
  routes: Type.Array(RouteSchema),
  forwardAuth: Type.Object({
    /** GET <authPrefix>/check answers ingress controllers */
    enabled: Bool,
    /** host patterns an absolute login returnTo may name */
    allowedHosts: Strings
  }),
  /** How claims become upstream headers. */
  identity: Type.Object({
    /** claim path for X-Forwarded-User */
    user: Str,
    /** claim path of the groups (array, or a space/comma separated string) */
    groups: Str,
    /** extra upstream headers: lower-case header name -> claim path */
    headers: Type.Record(Str, Str)
  }),
  /** Slow clients cannot hold a connection: both ports close a request not received in time. */
  timeouts: Type.Object({
    /** seconds to receive the request line and headers */
    headers: Int,
    /** seconds to receive the whole request, body included */
    request: Int
  }),
  /** Branding of the gateway's own pages. */
  pages: Type.Object({ title: Opt(Str), logoUrl: Opt(Str), accentColor: Opt(Str) }),
  websocket: Type.Object({
    /** Origins (scheme://host[:port]) allowed to open WebSockets besides publicUrl's own origin. */
    allowedOrigins: Strings
  }),
  /** Per client IP on login, callback, back-channel logout and SSF push (README section "Configuration"). */
  rateLimit: Type.Object({
    enabled: Bool,
    /** requests per minute, per client IP and endpoint */
    perMinute: Int
  }),
  /** OpenTelemetry traces; absent: off, and no OpenTelemetry code is loaded. */
  tracing: Opt(Type.Object({
    /** OTLP/HTTP traces URL (the collector's base URL with `/v1/traces` appended) */
    otlpEndpoint: Str,
    serviceName: Str,
    /** share of new traces recorded (0..1); a sampled parent's decision is followed */
    sampleRatio: Type.Number()
  })),
  /** Shared Signals receiver: CAEP and RISC events from these transmitters revoke sessions. */
  ssf: Type.Object({ transmitters: Type.Array(SsfTransmitterSchema) })
})
export type Config = Static<typeof ConfigSchema>

/** The Redis settings of a store that must be Redis (tools and tests); throws on the memory store. */
export function redisOf (store: Config['store']): RedisConfig {
  if (store.kind !== 'redis') throw new Error('store.kind is memory: this needs store.kind: redis')
  return store.redis
}
