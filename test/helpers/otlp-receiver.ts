/**
 * An in-process OTLP/HTTP trace receiver (what an OpenTelemetry Collector's `otlphttp` receiver does for
 * JSON): accepts POST /v1/traces and keeps every span, flattened, for a test to assert on.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

export interface ReceivedSpan {
  traceId: string
  spanId: string
  parentSpanId: string
  name: string
  /** OTLP span kind: 1 internal, 2 server, 3 client. */
  kind: number
  attributes: Record<string, string | number | boolean>
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: number
  /** service.name of the resource that sent it. */
  service: string
}

export interface OtlpReceiver {
  /** Base URL, as `tracing.otlpEndpoint` takes it. */
  url: string
  spans: ReceivedSpan[]
  /** Requests that were not a valid OTLP/JSON export. */
  rejected: string[]
  /** Resolves once `pred` holds for the spans received so far (checked on every export), or rejects after `ms`. */
  waitFor (pred: (spans: ReceivedSpan[]) => boolean, ms?: number): Promise<ReceivedSpan[]>
  close (): Promise<void>
}

interface OtlpValue { stringValue?: string, intValue?: string | number, boolValue?: boolean, doubleValue?: number }
interface OtlpAttr { key: string, value: OtlpValue }

function attrs (list: OtlpAttr[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {}
  for (const { key, value } of list ?? []) {
    out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.boolValue ?? value.doubleValue ?? ''
  }
  return out
}

export async function startOtlpReceiver (): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const rejected: string[] = []
  const waiters = new Set<() => void>()
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let body = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        rejected.push(`${req.method ?? ''} ${req.url ?? ''} ${String(req.headers['content-type'])}`)
        res.writeHead(404).end()
        return
      }
      const doc = JSON.parse(body.toString()) as { resourceSpans?: Array<{ resource?: { attributes?: OtlpAttr[] }, scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }> }
      for (const rs of doc.resourceSpans ?? []) {
        const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '')
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: String(s.traceId),
              spanId: String(s.spanId),
              parentSpanId: String(s.parentSpanId ?? ''),
              name: String(s.name),
              kind: Number(s.kind),
              attributes: attrs(s.attributes as OtlpAttr[]),
              status: Number((s.status as { code?: number } | undefined)?.code ?? 0),
              service
            })
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      for (const w of [...waiters]) w()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    rejected,
    async waitFor (pred, ms = 30_000) {
      if (pred(spans)) return spans
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`spans not received within ${ms} ms; got: ${spans.map((s) => s.name).join(', ')}`)) }, ms)
        const check = (): void => {
          if (!pred(spans)) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve(spans)
        }
        waiters.add(check)
      })
    },
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
