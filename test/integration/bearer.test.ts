/**
 * Bearer access tokens on `bearer: true` routes (README section "API clients") against the real oidc-provider
 * issuing RFC 9068 JWT access tokens (resource indicators) with Keycloak-shaped claims, a real Redis
 * and two replicas with the near cache on: valid tokens pass with identity headers, every invalid one
 * gets 401, logouts revoke tokens on the other replica within 1 s, rules apply, outages follow failMode.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { generateKeyPair, exportJWK, SignJWT } from 'jose'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack, type StackOptions } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis-server.js'
import { logoutToken, postLogout } from '../helpers/logout-token.js'
import { adminCall } from '../helpers/flow.js'
import { claimsOf, clientAccessToken, signedAccessToken, userAccessToken, type ApiClient } from '../helpers/access-token.js'

const API = 'https://api.example.test'
const CLI: ApiClient = { id: 'cli', secret: 'cli-secret-not-a-secret-0123456789', redirectUri: 'http://127.0.0.1:9/cli-callback' }
const ROUTES = [
  { prefix: '/', upstream: '{upstream}', auth: 'required' },
  { prefix: '/api', upstream: '{upstream}', auth: 'required', bearer: true },
  { prefix: '/api/admin', upstream: '{upstream}', auth: 'required', bearer: true, authorize: [{ groups: ['admins'] }] },
  { prefix: '/api/kc', upstream: '{upstream}', auth: 'required', bearer: true, authorize: [{ claims: { 'realm_access.roles': ['kc-admin'] } }] }
]

function stackOptions (over: StackOptions = {}): StackOptions {
  return {
    routes: ROUTES,
    oidc: { audience: [API, 'https://other-api.example.test'] },
    resourceServers: { [API]: { scope: 'api:read' }, 'https://elsewhere.example.test': { scope: 'x:read' } },
    idpClients: (url) => [{
      client_id: CLI.id,
      client_secret: CLI.secret,
      redirect_uris: [CLI.redirectUri],
      // The IdP puts the session's sid in tokens of clients that take part in back-channel logout.
      backchannel_logout_uri: `${url}/auth/backchannel-logout`,
      backchannel_logout_session_required: true,
      grant_types: ['authorization_code', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic'
    }],
    config: { identity: { headers: { 'x-roles': 'realm_access.roles' } } },
    ...over
  }
}

interface Answer { status: number, headers: Headers, body: string, json: <T = Record<string, unknown>>() => T }

async function call (url: string, path: string, authorization: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${url}${path}`, { headers: { accept: 'application/json', ...(authorization !== undefined ? { authorization } : {}), ...headers } })
  const body = await res.text()
  return { status: res.status, headers: res.headers, body, json: <T>() => JSON.parse(body) as T }
}

const bearer = (token: string): string => `Bearer ${token}`

/** Polls until `url` refuses the token; resolves with how long it took (ms), or rejects after `limitMs`. */
async function refusedWithin (url: string, token: string, limitMs: number): Promise<number> {
  const start = performance.now()
  for (;;) {
    const res = await call(url, '/api/x', bearer(token))
    if (res.status === 401) return performance.now() - start
    if (res.status !== 200) throw new Error(`unexpected status ${res.status}`)
    if (performance.now() - start > limitMs) throw new Error(`still accepted after ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Waits until the clock is in a later second than `at` (epoch seconds): iat has one-second precision. */
async function afterSecond (at: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= at) await new Promise((resolve) => setTimeout(resolve, 50))
}

t.test('bearer tokens on Redis, two replicas, near cache on', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const s = await startStack(t, stackOptions({ redisUrl: redis.url, config: { identity: { headers: { 'x-roles': 'realm_access.roles' } }, store: { kind: 'redis', nearCache: true, redis: { url: redis.url } } } }))
  const b = await s.replica()
  const tokenFor = async (user: string, browser = new Browser()): Promise<string> => await userAccessToken(s.idp.issuer, CLI, browser, user, API)
  const sign = async (over: Parameters<typeof signedAccessToken>[3] = {}): Promise<string> => await signedAccessToken(s.idp.signingKey, s.idp.issuer, API, over)

  t.test('a valid token passes with identity headers; Authorization goes upstream unchanged; cookies are ignored', async (t) => {
    const token = await tokenFor('kc-admin')
    const claims = claimsOf(token)
    t.equal(claims.aud, API, 'the IdP issued a JWT for the API audience')
    t.type(claims.sid, 'string', 'with the IdP session id')
    const res = await call(s.url, '/api/orders?x=1', bearer(token), { cookie: 'sg=junk; other=1', 'x-forwarded-user': 'root', 'x-roles': 'forged' })
    t.equal(res.status, 200, res.body)
    t.same(res.headers.getSetCookie(), [], 'no cookie read, none cleared')
    const seen = s.upstream.seen.at(-1)!
    t.equal(seen.url, '/api/orders?x=1')
    t.equal(seen.headers.authorization, `Bearer ${token}`, 'Authorization forwarded unchanged')
    t.equal(seen.headers['x-forwarded-user'], 'kc-admin')
    t.equal(seen.headers['x-forwarded-email'], 'kc-admin@example.com')
    t.equal(seen.headers['x-forwarded-preferred-username'], 'kc-admin')
    t.equal(seen.headers['x-forwarded-groups'], 'demo-users,staff')
    t.match(seen.headers['x-roles'], /^realm-role-00,.*,kc-admin$/, 'mapped claim headers from the token')
    t.equal(seen.headers.cookie, 'other=1', 'the gateway\'s cookie names are still stripped')
    t.equal((await call(b.url, '/api/x', bearer(token))).status, 200, 'the other replica agrees')
  })

  t.test('a client credentials token (sub is the client) passes too', async (t) => {
    const token = await clientAccessToken(s.idp.issuer, CLI, API, 'api:read')
    t.equal(claimsOf(token).sub, CLI.id)
    t.equal((await call(s.url, '/api/x', bearer(token))).status, 200)
    t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], CLI.id)
  })

  t.test('without Authorization a bearer route works with cookies as before', async (t) => {
    const anon = await call(s.url, '/api/x', undefined)
    t.equal(anon.status, 401)
    t.same(anon.json(), { error: 'unauthenticated' })
    const browser = new Browser()
    await login(browser, s.url, 'carol')
    const res = await browser.fetch(`${s.url}/api/x`, { headers: { accept: 'application/json' } })
    t.equal(res.status, 200)
    t.equal(s.upstream.seen.at(-1)!.headers['x-forwarded-user'], 'carol')
    const token = await tokenFor('dan')
    t.equal((await call(s.url, '/x', bearer(token))).status, 401, 'a route without bearer: true ignores tokens')
  })

  t.test('every invalid token gets 401 invalid_token, and reaches nobody', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    const good = await sign()
    t.equal((await call(s.url, '/api/x', bearer(good))).status, 200, 'control: the test signer makes valid tokens')
    const foreign = await generateKeyPair('RS256', { extractable: true })
    const foreignJwk = { ...(await exportJWK(foreign.privateKey)), kid: s.idp.signingKey.kid }
    const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
    const valid = { iss: s.idp.issuer, aud: API, sub: 'mallory', iat: now, exp: now + 300 }
    const cases: Array<[string, string]> = [
      ['bad signature', good.slice(0, -6) + (good.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA')],
      ['alg none', `${enc({ alg: 'none', typ: 'at+jwt' })}.${enc(valid)}.`],
      ['HS256 signed with the client secret', await new SignJWT(valid).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(new TextEncoder().encode(s.clientSecret))],
      ['wrong iss', await sign({ claims: { iss: `${s.idp.issuer}/other` } })],
      ['wrong aud', await sign({ claims: { aud: 'https://elsewhere.example.test' } })],
      ['expired', await sign({ claims: { iat: now - 600, exp: now - 120 } })],
      ['nbf in the future', await sign({ claims: { nbf: now + 600 } })],
      ['wrong typ', await sign({ header: { typ: 'logout+jwt' } })],
      ['no typ', await sign({ header: { typ: undefined } })],
      ['unknown kid', await signedAccessToken({ ...foreignJwk, kid: 'no-such-kid' }, s.idp.issuer, API)],
      ['known kid, another key', await signedAccessToken(foreignJwk, s.idp.issuer, API)],
      ['older than oidc.accessTokenMaxAge', await sign({ claims: { iat: now - 7200, exp: now + 300 } })],
      ['iat in the future', await sign({ claims: { iat: now + 600, exp: now + 900 } })],
      ['no sub', await sign({ omit: ['sub'] })],
      ['no iat', await sign({ omit: ['iat'] })],
      ['sub with a control character', await sign({ claims: { sub: 'admin\t' } })],
      ['not a JWT', 'abc.def'],
      ['a real IdP token for another API (aud)', await userAccessToken(s.idp.issuer, CLI, new Browser(), 'eve', 'https://elsewhere.example.test', 'openid x:read')]
    ]
    const headers: Array<[string, string]> = [
      ...cases.map(([name, token]): [string, string] => [name, bearer(token)]),
      ['Bearer with nothing', 'Bearer'],
      ['Bearer and a space', 'Bearer '],
      ['another scheme', `Basic ${Buffer.from('a:b').toString('base64')}`],
      ['two tokens', `Bearer ${good} ${good}`]
    ]
    const before = s.upstream.seen.length
    for (const [name, authorization] of headers) {
      const res = await call(s.url, '/api/x', authorization)
      t.equal(res.status, 401, `${name}: 401`)
      t.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"', `${name}: WWW-Authenticate`)
      t.equal(res.headers.get('cache-control'), 'no-store', `${name}: no-store`)
      t.same(res.json(), { error: 'invalid_token' }, `${name}: body`)
    }
    t.equal(s.upstream.seen.length, before, 'no refused request reached the upstream')
    for (const typ of ['JWT', 'application/at+jwt', 'AT+JWT']) {
      t.equal((await call(s.url, '/api/x', bearer(await sign({ header: { typ } })))).status, 200, `typ ${typ} accepted`)
    }
    t.equal((await call(s.url, '/api/x', bearer(await sign({ claims: { aud: ['https://nobody.example.test', 'https://other-api.example.test'] } })))).status, 200, 'any one configured audience is enough')
    t.equal((await call(s.url, '/api/x', `bearer ${good}`)).status, 200, 'the scheme is case-insensitive')
    t.notOk(s.logs.some((l) => l.includes(good.split('.')[2]!)), 'no token in the logs')
  })

  t.test('a back-channel logout of the token\'s IdP session refuses it on the other replica within 1 s', async (t) => {
    const laptop = new Browser()
    const token = await tokenFor('erin', laptop)
    const other = await tokenFor('erin') // another IdP session of the same user
    const sid = claimsOf(token).sid as string
    t.not(claimsOf(other).sid, sid)
    for (const u of [s.url, b.url]) t.equal((await call(u, '/api/x', bearer(token))).status, 200, 'accepted (and cached) before')
    const res = await postLogout(s.url, await logoutToken(s.idp.signingKey, s.idp.issuer, 'gateway', { claims: { sid } }))
    t.equal(res.status, 200, 'logout accepted though no gateway session exists under that IdP session')
    const ms = await refusedWithin(b.url, token, 1000)
    t.comment(`refused on the other replica after ${ms.toFixed(0)} ms`)
    t.equal((await call(s.url, '/api/x', bearer(token))).status, 401, 'and on this one')
    t.equal((await call(b.url, '/api/x', bearer(other))).status, 200, 'another IdP session of the user is untouched')
    t.equal((await call(b.url, '/api/x', bearer(await tokenFor('erin', laptop)))).status, 401, 'a new token of the logged-out IdP session too')
  })

  t.test('a front-channel logout (iss + sid) refuses the token on the other replica within 1 s', async (t) => {
    const token = await tokenFor('fay')
    t.equal((await call(b.url, '/api/x', bearer(token))).status, 200)
    const q = new URLSearchParams({ iss: s.idp.issuer, sid: claimsOf(token).sid as string })
    t.equal((await fetch(`${s.url}/auth/frontchannel-logout?${q.toString()}`)).status, 200)
    await refusedWithin(b.url, token, 1000)
  })

  t.test('a sub-only logout refuses tokens issued before it and accepts one issued after it', async (t) => {
    const browser = new Browser()
    const before = await tokenFor('gus', browser)
    const clientOfGus = await tokenFor('gus')
    for (const u of [s.url, b.url]) t.equal((await call(u, '/api/x', bearer(before))).status, 200)
    const res = await postLogout(s.url, await logoutToken(s.idp.signingKey, s.idp.issuer, 'gateway', { claims: { sub: 'gus' } }))
    t.equal(res.status, 200)
    const loggedOutAt = Math.floor(Date.now() / 1000)
    await refusedWithin(b.url, before, 1000)
    t.equal((await call(b.url, '/api/x', bearer(clientOfGus))).status, 401, 'every token of the user issued before')
    t.equal((await call(s.url, '/api/x', bearer(before))).status, 401)
    await afterSecond(loggedOutAt)
    const after = await tokenFor('gus', browser)
    for (const u of [s.url, b.url]) t.equal((await call(u, '/api/x', bearer(after))).status, 200, 'a token issued after the logout passes')
    t.ok((claimsOf(after).iat as number) > loggedOutAt)
  })

  t.test('the admin API revokes a user\'s tokens as well', async (t) => {
    const token = await tokenFor('hal')
    t.equal((await call(b.url, '/api/x', bearer(token))).status, 200)
    t.equal((await adminCall(s, 'DELETE', '/admin/users/hal/sessions')).status, 204)
    await refusedWithin(b.url, token, 1000)
  })

  t.test('rules: a token no rule admits gets 403 forbidden', async (t) => {
    const admin = await tokenFor('admin')
    const bob = await tokenFor('bob')
    t.equal((await call(s.url, '/api/admin/x', bearer(admin))).status, 200, 'the admins group')
    const res = await call(s.url, '/api/admin/x', bearer(bob), { accept: 'text/html' })
    t.equal(res.status, 403)
    t.same(res.json(), { error: 'forbidden' }, 'JSON even for an HTML accept: there is no session to sign out of')
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.equal((await call(s.url, '/api/kc/x', bearer(await tokenFor('kc-admin')))).status, 200, 'nested claim path in the token')
    t.equal((await call(s.url, '/api/kc/x', bearer(await tokenFor('kc-user')))).status, 403)
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text()
    t.match(metrics, /sessiongate_authz_decisions_total\{route="\/api\/admin",result="denied"\} [1-9]/)
    t.match(metrics, /sessiongate_bearer_checks_total\{result="live"\} [1-9]/)
    t.match(metrics, /sessiongate_bearer_checks_total\{result="revoked"\} [1-9]/)
    t.match(metrics, /sessiongate_bearer_checks_total\{result="invalid"\} [1-9]/)
  })
})

t.test('an unknown kid twice in a row fetches the IdP key set once', async (t) => {
  const s = await startStack(t, stackOptions())
  let fetches = 0
  const jwksPath = new URL(((await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string }).jwks_uri).pathname
  s.idp.server.prependListener('request', (req: { url?: string }) => { if (req.url?.split('?')[0] === jwksPath) fetches++ })
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const junk = { ...(await exportJWK(privateKey)), kid: 'junk-kid' }
  for (let i = 0; i < 2; i++) {
    t.equal((await call(s.url, '/api/x', bearer(await signedAccessToken(junk, s.idp.issuer, API)))).status, 401, `junk token ${i + 1} refused`)
  }
  t.equal(fetches, 1, 'one fetch: the first load; the second unknown kid waits for the cooldown')
  t.equal((await call(s.url, '/api/x', bearer(await signedAccessToken(s.idp.signingKey, s.idp.issuer, API)))).status, 200, 'a real token still passes')
  t.equal(fetches, 1, 'with the cached keys')
})

t.test('a store outage follows failMode', async (t) => {
  for (const failMode of ['closed', 'open'] as const) {
    await t.test(`failMode ${failMode}`, async (t) => {
      const redis = await startRedis()
      t.teardown(() => redis.stop())
      const s = await startStack(t, stackOptions({ config: { store: { kind: 'redis', failMode, redis: { url: redis.url, commandTimeout: '300ms' } } } }))
      const token = await signedAccessToken(s.idp.signingKey, s.idp.issuer, API)
      t.equal((await call(s.url, '/api/x', bearer(token))).status, 200)
      await redis.stop()
      const res = await call(s.url, '/api/x', bearer(token))
      if (failMode === 'closed') {
        t.equal(res.status, 503)
        t.same(res.json(), { error: 'store_unavailable' })
      } else {
        t.equal(res.status, 200, 'admitted on the token alone')
        t.equal(res.headers.get('www-authenticate'), null)
      }
    })
  }
})

t.test('tokens issued before the store lost its revocation state are refused', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  // A store whose state dates from an hour ago, as after a long uptime.
  const raw = new Redis(redis.url)
  await raw.set('sg:epoch', `long-running.${Math.floor(Date.now() / 1000) - 3600}`)
  raw.disconnect()
  const s = await startStack(t, stackOptions({ redisUrl: redis.url }))
  const now = Math.floor(Date.now() / 1000)
  const older = await signedAccessToken(s.idp.signingKey, s.idp.issuer, API, { claims: { iat: now - 600, exp: now + 600 } })
  t.equal((await call(s.url, '/api/x', bearer(older))).status, 200, 'a ten-minute-old token passes while the state is intact')
  await redis.restart() // no persistence: every revocation recorded is gone, and so is the epoch
  let status = 0
  for (let i = 0; i < 50 && status !== 401; i++) {
    status = (await call(s.url, '/api/x', bearer(older))).status
    if (status === 503) await new Promise((resolve) => setTimeout(resolve, 100)) // still reconnecting
  }
  t.equal(status, 401, 'refused: whatever revoked it was lost with the data')
  const fresh = await signedAccessToken(s.idp.signingKey, s.idp.issuer, API)
  t.equal((await call(s.url, '/api/x', bearer(fresh))).status, 200, 'a token issued after the loss passes')
})
