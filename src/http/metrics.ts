/**
 * Prometheus metrics of one gateway instance (its own registry, so several gateways can share a process
 * in tests). Names follow README section "Admin port".
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { SessionCounters } from '../session/deps.js'

export interface Metrics {
  registry: Registry
  httpRequests: Counter<'route' | 'method' | 'status'>
  httpDuration: Histogram<'route' | 'method' | 'status'>
  sessionChecks: Counter<'result'>
  /** Session checks by result as plain numbers: the hot path adds to these, a scrape reads them. */
  sessionCheckCounts: Record<string, number>
  logouts: Counter<'channel'>
  storeErrors: Counter
  /** Counts one failed store operation in storeErrors, once per error object however often it is passed. */
  countStoreError: (err: Error) => void
  propagation: Histogram
  renewals: Counter<'result'>
  reuseDetections: Counter
  authzDecisions: Counter<'route' | 'result'>
  /** Bearer access tokens judged on `bearer: true` routes, by result (live, invalid, revoked, fail_open). */
  bearerChecks: Counter<'result'>
  /** Shared Signals SETs by transmitter (issuer), event type (short name) and result. */
  ssfEvents: Counter<'transmitter' | 'type' | 'result'>
  /** Hot-path checks answered by the near cache / sent to the store (0 when the near cache is off). */
  nearCacheHits: Counter
  nearCacheMisses: Counter
  // ---- latency and outcomes (issue 15 item 5)
  /** One store round trip (a Redis command or script; a memory store call), by operation. */
  storeDuration: Histogram<'op'>
  /** One HTTP call to the IdP (discovery, code_exchange, refresh, userinfo, revocation, jwks, ...). */
  idpDuration: Histogram<'op'>
  /** Request sent upstream to response headers received (or the failure), by configured route prefix. */
  upstreamDuration: Histogram<'route'>
  /** Finished callbacks by outcome (LOGIN_RESULTS). */
  logins: Counter<'result'>
}

/** Outcomes of GET <authPrefix>/callback; each is exposed from the start (0), so alerts see the series. */
export const LOGIN_RESULTS = ['success', 'expired', 'idp_error', 'state_mismatch', 'replay', 'exchange_failed', 'refused_identity', 'unavailable'] as const
export type LoginOutcome = typeof LOGIN_RESULTS[number]

/** Counts of open long-lived connections by kind, read at scrape time (nothing on the hot path). */
export type ConnectionCounts = () => Record<'websocket' | 'event_stream', number>

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

/** A labelled counter that follows plain per-label numbers owned elsewhere (per scrape, not per request). */
function followLabelled (name: string, help: string, label: string, registers: Registry[], counts: Record<string, number>): Counter<string> {
  const reported: Record<string, number> = {}
  return new Counter({
    name,
    help,
    labelNames: [label],
    registers,
    collect () {
      for (const [value, n] of Object.entries(counts)) {
        const before = reported[value] ?? 0
        if (n > before) this.inc({ [label]: value }, n - before)
        reported[value] = n
      }
    }
  })
}

