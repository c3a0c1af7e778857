/**
 * A session that outgrows the cookie budget after login (the forwarded access token got larger: another
 * replica, or a renewal, refreshed it at the IdP) never turns into a 500 on every request. A cookie that
 * would not fit is not written: the one in hand (slid if due, with the token it carries) stays good until
 * it expires. A renewal from the device credential whose session would not fit signs that device out once
 * (401 or the sign-in page) instead of rotating the credential on every request while answering 500.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { seal, unseal } from '../../src/core/sealed-cookie.js'
import { asTokenBundle, TOKENS_PURPOSE } from '../../src/core/tokens.js'

const api = { accept: 'application/json' }

/** What a refresh at the IdP stores when the new access token is 5 KB larger: too large for the cookie budget. */
async function growAccessToken (s: Stack, sub: string, sid: string, atExp: number): Promise<void> {
  const { store, ring } = s.gateway.ctx
  const rec = await store.getSession(sub, sid)
  const bundle = asTokenBundle(unseal(ring, TOKENS_PURPOSE, rec!.tokens!))
  await store.updateSession(sub, sid, { tokens: seal(ring, TOKENS_PURPOSE, { ...bundle, at: randomBytes(5000).toString('base64url'), atExp }, { deflate: true }) })
}

async function metric (s: Stack, re: RegExp): Promise<number> {
  const m = re.exec(await (await fetch(`${s.adminUrl}/metrics`)).text())
  return m === null ? 0 : Number(m[1])
}

t.test('a renewal whose session no longer fits signs the device out once, without a 500 loop', async (t) => {
  let clock = Math.floor(Date.now() / 1000)
  const s = await startStack(t, {
    routes: [{ prefix: '/', upstream: '{upstream}', auth: 'required', forwardAccessToken: true }],
    config: { rememberMe: { ttl: '1h', rotationGrace: '1s' } },
    deps: { now: () => clock }
  })
  const b = new Browser()
  await login(b, s.url, 'tina', { remember: true })
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  await growAccessToken(s, 'tina', sid, clock + 3600)
  const reuseBefore = await metric(s, /^sessiongate_device_reuse_detected_total (\d+)/m)
  clock += 400 // the 5-minute session cookie expired: the device credential renews

  const first = await b.fetch(`${s.url}/x`, { headers: api })
  t.equal(first.status, 401, 'not a 500: the browser is signed out')
  t.ok(first.setCookies.some((c) => c.startsWith('sg-device=;')), 'its device cookie is cleared')
  t.equal(await s.gateway.ctx.store.getSession('tina', sid), null, 'the device, which can no longer mint a session, is signed out')
  t.match(s.logs.join(''), /does not fit in the cookie budget/, 'the operator is told why')
  t.equal(await metric(s, /^sessiongate_device_reuse_detected_total (\d+)/m), reuseBefore, 'no reuse alarm')

  const html = await b.fetch(`${s.url}/x`, { headers: { accept: 'text/html' } })
  t.equal(html.status, 302, 'the next page goes to the sign-in')
  t.match(html.headers.get('location'), /\/auth\/login\?returnTo=/)
})

t.test('a refreshed access token too large to carry does not make every request a 500', async (t) => {
  let clock = Math.floor(Date.now() / 1000)
  const s = await startStack(t, {
    accessTokenTtl: 300,
    routes: [{ prefix: '/', upstream: '{upstream}', auth: 'required', forwardAccessToken: true }],
    deps: { now: () => clock }
  })
  const b = new Browser()
  await login(b, s.url, 'uma')
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  await b.fetch(`${s.url}/a`, { headers: api })
  const first = s.upstream.seen.at(-1)!.headers['x-forwarded-access-token']
  t.ok(first, 'the access token is forwarded')
  // Another replica refreshed it, and the IdP's new token is 5 KB larger.
  await growAccessToken(s, 'uma', sid, clock + 3600)
  clock += 260 // 40 s left on the access token: inside the refresh leeway; the session cookie is past half its life

  for (const path of ['/b', '/c']) {
    const res = await b.fetch(`${s.url}${path}`, { headers: api })
    t.equal(res.status, 200, `${path}: served with the session cookie in hand`)
    t.equal(s.upstream.seen.at(-1)!.url, path, 'reached the upstream')
    t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-access-token'], first, 'with the token the cookie carries (the new one does not fit)')
  }
  t.match(s.logs.join(''), /does not fit in the cookie budget/, 'the operator is told why')
})
