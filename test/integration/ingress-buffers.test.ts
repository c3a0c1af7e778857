/**
 * The gateway behind nginx as its own Ingress. A large session (many groups) is set in several cookie
 * chunks, so an answer that sets it carries 5-7 KB of Set-Cookie headers: more than nginx's default
 * proxy_buffer_size (one page, 4 KB), which answers 502 instead. The README and the chart's Ingress set
 * `proxy-buffer-size: 16k`; this proves that is enough, and that the default is not (a renewal whose answer
 * is lost that way still rotated the credential: the browser's copy then counts as reuse).
 */
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { nginxBinary, startNginxProxy } from '../helpers/nginx.js'

t.test('a large session renewed through nginx', { skip: nginxBinary === undefined ? 'nginx is not installed (apt-get install nginx)' : false }, async (t) => {
  const s = await startStack(t)
  const gateway = new URL(s.url)
  /** A browser signed in as a user with 150 groups, holding only its device cookie: its next request renews. */
  const deviceOnly = async (user: string): Promise<string> => {
    const b = new Browser()
    await login(b, s.url, user, { remember: true })
    return `sg-device=${b.cookies(s.url).get('sg-device')!}`
  }
  const through = async (port: number, cookie: string): Promise<{ status: number, setCookies: string[] }> => {
    const res = await fetch(`http://127.0.0.1:${port}/api/who`, { headers: { cookie, accept: 'application/json', host: gateway.host } })
    await res.arrayBuffer()
    return { status: res.status, setCookies: res.headers.getSetCookie() }
  }

  t.test('with proxy_buffer_size 16k (what the chart sets): renewed, every chunk delivered', async (t) => {
    const nginx = await startNginxProxy({ gateway: s.url, proxyBufferSize: '16k' })
    t.teardown(() => nginx.stop())
    const res = await through(nginx.port, await deviceOnly('many-groups-una'))
    t.equal(res.status, 200)
    const set = res.setCookies.map((c) => c.split('=', 1)[0])
    t.ok(set.includes('sg.0') && set.includes('sg.1') && set.includes('sg-device'), `the chunks and the rotated device cookie arrive (${set.join(', ')})`)
    const bytes = res.setCookies.reduce((n, c) => n + c.length + 'set-cookie: \r\n'.length, 0)
    t.ok(bytes > 4096, `${bytes} bytes of Set-Cookie: more than nginx's default buffer holds`)
  })

  t.test('with nginx\'s default buffer: the answer is lost (502)', async (t) => {
    const nginx = await startNginxProxy({ gateway: s.url })
    t.teardown(() => nginx.stop())
    t.equal((await through(nginx.port, await deviceOnly('many-groups-vic'))).status, 502)
  })
})
