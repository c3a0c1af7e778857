/**
 * Back-channel logout against a real redis-server and the real oidc-provider: sid and sub tokens, the
 * IdP's own call, every invalid token refused without changing state, two replicas, WebSocket cut.
 */
import t from 'tap'
import WebSocket from 'ws'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis-server.js'
import { EVENT, foreignKeyToken, hmacToken, logoutToken, postLogout, unsignedToken } from '../helpers/logout-token.js'

/** Signs in `user` on a new browser (a new device with its own IdP session). */
async function device (s: Stack, user: string): Promise<{ b: Browser, sid: string, idpSid: string }> {
  const b = new Browser()
  await login(b, s.url, user)
  const me = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  const rec = await s.gateway.ctx.store.getSession(user, me.sid)
  if (rec?.idpSid === undefined) throw new Error('the IdP sent no sid in the ID token')
  return { b, sid: me.sid, idpSid: rec.idpSid }
}

async function alive (s: Stack, b: Browser, url = s.url): Promise<boolean> {
  const res = await b.fetch(`${url}/api/ping`, { headers: { accept: 'application/json' } })
  if (res.status !== 200 && res.status !== 401) throw new Error(`unexpected status ${res.status}`)
  return res.status === 200
}

t.test('back-channel logout on Redis', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const s = await startStack(t, { redisUrl: redis.url })
  const sign = async (claims: Record<string, unknown>, more: { header?: Record<string, unknown>, omit?: string[] } = {}): Promise<string> =>
    await logoutToken(s.idp.signingKey, s.idp.issuer, 'gateway', { claims, ...more })

  t.test('sid token revokes that device only; a sub-only token revokes the rest', async (t) => {
    const a = await device(s, 'alice')
    const bdev = await device(s, 'alice')
    t.not(a.idpSid, bdev.idpSid, 'two separate IdP sessions')
    t.ok(await alive(s, a.b))
    t.ok(await alive(s, bdev.b))

    const r1 = await postLogout(s.url, await sign({ sid: a.idpSid, sub: 'alice' }))
    t.equal(r1.status, 200)
    t.equal(r1.headers.get('cache-control'), 'no-store')
    t.notOk(await alive(s, a.b), 'device A refused')
    t.ok(await alive(s, bdev.b), 'device B still in')
    t.equal(await s.gateway.ctx.store.getSession('alice', a.sid), null, 'A\'s device record (credential) is gone')

    const r2 = await postLogout(s.url, await sign({ sub: 'alice' }))
    t.equal(r2.status, 200)
    t.notOk(await alive(s, bdev.b), 'device B refused after the sub-only token')
    t.same(await s.gateway.ctx.store.listSessions('alice'), [], 'no device of alice left')
  })

  t.test('the IdP\'s own back-channel call, from ending the IdP session, revokes that device', async (t) => {
    const c = await device(s, 'carol')
    const other = await device(s, 'carol')
    const end = await c.b.go(`${s.idp.issuer}/session/end`)
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(end.body)
    t.ok(form, 'the IdP shows its logout confirmation')
    const fields = new URLSearchParams()
    for (const m of form![2]!.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields.set(m[1]!, m[2]!)
    fields.set('logout', 'yes')
    await c.b.go(new URL(form![1]!, end.url).href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: fields.toString() })
    // The IdP posts the logout token before it answers the browser, so the effect is already visible.
    t.notOk(await alive(s, c.b), 'the device that ended its IdP session is out')
    t.ok(await alive(s, other.b), 'the other IdP session of the same user is untouched')
  })

  t.test('a token for a user with no session is accepted: nothing to do is not an error', async (t) => {
    t.equal((await postLogout(s.url, await sign({ sub: 'nobody' }))).status, 200)
    t.equal((await postLogout(s.url, await sign({ sid: 'no-such-idp-session' }))).status, 200)
  })

  t.test('every invalid token gets 400 and leaves the session alive', async (t) => {
    const d = await device(s, 'dave')
    const now = Math.floor(Date.now() / 1000)
    const base = { sid: d.idpSid, sub: 'dave' }
    const replayed = await sign(base)
    const cases: Array<[string, () => Promise<{ status: number, body: Record<string, string> }>]> = [
      ['bad signature', async () => { const tok = await sign(base); return await postLogout(s.url, tok.slice(0, -4) + (tok.endsWith('AAAA') ? 'BBBB' : 'AAAA')) }],
      ['unknown key', async () => await postLogout(s.url, await foreignKeyToken('no-such-kid', s.idp.issuer, 'gateway', base))],
      ['known kid, other key', async () => await postLogout(s.url, await foreignKeyToken(s.idp.signingKey.kid, s.idp.issuer, 'gateway', base))],
      ['alg none', async () => await postLogout(s.url, unsignedToken({ iss: s.idp.issuer, aud: 'gateway', iat: now, exp: now + 60, jti: 'x1', events: { [EVENT]: {} }, ...base }))],
      ['HS256 with the client secret', async () => await postLogout(s.url, await hmacToken(s.clientSecret, { iss: s.idp.issuer, aud: 'gateway', iat: now, exp: now + 60, jti: 'x2', events: { [EVENT]: {} }, ...base }))],
      ['wrong iss', async () => await postLogout(s.url, await sign({ ...base, iss: `${s.idp.issuer}INVALID` }))],
      ['wrong aud', async () => await postLogout(s.url, await sign({ ...base, aud: 'gatewayINVALID' }))],
      ['aud with an untrusted audience', async () => await postLogout(s.url, await sign({ ...base, aud: ['gateway', 'someone-else'] }))],
      ['missing iat', async () => await postLogout(s.url, await sign(base, { omit: ['iat'] }))],
      ['iat in the future', async () => await postLogout(s.url, await sign({ ...base, iat: now + 3600, exp: now + 3700 }))],
      ['expired exp', async () => await postLogout(s.url, await sign({ ...base, iat: now - 600, exp: now - 300 }))],
      ['missing exp', async () => await postLogout(s.url, await sign(base, { omit: ['exp'] }))],
      ['missing jti', async () => await postLogout(s.url, await sign(base, { omit: ['jti'] }))],
      ['missing events', async () => await postLogout(s.url, await sign(base, { omit: ['events'] }))],
      ['wrong event member', async () => await postLogout(s.url, await sign({ ...base, events: { 'http://schemas.openid.net/event/foobar': {} } }))],
      ['event value not an object', async () => await postLogout(s.url, await sign({ ...base, events: { [EVENT]: 'yes' } }))],
      ['events not an object', async () => await postLogout(s.url, await sign({ ...base, events: [EVENT] }))],
      ['nonce present', async () => await postLogout(s.url, await sign({ ...base, nonce: 'n-0S6_WzA2Mj' }))],
      ['neither sid nor sub', async () => await postLogout(s.url, await sign({}))],
      ['typ of another token', async () => await postLogout(s.url, await sign(base, { header: { typ: 'at+jwt' } }))],
      ['malformed JWT', async () => await postLogout(s.url, 'not.a.jwt')],
      ['missing logout_token', async () => await postLogout(s.url, undefined, { body: 'other=1' })],
      ['empty logout_token', async () => await postLogout(s.url, '')],
      ['JSON body', async () => await postLogout(s.url, undefined, { contentType: 'application/json', body: JSON.stringify({ logout_token: replayed }) })],
      ['replayed jti', async () => {
        // First use of this token must succeed on another (throwaway) session; here: a token for nobody.
        const once = await sign({ sub: 'nobody-replay', jti: 'replay-jti-1' })
        t.equal((await postLogout(s.url, once)).status, 200, 'first use accepted')
        return await postLogout(s.url, once)
      }]
    ]
    for (const [name, run] of cases) {
      const res = await run()
      t.equal(res.status, 400, `${name}: 400`)
      t.equal(res.body.error, 'invalid_request', `${name}: invalid_request`)
      t.type(res.body.error_description, 'string', `${name}: says why`)
    }
    t.ok(await alive(s, d.b), 'after all of them the session is still alive')
    t.ok(await s.gateway.ctx.store.getSession('dave', d.sid), 'and its device record too')
    const wrongMethod = await fetch(`${s.url}/auth/backchannel-logout`)
    t.equal(wrongMethod.status, 405)
  })

  t.test('two replicas: logout through replica 2 refuses replica 1 and closes its WebSocket', async (t) => {
    const r2 = await s.replica()
    const e = await device(s, 'erin')
    const ws = new WebSocket(`${s.url.replace('http', 'ws')}/live`, { headers: { cookie: e.b.cookieHeader(s.url) } })
    const hello = await new Promise<string>((resolve, reject) => { ws.once('message', (m) => resolve(m.toString())); ws.once('error', reject) })
    t.same(JSON.parse(hello), { hello: 'erin' }, 'the upstream WebSocket got the identity header')
    const closed = new Promise<{ code: number, ms: number }>((resolve) => {
      const start = Date.now()
      ws.once('close', (code) => resolve({ code, ms: Date.now() - start }))
    })
    const res = await postLogout(r2.url, await sign({ sid: e.idpSid }))
    t.equal(res.status, 200)
    const c = await closed
    t.equal(c.code, 1008, 'closed with policy violation')
    t.ok(c.ms < 1000, `closed within 1 s of the logout (${c.ms} ms)`)
    t.notOk(await alive(s, e.b), 'replica 1 refuses the session')
  })
})

