/**
 * Rules of docs/conformance.md about the refresh token of an ended session:
 * - A12: after a back-channel logout the gateway keeps no copy of the session's tokens (the sealed bundle
 *   with the refresh token goes in the same store step as the session); revoking non-offline refresh
 *   tokens is the IdP's part of that rule.
 * - E2 (RFC 7009 2.2): the IdP answers 200 for a token that is already invalid, and a 503 means the
 *   token may still be alive. Either way the local logout completes; only the 503 is logged as a failure.
 */
import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Redis } from 'ioredis'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis-server.js'
import { logoutToken, postLogout } from '../helpers/logout-token.js'
import { asTokenBundle } from '../../src/core/tokens.js'
import { unseal } from '../../src/core/sealed-cookie.js'

/** The session's refresh token, read from its sealed bundle in the store. */
async function refreshTokenOf (s: Stack, sub: string, sid: string): Promise<string> {
  const rec = await s.gateway.ctx.store.getSession(sub, sid)
  const token = asTokenBundle(unseal(s.gateway.ctx.ring, 'tokens', rec!.tokens!)).refreshToken
  if (token === undefined) throw new Error('the login got no refresh token')
  return token
}

/** The IdP's answer to a refresh grant with `token` (200 while the token is alive). */
async function refreshStatus (s: Stack, token: string): Promise<number> {
  const res = await fetch(`${s.idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`gateway:${s.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString()
  })
  await res.arrayBuffer()
  return res.status
}

async function revokeAtIdp (s: Stack, token: string): Promise<number> {
  const res = await fetch(`${s.idp.issuer}/token/revocation`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`gateway:${s.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ token, token_type_hint: 'refresh_token' }).toString()
  })
  await res.arrayBuffer()
  return res.status
}

const sessionOf = async (b: Browser, s: Stack): Promise<string> => (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>().sid

t.test('A12: a back-channel logout leaves no copy of the session\'s refresh token in the store', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const s = await startStack(t, { redisUrl: redis.url })
  const raw = new Redis(redis.url)
  t.teardown(() => { raw.disconnect() })
  const b = new Browser()
  await login(b, s.url, 'alice', { remember: true })
  const sid = await sessionOf(b, s)
  const rec = await s.gateway.ctx.store.getSession('alice', sid)
  t.ok(rec?.idpSid, 'the IdP named its session')
  const bundleKeys = async (): Promise<string[]> => (await raw.keys('*tok:*')).filter((k) => k.endsWith(`:${sid}`))
  t.equal((await bundleKeys()).length, 1, 'the sealed token bundle has its own key while the session lives')

  const token = await logoutToken(s.idp.signingKey, s.idp.issuer, 'gateway', { claims: { sid: rec!.idpSid! } })
  t.equal((await postLogout(s.url, token)).status, 200)
  t.same(await bundleKeys(), [], 'the bundle (refresh token included) is gone with the session')
  t.equal(await s.gateway.ctx.store.getSession('alice', sid), null, 'and the device record')
})

t.test('E2: RFC 7009 answers at RP-initiated logout', async (t) => {
  const s = await startStack(t)
  let revocationStatus = 0 // 0: the IdP answers itself
  let revocations = 0
  // The IdP's request listener, wrapped: the revocation endpoint answers as the test says.
  const idpHandlers = s.idp.server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>
  s.idp.server.removeAllListeners('request')
  s.idp.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/token/revocation') === true) {
      revocations++
      if (revocationStatus !== 0) {
        res.writeHead(revocationStatus, { 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable"}')
        return
      }
    }
    for (const h of idpHandlers) h(req, res)
  })
  const failureLogged = (): boolean => s.logs.some((l) => l.includes('refresh token revocation at the IdP failed'))

  t.test('200 for a token the IdP already revoked: the logout completes, nothing logged as failed', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'bob', { remember: true })
    const sid = await sessionOf(b, s)
    const refresh = await refreshTokenOf(s, 'bob', sid)
    t.equal(await revokeAtIdp(s, refresh), 200, 'revoked at the IdP beforehand')
    t.equal(await refreshStatus(s, refresh), 400, 'so it is already invalid')
    const before = revocations
    const out = await b.fetch(`${s.url}/auth/logout?sid=${sid}`)
    t.equal(out.status, 302, 'on to the end-session endpoint')
    t.equal(revocations, before + 1, 'the gateway still asked the IdP to revoke it')
    t.equal(await s.gateway.ctx.store.getSession('bob', sid), null, 'the local session is gone')
    t.notOk(failureLogged(), 'a 200 for an invalid token is not a failure')
  })

  t.test('503: the logout completes, the failure is logged, and the token may still be alive', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'carol', { remember: true })
    const sid = await sessionOf(b, s)
    const refresh = await refreshTokenOf(s, 'carol', sid)
    revocationStatus = 503
    t.teardown(() => { revocationStatus = 0 })
    const out = await b.fetch(`${s.url}/auth/logout?sid=${sid}`)
    t.equal(out.status, 302, 'on to the end-session endpoint')
    t.ok(out.setCookies.some((c) => /^sg=;/.test(c) && /Max-Age=0/.test(c)), 'session cookie cleared')
    t.equal(await s.gateway.ctx.store.getSession('carol', sid), null, 'the local session and device are gone whatever the IdP said')
    t.ok(failureLogged(), 'the failed revocation is logged')
    t.notOk(s.logs.some((l) => l.includes(refresh)), 'without the token')
    revocationStatus = 0
    t.equal(await refreshStatus(s, refresh), 200, 'the IdP did not revoke it: the token is alive, as RFC 7009 warns')
  })
})
