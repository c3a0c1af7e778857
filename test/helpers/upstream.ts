/**
 * A real HTTP (and WebSocket) upstream for tests: records every request it gets and answers with them
 * as JSON, so a test can assert on exactly what the gateway forwarded.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'

export interface SeenRequest { method: string, url: string, headers: IncomingHttpHeaders, body: string }

export interface Upstream {
  url: string
  port: number
  seen: SeenRequest[]
  /** Headers of WebSocket upgrades it accepted. */
  wsSeen: IncomingHttpHeaders[]
  sockets: Set<WebSocket>
  /** Extra response headers for the next responses (e.g. a Set-Cookie). */
  respondWith: Record<string, string | string[]>
  close (): Promise<void>
}

export async function startUpstream (): Promise<Upstream> {
  const seen: SeenRequest[] = []
  const wsSeen: IncomingHttpHeaders[] = []
  const sockets = new Set<WebSocket>()
  const up: Partial<Upstream> = { seen, wsSeen, sockets, respondWith: {} }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() }
      seen.push(entry)
      for (const [k, v] of Object.entries(up.respondWith ?? {})) res.setHeader(k, v)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(entry))
    })
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    wsSeen.push(req.headers)
    sockets.add(ws)
    ws.on('close', () => sockets.delete(ws))
    ws.on('message', (m) => ws.send(`echo:${m.toString()}`))
    ws.send(JSON.stringify({ hello: req.headers['x-forwarded-user'] ?? null }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  Object.assign(up, {
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      for (const ws of sockets) ws.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
  return up as Upstream
}

/** An upstream that answers `slow ok` after `ms`: requests stay in flight (drain and shutdown tests). */
export async function startSlowUpstream (t: { teardown: (fn: () => void) => void }, ms: number): Promise<{ url: string, port: number, arrived: () => number }> {
  let arrived = 0
  const slow = createServer((_req, res) => { arrived++; setTimeout(() => res.end('slow ok'), ms) })
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { slow.closeAllConnections(); slow.close() })
  const port = (slow.address() as { port: number }).port
  return { url: `http://127.0.0.1:${port}`, port, arrived: () => arrived }
}
