// The part of autocannon's API the bench uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Options {
      url: string
      connections?: number
      pipelining?: number
      duration?: number
      amount?: number
      method?: string
      headers?: Record<string, string>
      body?: string
      requests?: Array<{ setupRequest?: (req: Record<string, unknown>) => Record<string, unknown> }>
    }
    interface Result {
      errors: number
      timeouts: number
      non2xx: number
      duration: number
      requests: { total: number, average: number }
    }
  }

  function autocannon (opts: autocannon.Options, cb: (err: Error | null, result: autocannon.Result) => void): EventEmitter
  export default autocannon
}
