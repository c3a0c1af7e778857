/**
 * RP-initiated logout (local revoke, RFC 7009 refresh-token revocation, end-session redirect),
 * front-channel logout, and the /auth/events stream, against the real IdP.
 */
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'

const api = { accept: 'application/json' }

t.test('RP-initiated logout', async (t) => {
  const s = await startStack(t)
  const b = new Browser()
  await login(b, s.url, 'alice', { remember: true })
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  const rec = await s.gateway.ctx.store.getSession('alice', sid)
  t.ok(rec?.tokens, 'tokens kept server-side, sealed')
  t.notMatch(rec!.tokens!, /eyJ/, 'not in clear: no JWT visible in the stored bundle')

  // A bare GET without the sid (a cross-site <img>, say) logs nobody out
  const bare = await b.fetch(`${s.url}/auth/logout`)
  t.equal(bare.status, 200)
  t.match(bare.body, /<form method="get"/)
  t.equal(bare.headers.get('x-frame-options'), 'DENY')
  t.equal((await b.fetch(`${s.url}/api/x`, { headers: api })).status, 200, 'still signed in')
  // POST without X-CSRF is refused
  t.equal((await b.fetch(`${s.url}/auth/logout`, { method: 'POST' })).status, 403)

  const out = await b.fetch(`${s.url}/auth/logout?sid=${sid}`)
  t.equal(out.status, 302)
  const loc = new URL(out.headers.get('location')!)
  t.equal(`${loc.origin}${loc.pathname}`, `${s.idp.issuer}/session/end`, 'to the IdP end-session endpoint')
  t.equal(loc.searchParams.get('post_logout_redirect_uri'), `${s.url}/`)
  t.ok(loc.searchParams.get('id_token_hint'), 'with id_token_hint')
  t.ok(out.setCookies.some((c) => /^sg=;/.test(c) && /Max-Age=0/.test(c)), 'session cookie cleared')
  t.ok(out.setCookies.some((c) => /^sg-device=;/.test(c)), 'device cookie cleared')
  t.equal(await s.gateway.ctx.store.getSession('alice', sid), null, 'session and device credential revoked')

  // RFC 7009: the refresh token was revoked at the IdP
  const { asTokenBundle } = await import('../../src/core/tokens.js')
  const { unseal } = await import('../../src/core/sealed-cookie.js')
  const bundle = asTokenBundle(unseal(s.gateway.ctx.ring, 'tokens', rec!.tokens!))
  t.ok(bundle.refreshToken, 'the login had a refresh token (offline_access)')
  const introspect = await fetch(`${s.idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`gateway:${s.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: bundle.refreshToken! }).toString()
  })
  t.equal(introspect.status, 400, 'the IdP refuses the revoked refresh token')
  t.equal(((await introspect.json()) as { error: string }).error, 'invalid_grant')

  // Following the redirect ends the IdP session too and comes back to the app
  const back = await b.go(loc.href)
  t.match(back.url, new RegExp(`^${s.idp.issuer}`), 'the IdP asks for confirmation or shows its page')
})

t.test('front-channel logout', async (t) => {
  const s = await startStack(t)
  const b = new Browser()
  await login(b, s.url, 'bob')
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  const idpSid = (await s.gateway.ctx.store.getSession('bob', sid))!.idpSid!

  const wrongIss = await fetch(`${s.url}/auth/frontchannel-logout?iss=${encodeURIComponent('https://evil.example')}&sid=${idpSid}`)
  t.equal(wrongIss.status, 400, 'iss must match')
  t.equal((await b.fetch(`${s.url}/api/x`, { headers: api })).status, 200, 'still signed in')

  const res = await fetch(`${s.url}/auth/frontchannel-logout?iss=${encodeURIComponent(s.idp.issuer)}&sid=${encodeURIComponent(idpSid)}`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store')
  t.match(res.headers.get('content-security-policy') ?? '', new RegExp(`frame-ancestors ${s.idp.issuer}`), 'framable by the IdP only')
  t.equal((await b.fetch(`${s.url}/api/x`, { headers: api })).status, 401, 'signed out')
})

t.test('the event stream says logout when the session is revoked, then closes', async (t) => {
  const s = await startStack(t)
  const b = new Browser()
  await login(b, s.url, 'carol')
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  const res = await fetch(`${s.url}/auth/events`, { headers: { cookie: b.cookieHeader(s.url) } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type') ?? '', /text\/event-stream/)
  const reader = res.body!.getReader()
  let text = ''
  const readAll = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      text += Buffer.from(value).toString()
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  const del = await fetch(`${s.adminUrl}/admin/sessions/${sid}`, { method: 'DELETE', headers: { authorization: `Bearer ${s.adminToken}` } })
  t.equal(del.status, 204)
  await readAll
  t.ok(Date.now() - started < 1000, 'closed within a second')
  t.match(text, /event: session/)
  t.match(text, /event: logout/, 'said logout before closing')
  const unauth = await fetch(`${s.url}/auth/events`)
  t.equal(unauth.status, 401)
  const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text()
  t.match(metrics, /sessiongate_revocation_propagation_seconds_count \d+/)
  t.match(metrics, /sessiongate_logouts_total\{channel="admin"\} 1/)
})
