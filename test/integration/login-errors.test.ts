/**
 * Login edge cases (README section "Public port"): returnTo never leaves the site, bad callbacks get a plain 400
 * page, a replayed callback is refused, and unknown paths under the auth prefix are not proxied.
 */
import t, { type Test } from 'tap'
import { Browser, login, type Response } from '../helpers/browser.js'
import { clears, looksLikeStackTrace, RecordingBrowser, setCookieValue } from '../helpers/flow.js'
import { startStack, type Stack } from '../helpers/stack.js'

/** A 400 page for a failed sign-in: HTML, not cached, no stack trace, no session cookie set. */
function assertBadLogin (t: Test, res: Response, what: string): void {
  t.equal(res.status, 400, `${what}: 400`)
  t.match(res.headers.get('content-type'), /^text\/html/, `${what}: an HTML page`)
  t.equal(res.headers.get('cache-control'), 'no-store')
  t.notOk(looksLikeStackTrace(res.body), `${what}: no stack trace`)
  t.notMatch(res.body, /internal_error|undefined|null/, `${what}: no internals`)
  t.notOk(setCookieValue(res.setCookies, 'sg'), `${what}: no session cookie`)
  t.notOk(setCookieValue(res.setCookies, 'sg-device'), `${what}: no device cookie`)
}

/** Starts a login without following it: the browser holds the tx cookie; returns the state sent to the IdP. */
async function startLogin (t: Test, s: Stack, b: Browser): Promise<string> {
  const res = await b.fetch(`${s.url}/auth/login`)
  t.equal(res.status, 302)
  t.ok(b.cookies(s.url).get('sg-tx'), 'tx cookie set')
  return new URL(res.headers.get('location')!).searchParams.get('state')!
}

t.test('returnTo that leaves the site lands on /', async (t) => {
  const s = await startStack(t)
  const cases = ['//evil.com', '/\\evil.com', 'https://evil.com/x', '/%2F%2Fevil.com', '/%5Cevil.com', 'javascript:alert(1)', '/%09/evil.com']
  for (const returnTo of cases) {
    const b = new Browser()
    const res = await login(b, s.url, 'alice', { returnTo })
    t.equal(res.status, 200, `${returnTo}: landed on the upstream`)
    t.equal(res.url, `${s.url}/`, `${returnTo}: final URL is /`)
    t.equal(s.upstream.seen.at(-1)!.url, '/', `${returnTo}: upstream saw /`)
    t.notOk(b.visited.some((u) => new URL(u).hostname.includes('evil')), `${returnTo}: never visited evil`)
  }
  const res = await login(new Browser(), s.url, 'alice', { returnTo: '/ok/page?x=1' })
  t.equal(res.url, `${s.url}/ok/page?x=1`, 'control: a local returnTo is honoured')
})

t.test('bad callbacks get a 400 page', async (t) => {
  const s = await startStack(t)

  t.test('no login transaction cookie', async (t) => {
    const res = await new Browser().fetch(`${s.url}/auth/callback?code=abc&state=xyz`)
    assertBadLogin(t, res, 'no tx')
  })

  t.test('a tx cookie that does not open', async (t) => {
    const res = await new Browser().fetch(`${s.url}/auth/callback?code=abc&state=xyz`, { headers: { cookie: 'sg-tx=v1.AAAAAAAA.x.y.z' } })
    assertBadLogin(t, res, 'bad tx')
  })

  t.test('wrong state', async (t) => {
    const b = new Browser()
    await startLogin(t, s, b)
    const res = await b.fetch(`${s.url}/auth/callback?code=abc&state=wrong`)
    assertBadLogin(t, res, 'wrong state')
    t.ok(clears(res.setCookies, 'sg-tx'), 'tx cookie cleared')
  })

  t.test('no state', async (t) => {
    const b = new Browser()
    await startLogin(t, s, b)
    assertBadLogin(t, await b.fetch(`${s.url}/auth/callback?code=abc`), 'no state')
  })

  t.test('IdP error=access_denied', async (t) => {
    const b = new Browser()
    const state = await startLogin(t, s, b)
    const res = await b.fetch(`${s.url}/auth/callback?error=access_denied&error_description=${encodeURIComponent('<script>x</script>')}&state=${state}`)
    assertBadLogin(t, res, 'access_denied')
    t.notMatch(res.body, /<script>x/, 'the IdP text is not echoed raw')
  })

  t.test('right state, forged code: the IdP refuses it', async (t) => {
    const b = new Browser()
    const state = await startLogin(t, s, b)
    assertBadLogin(t, await b.fetch(`${s.url}/auth/callback?code=forged-code&state=${state}`), 'forged code')
  })
})

