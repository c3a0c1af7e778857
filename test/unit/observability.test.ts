/**
 * The small pure parts of observability and rate limiting: the config keys (defaults, errors naming the
 * key), X-Request-ID validation, how IdP calls are named, and which routes carry the rate limit.
 */
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { stringify } from 'yaml'
import { ConfigError, parseConfig } from '../../src/config/loader.js'
import { generateKey } from '../../src/config/keygen.js'
import { requestIds } from '../../src/obs/request-id.js'
import { idpOp } from '../../src/obs/observe.js'
import { isLimited } from '../../src/http/rate-limit.js'
import type * as oc from 'openid-client'

const env = { SG_ADMIN_TOKEN: 'admin-token-0123456789', SG_SESSION_KEY: generateKey() }

function config (extra: Record<string, unknown>): ReturnType<typeof parseConfig> {
  return parseConfig(stringify({
    publicUrl: 'https://app.example.com',
    admin: { token: '${SG_ADMIN_TOKEN}' },
    oidc: { issuer: 'https://idp.example.com', clientId: 'gw' },
    session: { keys: ['${SG_SESSION_KEY}'] },
    routes: [{ prefix: '/', upstream: 'http://127.0.0.1:3000' }],
    ...extra
  }), env)
}

function rejected (extra: Record<string, unknown>): ConfigError {
  try {
    config(extra)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('accepted')
}

t.test('config: defaults', async (t) => {
  const c = config({})
  t.same(c.rateLimit, { enabled: true, perMinute: 300 }, 'rate limits on, generous')
  t.equal(c.tracing, undefined, 'tracing off')
})

t.test('config: tracing', async (t) => {
  t.same(config({ tracing: { otlpEndpoint: 'http://otel-collector:4318' } }).tracing,
    { otlpEndpoint: 'http://otel-collector:4318/v1/traces', serviceName: 'sessiongate', sampleRatio: 1 }, 'the base URL gets /v1/traces')
  t.equal(config({ tracing: { otlpEndpoint: 'https://otel.example.com/otlp/' } }).tracing?.otlpEndpoint, 'https://otel.example.com/otlp/v1/traces')
  t.equal(config({ tracing: { otlpEndpoint: 'http://c:4318/v1/traces' } }).tracing?.otlpEndpoint, 'http://c:4318/v1/traces', 'a traces URL is kept')
  t.same(config({ tracing: { otlpEndpoint: 'http://c:4318', serviceName: 'edge-gw', sampleRatio: 0.25 } }).tracing,
    { otlpEndpoint: 'http://c:4318/v1/traces', serviceName: 'edge-gw', sampleRatio: 0.25 })
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ tracing: {} }, 'tracing.otlpEndpoint', /required/],
    [{ tracing: { otlpEndpoint: 'otel-collector:4318' } }, 'tracing.otlpEndpoint', /http\(s\) URL/],
    [{ tracing: { otlpEndpoint: 'http://user:pw@c:4318' } }, 'tracing.otlpEndpoint', /credentials/],
    [{ tracing: { otlpEndpoint: 'http://c:4318?x=1' } }, 'tracing.otlpEndpoint', /query/],
    [{ tracing: { otlpEndpoint: 'http://c:4318', sampleRatio: 2 } }, 'tracing.sampleRatio', /<= 1/],
    [{ tracing: { otlpEndpoint: 'http://c:4318', endpoint: 'x' } }, 'tracing.endpoint', /unknown key/]
  ]
  for (const [extra, key, msg] of cases) {
    const err = rejected(extra)
    t.equal(err.key, key, `${JSON.stringify(extra)}: names ${key}`)
    t.match(err.message, msg)
  }
})

t.test('config: rateLimit', async (t) => {
  t.same(config({ rateLimit: { perMinute: 30 } }).rateLimit, { enabled: true, perMinute: 30 })
  t.same(config({ rateLimit: { enabled: false } }).rateLimit, { enabled: false, perMinute: 300 })
  for (const [extra, key] of [
    [{ rateLimit: { perMinute: 0 } }, 'rateLimit.perMinute'],
    [{ rateLimit: { perMinute: 1.5 } }, 'rateLimit.perMinute'],
    [{ rateLimit: { enabled: 'yes' } }, 'rateLimit.enabled'],
    [{ rateLimit: { perMinte: 10 } }, 'rateLimit.perMinte']
  ] as const) t.equal(rejected(extra).key, key, `${JSON.stringify(extra)}: names ${key}`)
  t.match(rejected({ rateLimit: { perMinte: 10 } }).message, /did you mean "perMinute"/)
})