/** Creates the registry; `defaults` adds process metrics (off in tests that build many gateways). */
export function createMetrics (opts: { defaults?: boolean, nearCache?: NearCacheCounts, connections?: ConnectionCounts } = {}): Metrics {
  const registry = new Registry()
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'sessiongate_' })
  const registers = [registry]
  const connections = opts.connections
  if (connections !== undefined) {
    // eslint-disable-next-line no-new -- registered in `registry`; collect() reads the live counts
    new Gauge({
      name: 'sessiongate_open_connections',
      help: 'Open long-lived connections (proxied WebSockets, event streams) on this replica',
      labelNames: ['kind'],
      registers,
      collect () { for (const [kind, n] of Object.entries(connections())) this.set({ kind }, n) }
    })
  }
  const sessionCheckCounts: Record<string, number> = {}
  const storeErrors = new Counter({ name: 'sessiongate_store_errors_total', help: 'Store operations that failed', registers })
  // A store error can pass a route's handler and then the error handler: it is still one failure.
  const countedStoreErrors = new WeakSet<Error>()
  const countStoreError = (err: Error): void => {
    if (countedStoreErrors.has(err)) return
    countedStoreErrors.add(err)
    storeErrors.inc()
  }
  const logins = new Counter({ name: 'sessiongate_logins_total', help: 'Login callbacks by result', labelNames: ['result'], registers })
  for (const result of LOGIN_RESULTS) logins.inc({ result }, 0)
  return {
    registry,
    httpRequests: new Counter({ name: 'sessiongate_http_requests_total', help: 'HTTP requests on the public port', labelNames: ['route', 'method', 'status'], registers }),
    httpDuration: new Histogram({ name: 'sessiongate_http_request_duration_seconds', help: 'HTTP request duration on the public port', labelNames: ['route', 'method', 'status'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    sessionChecks: followLabelled('sessiongate_session_checks_total', 'Session checks by result', 'result', registers, sessionCheckCounts),
    sessionCheckCounts,
    logouts: new Counter({ name: 'sessiongate_logouts_total', help: 'Logouts by channel', labelNames: ['channel'], registers }),
    storeErrors,
    countStoreError,
    propagation: new Histogram({ name: 'sessiongate_revocation_propagation_seconds', help: 'Revocation event publish to applied on this replica', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2], registers }),
    renewals: new Counter({ name: 'sessiongate_renewals_total', help: 'Session renewals from a device credential, by result', labelNames: ['result'], registers }),
    authzDecisions: new Counter({ name: 'sessiongate_authz_decisions_total', help: 'authorize rule decisions by route prefix and result (allowed, denied)', labelNames: ['route', 'result'], registers }),
    bearerChecks: new Counter({ name: 'sessiongate_bearer_checks_total', help: 'Bearer access tokens judged on bearer routes, by result', labelNames: ['result'], registers }),
    ssfEvents: new Counter({ name: 'sessiongate_ssf_events_total', help: 'Shared Signals SETs received, by transmitter, event type (caep.session-revoked, risc.account-disabled, ..., other) and result (applied, ignored, recorded, replay, invalid, unavailable, unauthenticated)', labelNames: ['transmitter', 'type', 'result'], registers }),
    reuseDetections: new Counter({ name: 'sessiongate_device_reuse_detected_total', help: 'Device credentials presented after rotation and grace: the device was revoked', registers }),
    nearCacheHits: followCounter('sessiongate_near_cache_hits_total', 'Session checks answered by the near cache', registers, () => opts.nearCache?.hits ?? 0),
    nearCacheMisses: followCounter('sessiongate_near_cache_misses_total', 'Session checks the near cache sent to the store (bypasses included)', registers, () => opts.nearCache?.misses ?? 0),
    storeDuration: new Histogram({ name: 'sessiongate_store_duration_seconds', help: 'Store round trips by operation', labelNames: ['op'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers }),
    idpDuration: new Histogram({ name: 'sessiongate_idp_duration_seconds', help: 'HTTP calls to the IdP by operation', labelNames: ['op'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
    upstreamDuration: new Histogram({ name: 'sessiongate_upstream_duration_seconds', help: 'Upstream time to response headers (or failure) by route prefix', labelNames: ['route'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers }),
    logins
  }
}

/**
 * The session service's counters over these metrics. Session checks (every request) add to plain
 * numbers; the rest (renewals, logouts) are rare and go to prom-client directly.
 */
export function sessionCounters (m: Metrics): SessionCounters {
  const checks = m.sessionCheckCounts
  return {
    check (result) { checks[result] = (checks[result] ?? 0) + 1 },
    renewal (result) { m.renewals.inc({ result }) },
    storeError (err) { m.countStoreError(err) },
    reuse () { m.reuseDetections.inc() },
    logout (channel) { m.logouts.inc({ channel }) }
  }
}
