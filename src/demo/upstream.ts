/**
 * The demo upstream: an unmodified "legacy app" that trusts the gateway's identity headers. It shows
 * the headers it received and a live WebSocket clock (which the gateway cuts when the session is revoked).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { escapeHtml, page } from '../http/pages.js'

const IDENTITY = ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-preferred-username', 'x-forwarded-groups']

function home (headers: Record<string, string | string[] | undefined>): string {
  const rows = IDENTITY.map((h) => `<tr><th><code>${h}</code></th><td>${escapeHtml(String(headers[h] ?? '—'))}</td></tr>`).join('')
  const user = escapeHtml(String(headers['x-forwarded-preferred-username'] ?? headers['x-forwarded-user'] ?? 'stranger'))
  return page('Demo app', `<h1>Hello, ${user}</h1>
<p class="muted">This page is served by an unmodified upstream app. It knows you only through the headers the gateway sent:</p>
<table>${rows}</table>
<h2>Live clock over a WebSocket</h2>
<p id="clock" class="muted">connecting…</p>
<p><a href="/auth/devices">Your signed-in devices</a> · <a href="/auth/session">Session JSON</a> · <a href="/auth/logout">Sign out</a></p>
<script>
  const el = document.getElementById('clock')
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/clock')
  ws.onmessage = (m) => { el.textContent = m.data; el.className = '' }
  ws.onclose = (e) => { el.textContent = 'disconnected (code ' + e.code + (e.reason ? ': ' + e.reason : '') + ')'; el.className = 'muted' }
</script>`)
}

export interface RunningUpstream { url: string, port: number, close (): Promise<void> }

/** Starts the demo app on `port` (0: any free port). */
export async function startDemoUpstream (port = 8082, host = '127.0.0.1'): Promise<RunningUpstream> {
  const server: Server = createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8')
    // The page's inline script is part of the demo; nothing else is loaded.
    res.setHeader('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
    res.end(home(req.headers))
  })
  const wss = new WebSocketServer({ server, path: '/clock' })
  wss.on('connection', (ws, req) => {
    const who = String(req.headers['x-forwarded-preferred-username'] ?? req.headers['x-forwarded-user'] ?? 'anonymous')
    const tick = (): void => ws.send(`${new Date().toISOString()} — connected as ${who}`)
    tick()
    const timer = setInterval(tick, 1000)
    ws.on('close', () => clearInterval(timer))
  })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve) })
  const actual = (server.address() as AddressInfo).port
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    close: async () => {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
