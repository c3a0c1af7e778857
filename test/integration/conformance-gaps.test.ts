/**
 * Rules of docs/conformance.md that had no test: A1 (a back-channel POST with parameters besides
 * `logout_token` is accepted and acted on) and I2 (a request may carry several `Cookie` headers).
 */
import t from 'tap'
import { connect } from 'node:net'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { logoutToken, postLogout } from '../helpers/logout-token.js'

/** One raw request whose headers are written as given, duplicates included; resolves with the status. */
async function rawStatus (base: string, lines: string[]): Promise<number> {
  const u = new URL(base)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => socket.write(`${lines.join('\r\n')}\r\n\r\n`))
    let data = ''
    // The status line is all this needs: answer as soon as it is in, whatever the connection does next.
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1')
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(data)?.[1]
      if (status !== undefined) { socket.destroy(); resolve(Number(status)) }
    })
    socket.on('end', () => resolve(0))
    socket.on('error', reject)
  })
}

t.test('conformance gaps closed', async (t) => {
  const s = await startStack(t)
  const ping = async (b: Browser): Promise<number> => (await b.fetch(`${s.url}/api/ping`, { headers: { accept: 'application/json' } })).status

  t.test('A1: unknown parameters beside logout_token are ignored, the token is acted on', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'alice')
    t.equal(await ping(b), 200)
    const token = await logoutToken(s.idp.signingKey, s.idp.issuer, 'gateway', { claims: { sub: 'alice' } })
    const body = new URLSearchParams({ state: 'x', logout_token: token, extra: 'ignored' }).toString()
    const res = await postLogout(s.url, undefined, { body })
    t.equal(res.status, 200)
    t.equal(await ping(b), 401, 'the session is revoked')
  })

  t.test('I2: several Cookie headers are read as one', async (t) => {
    const b = new Browser()
    await login(b, s.url, 'bob')
    const sg = b.cookies(s.url).get('sg')
    t.ok(sg !== undefined && sg !== '', 'a single-chunk session cookie')
    const u = new URL(s.url)
    const request = (cookies: string[]): string[] => [
      'GET /api/ping HTTP/1.1', `Host: ${u.host}`, 'Accept: application/json', 'Connection: close', ...cookies.map((c) => `Cookie: ${c}`)
    ]
    t.equal(await rawStatus(s.url, request(['app=1', `sg=${sg!}`, 'other=2'])), 200, 'the session cookie in the second of three Cookie headers')
    t.equal(await rawStatus(s.url, request(['app=1', 'other=2'])), 401, 'without it: no session')
  })
})
