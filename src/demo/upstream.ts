/**
 * The demo upstream: an unmodified "legacy app" that trusts the gateway's identity headers. It shows the
 * headers it received, the session's expiry and devices, a live WebSocket clock (which the gateway cuts
 * when the session is revoked), and buttons for the three ways out: here, everywhere, and at the IdP.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { SignJWT, importJWK, type JWK } from 'jose'
import { WebSocketServer } from 'ws'
import { escapeHtml, page } from '../http/pages.js'

const IDENTITY = ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-preferred-username', 'x-forwarded-groups']

export interface DemoUpstreamOptions {
  port?: number
  host?: string
  /** The IdP: its end-session page, and its key to play its part in "log out everywhere". */
  issuer: string
  signingKey: JWK & { kid: string }
  clientId: string
  /** Where the gateway listens (the back-channel logout endpoint). */
  gatewayUrl: string
  authPrefix: string
}

function home (headers: IncomingMessage['headers'], o: DemoUpstreamOptions, notice: string): string {
  const rows = IDENTITY.map((h) => `<tr><th><code>${h}</code></th><td>${escapeHtml(String(headers[h] ?? '—'))}</td></tr>`).join('')
  const user = escapeHtml(String(headers['x-forwarded-preferred-username'] ?? headers['x-forwarded-user'] ?? 'stranger'))
  const a = escapeHtml(o.authPrefix)
  return page('Demo app', `<div id="signedout" role="alert" hidden style="background:#fde8e8;color:#9b1c1c;border-radius:8px;padding:.6rem 1rem;margin-bottom:1rem"><strong>You were signed out.</strong> <a href="/">Sign in again</a></div>
${notice !== '' ? `<p class="tag" role="status">${escapeHtml(notice)}</p>` : ''}
<h1>Hello, <span id="user">${user}</span></h1>
<p class="muted">An unmodified upstream app: it knows you only through the headers the gateway sent.</p>
<table>${rows}</table>
<p class="muted">Session cookie valid until <span id="expires">…</span> (slides while you are active) · remember-me: <span id="remember">…</span></p>
<h2>Live clock over a WebSocket</h2>
<p id="clock" class="muted">connecting…</p>
<h2>Your devices</h2>
<ul id="devices"><li class="muted">loading…</li></ul>
<p><a href="${a}/devices">Manage devices</a></p>
<h2>Sign out</h2>
<p style="display:flex;gap:.5rem;flex-wrap:wrap">
  <a id="logout-here" href="${a}/logout"><button type="button">Log out here</button></a>
  <form method="post" action="/demo/logout-everywhere"><button id="logout-everywhere" type="submit" class="secondary">Log out everywhere (back-channel)</button></form>
  <a id="end-idp" href="${escapeHtml(o.issuer)}/session/end"><button type="button" class="secondary">End my IdP session</button></a>
</p>
<script>
  const $ = (id) => document.getElementById(id)
  fetch('${a}/session').then((r) => r.ok ? r.json() : null).then((s) => {
    if (!s) return
    $('expires').textContent = new Date(s.expiresAt).toLocaleTimeString()
    $('remember').textContent = s.rememberMe ? 'yes' : 'no'
    $('logout-here').href = '${a}/logout?sid=' + encodeURIComponent(s.sid)
  })
  fetch('${a}/sessions').then((r) => r.ok ? r.json() : []).then((list) => {
    $('devices').innerHTML = ''
    for (const d of list) {
      const li = document.createElement('li')
      li.textContent = (d.current ? 'this device — ' : '') + d.userAgent.slice(0, 60) + ' · ' + d.ip + ' · last seen ' + new Date(d.lastSeenAt).toLocaleTimeString()
      $('devices').appendChild(li)
    }
  })
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/clock')
  ws.onmessage = (m) => { $('clock').textContent = m.data; $('clock').className = '' }
  ws.onclose = (e) => { $('clock').textContent = 'clock stopped (WebSocket closed, code ' + e.code + (e.reason ? ': ' + e.reason : '') + ')'; $('clock').className = 'muted' }
  const events = new EventSource('${a}/events')
  events.addEventListener('logout', () => { $('signedout').hidden = false; events.close() })
</script>`)
}

/** Plays the IdP: a sub-only logout token to the gateway's back-channel endpoint ("log out everywhere"). */
async function logoutEverywhere (o: DemoUpstreamOptions, sub: string): Promise<number> {
  const now = Math.floor(Date.now() / 1000)
  const token = await new SignJWT({ sub, jti: randomBytes(12).toString('base64url'), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
    .setProtectedHeader({ alg: 'RS256', kid: o.signingKey.kid, typ: 'logout+jwt' })
    .setIssuer(o.issuer).setAudience(o.clientId).setIssuedAt(now).setExpirationTime(now + 120)
    .sign(await importJWK(o.signingKey, 'RS256'))
  const res = await fetch(`${o.gatewayUrl}${o.authPrefix}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }).toString()
  })
  return res.status
}

export interface RunningUpstream { url: string, port: number, close (): Promise<void> }

/** Starts the demo app on `port` (0: any free port). */
export async function startDemoUpstream (o: DemoUpstreamOptions): Promise<RunningUpstream> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/demo/logout-everywhere') {
      req.resume()
      const sub = req.headers['x-forwarded-user']
      if (typeof sub !== 'string') { res.statusCode = 401; res.end(); return }
      logoutEverywhere(o, sub).then((status) => {
        res.statusCode = 303
        res.setHeader('location', status === 200 ? '/?notice=everywhere' : '/?notice=failed')
        res.end()
      }, () => { res.statusCode = 502; res.end('back-channel call failed') })
      return
    }
    const notice = (req.url ?? '').includes('notice=everywhere') ? 'All your sessions were ended through the back-channel.' : ''
    res.setHeader('content-type', 'text/html; charset=utf-8')
    // The page's inline script is part of the demo; nothing else is loaded.
    res.setHeader('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
    res.end(home(req.headers, o, notice))
  })
  const wss = new WebSocketServer({ server, path: '/clock' })
  wss.on('connection', (ws, req) => {
    const who = String(req.headers['x-forwarded-preferred-username'] ?? req.headers['x-forwarded-user'] ?? 'anonymous')
    const tick = (): void => ws.send(`${new Date().toISOString().slice(11, 19)} UTC — connected as ${who}`)
    tick()
    const timer = setInterval(tick, 1000)
    ws.on('close', () => clearInterval(timer))
  })
  const host = o.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(o.port ?? 8082, host, resolve) })
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
