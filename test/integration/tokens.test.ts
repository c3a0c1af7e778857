/**
 * The IdP tokens the gateway keeps: a forwarded access token is refreshed shortly before it expires,
 * and with rememberMe.checkIdp a renewal asks the IdP, whose invalid_grant revokes the device.
 */
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { unseal } from '../../src/core/sealed-cookie.js'
import { asTokenBundle, TOKENS_PURPOSE, type TokenBundle } from '../../src/core/tokens.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function bundleOf (s: Stack, sub: string, sid: string): Promise<TokenBundle> {
  const rec = await s.gateway.ctx.store.getSession(sub, sid)
  return asTokenBundle(unseal(s.gateway.ctx.ring, TOKENS_PURPOSE, rec!.tokens!))
}

t.test('a forwarded access token is refreshed before it expires', async (t) => {
  let offset = 0
  const s = await startStack(t, {
    accessTokenTtl: 300,
    routes: [{ prefix: '/', upstream: '{upstream}', auth: 'required' }, { prefix: '/api', upstream: '{upstream}', auth: 'required', forwardAccessToken: true }],
    deps: { now: () => Math.floor(Date.now() / 1000) + offset }
  })
  const b = new Browser()
  await login(b, s.url, 'alice')
  await b.fetch(`${s.url}/api/one`, { headers: { accept: 'application/json' } })
  const first = s.upstream.seen.at(-1)!.headers['x-forwarded-access-token'] as string
  t.ok(first, 'the access token is forwarded')
  await b.fetch(`${s.url}/api/two`, { headers: { accept: 'application/json' } })
  t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-access-token'], first, 'no refresh while it is fresh')

  offset = 260 // 40 s left: inside the refresh leeway
  const res = await b.fetch(`${s.url}/api/three`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 200)
  const refreshed = s.upstream.seen.at(-1)!.headers['x-forwarded-access-token'] as string
  t.not(refreshed, first, 'a new access token went upstream')
  t.equal(s.upstream.seen.at(-1)!.headers.authorization, `Bearer ${refreshed}`)
  const info = await fetch(`${s.idp.issuer}/me`, { headers: { authorization: `Bearer ${refreshed}` } })
  t.equal(info.status, 200, 'the IdP accepts the refreshed token')
  t.ok(res.setCookies.some((c) => c.startsWith('sg=')), 'the session cookie now carries it')
  await b.fetch(`${s.url}/api/four`, { headers: { accept: 'application/json' } })
  t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-access-token'], refreshed, 'the next request uses it without another refresh')
})

t.test('rememberMe.checkIdp: renewal asks the IdP; invalid_grant revokes the device', async (t) => {
  const s = await startStack(t, {
    config: {
      session: { ttl: '2s', absoluteTtl: '1m', keys: ['${SG_SESSION_KEY}'] },
      rememberMe: { ttl: '1h', checkIdp: true }
    }
  })
  const good = new Browser()
  await login(good, s.url, 'bob', { remember: true })
  const bad = new Browser()
  await login(bad, s.url, 'bob', { remember: true })
  const badSid = (await bad.fetch(`${s.url}/auth/session`)).json<{ sid: string }>().sid
  const goodSid = (await good.fetch(`${s.url}/auth/session`)).json<{ sid: string }>().sid
  const rtBefore = (await bundleOf(s, 'bob', goodSid)).refreshToken

  // The IdP ends the grant of one device behind the gateway's back (RFC 7009 at the IdP)
  const rt = (await bundleOf(s, 'bob', badSid)).refreshToken!
  const rev = await fetch(`${s.idp.issuer}/token/revocation`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`gateway:${s.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ token: rt, token_type_hint: 'refresh_token' }).toString()
  })
  t.equal(rev.status, 200)

  await sleep(2500) // both session cookies expired: the next requests renew from the device credentials
  const ok = await good.fetch(`${s.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(ok.status, 200, 'a device whose grant is alive renews')
  const rtAfter = (await bundleOf(s, 'bob', goodSid)).refreshToken
  t.ok(rtAfter, 'the refresh token is kept')
  t.comment(rtAfter === rtBefore ? 'the IdP did not rotate the refresh token' : 'the IdP rotated the refresh token and the gateway stored the new one')

  const refused = await bad.fetch(`${s.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(refused.status, 401, 'the IdP said invalid_grant: no renewal')
  t.equal(await s.gateway.ctx.store.getSession('bob', badSid), null, 'and the device was revoked')
})
