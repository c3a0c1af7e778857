/**
 * buildGateway(config, deps): wires the implementations together into two Fastify instances, the public
 * gateway and the admin port. The only place that knows every part.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import cookie from '@fastify/cookie'
import type { Logger } from 'pino'
import type { Config } from './config/types.js'
import { KeyRing, SealError } from './core/sealed-cookie.js'
import { StoreUnavailableError, type Store } from './store/store.js'
import { MemoryStore } from './store/memory.js'
import { RedisStore } from './store/redis.js'
import { NearCacheStore, type NearCacheStats } from './store/near-cache.js'
import { OidcError } from './oidc/client.js'
import { createOidcSource, type OidcSourceHandle } from './oidc/source.js'
import { CookieJar } from './http/cookies.js'
import { ConnectionRegistry } from './http/connections.js'
import type { OidcSource } from './http/context.js'
import { createGate } from './http/gate.js'
import { Readiness } from './http/readiness.js'
import { createConnectionWatch } from './http/watch.js'
import { createSeals } from './session/seals.js'
import { createSessionService, type SessionService } from './session/service.js'
import { sessionSettings } from './session/settings.js'
import { createAccessTokenKeys, createLogoutTokenKeys } from './oidc/jwks.js'
import { bearerStateTtl, createBearerCheck } from './bearer/bearer-check.js'
import { authRoutes } from './http/auth-routes.js'
import { proxyRoutes } from './http/proxy.js'
import { adminRoutes } from './http/admin.js'
import { logoutRoutes } from './http/logout-routes.js'
import { devicesPage } from './http/devices-page.js'
import { createAuthorizer } from './http/authorization.js'
import { IdpWarnings, metadataWarnings, NO_SID_WARNING } from './oidc/warnings.js'
import { createPages } from './http/pages.js'
import { createBearerGuard } from './http/bearer.js'
import { forwardAuthRoutes } from './http/forward-auth.js'
import { reconcileOnResubscribe } from './http/reconcile.js'
import { createMetrics, sessionCounters, type Metrics } from './http/metrics.js'
import { registerRequestMetrics } from './http/request-metrics.js'
import { causeChain } from './core/cause.js'
import { createLogger } from './log.js'
import { targetChecker } from './http/request-target.js'
import { ssfRoutes } from './http/ssf-routes.js'
import { SsfService } from './ssf/service.js'
import { RateLimitedError, registerRateLimits } from './http/rate-limit.js'
import { connectRateLimiter } from './store/rate-limit-redis.js'
import { startTracing } from './obs/tracing.js'
import { createObservability, instrumentStore, type Observability } from './obs/observe.js'
import { REQUEST_ID_HEADER, requestIds } from './obs/request-id.js'

/** Set by rewriteUrl on a raw request whose target is ambiguous; the first onRequest hook answers 400. */
const kRefusedTarget = Symbol('sessiongate.refusedTarget')
type RawWithRefusal = { [kRefusedTarget]?: string }

export interface GatewayDeps {
  logger?: Logger
  /** A ready store; by default one is built from `config.store`. */
  store?: Store
  /** The IdP client source; by default discovery of `config.oidc.issuer`. */
  oidc?: OidcSource & { close?: () => void }
  /** Epoch seconds; tests move time with it. */
  now?: () => number
  /** Collect process metrics (default true). */
  processMetrics?: boolean
  /** Shared Signals poller timings (tests shorten them). */
  ssfPoll?: { leaseMs?: number, idleMs?: number }
}

/** The parts one gateway was built from, for the CLI, the demo, tests and benches (plugins get narrower views). */
export interface GatewayParts {
  config: Config
  store: Store
  oidc: OidcSource
  ring: KeyRing
  log: FastifyBaseLogger
  connections: ConnectionRegistry
  metrics: Metrics
  sessions: SessionService
  readiness: Readiness
  /** False once shutdown has begun (readiness.stop()). */
  readonly accepting: boolean
}

export interface Gateway {
  public: FastifyInstance
  admin: FastifyInstance
  ctx: GatewayParts
  /** The Shared Signals receiver, when transmitters are configured. */
  ssf?: SsfService
  /**
   * Starts both listeners on the configured (or given) ports. A cluster worker passes `admin: false`:
   * the primary owns the admin port and hands admin requests to `admin.inject` (src/cluster/).
   */
  listen (ports?: { public?: number, admin?: number | false }): Promise<{ public: string, admin: string }>
  /**
   * Graceful stop: /readyz turns 503, long-lived connections close (WebSocket 1001, event streams say
   * shutdown), the listener stops accepting, in-flight requests finish (up to `drainMs`, then the rest
   * are cut), and the store closes cleanly.
   */
  close (opts?: { drainMs?: number }): Promise<void>
}

