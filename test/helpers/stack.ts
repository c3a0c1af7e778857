/**
 * Starts a whole stack for an integration test: the real IdP (oidc-provider), real upstreams, and the
 * gateway on free ports, with the memory store or a real redis-server. Logs are captured in memory so
 * tests can grep them for secrets.
 */
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/loader.js'
import type { Config } from '../../src/config/types.js'
import { buildGateway, type Gateway, type GatewayDeps } from '../../src/app.js'
import { createLogger } from '../../src/log.js'
import { startIdp, type IdpOptions, type RunningIdp } from '../../src/demo/idp.js'
import { freePort } from './ports.js'
import { startUpstream, type Upstream } from './upstream.js'

export interface StackOptions {
  /** Extra raw config merged over the defaults (YAML-shaped, before validation). */
  config?: Record<string, unknown>
  /** Route list; `{upstream}` placeholders are filled with the started upstream's URL. */
  routes?: Array<Record<string, unknown>>
  /** Redis URL: use the redis store. */
  redisUrl?: string
  deps?: Partial<GatewayDeps>
  accessTokenTtl?: number
  /** Extra raw `oidc` keys merged into the default oidc block (e.g. `audience`). */
  oidc?: Record<string, unknown>
  /** JWT access tokens for these API audiences (IdpOptions.resourceServers). */
  resourceServers?: IdpOptions['resourceServers']
  /** More IdP clients, given the gateway's URL. */
  idpClients?: (gatewayUrl: string) => IdpOptions['clients']
  /** Host name in publicUrl (default 127.0.0.1); the test must resolve it to loopback itself. */
  publicHost?: string
  /** Overrides of the gateway's client registration at the IdP (auth method, jwks...). */
  gatewayClient?: Record<string, unknown>
  /** Start the IdP without back-channel logout. */
  noBackchannel?: boolean
  /** Called with the built gateway before it listens (a test may add routes to `gateway.public`). */
  beforeListen?: (gateway: Gateway) => void
}

export interface Stack {
  gateway: Gateway
  config: Config
  idp: RunningIdp
  upstream: Upstream
  url: string
  adminUrl: string
  adminToken: string
  clientSecret: string
  logs: string[]
  /** Starts another replica of the gateway on the same config (same store, same keys), on new ports. */
  replica (): Promise<{ gateway: Gateway, url: string }>
  close (): Promise<void>
}

/** Starts IdP + upstream + gateway; registers teardown on `t`. */
export async function startStack (t: Test, opts: StackOptions = {}): Promise<Stack> {
  const [gwPort, adminPort] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${gwPort}`
  const publicUrl = `http://${opts.publicHost ?? '127.0.0.1'}:${gwPort}`
  const clientSecret = randomBytes(24).toString('base64url')
  const adminToken = randomBytes(24).toString('base64url')
  const upstream = await startUpstream()
  const idp = await startIdp({
    hostname: '127.0.0.1',
    ...(opts.noBackchannel === true ? { backchannelLogout: false } : {}),
    ...(opts.accessTokenTtl !== undefined ? { accessTokenTtl: opts.accessTokenTtl } : {}),
    ...(opts.resourceServers !== undefined ? { resourceServers: opts.resourceServers } : {}),
    clients: [...(opts.idpClients?.(url) ?? []), {
      client_id: 'gateway',
      client_secret: clientSecret,
      redirect_uris: [`${publicUrl}/auth/callback`],
      post_logout_redirect_uris: [`${publicUrl}/`],
      backchannel_logout_uri: `${url}/auth/backchannel-logout`,
      backchannel_logout_session_required: true,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...opts.gatewayClient
    }]
  })
  const routes = (opts.routes ?? [{ prefix: '/', upstream: '{upstream}', auth: 'required' }])
    .map((r) => (r.upstream === undefined ? r : { ...r, upstream: String(r.upstream).replace('{upstream}', upstream.url) }))
  const raw: Record<string, unknown> = {
    publicUrl,
    listen: { host: '127.0.0.1', port: gwPort },
    admin: { listen: { host: '127.0.0.1', port: adminPort }, token: '${SG_ADMIN_TOKEN}' },
    logLevel: 'debug',
    oidc: { issuer: idp.issuer, clientId: 'gateway', clientSecret: '${SG_CLIENT_SECRET}', allowInsecureHttp: true, scopes: ['openid', 'profile', 'email', 'offline_access', 'groups'], prompt: 'consent', ...opts.oidc },
    session: { ttl: '5m', absoluteTtl: '12h', keys: ['${SG_SESSION_KEY}'] },
    store: opts.redisUrl !== undefined ? { kind: 'redis', redis: { url: opts.redisUrl } } : { kind: 'memory' },
    routes,
    // Every test signs in from 127.0.0.1: the limiter stays on (its hooks run) but never trips here;
    // test/integration/rate-limit.test.ts sets its own budget.
    rateLimit: { enabled: true, perMinute: 100_000 },
    ...opts.config
  }
  const config = parseConfig(stringify(raw), {
    SG_ADMIN_TOKEN: adminToken,
    SG_CLIENT_SECRET: clientSecret,
    SG_SESSION_KEY: randomBytes(32).toString('base64url')
  })
  const logs: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _enc, cb) { logs.push(chunk.toString()); cb() } })
  const gateway = await buildGateway(config, { logger: createLogger('debug', sink), processMetrics: false, ...opts.deps })
  opts.beforeListen?.(gateway)
  try {
    await gateway.listen()
  } catch (err) {
    // A port taken between picking and binding: close what started, so the test fails now instead of
    // the open IdP and upstream keeping the process alive until tap's timeout.
    await gateway.close({ drainMs: 0 }).catch(() => {})
    await upstream.close()
    await idp.close()
    throw err
  }
  const stack: Stack = {
    gateway,
    config,
    idp,
    upstream,
    url,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    adminToken,
    clientSecret,
    logs,
    async replica () {
      const [p, a] = [await freePort(), await freePort()]
      const g = await buildGateway(config, { logger: createLogger('debug', sink), processMetrics: false, ...opts.deps })
      await g.listen({ public: p, admin: a })
      t.teardown(() => g.close())
      return { gateway: g, url: `http://127.0.0.1:${p}` }
    },
    async close () {
      await gateway.close()
      await upstream.close()
      await idp.close()
    }
  }
  t.teardown(() => stack.close())
  return stack
}
