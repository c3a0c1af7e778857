/**
 * Tracing on the OpenTelemetry SDK; imported (dynamically) only when `tracing` is configured.
 *
 * Nothing global is registered (no global tracer provider, context manager or propagator): the gateway
 * keeps the current span's context in its own AsyncLocalStorage and parents every span explicitly, so
 * several gateways in one process (the tests) or a host application's own OpenTelemetry set-up never mix.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Context, type Span } from '@opentelemetry/api'
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import {
  ATTR_CLIENT_ADDRESS, ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION, ATTR_URL_PATH
} from '@opentelemetry/semantic-conventions'
import type { FastifyRequest } from 'fastify'
import type { Config } from '../config/types.js'
import type { Attrs, TraceSpan, Tracing, TracingOptions } from './tracing.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's trace context while its server span is open (tracing on only). */
    sgTrace: unknown
  }
}

const EXPORT_WARN_EVERY_MS = 60_000

/** Why a span failed, without a stack trace: a stable code when the error has one. */
function errorType (err: unknown): string {
  const e = err as { code?: unknown, name?: unknown }
  return typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'error'
}

/** Reports failed exports to the log (at most once a minute): a wrong collector URL is otherwise silent. */
function watched (exporter: SpanExporter, warn: (msg: string, reason: string) => void): SpanExporter {
  let last = 0
  return {
    export (spans: ReadableSpan[], done: (result: ExportResult) => void) {
      exporter.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS && Date.now() - last >= EXPORT_WARN_EVERY_MS) {
          last = Date.now()
          warn('trace export failed', result.error?.message ?? 'unknown')
        }
        done(result)
      })
    },
    shutdown: async () => { await exporter.shutdown() },
    forceFlush: async () => { await exporter.forceFlush?.() }
  }
}

export function createTracing (cfg: NonNullable<Config['tracing']>, opts: TracingOptions): Tracing {
  const exporter = (opts.exporter as SpanExporter | undefined) ?? new OTLPTraceExporter({ url: cfg.otlpEndpoint })
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: cfg.serviceName, ...(opts.version !== undefined ? { [ATTR_SERVICE_VERSION]: opts.version } : {}) }),
    // A sampled (or dropped) caller's decision is kept; new traces are sampled at the configured ratio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(watched(exporter, (msg, reason) => opts.log?.warn({ reason }, msg)))]
  })
  const tracer = provider.getTracer('sessiongate', opts.version)
  const current = new AsyncLocalStorage<Context>()
  const propagator = new W3CTraceContextPropagator()

  function handle (span: Span, ctx: Context): TraceSpan {
    return {
      set: (key, value) => { span.setAttribute(key, value) },
      end (error, failed) {
        if (error !== undefined) {
          span.setAttribute(ATTR_ERROR_TYPE, errorType(error))
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
        } else if (failed === true) span.setStatus({ code: SpanStatusCode.ERROR })
        span.end()
      },
      inject: (headers) => { propagator.inject(ctx, headers, defaultTextMapSetter) }
    }
  }

  function endServerSpan (request: FastifyRequest, status: number | undefined): void {
    const ctx = request.sgTrace as Context | null
    if (ctx === null) return
    request.sgTrace = null
    const span = trace.getSpan(ctx)
    if (span === undefined) return
    if (status !== undefined) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status)
    else span.setAttribute(ATTR_ERROR_TYPE, 'aborted')
    if (status === undefined || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
    span.end()
  }

  return {
    instrument (app, { label, trustParent }) {
      app.decorateRequest('sgTrace', null)
      app.addHook('onRequest', (request, _reply, done) => {
        const parent = trustParent ? propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter) : ROOT_CONTEXT
        const route = label(request)
        const span = tracer.startSpan(`${request.method} ${route}`, {
          kind: SpanKind.SERVER,
          attributes: {
            [ATTR_HTTP_REQUEST_METHOD]: request.method,
            [ATTR_HTTP_ROUTE]: route,
            // the path only: a query may carry an authorization code
            [ATTR_URL_PATH]: request.url.split('?', 1)[0]!,
            [ATTR_CLIENT_ADDRESS]: request.ip,
            'sessiongate.request_id': request.id
          }
        }, parent)
        const ctx = trace.setSpan(parent, span)
        request.sgTrace = ctx
        current.run(ctx, done)
      })
      // A request body is read in the socket's async context, not the request's: enter it again.
      app.addHook('preHandler', (request, _reply, done) => {
        const ctx = request.sgTrace as Context | null
        if (ctx === null) done()
        else current.run(ctx, done)
      })
      app.addHook('onResponse', (request, reply, done) => { endServerSpan(request, reply.statusCode); done() })
      app.addHook('onRequestAbort', (request, done) => { endServerSpan(request, undefined); done() })
    },
    child (name, kind, attrs, root = false) {
      const parent = current.getStore() ?? (root ? ROOT_CONTEXT : undefined)
      if (parent === undefined) return undefined
      const span = tracer.startSpan(name, { kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL, ...(attrs !== undefined ? { attributes: attrs } : {}) }, parent)
      return handle(span, trace.setSpan(parent, span))
    },
    inject (headers) {
      const ctx = current.getStore()
      if (ctx !== undefined) propagator.inject(ctx, headers, defaultTextMapSetter)
    },
    async wrap<T> (name: string, attrs: Attrs, fn: () => Promise<T>): Promise<T> {
      const parent = current.getStore()
      if (parent === undefined) return await fn()
      const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes: attrs }, parent)
      const h = handle(span, trace.setSpan(parent, span))
      return await current.run(trace.setSpan(parent, span), async () => {
        try {
          const result = await fn()
          h.end()
          return result
        } catch (err) {
          h.end(err)
          throw err
        }
      })
    },
    async shutdown () { await provider.shutdown() }
  }
}
