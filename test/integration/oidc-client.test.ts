/**
 * OIDC client options against the real oidc-provider: client_secret_post and private_key_jwt at the
 * token endpoint, PAR when the IdP advertises it, prompt only when configured, a private-CA issuer over
 * https, and the start-up warnings an operator needs (no back-channel logout, checkIdp with offline).
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, exportPKCS8 } from 'jose'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { parseConfig } from '../../src/config/loader.js'
import { discoverOidc } from '../../src/oidc/client.js'

const api = { accept: 'application/json' }

t.test('client_secret_post at the token endpoint', async (t) => {
  const s = await startStack(t, { gatewayClient: { token_endpoint_auth_method: 'client_secret_post' }, oidc: { tokenEndpointAuthMethod: 'client_secret_post' } })
  const b = new Browser()
  await login(b, s.url, 'post-user')
  t.equal((await b.fetch(`${s.url}/x`, { headers: api })).status, 200, 'signed in: the IdP accepted the secret in the body')
})

t.test('private_key_jwt with a PEM key and with a JWK', async (t) => {
  for (const form of ['pem', 'jwk'] as const) {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    const pub = { ...(await exportJWK(publicKey)), use: 'sig', alg: 'ES256' }
    const { calculateJwkThumbprint } = await import('jose')
    const kid = await calculateJwkThumbprint(pub)
    const key = form === 'pem' ? await exportPKCS8(privateKey) : JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: 'ES256' })
    const s = await startStack(t, {
      gatewayClient: { token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', client_secret: undefined, jwks: { keys: [{ ...pub, kid }] } },
      oidc: { tokenEndpointAuthMethod: 'private_key_jwt', privateKey: key, clientSecret: undefined }
    })
    const b = new Browser()
    await login(b, s.url, `pkjwt-${form}`)
    t.equal((await b.fetch(`${s.url}/x`, { headers: api })).status, 200, `${form}: the IdP accepted the signed client assertion`)
  }
})

t.test('PAR when advertised; prompt only when configured', async (t) => {
  const s = await startStack(t)
  const plain = await fetch(`${s.url}/auth/login`, { redirect: 'manual' })
  const url = new URL(plain.headers.get('location')!)
  t.ok(url.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'), 'the browser carries only a request_uri')
  t.equal(url.searchParams.get('code_challenge'), null, 'no parameters in the front channel')
  t.equal(url.searchParams.get('prompt'), null)
  const s2 = await startStack(t, { oidc: { par: 'never', prompt: 'login' } })
  const direct = new URL((await fetch(`${s2.url}/auth/login`, { redirect: 'manual' })).headers.get('location')!)
  t.equal(direct.searchParams.get('prompt'), 'login', 'prompt as configured')
  t.equal(direct.searchParams.get('code_challenge_method'), 'S256', 'par: never sends the parameters directly')
  const s3 = await startStack(t, { oidc: { par: 'never', prompt: '' } })
  const none = new URL((await fetch(`${s3.url}/auth/login`, { redirect: 'manual' })).headers.get('location')!)
  t.equal(none.searchParams.get('prompt'), null, 'no prompt=consent forced for offline_access')
  t.match(none.searchParams.get('scope') ?? '', /offline_access/)
})

t.test('start-up warnings: no back-channel logout, checkIdp with offline_access; /readyz lists them', async (t) => {
  const s = await startStack(t, { noBackchannel: true, config: { rememberMe: { checkIdp: true } } })
  let ready: { checks: { idp: string }, warnings?: Array<{ code: string }> } = { checks: { idp: '' } }
  for (let i = 0; i < 50 && ready.checks.idp !== 'ok'; i++) {
    ready = await (await fetch(`${s.adminUrl}/readyz`)).json() as typeof ready
    if (ready.checks.idp !== 'ok') await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const codes = (ready.warnings ?? []).map((w) => w.code).sort()
  t.same(codes, ['checkidp_with_offline_access', 'no_backchannel_logout'])
  t.equal(s.logs.filter((l) => l.includes('"warning":"no_backchannel_logout"')).length, 1, 'logged once')
  await login(new Browser(), s.url, 'nosid-user')
  const after = await (await fetch(`${s.adminUrl}/readyz`)).json() as { warnings?: Array<{ code: string }> }
  t.ok(after.warnings?.some((w) => w.code === 'no_sid_in_id_token'), 'an ID token without sid is noticed at the first login')
  const fine = await startStack(t)
  await login(new Browser(), fine.url, 'warn-free') // discovery done, and an ID token with sid seen
  const r2 = await (await fetch(`${fine.adminUrl}/readyz`)).json() as { warnings?: unknown[] }
  t.equal(r2.warnings, undefined, 'an IdP with back-channel logout and sid: no warning')
})

t.test('oidc.caFile: an https issuer signed by a private CA', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-ca-'))
  const run = (args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' }) }
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=sessiongate test CA'])
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'idp.key', '-out', 'idp.csr', '-subj', '/CN=127.0.0.1'])
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  run(['x509', '-req', '-in', 'idp.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'idp.pem', '-days', '1', '-extfile', 'ext.cnf'])
  // A minimal https issuer serving its discovery document
  const server = createHttpsServer({ key: readFileSync(join(dir, 'idp.key')), cert: readFileSync(join(dir, 'idp.pem')) }, (req, res) => {
    const port = (server.address() as AddressInfo).port
    const issuer = `https://127.0.0.1:${port}`
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  const yaml = (ca: string): string => `publicUrl: https://app.example\nadmin: { token: ${'t'.repeat(20)} }\noidc: { issuer: "${issuer}", clientId: gw, clientSecret: s${ca} }\nsession: { keys: [${'A'.repeat(43)}] }\nroutes: [{ prefix: /, upstream: "http://127.0.0.1:1" }]\n`
  await t.rejects(discoverOidc(parseConfig(yaml('')).oidc), /discovery .* failed: .*(certificate|CERT)/i, 'untrusted without the CA, and the error says why')
  const client = await discoverOidc(parseConfig(yaml(`, caFile: "${join(dir, 'ca.pem')}"`)).oidc)
  t.equal(client.issuer, issuer, 'trusted with oidc.caFile')
  t.throws(() => parseConfig(yaml(`, caFile: "${join(dir, 'missing.pem')}"`)), /oidc\.caFile: cannot read/)
})