t.test('store outage and data loss', async (t) => {
  const redis = await startRedis({ args: ['--appendonly', 'yes'] })
  t.teardown(() => redis.stop())
  const s = await startStack(t, { redisUrl: redis.url, config: {} })
  const f = await device(s, 'frank')
  t.ok(await alive(s, f.b))

  await redis.kill()
  const started = Date.now()
  const down = await f.b.fetch(`${s.url}/api/ping`, { headers: { accept: 'application/json' } })
  t.equal(down.status, 503, 'failMode closed: 503')
  t.same(down.json(), { error: 'store_unavailable' })
  t.ok(Date.now() - started < 2000, 'answered within 2 s')

  await redis.restart()
  // ioredis reconnects with backoff; the same cookie works again once it is back (AOF kept the data).
  let ok = false
  for (let i = 0; i < 100 && !ok; i++) {
    const r = await f.b.fetch(`${s.url}/api/ping`, { headers: { accept: 'application/json' } })
    ok = r.status === 200
    if (!ok) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(ok, 'after the restart the same cookie works again')

  // Data loss: FLUSHALL empties the store; every older cookie must be refused.
  const { Redis } = await import('ioredis')
  const cli = new Redis(redis.url)
  await cli.flushall()
  await cli.quit()
  t.notOk(await alive(s, f.b), 'after a flush the old cookie is refused')
})
