/**
 * Per-request metrics of the public port (sessiongate_http_requests_total and _duration_seconds), the
 * upstream span's settling, and the debug access line. Synchronous and allocation-light: every proxied
 * request passes here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Observability } from '../obs/observe.js'
import type { Tracing } from '../obs/tracing.js'
import type { Metrics } from './metrics.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Metrics and traces label of a proxied route: its configured prefix (Fastify's pattern is `/*`). */
    sgRoute?: string
  }
  interface FastifyRequest {
    /** Metrics and traces label of the request's route, stamped by the route's first hook (null before). */
    sgRoute: string | null
  }
}

export interface RequestMetricsOptions {
  metrics: Pick<Metrics, 'httpRequests' | 'httpDuration'>
  obs: Pick<Observability, 'instrument' | 'settle'>
  tracing: Tracing | undefined
  /** Trust a traceparent from the client (trustProxy). */
  trustParent: boolean
  /** The configured route prefixes: a proxied route is labelled by its prefix. */
  proxiedPrefixes: readonly string[]
  logger: Pick<Logger, 'isLevelEnabled'>
}

export function registerRequestMetrics (pub: FastifyInstance, { metrics, obs, tracing, trustParent, proxiedPrefixes, logger }: RequestMetricsOptions): void {
  // Per-request bookkeeping stays synchronous and allocation-light: label children are bound once per
  // (route, method, status) and found without building a key, and the access line is written only at
  // debug level or for server errors.
  type Bound = { count: ReturnType<typeof metrics.httpRequests.labels>, time: ReturnType<typeof metrics.httpDuration.labels> }
  const bound = new Map<string, Map<string, Map<number, Bound>>>()
  // A proxied route is labelled by its configured prefix (its plugin's prefix), not by Fastify's `/*`.
  const proxied = new Set(proxiedPrefixes)
  // Each route stamps its label on the request (one hook per route, made once): reading it back costs
  // no allocation, where `request.routeOptions` builds an object on every read.
  pub.decorateRequest('sgRoute', null)
  pub.addHook('onRoute', (route) => {
    if (proxied.has(route.prefix)) route.config = { ...route.config, sgRoute: route.prefix }
    const label = proxied.has(route.prefix) ? route.prefix : route.url
    const stamp = (request: FastifyRequest, _reply: FastifyReply, done: () => void): void => { request.sgRoute = label; done() }
    const own = route.onRequest
    route.onRequest = own === undefined ? [stamp] : [...(Array.isArray(own) ? own : [own]), stamp]
  })
  // Requests answered before their route's hooks ran (a refused target, a rate limit) take the slow way.
  const routeLabel = (request: FastifyRequest): string => {
    if (request.sgRoute !== null) return request.sgRoute
    const ro = request.routeOptions
    return ro.config?.sgRoute ?? ro.url ?? 'unmatched'
  }
  obs.instrument(pub)
  tracing?.instrument(pub, { label: routeLabel, trustParent })
  pub.addHook('onResponse', (request, reply, done) => {
    const route = routeLabel(request)
    const status = reply.statusCode
    obs.settle(request, route, status)
    let byMethod = bound.get(route)
    if (byMethod === undefined) bound.set(route, (byMethod = new Map()))
    let byStatus = byMethod.get(request.method)
    if (byStatus === undefined) byMethod.set(request.method, (byStatus = new Map()))
    let m = byStatus.get(status)
    if (m === undefined) {
      const labels = { route, method: request.method, status: String(status) }
      m = { count: metrics.httpRequests.labels(labels), time: metrics.httpDuration.labels(labels) }
      byStatus.set(status, m)
    }
    m.count.inc()
    m.time.observe(reply.elapsedTime / 1000)
    if (status >= 500) request.log.warn({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request failed')
    else if (logger.isLevelEnabled('debug')) request.log.debug({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
    done()
  })
}