t.test('X-Request-ID: kept only from a trusted proxy and only when well-formed', async (t) => {
  const req = (id?: string | string[]): IncomingMessage => ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as unknown as IncomingMessage
  const UUID = /^[0-9a-f-]{36}$/
  const trusted = requestIds(true)
  const untrusted = requestIds(false)
  t.equal(trusted(req('abc-123')), 'abc-123')
  t.equal(trusted(req('x'.repeat(128))), 'x'.repeat(128), '128 characters is the bound')
  t.match(untrusted(req('abc-123')), UUID, 'ignored without trustProxy')
  for (const bad of ['', 'a b', 'x'.repeat(129), 'line\nbreak', 'tab\t', 'naïve', '\u0000']) t.match(trusted(req(bad)), UUID, `replaced: ${JSON.stringify(bad.slice(0, 12))}`)
  t.match(trusted(req(['a', 'b'])), UUID, 'a repeated header is replaced')
  t.match(trusted(req()), UUID, 'generated when absent')
  t.not(trusted(req()), trusted(req()), 'fresh each time')
})

t.test('IdP calls are named by grant type or endpoint', async (t) => {
  const md = {
    issuer: 'https://idp',
    token_endpoint: 'https://idp/token',
    userinfo_endpoint: 'https://idp/me',
    revocation_endpoint: 'https://idp/revoke',
    jwks_uri: 'https://idp/jwks',
    pushed_authorization_request_endpoint: 'https://idp/par'
  } as oc.ServerMetadata
  const form = (o: Record<string, string>): URLSearchParams => new URLSearchParams(o)
  t.equal(idpOp('https://idp/token', { body: form({ grant_type: 'authorization_code', code: 'c' }) }, md), 'code_exchange')
  t.equal(idpOp('https://idp/token', { body: form({ grant_type: 'refresh_token' }) }, md), 'refresh')
  t.equal(idpOp('https://idp/token', { body: 'grant_type=client_credentials' }, md), 'token')
  t.equal(idpOp('https://idp/me', {}, md), 'userinfo')
  t.equal(idpOp('https://idp/revoke', { body: form({ token: 't' }) }, md), 'revocation')
  t.equal(idpOp('https://idp/jwks', {}, md), 'jwks')
  t.equal(idpOp('https://idp/par', { body: form({ client_id: 'x' }) }, md), 'par')
  t.equal(idpOp('https://idp/.well-known/openid-configuration', {}, undefined), 'discovery')
  t.equal(idpOp('https://idp/elsewhere', {}, md), 'other', 'a bounded set of names, whatever the URL')
})

t.test('the limited routes', async (t) => {
  t.ok(isLimited('/auth', 'GET', '/auth/login'))
  t.ok(isLimited('/auth', 'HEAD', '/auth/login'), 'HEAD runs the same handler')
  t.ok(isLimited('/auth', 'GET', '/auth/callback'))
  t.ok(isLimited('/auth', 'POST', '/auth/backchannel-logout'))
  t.ok(isLimited('/auth', 'POST', '/auth/ssf/push'))
  t.ok(isLimited('/sso', ['POST'], '/sso/ssf/events'), 'any POST under <authPrefix>/ssf/')
  t.notOk(isLimited('/auth', ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'], '/auth/backchannel-logout'), 'its 405 route is not')
  t.notOk(isLimited('/auth', 'GET', '/auth/session'))
  t.notOk(isLimited('/auth', 'GET', '/auth/frontchannel-logout'))
  t.notOk(isLimited('/auth', ['GET', 'POST'], '/*'), 'proxied routes are not')
  t.notOk(isLimited('/sso', 'GET', '/auth/login'), 'the configured prefix counts')
})
