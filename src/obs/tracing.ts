/**
 * The gateway's view of tracing: a small interface, and the loader that imports the OpenTelemetry SDK
 * only when `tracing` is configured. Nothing here imports OpenTelemetry, so with tracing off no part of
 * the SDK is loaded and every call site skips its span on one `undefined` check.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.js'

export type Attrs = Record<string, string | number | boolean>

/** A started span; `end` once. */
export interface TraceSpan {
  set (key: string, value: string | number | boolean): void
  /** Ends the span; an error (or `failed`) marks it as failed. */
  end (error?: unknown, failed?: boolean): void
  /** Writes this span's W3C `traceparent` (and `tracestate`) into outgoing request headers. */
  inject (headers: Record<string, unknown>): void
}

export interface Tracing {
  /**
   * A server span per request of `app`, whose context every span of that request nests under (across
   * the body read too). `label` names the route (the configured prefix for proxied requests);
   * `trustParent`: continue the caller's `traceparent` (only behind a trusted proxy).
   */
  instrument (app: FastifyInstance, opts: { label: (request: FastifyRequest) => string, trustParent: boolean }): void
  /**
   * A client or internal span under the current request's. Outside a request: a trace of its own with
   * `root` (rare calls worth seeing, such as IdP discovery), else none (no stream of one-span traces
   * from background store traffic).
   */
  child (name: string, kind: 'client' | 'internal', attrs?: Attrs, root?: boolean): TraceSpan | undefined
  /** Writes the current request's trace context into outgoing headers (nothing outside a request). */
  inject (headers: Record<string, unknown>): void
  /** Runs `fn` in a child span and its context, so spans started inside nest under it. */
  wrap<T> (name: string, attrs: Attrs, fn: () => Promise<T>): Promise<T>
  /** Flushes what is buffered and stops exporting. */
  shutdown (): Promise<void>
}

/** Options tests use to inspect spans without a collector. */
export interface TracingOptions {
  /** Export with this instead of OTLP/HTTP (an OpenTelemetry SpanExporter). */
  exporter?: unknown
  /** The gateway's version, as `service.version`. */
  version?: string
  /** Where failed exports are reported (once a minute at most). */
  log?: { warn: (obj: object, msg: string) => void }
}

/** Starts tracing when configured; undefined (and nothing loaded) otherwise. */
export async function startTracing (cfg: Config['tracing'], opts: TracingOptions = {}): Promise<Tracing | undefined> {
  if (cfg === undefined) return undefined
  const { createTracing } = await import('./otel.js')
  return createTracing(cfg, opts)
}
