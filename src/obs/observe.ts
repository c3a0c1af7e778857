/**
 * Latency histograms and spans around the gateway's three dependencies: the store, the IdP and the
 * upstreams, plus the gate. Built once per gateway; every label child is bound once (per op, per route),
 * and with tracing off no span work happens at all.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type * as oc from 'openid-client'
import type { Metrics } from '../http/metrics.js'
import type { Gate } from '../http/gate.js'
import type { Store } from '../store/store.js'
import type { TraceSpan, Tracing } from './tracing.js'

/** A bound histogram child. */
interface Observe { observe: (seconds: number) => void }

/** openid-client's fetch hook (`customFetch`). */
export type IdpFetch = oc.CustomFetch
/** Wraps the fetch the OIDC client uses; `metadata` is the discovered metadata once known (names the calls). */
export type IdpFetchWrap = (next: IdpFetch, metadata: () => oc.ServerMetadata | undefined) => IdpFetch

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() when the proxied request went upstream; 0 when none is pending. */
    sgUpstreamAt: number
    sgUpstreamSpan: TraceSpan | null
  }
}

/** The part of a proxied request the upstream hooks use. */
type Proxied = Pick<FastifyRequest, 'id' | 'method' | 'sgUpstreamAt' | 'sgUpstreamSpan'>

/** What proxy.ts calls on each proxied request of one route; each returns the headers it was given, amended. */
export interface UpstreamHooks {
  /** Upstream request headers are final: start timing, forward X-Request-ID and the trace context. */
  sent <H extends object> (request: Proxied, headers: H): H
  /** Upstream response headers arrived: stop timing; the client gets the gateway's X-Request-ID. */
  answered <H extends object> (request: Proxied | undefined, headers: H): H
  /** A WebSocket upgrade's upstream headers: X-Request-ID and the trace context only. */
  upgrade <H extends object> (request: Proxied, headers: H): H
}

type Headers = Record<string, unknown>

export interface Observability {
  readonly tracing: Tracing | undefined
  /** Times one store operation (RedisStore's `observe` option; the memory store via `instrumentStore`). */
  storeOp: <T>(op: string, run: () => Promise<T>) => Promise<T>
  /** For openid-client: times each IdP call and sends the trace context along. */
  idpFetch: IdpFetchWrap
  upstream (prefix: string): UpstreamHooks
  /** The gate, its `resolve` in a span when tracing. */
  gate (gate: Gate): Gate
  /** Registers the per-request state; call once on the public instance before routes. */
  instrument (app: FastifyInstance): void
  /** onResponse: ends the upstream span with the final status; an upstream that never answered (refused, timed out) is timed up to now. */
  settle (request: FastifyRequest, route: string, status: number): void
}

/** Names an IdP call from its request (the token endpoint by grant type, the rest by endpoint). */
export function idpOp (url: string, options: { body?: unknown }, md: oc.ServerMetadata | undefined): string {
  const body = options.body
  const params = body instanceof URLSearchParams ? body : typeof body === 'string' ? new URLSearchParams(body) : undefined
  const grant = params?.get('grant_type')
  if (grant === 'authorization_code') return 'code_exchange'
  if (grant === 'refresh_token') return 'refresh'
  if (grant != null) return 'token'
  if (md !== undefined) {
    if (url === md.userinfo_endpoint) return 'userinfo'
    if (url === md.revocation_endpoint) return 'revocation'
    if (url === md.jwks_uri) return 'jwks'
    if (url === md.pushed_authorization_request_endpoint) return 'par'
    if (url === md.introspection_endpoint) return 'introspection'
  }
  if (url.includes('/.well-known/')) return 'discovery'
  return 'other'
}

/** Bound histogram children by label value, created on first use (values come from code, never from requests). */
function children (labels: (value: string) => Observe): (value: string) => Observe {
  const bound = new Map<string, Observe>()
  return (value) => {
    let h = bound.get(value)
    if (h === undefined) bound.set(value, (h = labels(value)))
    return h
  }
}

