/**
 * Edge rules: CSRF on public routes, methods on the back-channel endpoint, and key rotation that
 * re-seals stored tokens so an old key can retire.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { buildGateway } from '../../src/app.js'
import { createLogger } from '../../src/log.js'
import { KeyRing } from '../../src/core/sealed-cookie.js'
import { freePort } from '../helpers/ports.js'

t.test('csrf applies on an auth: none route too', async (t) => {
  const s = await startStack(t, { routes: [{ prefix: '/', upstream: '{upstream}', auth: 'none', csrf: true }] })
  t.equal((await fetch(`${s.url}/form`, { method: 'POST', body: 'x' })).status, 403)
  t.equal((await fetch(`${s.url}/form`, { method: 'POST', body: 'x', headers: { 'x-csrf': '1' } })).status, 200)
  t.equal((await fetch(`${s.url}/form`)).status, 200, 'safe methods need nothing')
})

t.test('back-channel endpoint: every method but POST is 405', async (t) => {
  const s = await startStack(t)
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const res = await fetch(`${s.url}/auth/backchannel-logout`, { method })
    t.equal(res.status, 405, method)
    t.equal(res.headers.get('allow'), 'POST')
  }
})

t.test('after a key rotation, renewal re-seals the stored tokens with the new key', async (t) => {
  const s = await startStack(t, {
    config: { session: { ttl: '2s', absoluteTtl: '1m', keys: ['${SG_SESSION_KEY}'] }, rememberMe: { ttl: '1h' } }
  })
  const b = new Browser()
  await login(b, s.url, 'alice', { remember: true })
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  const oldKid = s.gateway.ctx.ring.currentKid
  t.match((await s.gateway.ctx.store.getSession('alice', sid))!.tokens!, new RegExp(`^v1\\.${oldKid}\\.`))

  // A second replica with a new key prepended shares the store: the rotation as an operator does it
  const newKey = randomBytes(32)
  const config = { ...s.config, session: { ...s.config.session, keys: [newKey, ...s.config.session.keys] } }
  const [p, a] = [await freePort(), await freePort()]
  const rotated = await buildGateway(config, { logger: createLogger('silent'), processMetrics: false, store: s.gateway.ctx.store })
  await rotated.listen({ public: p, admin: a })
  t.teardown(async () => { rotated.ctx.readiness.stop(); await Promise.all([rotated.public.close(), rotated.admin.close()]) })
  const newKid = new KeyRing([newKey]).currentKid

  const live = await b.fetch(`http://127.0.0.1:${p}/api/x`, { headers: { accept: 'application/json', cookie: b.cookieHeader(s.url) } })
  t.equal(live.status, 200, 'a cookie sealed with the old key still opens')
  await new Promise((resolve) => setTimeout(resolve, 2200))
  const renewed = await b.fetch(`http://127.0.0.1:${p}/api/y`, { headers: { accept: 'application/json', cookie: b.cookieHeader(s.url) } })
  t.equal(renewed.status, 200, 'renewed from the device credential')
  t.match((await s.gateway.ctx.store.getSession('alice', sid))!.tokens!, new RegExp(`^v1\\.${newKid}\\.`), 'tokens re-sealed with the new key')
  const sg = renewed.setCookies.find((c) => c.startsWith('sg='))!
  t.match(sg, new RegExp(`^sg=v1\\.${newKid}\\.`), 'the new session cookie uses the new key')
})

t.test('rememberMe.ask: /auth/login without a choice asks, keeping returnTo safe', async (t) => {
  const s = await startStack(t, { config: { rememberMe: { ask: true } } })
  const res = await fetch(`${s.url}/auth/login?returnTo=${encodeURIComponent('/reports/q3?x=1')}`, { redirect: 'manual' })
  t.equal(res.status, 200)
  const html = await res.text()
  t.match(html, /href="\/auth\/login\?remember=1&amp;returnTo=%2Freports%2Fq3%3Fx%3D1"/)
  t.match(html, /href="\/auth\/login\?remember=0&amp;returnTo=%2Freports%2Fq3%3Fx%3D1"/)
  t.equal(res.headers.get('x-frame-options'), 'DENY')
  const evil = await (await fetch(`${s.url}/auth/login?returnTo=${encodeURIComponent('//evil.example')}`, { redirect: 'manual' })).text()
  t.match(evil, /returnTo=%2F"/, 'an off-site returnTo becomes /')
  const chosen = await fetch(`${s.url}/auth/login?remember=0&returnTo=%2F`, { redirect: 'manual' })
  t.equal(chosen.status, 302, 'a choice goes straight to the IdP')
  const b = new Browser()
  const cb = await login(b, s.url, 'ask-user', { remember: true, stopAtCallback: true })
  t.match(cb.setCookies.find((c) => c.startsWith('sg-device='))!, /Max-Age=/, 'remember=1 still remembers')
})