/**
 * Builds the store named by the config, behind the per-replica near cache when `store.nearCache` is on.
 * With `obs`, every operation that reaches the data is timed (the near cache's hits are not).
 */
export function buildStore (config: Config, log: Logger, obs?: Pick<Observability, 'storeOp'>): Store {
  let inner: Store
  if (config.store.kind === 'memory') {
    inner = new MemoryStore()
    if (obs !== undefined) instrumentStore(inner, obs)
  } else {
    inner = new RedisStore({ redis: config.store.redis, logger: log, ...(obs !== undefined ? { observe: obs.storeOp } : {}) })
  }
  return config.store.nearCache ? new NearCacheStore(inner, { logger: log }) : inner
}

/**
 * Maps failures to stable JSON answers; never a stack trace, never a 500 for a known outage. A store
 * outage that reaches it is counted in sessiongate_store_errors_total (once, if a route counted it already).
 */
const errorHandler = (metrics: Metrics) => function errorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): unknown {
  if (err instanceof RateLimitedError) {
    request.log.debug({ ip: request.ip }, 'rate limited')
    return reply.code(429).header('cache-control', 'no-store').send({ error: 'rate_limited' })
  }
  if (err instanceof StoreUnavailableError) {
    metrics.countStoreError(err)
    request.log.warn({ code: err.code, reason: err.message, causes: causeChain(err) }, 'store unavailable')
    return reply.code(503).header('cache-control', 'no-store').send({ error: 'store_unavailable' })
  }
  if (err instanceof OidcError) {
    request.log.warn({ code: err.code, reason: err.message, causes: causeChain(err) }, 'IdP unavailable')
    return reply.code(503).header('cache-control', 'no-store').send({ error: 'idp_unavailable' })
  }
  if (err instanceof SealError && err.code === 'SG_COOKIE_TOO_LARGE') {
    // Fail closed, but say why: the IdP sends more profile (groups) than cookies can carry.
    request.log.error('the session does not fit in the cookie budget (6 KB of the Cookie header): trim the groups claim or stop forwarding the access token')
    return reply.code(500).header('cache-control', 'no-store').send({ error: 'session_too_large' })
  }
  const status = err.statusCode ?? 500
  if (status >= 400 && status < 500) return reply.code(status).send({ error: 'invalid_request', error_description: err.message })
  request.log.error({ err }, 'unhandled error')
  return reply.code(500).send({ error: 'internal_error' })
}

