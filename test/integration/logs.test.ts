/**
 * README section "Logs": no cookie value, token, code or secret is ever logged. A full login, proxied
 * requests (some with secrets in the query), the session endpoint, a logout, failed callbacks and admin
 * calls run at debug level; then every captured secret is looked for in the captured pino lines.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { unseal } from '../../src/core/sealed-cookie.js'
import { Browser, login } from '../helpers/browser.js'
import { adminCall, RecordingBrowser, sessionOf, setCookieValue } from '../helpers/flow.js'
import { startStack } from '../helpers/stack.js'

const ROUTES = [
  { prefix: '/', upstream: '{upstream}', auth: 'required' },
  { prefix: '/api', upstream: '{upstream}', auth: 'required', forwardAccessToken: true }
]

/** True when `secret`, or a 16-character piece of it (a truncated copy), appears in the logs. */
function leaks (logs: string, secret: string): boolean {
  if (logs.includes(secret)) return true
  for (let i = 0; i + 16 <= secret.length; i += 16) if (logs.includes(secret.slice(i, i + 16))) return true
  return false
}

t.test('no secret reaches the logs', async (t) => {
  const s = await startStack(t, { routes: ROUTES })
  const b = new RecordingBrowser()
  await login(b, s.url, 'alice', { remember: true })
  const secrets: Record<string, string> = {}

  // the login: code and state from the callback URL, the tx cookie's nonce and PKCE verifier
  const cb = new URL(b.callbacks[0]!.url)
  secrets.code = cb.searchParams.get('code')!
  secrets.state = cb.searchParams.get('state')!
  secrets.txCookie = setCookieValue(b.setCookieLog, 'sg-tx')!
  const tx = unseal(s.gateway.ctx.ring, 'login-tx', secrets.txCookie) as { checks: { nonce: string, codeVerifier: string } }
  secrets.nonce = tx.checks.nonce
  secrets.codeVerifier = tx.checks.codeVerifier
  secrets.sessionCookie = b.cookies(s.url).get('sg')!
  // the device cookie is `<sid>.<credential>`; the sid is logged on purpose, the credential never
  const deviceCookie = b.cookies(s.url).get('sg-device')!
  secrets.deviceCredential = deviceCookie.split('.')[1]!

  // proxied requests: the access token as forwarded, then secrets in query strings and headers
  const clientBearer = randomBytes(24).toString('base64url')
  secrets.clientBearer = clientBearer
  t.equal((await b.fetch(`${s.url}/api/x`, { headers: { authorization: `Bearer ${clientBearer}` } })).status, 200)
  secrets.accessToken = String(s.upstream.seen.at(-1)!.headers['x-forwarded-access-token'])
  t.ok(secrets.accessToken.length > 20, 'captured the access token')
  t.equal((await b.fetch(`${s.url}/page?access_token=${secrets.accessToken}&code=${secrets.code}`, { headers: { authorization: `Bearer ${clientBearer}` } })).status, 200)

  const me = await sessionOf(b, s.url)
  const record = await s.gateway.ctx.store.getSession(me.sub, me.sid)
  const tokens = unseal(s.gateway.ctx.ring, 'tokens', record!.tokens!) as { idToken: string, refreshToken?: string }
  secrets.idToken = tokens.idToken
  if (tokens.refreshToken !== undefined) secrets.refreshToken = tokens.refreshToken
  secrets.sealedTokens = record!.tokens!

  // failures that log: a replayed callback, a tampered cookie, a forged code
  t.equal((await new Browser().fetch(b.callbacks[0]!.url, { headers: { cookie: b.callbacks[0]!.cookie } })).status, 400)
  t.equal((await new Browser().fetch(`${s.url}/api/y`, { headers: { cookie: `sg=${secrets.sessionCookie.slice(0, -3)}xyz` } })).status, 401)

  // admin: right and wrong token
  const wrongToken = randomBytes(24).toString('base64url')
  secrets.wrongAdminToken = wrongToken
  t.equal((await adminCall(s, 'GET', '/admin/users/alice/sessions')).status, 200)
  t.equal((await adminCall(s, 'GET', '/admin/users/alice/sessions', wrongToken)).status, 401)

  // logout: the IdP redirect carries the ID token as id_token_hint
  const out = await b.fetch(`${s.url}/auth/logout?sid=${me.sid}`)
  t.equal(out.status, 302)
  const hint = new URL(out.headers.get('location')!).searchParams.get('id_token_hint')
  t.equal(hint, secrets.idToken, 'the logout redirect carried the ID token')
  t.equal((await adminCall(s, 'DELETE', `/admin/sessions/${me.sid}`)).status, 404, 'admin call after logout')

  secrets.clientSecret = s.clientSecret
  secrets.adminToken = s.adminToken
  secrets.sessionKey = s.config.session.keys[0]!.toString('base64url')
  secrets.sessionKeyBase64 = s.config.session.keys[0]!.toString('base64')
  secrets.sessionKeyHex = s.config.session.keys[0]!.toString('hex')

  const logs = s.logs.join('')
  t.notOk(logs.includes(deviceCookie), 'the device cookie is not in the logs')
  t.match(logs, deviceCookie.split('.')[0]!, 'control: the sid is')
  t.ok(s.logs.length > 10, `logs were captured (one access line per request) (${s.logs.length} lines)`)
  t.match(logs, /"msg":"login"/, 'the login was logged')
  t.match(logs, /\/auth\/callback\?code=_&state=_/, 'the callback URL was logged, masked')
  t.match(logs, /access_token=_/, 'query values masked')
  for (const [name, value] of Object.entries(secrets)) {
    t.ok(value.length >= 16, `${name} captured`)
    t.notOk(leaks(logs, value), `${name} is not in the logs`)
  }
})
