/**
 * `ssf.transmitters`: defaults, and each bad value stops start-up with an error naming its key.
 */
import t from 'tap'
import { stringify } from 'yaml'
import { ConfigError, parseConfig } from '../../src/config/loader.js'
import { generateKey } from '../../src/config/keygen.js'

const env = { SG_ADMIN_TOKEN: 'admin-token-0123456789', SG_SESSION_KEY: generateKey(), SG_SSF_PUSH_TOKEN: 'push-token-0123456789' }
type Obj = Record<string, any>
const base = (transmitters: Obj[], over: Obj = {}): Obj => ({
  publicUrl: 'https://app.example.com',
  admin: { token: '${SG_ADMIN_TOKEN}' },
  oidc: { issuer: 'https://idp.example.com', clientId: 'gw' },
  session: { keys: ['${SG_SESSION_KEY}'] },
  routes: [{ prefix: '/', upstream: 'http://127.0.0.1:3000' }],
  ssf: { transmitters },
  ...over
})
const push = { issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', pushToken: '${SG_SSF_PUSH_TOKEN}' }

t.test('defaults and normalisation', async (t) => {
  t.same(parseConfig(stringify(base([])), env).ssf, { transmitters: [] }, 'no transmitters')
  const { ssf: _none, ...noSsf } = base([])
  t.same(parseConfig(stringify(noSsf), env).ssf, { transmitters: [] }, 'no ssf key')
  t.same(parseConfig(stringify(base([push])), env).ssf.transmitters, [{
    issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', audience: 'https://app.example.com', delivery: 'push', pushToken: 'push-token-0123456789', manageStream: false
  }], 'audience defaults to publicUrl; the token from the environment')
  const poll = parseConfig(stringify(base([{ issuer: 'https://tx.example', configurationUrl: 'https://tx.example/.well-known/ssf-configuration', audience: 'urn:gw', delivery: 'poll', pollToken: 'p', manageStream: true, managementToken: 'm' }])), env).ssf.transmitters[0]
  t.match(poll, { delivery: 'poll', pollToken: 'p', manageStream: true, managementToken: 'm', audience: 'urn:gw' })
  t.equal(poll?.pollUrl, undefined, 'poll without pollUrl: the managed stream names it')
  t.ok(parseConfig(stringify(base([{ ...push, issuer: 'http://127.0.0.1:9', jwksUri: 'http://127.0.0.1:9/jwks' }], { oidc: { issuer: 'http://127.0.0.1:8', clientId: 'gw', allowInsecureHttp: true } })), env), 'http with allowInsecureHttp')
})

function rejects (name: string, transmitters: Obj[], key: string, msg?: RegExp): void {
  t.test(name, async (t) => {
    let err: unknown
    try { parseConfig(stringify(base(transmitters)), env) } catch (e) { err = e }
    t.ok(err instanceof ConfigError, 'ConfigError')
    t.equal((err as ConfigError).key, key)
    t.ok((err as Error).message.startsWith(`${key}: `), (err as Error).message)
    if (msg !== undefined) t.match((err as Error).message, msg)
    t.notOk((err as Error).message.includes('push-token-0123456789'), 'never echoes a token')
  })
}

rejects('unknown key', [{ ...push, pushtoken: 'x' }], 'ssf.transmitters[0].pushtoken', /unknown key/)
rejects('no issuer', [{ jwksUri: push.jwksUri, pushToken: push.pushToken }], 'ssf.transmitters[0].issuer', /required/)
rejects('issuer not a URL', [{ ...push, issuer: 'idp' }], 'ssf.transmitters[0].issuer', /absolute http\(s\) URL/)
rejects('http without allowInsecureHttp', [{ ...push, jwksUri: 'http://idp.example.com/jwks' }], 'ssf.transmitters[0].jwksUri', /http:\/\/ refused/)
rejects('credentials in a URL', [{ ...push, jwksUri: 'https://u:p@idp.example.com/jwks' }], 'ssf.transmitters[0].jwksUri', /credentials/)
rejects('neither jwksUri nor configurationUrl', [{ issuer: push.issuer, pushToken: push.pushToken }], 'ssf.transmitters[0].jwksUri', /jwksUri or configurationUrl/)
rejects('push without pushToken', [{ issuer: push.issuer, jwksUri: push.jwksUri }], 'ssf.transmitters[0].pushToken', /required/)
rejects('short pushToken', [{ ...push, pushToken: 'short' }], 'ssf.transmitters[0].pushToken', /at least 16/)
rejects('bad delivery', [{ ...push, delivery: 'email' }], 'ssf.transmitters[0].delivery', /push, poll/)
rejects('pollToken with push', [{ ...push, pollToken: 'p' }], 'ssf.transmitters[0].pollToken', /delivery: poll/)
rejects('pushToken with poll', [{ ...push, delivery: 'poll', pollUrl: 'https://idp.example.com/poll', pollToken: 'p' }], 'ssf.transmitters[0].pushToken', /delivery: push/)
rejects('poll without pollToken', [{ issuer: push.issuer, jwksUri: push.jwksUri, delivery: 'poll', pollUrl: 'https://idp.example.com/poll' }], 'ssf.transmitters[0].pollToken', /required/)
rejects('poll without pollUrl nor manageStream', [{ issuer: push.issuer, jwksUri: push.jwksUri, delivery: 'poll', pollToken: 'p' }], 'ssf.transmitters[0].pollUrl', /required/)
rejects('manageStream without configurationUrl', [{ ...push, manageStream: true, managementToken: 'm' }], 'ssf.transmitters[0].configurationUrl', /manageStream/)
rejects('manageStream without managementToken', [{ ...push, configurationUrl: 'https://idp.example.com/.well-known/ssf-configuration', manageStream: true }], 'ssf.transmitters[0].managementToken', /required/)
rejects('managementToken without manageStream', [{ ...push, managementToken: 'm' }], 'ssf.transmitters[0].managementToken', /manageStream/)
rejects('duplicate issuer', [push, { ...push, pushToken: 'another-token-0123456789' }], 'ssf.transmitters[1].issuer', /duplicate/)
rejects('duplicate pushToken', [push, { ...push, issuer: 'https://other.example.com' }], 'ssf.transmitters[1].pushToken', /its own/)