/** Wires config and dependencies into the public and admin Fastify instances. */
export async function buildGateway (config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const logger = deps.logger ?? createLogger(config.logLevel)
  const connections = new ConnectionRegistry()
  let nearCache: NearCacheStats | undefined
  const metrics = createMetrics({
    defaults: deps.processMetrics ?? true,
    nearCache: { get hits () { return nearCache?.hits ?? 0 }, get misses () { return nearCache?.misses ?? 0 } },
    connections: () => connections.counts()
  })
  // Off unless configured; then the OpenTelemetry SDK is imported here, and only here.
  const tracing = await startTracing(config.tracing, { log: logger })
  const obs = createObservability(metrics, tracing, deps.store?.kind ?? config.store.kind)
  const store = deps.store ?? buildStore(config, logger, obs)
  if (store instanceof NearCacheStore) nearCache = store.stats
  // The epoch dates the store's revocation state (bearer tokens issued before it are refused): create it
  // now rather than on the first request. A store that is down creates it on its first use instead.
  store.epoch().catch((err: Error) => { logger.debug({ reason: err.message }, 'store epoch not read at start-up') })
  const oidc: OidcSourceHandle | (OidcSource & { close?: () => void }) = deps.oidc ?? createOidcSource(config.oidc, logger, undefined, obs.idpFetch)

  const common = {
    loggerInstance: logger as FastifyBaseLogger,
    trustProxy: config.trustProxy,
    // X-Request-ID: kept from a trusted proxy, else generated; logged as reqId
    genReqId: requestIds(config.trustProxy),
    // the gateway's cookies can be large (chunks); stay well inside Node's defaults otherwise
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // Fastify's two info lines per request cost more than the gate itself; onResponse logs instead.
    logController: new LogController({ disableRequestLogging: true }),
    // A slow client (headers or body trickling in) cannot hold a connection: Node answers 408 and closes.
    requestTimeout: config.timeouts.request * 1000,
    // Node checks the two timeouts above on this interval (default 30 s, far too coarse for them).
    http: { headersTimeout: config.timeouts.headers * 1000, connectionsCheckingInterval: Math.min(1000, config.timeouts.headers * 500) }
  }
  const checkTarget = targetChecker(config.routes.map((r) => r.prefix))
  const pub = Fastify({
    ...common,
    // Before routing (also for WebSocket upgrades): the path that picks the route is the path forwarded.
    rewriteUrl (req) {
      const url = req.url ?? '/'
      const refusal = checkTarget(url)
      if (refusal !== undefined) (req as RawWithRefusal)[kRefusedTarget] = refusal
      return url
    }
  })
  const admin = Fastify(common)
  // On every answer, hijacked ones (event streams) included: hence the raw response.
  pub.addHook('onRequest', (request, reply, done) => {
    reply.raw.setHeader(REQUEST_ID_HEADER, request.id)
    done()
  })
  pub.addHook('onRequest', (request, reply, done) => {
    const refusal = (request.raw as RawWithRefusal)[kRefusedTarget]
    if (refusal === undefined) { done(); return }
    request.log.info({ refusal }, 'ambiguous request target refused')
    reply.code(400).header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: `ambiguous request target (${refusal})` })
  })

  const now = deps.now ?? (() => Math.floor(Date.now() / 1000))
  const nowMs = deps.now !== undefined ? () => deps.now!() * 1000 : Date.now
  const ring = new KeyRing(config.session.keys)
  const seals = createSeals(ring)
  const jar = new CookieJar(config.publicUrl, config.session.cookieDomain)
  const pages = createPages(config.pages)
  const readiness = new Readiness()
  const idpWarnings = new IdpWarnings((w) => { logger.warn({ warning: w.code }, w.message) })
  const bearerRoutes = config.routes.some((r) => r.bearer)
  const sessions = createSessionService({
    store,
    seals,
    idp: oidc,
    settings: sessionSettings(config),
    counters: sessionCounters(metrics),
    nowMs,
    sessionFits: (sealed) => jar.sessionFits(sealed),
    noteIdp (client, sid) {
      idpWarnings.add(metadataWarnings(client.metadata, config))
      if (!sid) idpWarnings.add([NO_SID_WARNING])
    },
    // Bearer tokens: the revocation time and IdP-session markers live as long as an access token can.
    ...(bearerRoutes ? { bearerTtl: bearerStateTtl(config) } : {})
  })
  const revoker = sessions.revoke
  const watch = createConnectionWatch(connections, store)
  const ctx: GatewayParts = {
    config,
    store,
    oidc,
    ring,
    log: pub.log,
    connections,
    metrics,
    sessions,
    readiness,
    get accepting () { return readiness.accepting }
  }
  // Said once, as soon as the IdP's metadata is known (discovery may succeed only later: /readyz and
  // the callback look again).
  oidc.get().then((c) => { idpWarnings.add(metadataWarnings(c.metadata, config)) }, () => {})
  const gate = obs.gate(createGate({ sessions, jar, authPrefix: config.authPrefix, now }))

  pub.decorateRequest('sgSession', null)
  pub.setErrorHandler(errorHandler(metrics))
  admin.setErrorHandler(errorHandler(metrics))
  registerRequestMetrics(pub, { metrics, obs, tracing, trustParent: config.trustProxy, proxiedPrefixes: config.routes.map((r) => r.prefix), logger })
  await pub.register(cookie)
  const closeRateLimits = await registerRateLimits(pub, config,
    config.rateLimit.enabled && config.store.kind === 'redis' ? connectRateLimiter(config.store.redis, logger) : undefined)
  await pub.register(authRoutes, {
    settings: { authPrefix: config.authPrefix, publicUrl: config.publicUrl, forwardAuth: config.forwardAuth, rememberMe: config.rememberMe },
    sessions,
    gate,
    jar,
    pages,
    logins: metrics.logins,
    watch,
    now
  })
  await pub.register(logoutRoutes, {
    authPrefix: config.authPrefix,
    publicUrl: config.publicUrl,
    idp: oidc,
    keys: createLogoutTokenKeys(oidc, config.oidc.ca),
    gate,
    revoker,
    replay: store,
    storeErrors: metrics.storeErrors,
    now
  })
  await pub.register(devicesPage, { authPrefix: config.authPrefix, sessions, gate, pages, formToken: seals.devicesFormToken, now })
  const authorizer = createAuthorizer(config.routes, metrics.authzDecisions, config.authPrefix, pages)
  const bearer = bearerRoutes
    ? createBearerGuard(createBearerCheck({
      config,
      store,
      keys: createAccessTokenKeys(oidc, config.oidc.ca),
      issuer: async () => (oidc.current() ?? await oidc.get()).issuer,
      now
    }), authorizer, metrics.bearerChecks)
    : undefined
  const guards = { gate, authorizer, ...(bearer !== undefined ? { bearer } : {}) }
  if (config.forwardAuth.enabled) await pub.register(forwardAuthRoutes, { authPrefix: config.authPrefix, routes: config.routes, identity: config.identity, ...guards })
  await pub.register(proxyRoutes, {
    routes: config.routes,
    origins: [new URL(config.publicUrl).origin, ...config.websocket.allowedOrigins],
    identity: config.identity,
    ...guards,
    jar,
    obs,
    watch,
    log: pub.log
  })
  // Shared Signals: CAEP and RISC events end sessions through the same revoker as every logout.
  const ssf = config.ssf.transmitters.length === 0
    ? undefined
    : new SsfService({
      config,
      store,
      log: logger,
      now,
      actions: {
        user: async (sub) => { await revoker.user(sub, 'ssf', pub.log) },
        idpSession: async (idpSid, onlySub) => { await revoker.idpSession(config.oidc.issuer, idpSid, 'ssf', pub.log, onlySub) }
      },
      count: (transmitter, type, result) => { metrics.ssfEvents.inc({ transmitter, type, result }) },
      ...(deps.ssfPoll !== undefined ? { poll: deps.ssfPoll } : {})
    })
  if (ssf !== undefined) await pub.register(ssfRoutes, { authPrefix: config.authPrefix, ssf, ssfEvents: metrics.ssfEvents, storeErrors: metrics.storeErrors })
  await admin.register(adminRoutes, { config, store, idp: oidc, idpWarnings, metrics, readiness, revoker, ...(ssf !== undefined ? { ssf } : {}) })

  // Every replica applies every revocation: close the revoked sessions' long-lived connections.
  const unsubscribe = store.subscribe((event) => {
    metrics.propagation.observe(Math.max(0, Date.now() - event.at) / 1000)
    const closed = connections.closeFor(event)
    if (closed > 0) logger.info({ sub: event.sub, connections: closed }, 'closed connections of revoked sessions')
  })
  // Events published while the store was not subscribed never reach that listener: re-check after each resubscribe.
  const stopReconciling = reconcileOnResubscribe(store, connections, logger)

  return {
    public: pub,
    admin,
    ctx,
    ...(ssf !== undefined ? { ssf } : {}),
    async listen (ports = {}) {
      const a = await pub.listen({ host: config.listen.host, port: ports.public ?? config.listen.port })
      const b = ports.admin === false ? '' : await admin.listen({ host: config.admin.listen.host, port: ports.admin ?? config.admin.listen.port })
      // Once the push endpoint answers: a managed stream's verification event may come at once.
      ssf?.start()
      return { public: a, admin: b }
    },
    async close (opts = {}) {
      readiness.stop()
      unsubscribe()
      stopReconciling()
      connections.closeAll('shutdown')
      const drained = Promise.all([pub.close(), admin.close()])
      let timer: NodeJS.Timeout | undefined
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          logger.warn({ drainMs: opts.drainMs ?? 10_000 }, 'drain bound reached: closing the remaining connections')
          pub.server.closeAllConnections()
          admin.server.closeAllConnections()
          resolve()
        }, opts.drainMs ?? 10_000)
        timer.unref()
      })
      await Promise.race([drained, bound])
      clearTimeout(timer)
      await ssf?.stop()
      oidc.close?.()
      await closeRateLimits()
      await store.close()
      await tracing?.shutdown()
    }
  }
}
