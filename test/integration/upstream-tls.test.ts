/**
 * TLS towards upstreams: certificates are verified (by default, with a private CA, with a server name),
 * and a client certificate is presented for mTLS; WebSockets over wss the same.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import WebSocket from 'ws'
import { makePki } from '../helpers/certs.js'
import { startStack } from '../helpers/stack.js'

interface Upstream { url: string, seen: Array<{ url: string, clientCert: boolean }> }

async function httpsUpstream (t: Test, opts: { certFile: string, keyFile: string, requireClientCertFrom?: string }): Promise<Upstream> {
  const seen: Upstream['seen'] = []
  const server: Server = createServer({
    cert: readFileSync(opts.certFile),
    key: readFileSync(opts.keyFile),
    ...(opts.requireClientCertFrom !== undefined ? { requestCert: true, rejectUnauthorized: true, ca: readFileSync(opts.requireClientCertFrom) } : {})
  }, (req, res) => {
    seen.push({ url: req.url ?? '', clientCert: (req.socket as import('node:tls').TLSSocket).getPeerCertificate?.()?.subject !== undefined })
    res.end(JSON.stringify({ user: req.headers['x-forwarded-user'] ?? null }))
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => ws.send('hello over wss'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { wss.close(); server.closeAllConnections(); server.close() })
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

t.test('upstream TLS', async (t) => {
  const pki = makePki()
  const server = pki.issue('127.0.0.1', 'server')
  const named = pki.issue('upstream.internal', 'server')
  const client = pki.issue('sessiongate', 'client')
  const plain = await httpsUpstream(t, server)
  const byName = await httpsUpstream(t, named)
  const mtls = await httpsUpstream(t, { ...server, requireClientCertFrom: pki.caFile })
  const s = await startStack(t, {
    routes: [
      { prefix: '/unverified', upstream: plain.url, auth: 'none' },
      { prefix: '/ca', upstream: plain.url, auth: 'none', tls: { caFile: pki.caFile } },
      { prefix: '/name', upstream: byName.url, auth: 'none', tls: { caFile: pki.caFile, serverName: 'upstream.internal' } },
      { prefix: '/wrongname', upstream: byName.url, auth: 'none', tls: { caFile: pki.caFile } },
      { prefix: '/mtls', upstream: mtls.url, auth: 'none', tls: { caFile: pki.caFile, certFile: client.certFile, keyFile: client.keyFile } },
      { prefix: '/nocert', upstream: mtls.url, auth: 'none', tls: { caFile: pki.caFile } },
      { prefix: '/skip', upstream: plain.url, auth: 'none', tls: { insecureSkipVerify: true } }
    ]
  })
  const status = async (path: string): Promise<number> => (await fetch(`${s.url}${path}`)).status
  t.not(await status('/unverified/x'), 200, 'a certificate from an unknown CA is refused by default')
  t.equal(plain.seen.length, 0, 'nothing reached the unverified upstream')
  t.equal(await status('/ca/x'), 200, 'trusted with tls.caFile')
  t.equal(await status('/name/x'), 200, 'serverName checks the certificate against that name')
  t.not(await status('/wrongname/x'), 200, 'without serverName the name 127.0.0.1 does not match')
  t.equal(await status('/mtls/x'), 200, 'the client certificate is presented')
  t.ok(mtls.seen.at(-1)?.clientCert, 'the upstream saw it')
  t.not(await status('/nocert/x'), 200, 'an upstream requiring a client certificate refuses the gateway without one')
  t.equal(await status('/skip/x'), 200, 'insecureSkipVerify (tests only) accepts anything')

  const hello = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`${s.url.replace('http', 'ws')}/ca/live`, { headers: { origin: s.url } })
    ws.once('message', (m) => { resolve(m.toString()); ws.close() })
    ws.once('error', reject)
  })
  t.equal(hello, 'hello over wss', 'WebSockets to a wss upstream use the same TLS settings')
  const refused = await new Promise<string>((resolve) => {
    const ws = new WebSocket(`${s.url.replace('http', 'ws')}/unverified/live`, { headers: { origin: s.url } })
    ws.once('message', () => { resolve('message'); ws.close() })
    ws.once('close', () => resolve('closed'))
    ws.once('error', () => resolve('error'))
  })
  t.not(refused, 'message', 'no WebSocket through to an unverified wss upstream')
})

t.test('route tls: config errors name the key', async (t) => {
  const { parseConfig } = await import('../../src/config/loader.js')
  const base = 'publicUrl: https://a.example\nadmin: { token: 0123456789abcdef }\noidc: { issuer: https://idp.example, clientId: x, clientSecret: y }\nsession: { keys: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] }\n'
  t.throws(() => parseConfig(`${base}routes: [{ prefix: /, upstream: "http://a:1", tls: { caFile: /x } }]\n`), /routes\[0\]\.tls: applies to an https upstream only/)
  t.throws(() => parseConfig(`${base}routes: [{ prefix: /, upstream: "https://a:1", tls: { certFile: /x } }]\n`), /routes\[0\]\.tls\.keyFile: certFile and keyFile go together/)
  t.throws(() => parseConfig(`${base}routes: [{ prefix: /, upstream: "https://a:1", tls: { caFile: /nonexistent.pem } }]\n`), /routes\[0\]\.tls\.caFile: cannot read/)
})