export function createObservability (metrics: Metrics, tracing: Tracing | undefined, storeKind: string): Observability {
  const storeTimer = children((op) => metrics.storeDuration.labels(op))
  const idpTimer = children((op) => metrics.idpDuration.labels(op))
  const upstreamTimer = children((route) => metrics.upstreamDuration.labels(route))

  /** Ends the upstream span with the status the client got (reply-from hands the status over later than the headers). */
  function endUpstreamSpan (request: FastifyRequest, status: number | undefined): void {
    const span = request.sgUpstreamSpan
    if (span === null) return
    request.sgUpstreamSpan = null
    if (status !== undefined) span.set('http.response.status_code', status)
    span.end(undefined, status === undefined || status >= 500)
  }

  return {
    tracing,
    async storeOp (op, run) {
      const span = tracing?.child(`store ${op}`, 'client', { 'db.system.name': storeKind, 'db.operation.name': op })
      return await measured(span, storeTimer(op), run, () => span?.end())
    },
    idpFetch: (next, metadata) => async (url, options) => {
      const op = idpOp(url, options, metadata())
      const span = tracing?.child(`idp ${op}`, 'client', { 'http.request.method': options.method, 'server.address': new URL(url).hostname }, true)
      span?.inject(options.headers)
      return await measured(span, idpTimer(op), async () => await next(url, options), (res) => {
        span?.set('http.response.status_code', res.status)
        span?.end(undefined, res.status >= 500)
      })
    },
    upstream (prefix) {
      const timer = upstreamTimer(prefix)
      return {
        sent (request, headers) {
          (headers as Headers)['x-request-id'] = request.id
          request.sgUpstreamAt = performance.now()
          if (tracing !== undefined) {
            const span = tracing.child(`upstream ${request.method} ${prefix}`, 'client', { 'http.request.method': request.method, 'http.route': prefix })
            if (span !== undefined) {
              span.inject(headers as Headers)
              request.sgUpstreamSpan = span
            }
          }
          return headers
        },
        answered (request, headers) {
          if (request === undefined) return headers
          if (request.sgUpstreamAt !== 0) {
            timer.observe((performance.now() - request.sgUpstreamAt) / 1000)
            request.sgUpstreamAt = 0
          }
          (headers as Headers)['x-request-id'] = request.id
          return headers
        },
        upgrade (request, headers) {
          (headers as Headers)['x-request-id'] = request.id
          tracing?.inject(headers as Headers)
          return headers
        }
      }
    },
    gate (gate) {
      if (tracing === undefined) return gate
      return { ...gate, resolve: async (request, reply, opts) => await tracing.wrap('gate', {}, async () => await gate.resolve(request, reply, opts)) }
    },
    instrument (app) {
      app.decorateRequest('sgUpstreamAt', 0)
      app.decorateRequest('sgUpstreamSpan', null)
    },
    settle (request, route, status) {
      if (request.sgUpstreamAt !== 0) {
        // never answered: refused, reset or timed out
        upstreamTimer(route).observe((performance.now() - request.sgUpstreamAt) / 1000)
        request.sgUpstreamAt = 0
      }
      if (request.sgUpstreamSpan !== null) endUpstreamSpan(request, status)
    }
  }
}

/** Store methods that reach the data (the memory store has no single choke point like RedisStore's call()). */
const STORE_OPS = [
  'epoch', 'check', 'createSession', 'getSession', 'findOwner', 'listSessions', 'updateSession', 'rotateCredential', 'renewDevice',
  'revokeSessions', 'revokeUser', 'sessionsForIdpSession', 'claimOnce', 'wasClaimed', 'tryLock', 'ping',
  'usersForEmail', 'lease', 'releaseLease', 'putNote', 'getNote'
] as const satisfies ReadonlyArray<keyof Store>

/** Times the memory store's operations: each method is replaced on the instance (the class stays as is). */
export function instrumentStore (store: Store, obs: Pick<Observability, 'storeOp'>): void {
  const target = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  for (const op of STORE_OPS) {
    const original = target[op]!.bind(store)
    target[op] = async (...args) => await obs.storeOp(op, async () => await original(...args))
  }
}

/** Runs `run`, ends `span` (with the error, if it failed) and observes the duration in seconds either way. */
async function measured<T> (span: TraceSpan | undefined, timer: { observe: (seconds: number) => void }, run: () => Promise<T>, done: (result: T) => void): Promise<T> {
  const start = performance.now()
  try {
    const result = await run()
    done(result)
    return result
  } catch (err) {
    span?.end(err)
    throw err
  } finally {
    timer.observe((performance.now() - start) / 1000)
  }
}
