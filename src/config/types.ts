/**
 * The validated, normalised configuration the rest of the gateway works with.
 * Durations are whole seconds; session keys are decoded 32-byte buffers.
 * Produced only by `loadConfig` / `parseConfig` in ./loader.ts.
 */
export type AuthMode = 'required' | 'optional' | 'none'
export type FailMode = 'closed' | 'open'

export interface ListenConfig {
  host: string
  port: number
}

export type { AuthzRule } from '../core/authorize.js'
import type { AuthzRule } from '../core/authorize.js'

export interface RouteConfig {
  /** Path prefix, starts with '/'; longest prefix wins. */
  prefix: string
  /** Host pattern (`app.example.com`, `*.example.com`): the route applies to requests for that host only. */
  host?: string
  /** Absolute http(s) URL of the upstream; absent on routes that serve forward-auth only. */
  upstream?: string
  auth: AuthMode
  forwardAccessToken: boolean
  csrf: boolean
  /** A request with `Authorization: Bearer <JWT>` is judged by the access token alone (CONTRACT section 9). */
  bearer: boolean
  /** The route's own rules, else the global ones; undefined: every signed-in user passes. */
  authorize?: AuthzRule[]
  /** TLS towards an https upstream: private CA, client certificate (mTLS), SNI name. */
  tls?: TlsConfig
}

/** TLS material, read from the configured files at start-up. */
export interface TlsConfig {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  serverName?: string
  /** Accept any certificate (tests, never production). */
  insecureSkipVerify: boolean
}

export interface RedisNode {
  host: string
  port: number
}

export interface RedisConfig {
  /** redis:// or rediss:// URL (standalone). */
  url?: string
  sentinel?: { name: string, nodes: RedisNode[], password?: string }
  cluster?: { nodes: RedisNode[] }
  username?: string
  password?: string
  keyPrefix: string
  /** TLS for every connection (standalone, Sentinel and its master, Cluster nodes). */
  tls?: TlsConfig
  /** Bound on one command, in milliseconds. */
  commandTimeoutMs: number
}

/** One Shared Signals transmitter whose Security Event Tokens the gateway receives (CONTRACT section 12). */
export interface SsfTransmitterConfig {
  /** `iss` of its SETs. */
  issuer: string
  /** Its signing keys; else `jwks_uri` of the configuration document. */
  jwksUri?: string
  /** Its SSF configuration document (`/.well-known/ssf-configuration`). */
  configurationUrl?: string
  /** The `aud` its SETs must carry (default: publicUrl). */
  audience: string
  /** push: it POSTs SETs to <authPrefix>/ssf/push (RFC 8935) | poll: the gateway polls it (RFC 8936). */
  delivery: 'push' | 'poll'
  /** The bearer token it sends on push (push only). */
  pushToken?: string
  /** Its poll endpoint (poll only; with manageStream, the stream's endpoint when absent). */
  pollUrl?: string
  /** The bearer token the gateway sends when polling (poll only). */
  pollToken?: string
  /** Create or update the stream at start-up and request a verification event (needs configurationUrl). */
  manageStream: boolean
  /** The bearer token for its stream management endpoints (with manageStream). */
  managementToken?: string
}

export interface Config {
  /** External base URL without trailing slash, e.g. https://app.example.com */
  publicUrl: string
  listen: ListenConfig
  admin: { listen: ListenConfig, token: string }
  /** Starts with '/', no trailing slash, e.g. /auth */
  authPrefix: string
  trustProxy: boolean
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Worker processes sharing the listen ports: a number, resolved from `auto` to the CPU count. */
  workers: number
  oidc: {
    issuer: string
    clientId: string
    clientSecret?: string
    scopes: string[]
    allowInsecureHttp: boolean
    /** `aud` values a bearer access token may carry (one is enough); empty when no route has `bearer`. */
    audience: string[]
    /** seconds: the longest an access token lives (by its iat); logout markers are kept this long */
    accessTokenMaxAge: number
    /** Sent as prompt= only when set. */
    prompt?: string
    tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none'
    /** PEM (PKCS#8) or JWK JSON, for private_key_jwt. */
    privateKey?: string
    /** Pushed authorization requests (RFC 9126) when the IdP advertises them: auto | never. */
    par: 'auto' | 'never'
    /** Extra CA certificates trusted for the IdP (discovery, tokens, userinfo, JWKS). */
    ca?: Buffer
  }
  session: {
    /** seconds */
    ttl: number
    /** seconds */
    absoluteTtl: number
    /** 32-byte keys; the first one encrypts, all decrypt. */
    keys: Buffer[]
    /** Domain attribute of the cookies (one session across subdomains); names become `__Secure-`. */
    cookieDomain?: string
  }
  rememberMe: {
    enabled: boolean
    /** seconds */
    ttl: number
    /** seconds: the previous device credential still works this long after a rotation (parallel requests) */
    rotationGrace: number
    /** renewal also refreshes at the IdP; invalid_grant revokes the device */
    checkIdp: boolean
    /** /auth/login without `remember` shows a small page asking whether to remember this device */
    ask: boolean
  }
  store: {
    kind: 'memory' | 'redis'
    failMode: FailMode
    /** per-replica cache of revocation state, kept true by revocation events */
    nearCache: boolean
    redis?: RedisConfig
  }
  routes: RouteConfig[]
  forwardAuth: {
    /** GET <authPrefix>/check answers ingress controllers */
    enabled: boolean
    /** host patterns an absolute login returnTo may name */
    allowedHosts: string[]
  }
  /** How claims become upstream headers. */
  identity: {
    /** claim path for X-Forwarded-User */
    user: string
    /** claim path of the groups (array, or a space/comma separated string) */
    groups: string
    /** extra upstream headers: lower-case header name -> claim path */
    headers: Record<string, string>
  }
  /** Slow clients cannot hold a connection: both ports close a request not received in time. */
  timeouts: {
    /** seconds to receive the request line and headers */
    headers: number
    /** seconds to receive the whole request, body included */
    request: number
  }
  /** Branding of the gateway's own pages. */
  pages: { title?: string, logoUrl?: string, accentColor?: string }
  websocket: {
    /** Origins (scheme://host[:port]) allowed to open WebSockets besides publicUrl's own origin. */
    allowedOrigins: string[]
  }
  /** Per client IP on login, callback, back-channel logout and SSF push (CONTRACT section 13). */
  rateLimit: {
    enabled: boolean
    /** requests per minute, per client IP and endpoint */
    perMinute: number
  }
  /** OpenTelemetry traces; absent: off, and no OpenTelemetry code is loaded. */
  tracing?: {
    /** OTLP/HTTP traces URL (the collector's base URL with `/v1/traces` appended) */
    otlpEndpoint: string
    serviceName: string
    /** share of new traces recorded (0..1); a sampled parent's decision is followed */
    sampleRatio: number
  }
  /** Shared Signals receiver: CAEP and RISC events from these transmitters revoke sessions. */
  ssf: { transmitters: SsfTransmitterConfig[] }
}
