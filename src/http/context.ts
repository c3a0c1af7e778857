/**
 * What every HTTP plugin of the gateway shares: built once by app.ts and passed down explicitly
 * (no globals, no process.env).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config/types.js'
import type { KeyRing } from '../core/sealed-cookie.js'
import type { Store } from '../store/store.js'
import type { OidcClient } from '../oidc/client.js'
import type { CookieJar } from './cookies.js'
import type { SessionClaims } from '../core/session.js'
import type { Metrics } from './metrics.js'
import type { ConnectionRegistry } from './connections.js'
import type { Observability } from '../obs/observe.js'
import type { IdpWarnings } from '../oidc/warnings.js'
import type { Pages } from './pages.js'

/** Gives the discovered IdP client, discovering (again) when needed. */
export interface OidcSource {
  get (): Promise<OidcClient>
  /** The client when discovery has succeeded, without waiting. */
  current (): OidcClient | undefined
}

export interface GatewayContext {
  config: Config
  store: Store
  oidc: OidcSource
  ring: KeyRing
  jar: CookieJar
  log: FastifyBaseLogger
  /** Epoch seconds. Injectable so tests can move time. */
  now (): number
  /** Epoch milliseconds (rotation grace windows need sub-second precision); follows `now` in tests. */
  nowMs (): number
  metrics: Metrics
  connections: ConnectionRegistry
  /** Latency histograms and (when configured) traces of the store, the IdP and the upstreams. */
  obs: Observability
  /** False once shutdown has begun: /readyz answers 503. */
  accepting: boolean
  /** Whether some route forwards the access token (then the session cookie carries it). */
  keepsAccessToken: boolean
  /** The gateway's own pages, branded (config `pages`). */
  pages: Pages
  /** What the IdP cannot do (no back-channel logout, no sid...): logged once, shown on /readyz. */
  idpWarnings: IdpWarnings
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The live session of this request, once the gate resolved it. */
    sgSession: SessionClaims | null
  }
}
