import t from 'tap'
import { identityRefusal, valueProblem } from '../../src/core/identity.js'

t.test('identity values that upstream parsers would trim or strip are refused', async (t) => {
  for (const v of [' admin', 'admin\t', 'admin ', 'ad\u0000min', 'ad\u007fmin', 'a\u0085b', 'a\u2028b', 'a\r\nX-Forwarded-User: root', '', 'x'.repeat(1025)]) {
    t.ok(typeof valueProblem(v) === 'string', encodeURIComponent(v.slice(0, 20)))
  }
  for (const v of ['admin', 'ad min', 'José Müller', 'user@example.com', 'x'.repeat(1024), 'CN=a,OU=b']) {
    t.equal(valueProblem(v), undefined, encodeURIComponent(v.slice(0, 20)))
  }
})

t.test('identityRefusal names the first claim refused', async (t) => {
  t.equal(identityRefusal('alice', { email: 'a@example.com', groups: ['g1', 'g2'] }), undefined)
  t.same(identityRefusal('alice ', {}), { claim: 'sub', problem: 'has leading or trailing whitespace' })
  t.same(identityRefusal('alice', { email: 'a@example.com\n' }), { claim: 'email', problem: 'contains a control character' })
  t.same(identityRefusal('alice', { preferred_username: '\talice' }), { claim: 'preferred_username', problem: 'contains a control character' })
  t.same(identityRefusal('alice', { groups: ['ok', ' admins'] }), { claim: 'groups[1]', problem: 'has leading or trailing whitespace' })
})

t.test('branded pages: title, logo and accent colour, escaped, with a CSP that allows only the logo', async (t) => {
  const { createPages } = await import('../../src/http/pages.js')
  const { parseConfig } = await import('../../src/config/loader.js')
  const p = createPages({ title: 'Example <Corp>', logoUrl: '/static/logo.svg', accentColor: '#aa3300' })
  const html = p.errorPage('Sign-in failed', 'Try again')
  t.match(html, /<title>Sign-in failed · Example &lt;Corp&gt;<\/title>/)
  t.match(html, /<img src="\/static\/logo.svg"/)
  t.match(html, /#aa3300/)
  t.notMatch(html, /#2450d8/)
  const headers: Record<string, string> = {}
  const reply = { header (k: string, v: string) { headers[k] = v; return this }, type (v: string) { headers['content-type'] = v; return this } }
  p.headers(reply as never)
  t.match(headers['content-security-policy'], /img-src 'self';/)
  const remote: Record<string, string> = {}
  createPages({ logoUrl: 'https://cdn.example.com/l.png' }).headers({ header (k: string, v: string) { remote[k] = v; return this }, type () { return this } } as never)
  t.match(remote['content-security-policy'], /img-src https:\/\/cdn\.example\.com;/)
  const base = 'publicUrl: https://a.example\nadmin: { token: 0123456789abcdef }\noidc: { issuer: https://idp.example, clientId: x, clientSecret: y }\nsession: { keys: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] }\nroutes: [{ prefix: /, upstream: "http://a:1" }]\n'
  t.throws(() => parseConfig(`${base}pages: { logoUrl: "javascript:alert(1)" }\n`), /pages\.logoUrl/)
  t.throws(() => parseConfig(`${base}pages: { accentColor: "red;}body{x" }\n`), /pages\.accentColor/)
  t.same(parseConfig(`${base}pages: { title: Example }\n`).pages, { title: 'Example' })
})
