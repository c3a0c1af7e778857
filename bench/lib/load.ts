/**
 * Load generation: autocannon for fixed requests, and a small keep-alive loop for requests that depend
 * on the previous response (device credential rotation). Latencies are kept with sub-millisecond
 * precision (autocannon's own histogram has 1 ms resolution, too coarse for a "p99 + 1 ms" target).
 */
import http from 'node:http'
import autocannon from 'autocannon'

export interface Sample {
  /** 2xx responses per second. */
  rps: number
  /** Latencies of 2xx responses, ms. */
  latencies: Float64Array
  ok: number
  non2xx: number
  errors: number
  seconds: number
}

export interface CannonOptions {
  url: string
  connections: number
  /** seconds; ignored when `amount` is set */
  duration?: number
  /** Stop after this many requests. */
  amount?: number
  method?: 'GET' | 'POST' | 'DELETE'
  headers?: Record<string, string>
  /** A fresh body for every request (e.g. one logout token each). */
  bodies?: string[]
  /** A fresh header set for every request, picked round robin. */
  headerSets?: Array<Record<string, string>>
}

/** Collects numbers into a growing Float64Array. */
export class Recorder {
  private buf = new Float64Array(1 << 16)
  private n = 0
  push (v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2)
      next.set(this.buf)
      this.buf = next
    }
    this.buf[this.n++] = v
  }

  get size (): number { return this.n }
  values (): Float64Array { return this.buf.slice(0, this.n) }
}

/** One autocannon run; non-2xx answers and socket errors are counted, not timed. */
export async function cannon (o: CannonOptions): Promise<Sample> {
  const rec = new Recorder()
  let non2xx = 0
  let next = 0
  const requests = o.bodies !== undefined || o.headerSets !== undefined
    ? [{
        setupRequest: (req: Record<string, unknown>) => {
          const i = next++
          if (o.bodies !== undefined) req.body = o.bodies[i % o.bodies.length]
          if (o.headerSets !== undefined) req.headers = { ...o.headers, ...o.headerSets[i % o.headerSets.length] }
          return req
        }
      }]
    : undefined
  const started = performance.now()
  let lastResponse = started
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url: o.url,
      connections: o.connections,
      pipelining: 1,
      ...(o.amount !== undefined ? { amount: o.amount } : { duration: o.duration ?? 5 }),
      method: o.method ?? 'GET',
      headers: o.headers ?? {},
      ...(requests !== undefined ? { requests } : {})
    }, (err, res) => { if (err != null) reject(err); else resolve(res) })
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      lastResponse = performance.now()
      if (status >= 200 && status < 300) rec.push(ms)
      else non2xx++
    })
  })
  // autocannon reports 'done' on its next 1 s sampling tick: with `amount`, time ends at the last response.
  const seconds = ((o.amount !== undefined ? lastResponse : performance.now()) - started) / 1000
  return { rps: rec.size / seconds, latencies: rec.values(), ok: rec.size, non2xx, errors: result.errors + result.timeouts, seconds }
}

export interface LoopResponse { status: number, headers: http.IncomingHttpHeaders }

/**
 * `connections` sequential request loops over keep-alive sockets for `durationMs`. Each loop asks
 * `request(worker)` for its next request and reports the response to `onResponse(worker, res)`.
 */
export async function loop (o: {
  url: string
  connections: number
  durationMs: number
  request: (worker: number) => { method?: string, path: string, headers: Record<string, string> }
  onResponse: (worker: number, res: LoopResponse) => boolean
}): Promise<Sample> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections })
  const base = new URL(o.url)
  const rec = new Recorder()
  let non2xx = 0
  let errors = 0
  const started = performance.now()
  const end = started + o.durationMs
  const one = async (worker: number): Promise<void> => {
    const r = o.request(worker)
    const t0 = performance.now()
    await new Promise<void>((resolve) => {
      const req = http.request({ host: base.hostname, port: base.port, method: r.method ?? 'GET', path: r.path, headers: r.headers, agent }, (res) => {
        res.resume()
        res.on('end', () => {
          const ok = o.onResponse(worker, { status: res.statusCode ?? 0, headers: res.headers })
          if (ok) rec.push(performance.now() - t0)
          else non2xx++
          resolve()
        })
      })
      req.on('error', () => { errors++; resolve() })
      req.end()
    })
  }
  await Promise.all(Array.from({ length: o.connections }, async (_, worker) => {
    while (performance.now() < end) await one(worker)
  }))
  const seconds = (performance.now() - started) / 1000
  agent.destroy()
  return { rps: rec.size / seconds, latencies: rec.values(), ok: rec.size, non2xx, errors, seconds }
}

/** The q-quantile (0..1) of unsorted values; NaN when empty. */
export function quantile (values: Float64Array, q: number): number {
  if (values.length === 0) return NaN
  const sorted = values.slice().sort()
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

/** The median of a few numbers (the mean of the middle two for an even count). */
export function median (xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/**
 * Rounds of one scenario: the median round's throughput and percentiles, so one round disturbed by
 * something else on the machine does not move the result; the mean is kept for reference.
 */
export function combine (samples: Sample[]): { rps: number, meanRps: number, p50: number, p99: number, ok: number, non2xx: number, errors: number, roundsRps: number[] } {
  return {
    rps: median(samples.map((s) => s.rps)),
    meanRps: samples.reduce((a, s) => a + s.rps, 0) / samples.length,
    p50: median(samples.map((s) => quantile(s.latencies, 0.5))),
    p99: median(samples.map((s) => quantile(s.latencies, 0.99))),
    ok: samples.reduce((a, s) => a + s.ok, 0),
    non2xx: samples.reduce((a, s) => a + s.non2xx, 0),
    errors: samples.reduce((a, s) => a + s.errors, 0),
    roundsRps: samples.map((s) => s.rps)
  }
}
