/**
 * store.redis.tls against a real TLS-only redis-server (Debian's is built with TLS): a private CA and a
 * client certificate (the server requires one), and no connection without the CA.
 */
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { makePki } from '../helpers/certs.js'
import { freePort } from '../helpers/ports.js'
import { spawnRedis } from '../helpers/redis-process.js'
import { startStack } from '../helpers/stack.js'

t.test('Redis over TLS with a private CA and a client certificate', async (t) => {
  const pki = makePki()
  const server = pki.issue('127.0.0.1', 'server')
  const client = pki.issue('sessiongate', 'client')
  const tlsPort = await freePort()
  const redis = await spawnRedis((port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--tls-port', String(tlsPort), '--tls-cert-file', server.certFile, '--tls-key-file', server.keyFile,
    '--tls-ca-cert-file', pki.caFile, '--tls-auth-clients', 'yes'])
  t.teardown(() => redis.stop())
  const s = await startStack(t, { config: { store: { kind: 'redis', redis: { url: `rediss://127.0.0.1:${tlsPort}`, tls: { caFile: pki.caFile, certFile: client.certFile, keyFile: client.keyFile } } } } })
  t.equal(s.gateway.ctx.store.kind, 'redis')
  const b = new Browser()
  await login(b, s.url, 'tls-user')
  t.equal((await b.fetch(`${s.url}/x`, { headers: { accept: 'application/json' } })).status, 200, 'sessions work over TLS')
  t.equal((await s.gateway.ctx.store.listSessions('tls-user')).length, 1, 'the record is in the TLS Redis')

  const untrusted = await startStack(t, { config: { store: { kind: 'redis', redis: { url: `rediss://127.0.0.1:${tlsPort}`, commandTimeout: '300ms' } } } })
  await t.rejects(untrusted.gateway.ctx.store.ping(), /unavailable/i, 'without the CA (and a client certificate) the store cannot connect')
})