t.test('a replayed callback (same URL, same tx cookie) is refused', async (t) => {
  const s = await startStack(t)
  const b = new RecordingBrowser()
  const res = await login(b, s.url, 'alice')
  t.equal(res.status, 200, 'the real login completed')
  t.equal(b.callbacks.length, 1)
  const { url, cookie } = b.callbacks[0]!
  t.match(url, /[?&]code=/)
  t.match(cookie, /sg-tx=v1\./)

  const replay = await new Browser().fetch(url, { headers: { cookie } })
  assertBadLogin(t, replay, 'replay')
  const again = await new Browser().fetch(url, { headers: { cookie } })
  t.equal(again.status, 400, 'and again')
  t.equal((await b.fetch(`${s.url}/auth/session`)).status, 200, 'the real session is unaffected')
})

t.test('unknown paths under the auth prefix', async (t) => {
  const s = await startStack(t)
  const anon = await new Browser().fetch(`${s.url}/auth/whatever`, { headers: { accept: 'application/json' } })
  const b = new Browser()
  await login(b, s.url, 'alice')
  const before = s.upstream.seen.length
  const signedIn = await b.fetch(`${s.url}/auth/whatever`, { headers: { accept: 'application/json' } })
  t.equal(anon.status, 404, 'anonymous: 404')
  t.equal(signedIn.status, 404, 'signed in: 404')
  t.equal(s.upstream.seen.length, before, 'the upstream never saw it')
  const control = await b.fetch(`${s.url}/authx/page`, { headers: { accept: 'application/json' } })
  t.equal(control.status, 200, 'control: /authx is not under the prefix and is proxied')
})

t.test('a failed code exchange is logged with its code and why (the cause chain), never the code itself', async (t) => {
  // par: never, so the state is in the authorization URL for the test to send back.
  const s = await startStack(t, { oidc: { par: 'never' } })
  const failed = async (extra: string): Promise<Record<string, unknown> | undefined> => {
    const b = new Browser()
    const state = await startLogin(t, s, b)
    const before = s.logs.length
    const res = await b.fetch(`${s.url}/auth/callback?code=a-code-the-idp-never-issued&state=${encodeURIComponent(state)}${extra}`)
    assertBadLogin(t, res, 'bogus code')
    const line = s.logs.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'login failed')
    t.notMatch(JSON.stringify(line), /a-code-the-idp-never-issued/, 'the authorization code is not logged')
    return line
  }
  type Causes = Array<{ name: string, code?: string, message?: string }>

  // The IdP advertises RFC 9207: a response without iss fails before the exchange, and the log says so.
  const noIss = await failed('')
  t.equal(noIss?.code, 'SG_OIDC_CALLBACK')
  const chain = (noIss?.causes as Causes | undefined) ?? []
  t.match(chain[0], { code: 'OAUTH_INVALID_RESPONSE' }, 'the cause is named by its code')
  t.ok(chain.some((c) => /"iss" \(issuer\) missing/.test(c.message ?? '')), 'a cause says which check failed')

  const exchange = await failed(`&iss=${encodeURIComponent(s.idp.issuer)}`)
  t.equal(exchange?.code, 'SG_OIDC_CALLBACK')
  t.match(String(exchange?.reason), /invalid_grant/, 'the reason says what the IdP answered')
  t.match((exchange?.causes as Causes | undefined)?.[0], { code: 'OAUTH_RESPONSE_BODY_ERROR' }, 'the cause is named by its code')
})
