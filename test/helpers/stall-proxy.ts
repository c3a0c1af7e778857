/**
 * A TCP proxy in front of a test's redis-server that makes connections misbehave without closing them:
 * stall every connection (a hung link: bytes buffered both ways, sockets left open), hold what a client
 * sends once it sends a given command (a SUBSCRIBE answered late, or never), reset chosen connections.
 * Bytes are only ever delayed, never dropped or reordered, unless the connection is reset.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

interface Pipe {
  client: Socket
  server: Socket
  /** The last 4 KiB the client sent (what `reset` and `count` match). */
  sent: string
  /** Client -> server data waiting (held, or stalled). */
  up: Buffer[]
  /** Server -> client data waiting (stalled). */
  down: Buffer[]
  /** Held from a matching command on (until the rule's time passes or release()). */
  held: boolean
  /** Stalled both ways until resume(). */
  stalled: boolean
}

interface HoldRule { pattern: RegExp, ms: number | undefined, once: boolean }

export interface StallProxy {
  port: number
  /** redis://127.0.0.1:<port> */
  url: string
  /**
   * Stalls every connection, open or new, except those whose client already sent something matching
   * `except`: nothing is forwarded either way until resume().
   */
  stall: (except?: RegExp) => void
  resume: () => void
  /**
   * From the first client chunk that matches `pattern` on a connection, holds what that client sends
   * (the matching chunk included) for `ms`, or until release() when `ms` is undefined. `once`: only the
   * next connection that matches is held.
   */
  hold: (pattern: RegExp, opts?: { ms?: number, once?: boolean }) => void
  /** Drops every hold rule and forwards what was held. */
  release: () => void
  /** Destroys the connections whose client ever sent something matching `pattern`; returns how many. */
  reset: (pattern: RegExp) => number
  /** Open connections whose client ever sent something matching `pattern`. */
  count: (pattern: RegExp) => number
  close: () => Promise<void>
}

export async function startStallProxy (target: { host?: string, port: number }): Promise<StallProxy> {
  const pipes = new Set<Pipe>()
  let rules: HoldRule[] = []
  let stallNew = false

  const flush = (p: Pipe): void => {
    if (p.stalled) return
    if (!p.held) for (const b of p.up.splice(0)) p.server.write(b)
    for (const b of p.down.splice(0)) p.client.write(b)
  }

  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host ?? '127.0.0.1')
    const p: Pipe = { client, server: upstream, sent: '', up: [], down: [], held: false, stalled: stallNew }
    pipes.add(p)
    const end = (): void => {
      pipes.delete(p)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1')
      p.sent = (p.sent + text).slice(-4096)
      if (!p.held) {
        const rule = rules.find((r) => r.pattern.test(text))
        if (rule !== undefined) {
          p.held = true
          if (rule.once) rules = rules.filter((r) => r !== rule)
          if (rule.ms !== undefined) {
            setTimeout(() => {
              p.held = false
              flush(p)
            }, rule.ms)
          }
        }
      }
      p.up.push(chunk)
      flush(p)
    })
    upstream.on('data', (chunk: Buffer) => {
      p.down.push(chunk)
      flush(p)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  const matching = (pattern: RegExp): Pipe[] => [...pipes].filter((p) => pattern.test(p.sent))

  return {
    port: address.port,
    url: `redis://127.0.0.1:${address.port}`,
    stall: (except) => {
      stallNew = true
      for (const p of pipes) if (except === undefined || !except.test(p.sent)) p.stalled = true
    },
    resume: () => {
      stallNew = false
      for (const p of pipes) {
        p.stalled = false
        flush(p)
      }
    },
    hold: (pattern, opts = {}) => { rules.push({ pattern, ms: opts.ms, once: opts.once ?? false }) },
    release: () => {
      rules = []
      for (const p of pipes) {
        p.held = false
        flush(p)
      }
    },
    reset: (pattern) => {
      const doomed = matching(pattern)
      for (const p of doomed) {
        pipes.delete(p)
        p.client.resetAndDestroy()
        p.server.destroy()
      }
      return doomed.length
    },
    count: (pattern) => matching(pattern).length,
    close: async () => {
      for (const p of pipes) {
        p.client.destroy()
        p.server.destroy()
      }
      pipes.clear()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
