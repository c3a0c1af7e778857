/**
 * Prometheus metrics of one gateway instance (its own registry, so several gateways can share a process
 * in tests). Names follow CONTRACT section 6.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface Metrics {
  registry: Registry
  httpRequests: Counter<'route' | 'method' | 'status'>
  httpDuration: Histogram<'route' | 'method' | 'status'>
  sessionChecks: Counter<'result'>
  logouts: Counter<'channel'>
  storeErrors: Counter
  propagation: Histogram
  renewals: Counter<'result'>
  reuseDetections: Counter
  authzDecisions: Counter<'route' | 'result'>
  /** Bearer access tokens judged on `bearer: true` routes, by result (live, invalid, revoked, fail_open). */
  bearerChecks: Counter<'result'>
  /** Hot-path checks answered by the near cache / sent to the store (0 when the near cache is off). */
  nearCacheHits: Counter
  nearCacheMisses: Counter
}

/** Plain counters kept by the near cache on the hot path; read when metrics are scraped. */
export interface NearCacheCounts { readonly hits: number, readonly misses: number }

/** A counter that follows a monotonic number owned elsewhere: no work per request, only per scrape. */
function followCounter (name: string, help: string, registers: Registry[], read: () => number): Counter {
  let reported = 0
  return new Counter({
    name,
    help,
    registers,
    collect () {
      const value = read()
      if (value > reported) this.inc(value - reported)
      reported = value
    }
  })
}

/** Creates the registry; `defaults` adds process metrics (off in tests that build many gateways). */
export function createMetrics (opts: { defaults?: boolean, nearCache?: NearCacheCounts } = {}): Metrics {
  const registry = new Registry()
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'sessiongate_' })
  const registers = [registry]
  return {
    registry,
    httpRequests: new Counter({ name: 'sessiongate_http_requests_total', help: 'HTTP requests on the public port', labelNames: ['route', 'method', 'status'], registers }),
    httpDuration: new Histogram({ name: 'sessiongate_http_request_duration_seconds', help: 'HTTP request duration on the public port', labelNames: ['route', 'method', 'status'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    sessionChecks: new Counter({ name: 'sessiongate_session_checks_total', help: 'Session checks by result', labelNames: ['result'], registers }),
    logouts: new Counter({ name: 'sessiongate_logouts_total', help: 'Logouts by channel', labelNames: ['channel'], registers }),
    storeErrors: new Counter({ name: 'sessiongate_store_errors_total', help: 'Store operations that failed', registers }),
    propagation: new Histogram({ name: 'sessiongate_revocation_propagation_seconds', help: 'Revocation event publish to applied on this replica', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2], registers }),
    renewals: new Counter({ name: 'sessiongate_renewals_total', help: 'Session renewals from a device credential, by result', labelNames: ['result'], registers }),
    authzDecisions: new Counter({ name: 'sessiongate_authz_decisions_total', help: 'authorize rule decisions by route prefix and result (allowed, denied)', labelNames: ['route', 'result'], registers }),
    bearerChecks: new Counter({ name: 'sessiongate_bearer_checks_total', help: 'Bearer access tokens judged on bearer routes, by result', labelNames: ['result'], registers }),
    reuseDetections: new Counter({ name: 'sessiongate_device_reuse_detected_total', help: 'Device credentials presented after rotation and grace: the device was revoked', registers }),
    nearCacheHits: followCounter('sessiongate_near_cache_hits_total', 'Session checks answered by the near cache', registers, () => opts.nearCache?.hits ?? 0),
    nearCacheMisses: followCounter('sessiongate_near_cache_misses_total', 'Session checks the near cache sent to the store (bypasses included)', registers, () => opts.nearCache?.misses ?? 0)
  }
}
