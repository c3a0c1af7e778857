import t from 'tap'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { ConfigError, loadConfig, parseConfig, substituteEnv } from '../../src/config/loader.js'
import { parseDuration, parseDurationMs } from '../../src/config/duration.js'
import { generateKey } from '../../src/config/keygen.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const KEY = generateKey()
const env = { SG_ADMIN_TOKEN: 'admin-token-0123456789', SG_CLIENT_SECRET: 'client-secret', SG_SESSION_KEY: KEY }

type Obj = Record<string, any>

/** A small valid config, as a plain object so each case can break one thing. */
function base (): Obj {
  return {
    publicUrl: 'https://app.example.com',
    admin: { token: '${SG_ADMIN_TOKEN}' },
    oidc: { issuer: 'https://idp.example.com', clientId: 'gw' },
    session: { keys: ['${SG_SESSION_KEY}'] },
    routes: [{ prefix: '/', upstream: 'http://127.0.0.1:3000' }]
  }
}

function parseObj (o: unknown) {
  return parseConfig(stringify(o), env)
}

function catchErr (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

/** One subtest per rejection: a ConfigError whose key and message name `key`. */
function rejects (name: string, mutate: (c: Obj) => void, key: string, msg?: RegExp): void {
  t.test(name, async t => {
    const c = base()
    mutate(c)
    const err = catchErr(() => parseObj(c))
    t.ok(err instanceof ConfigError, 'throws ConfigError')
    if (!(err instanceof ConfigError)) return
    t.equal(err.code, 'SG_CONFIG_INVALID')
    t.equal(err.key, key, 'key')
    t.ok(err.message.startsWith(`${key}: `), `message names the key: ${err.message}`)
    if (msg !== undefined) t.match(err.message, msg)
  })
}

t.test('config/example.yaml and config/demo.yaml parse with the env set', async t => {
  const ex = loadConfig(join(root, 'config/example.yaml'), env)
  t.equal(ex.publicUrl, 'https://app.example.com')
  t.equal(ex.admin.token, env.SG_ADMIN_TOKEN)
  t.equal(ex.oidc.clientSecret, 'client-secret')
  t.same(ex.session.keys, [Buffer.from(KEY, 'base64url')])
  t.equal(ex.store.redis?.commandTimeoutMs, 1000)

  const demo = loadConfig(join(root, 'config/demo.yaml'), env)
  t.equal(demo.publicUrl, 'http://localhost:8080')
  t.same(demo.listen, { host: '127.0.0.1', port: 8080 })
  t.same(demo.admin.listen, { host: '127.0.0.1', port: 9090 })
  t.equal(demo.oidc.issuer, 'http://localhost:8081')
  t.equal(demo.oidc.allowInsecureHttp, true)
  t.equal(demo.oidc.clientId, 'sessiongate-demo')
  t.equal(demo.session.ttl, 300)
  t.equal(demo.store.kind, 'memory')
  t.same(demo.routes, [{ prefix: '/', upstream: 'http://127.0.0.1:8082', auth: 'required', forwardAccessToken: false, csrf: false, bearer: false }])
})

t.test('defaults are applied', async t => {
  const c = parseObj(base())
  t.same(c.listen, { host: '0.0.0.0', port: 8080 })
  t.same(c.admin.listen, { host: '127.0.0.1', port: 9090 })
  t.equal(c.authPrefix, '/auth')
  t.equal(c.trustProxy, false)
  t.equal(c.logLevel, 'info')
  t.same(c.oidc.scopes, ['openid', 'profile', 'email', 'offline_access'])
  t.equal(c.oidc.allowInsecureHttp, false)
  t.notOk('clientSecret' in c.oidc)
  t.same(c.oidc.audience, [], 'no audience: no route takes bearer tokens')
  t.equal(c.oidc.accessTokenMaxAge, 3600)
  t.equal(c.session.ttl, 300)
  t.equal(c.session.absoluteTtl, 12 * 3600)
  t.same(c.rememberMe, { enabled: true, ttl: 30 * 86400, rotationGrace: 5, checkIdp: false, ask: false })
  t.same(c.store, { kind: 'memory', failMode: 'closed', nearCache: false })
  t.same(c.routes[0], { prefix: '/', upstream: 'http://127.0.0.1:3000', auth: 'required', forwardAccessToken: false, csrf: false, bearer: false })
  const partial = base()
  partial.listen = { port: 0 }
  t.same(parseObj(partial).listen, { host: '0.0.0.0', port: 0 }, 'a partial listen keeps the default host')
})

t.test('normalisation', async t => {
  const c = base()
  c.publicUrl = 'https://App.Example.com/base/'
  c.oidc.issuer = 'https://idp.example.com/realms/x/'
  c.session.keys = [KEY, Buffer.from(KEY, 'base64url').toString('base64')]
  c.routes.push({ prefix: '/api', upstream: 'https://api.internal', auth: 'none', forwardAccessToken: true, csrf: true })
  const n = parseObj(c)
  t.equal(n.publicUrl, 'https://app.example.com/base', 'trailing slash stripped')
  t.equal(n.oidc.issuer, 'https://idp.example.com/realms/x/', 'issuer kept exactly (compared with iss)')
  t.equal(n.session.keys.length, 2, 'standard base64 accepted too')
  t.ok(n.session.keys.every(k => Buffer.isBuffer(k) && k.length === 32))
  t.same(n.routes[1], { prefix: '/api', upstream: 'https://api.internal', auth: 'none', forwardAccessToken: true, csrf: true, bearer: false })
})

t.test('durations', async t => {
  t.equal(parseDuration('90s'), 90)
  t.equal(parseDuration('5m'), 300)
  t.equal(parseDuration('12h'), 43200)
  t.equal(parseDuration('30d'), 2592000)
  t.equal(parseDuration(42), 42)
  t.equal(parseDuration('2000ms'), 2)
  t.equal(parseDurationMs('500ms'), 500)
  t.equal(parseDurationMs('1s'), 1000)
  for (const bad of ['5', '5x', '1.5h', '-5m', '0s', '', ' 5m', '5 m', '5M', '1h30m', '500ms', '99999999999999999d']) {
    t.throws(() => parseDuration(bad), `rejects ${JSON.stringify(bad)}`)
  }
  for (const bad of [1.5, -1, 0, Number.NaN]) t.throws(() => parseDuration(bad), `rejects ${bad}`)

  const c = base()
  c.session = { ttl: 600, absoluteTtl: '1d', keys: [KEY] }
  c.rememberMe = { ttl: '7d' }
  c.store = { redis: { url: 'redis://r', commandTimeout: '250ms' } }
  const n = parseObj(c)
  t.equal(n.session.ttl, 600, 'integer seconds')
  t.equal(n.session.absoluteTtl, 86400)
  t.equal(n.rememberMe.ttl, 7 * 86400)
  t.equal(n.rememberMe.enabled, true)
  t.equal(n.store.redis?.commandTimeoutMs, 250)
})

t.test('substituteEnv', async t => {
  t.equal(substituteEnv('a ${X} b ${Y}', { X: '1', Y: '' }), 'a 1 b ')
  t.equal(substituteEnv('$${X}', {}), '${X}', '$${X} is a literal ${X}')
  t.equal(substituteEnv('${not-a-name} $X', {}), '${not-a-name} $X', 'only ${NAME} is a reference')
  const err = catchErr(() => substituteEnv('${NOPE}', {}, 'oidc.clientSecret'))
  t.ok(err instanceof ConfigError)
  t.equal((err as ConfigError).key, 'oidc.clientSecret')
  t.match((err as ConfigError).message, /^oidc\.clientSecret: .*NOPE/)
})

t.test('env substitution in the file', async t => {
  const text = [
    'publicUrl: https://${HOST}',
    'admin: { token: "${SG_ADMIN_TOKEN}" }',
    'oidc: { issuer: https://idp.example.com, clientId: gw, clientSecret: "$${LITERAL}" }',
    'session:',
    '  keys: [${SG_SESSION_KEY}, ${SG_OLD_KEY}]',
    'routes: [{ prefix: /, upstream: "${UP}" }]'
  ].join('\n')
  const old = generateKey()
  const c = parseConfig(text, { ...env, HOST: 'gw.example.com', SG_OLD_KEY: old, UP: 'http://up:1' })
  t.equal(c.publicUrl, 'https://gw.example.com')
  t.equal(c.oidc.clientSecret, '${LITERAL}', 'escape')
  t.same(c.session.keys, [Buffer.from(KEY, 'base64url'), Buffer.from(old, 'base64url')], 'unquoted refs in a flow sequence')
  t.equal(c.routes[0]?.upstream, 'http://up:1')

  const err = catchErr(() => parseConfig(text, { ...env, HOST: 'h', UP: 'http://up:1' }))
  t.ok(err instanceof ConfigError, 'missing variable is a ConfigError')
  t.equal((err as ConfigError).key, 'session.keys[1]')
  t.match((err as ConfigError).message, /^session\.keys\[1\]: environment variable SG_OLD_KEY is not set/)

  const tricky = 'x\nroutes: []\n" ] } [ #'
  const c2 = base()
  c2.oidc.clientSecret = '${TRICKY}'
  const n = parseConfig(stringify(c2), { ...env, TRICKY: tricky })
  t.equal(n.oidc.clientSecret, tricky, 'an env value cannot inject YAML structure')
  t.equal(n.routes.length, 1)

  const c3 = base()
  c3.oidc.clientSecret = '${SG_UNSET}'
  const err3 = catchErr(() => parseObj(c3))
  t.match((err3 as Error).message, /^oidc\.clientSecret: environment variable SG_UNSET is not set/)
  t.equal((err3 as ConfigError).source, '<inline>')
})

// ---- rejections: each names its key

rejects('publicUrl not a URL', c => { c.publicUrl = 'app.example.com' }, 'publicUrl', /absolute http\(s\) URL/)
rejects('publicUrl not http(s)', c => { c.publicUrl = 'ftp://app.example.com' }, 'publicUrl', /http\(s\)/)
rejects('publicUrl with query', c => { c.publicUrl = 'https://app.example.com/?a=1' }, 'publicUrl', /query or fragment/)
rejects('publicUrl with fragment', c => { c.publicUrl = 'https://app.example.com/#x' }, 'publicUrl', /query or fragment/)
rejects('publicUrl missing', c => { delete c.publicUrl }, 'publicUrl', /required/)

rejects('oidc.issuer not a URL', c => { c.oidc.issuer = 'idp' }, 'oidc.issuer', /absolute/)
rejects('oidc.issuer over http', c => { c.oidc.issuer = 'http://idp.example.com' }, 'oidc.issuer', /oidc\.allowInsecureHttp: true/)
rejects('oidc.scopes without openid', c => { c.oidc.scopes = ['profile'] }, 'oidc.scopes', /openid/)
rejects('oidc.clientId missing', c => { delete c.oidc.clientId }, 'oidc.clientId', /required key is missing/)
t.test('http issuer accepted with allowInsecureHttp', async t => {
  const c = base()
  c.oidc.issuer = 'http://localhost:8081'
  c.oidc.allowInsecureHttp = true
  t.equal(parseObj(c).oidc.issuer, 'http://localhost:8081')
})

rejects('route upstream not a URL', c => { c.routes[0].upstream = '127.0.0.1:3000' }, 'routes[0].upstream', /absolute http\(s\) URL/)
rejects('route upstream not http', c => { c.routes[0].upstream = 'ws://127.0.0.1:3000' }, 'routes[0].upstream', /http\(s\)/)
rejects('route prefix without /', c => { c.routes[0].prefix = 'api' }, 'routes[0].prefix', /start with "\/"/)
rejects('duplicate route prefix', c => { c.routes.push({ prefix: '/', upstream: 'http://b' }) }, 'routes[1].prefix', /duplicate prefix "\/" \(also routes\[0\]\.prefix\)/)
rejects('route auth not an enum value', c => { c.routes[0].auth = 'yes' }, 'routes[0].auth', /must be one of required, optional, none/)
rejects('no routes', c => { c.routes = [] }, 'routes', /must not be empty/)
rejects('routes missing', c => { delete c.routes }, 'routes', /required key is missing/)

rejects('authPrefix without leading /', c => { c.authPrefix = 'auth' }, 'authPrefix', /start with "\/"/)
rejects('authPrefix with trailing /', c => { c.authPrefix = '/auth/' }, 'authPrefix', /end with "\/"/)
rejects('authPrefix is /', c => { c.authPrefix = '/' }, 'authPrefix', /must not be "\/"/)

rejects('session key of 16 bytes', c => { c.session.keys = [Buffer.alloc(16).toString('base64url')] }, 'session.keys[0]', /must decode to 32 bytes \(got 16\)/)
rejects('second session key bad', c => { c.session.keys = [KEY, 'not base64!'] }, 'session.keys[1]', /base64url/)
rejects('no session keys', c => { c.session.keys = [] }, 'session.keys', /must not be empty/)
rejects('session keys missing', c => { c.session = {} }, 'session.keys', /required key is missing/)
rejects('session key not a string', c => { c.session.keys = [123] }, 'session.keys[0]', /expected string, got integer/)

rejects('admin.token too short', c => { c.admin.token = 'short' }, 'admin.token', /at least 16 characters \(got 5\)/)
rejects('admin.token missing', c => { c.admin = {} }, 'admin.token', /required key is missing/)
rejects('absoluteTtl < ttl', c => { c.session.ttl = '2h'; c.session.absoluteTtl = '1h' }, 'session.absoluteTtl', /at least session\.ttl/)

rejects('listen.port too large', c => { c.listen = { port: 70000 } }, 'listen.port', /<= 65535/)
rejects('listen.port negative', c => { c.listen = { port: -1 } }, 'listen.port', />= 0/)
rejects('listen.port not an integer', c => { c.listen = { port: 80.5 } }, 'listen.port', /expected integer, got number/)
rejects('admin.listen.port a string', c => { c.admin.listen = { port: '9090' } }, 'admin.listen.port', /expected integer, got string/)

rejects('session.ttl bad duration', c => { c.session.ttl = '5 minutes' }, 'session.ttl', /invalid duration/)
rejects('rememberMe.ttl bad duration', c => { c.rememberMe = { ttl: '30x' } }, 'rememberMe.ttl', /invalid duration/)
rejects('session.ttl zero', c => { c.session.ttl = 0 }, 'session.ttl', /greater than zero/)
rejects('session.ttl wrong type', c => { c.session.ttl = true }, 'session.ttl', /expected string or integer, got boolean/)
rejects('redis.commandTimeout bad', c => { c.store = { redis: { url: 'redis://r', commandTimeout: 'soon' } } }, 'store.redis.commandTimeout', /invalid duration/)

rejects('logLevel unknown', c => { c.logLevel = 'verbose' }, 'logLevel', /must be one of fatal, error, warn, info, debug, trace, silent/)

rejects('unknown top-level key', c => { c.publicURL = 'x' }, 'publicURL', /unknown key \(did you mean "publicUrl"\?\)/)
rejects('unknown oidc key', c => { c.oidc.isuer = 'x' }, 'oidc.isuer', /^oidc\.isuer: unknown key/)
rejects('typo of a required key', c => { c.oidc.isuer = c.oidc.issuer; delete c.oidc.issuer }, 'oidc.isuer', /unknown key \(did you mean "issuer"\?\)/)
rejects('unknown key lists the allowed ones', c => { c.rememberMe = { foo: 1 } }, 'rememberMe.foo', /unknown key \(allowed: enabled, ttl, rotationGrace, checkIdp, ask\)/)
rejects('unknown route key', c => { c.routes[0].upstreams = 'x' }, 'routes[0].upstreams', /unknown key/)
rejects('unknown listen key', c => { c.listen = { hostname: 'x' } }, 'listen.hostname', /unknown key/)
rejects('unknown redis key', c => { c.store = { redis: { url: 'redis://r', db: 1 } } }, 'store.redis.db', /unknown key/)
rejects('odd unknown key is quoted', c => { c.oidc['a b'] = 1 }, 'oidc["a b"]', /unknown key/)

rejects('trustProxy not boolean', c => { c.trustProxy = 'yes' }, 'trustProxy', /expected boolean, got string/)
rejects('routes not a list', c => { c.routes = { prefix: '/' } }, 'routes', /expected list, got mapping/)
rejects('oidc.scopes not a list', c => { c.oidc.scopes = 'openid' }, 'oidc.scopes', /expected list, got string/)
rejects('oidc not a mapping', c => { c.oidc = 'x' }, 'oidc', /expected mapping, got string/)

rejects('store.kind unknown', c => { c.store = { kind: 'etcd' } }, 'store.kind', /must be one of memory, redis/)
rejects('store.failMode unknown', c => { c.store = { failMode: 'ajar' } }, 'store.failMode', /must be one of closed, open/)
rejects('redis store without redis', c => { c.store = { kind: 'redis' } }, 'store.redis', /required when store\.kind is redis/)
rejects('redis with none of url/sentinel/cluster', c => { c.store = { kind: 'redis', redis: {} } }, 'store.redis', /needs one of url, sentinel, cluster/)
rejects('redis with url and cluster', c => { c.store = { kind: 'redis', redis: { url: 'redis://r', cluster: { nodes: ['a:1'] } } } }, 'store.redis', /only one of/)
rejects('redis url not redis://', c => { c.store = { kind: 'redis', redis: { url: 'http://r' } } }, 'store.redis.url', /redis:\/\/ or rediss:\/\/ URL/)
rejects('redis node without port', c => { c.store = { kind: 'redis', redis: { cluster: { nodes: ['a:1', 'b'] } } } }, 'store.redis.cluster.nodes[1]', /host:port/)
rejects('redis sentinel without name', c => { c.store = { kind: 'redis', redis: { sentinel: { nodes: ['a:1'] } } } }, 'store.redis.sentinel.name', /required/)

t.test('redis normalisation', async t => {
  const c = base()
  c.store = {
    kind: 'redis',
    failMode: 'open',
    redis: { sentinel: { name: 'mymaster', nodes: ['10.0.0.1:26379', '[::1]:26380'], password: 'sp' }, username: 'u', password: 'p' }
  }
  t.same(parseObj(c).store, {
    kind: 'redis',
    failMode: 'open',
    nearCache: false,
    redis: {
      sentinel: { name: 'mymaster', nodes: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], password: 'sp' },
      username: 'u',
      password: 'p',
      keyPrefix: 'sg:',
      commandTimeoutMs: 1000
    }
  })
  c.store = { kind: 'redis', redis: { cluster: { nodes: ['n1:7000', 'n2:7001'] }, keyPrefix: 'x:' } }
  t.same(parseObj(c).store.redis, { cluster: { nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }] }, keyPrefix: 'x:', commandTimeoutMs: 1000 })
})

t.test('file-level errors', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const missing = catchErr(() => loadConfig(join(dir, 'nope.yaml'), env))
  t.ok(missing instanceof ConfigError)
  t.match((missing as Error).message, /config file not found: .*nope\.yaml/)

  const file = join(dir, 'bad.yaml')
  writeFileSync(file, 'publicUrl: https://x\noidc: [\n')
  const syntax = catchErr(() => loadConfig(file, env))
  t.ok(syntax instanceof ConfigError)
  t.match((syntax as Error).message, /invalid YAML at line \d/)
  t.equal((syntax as ConfigError).source, file)

  const scalar = catchErr(() => parseConfig('just a string', env))
  t.ok(scalar instanceof ConfigError)
  t.match((scalar as Error).message, /must be a YAML mapping/)
  t.ok(catchErr(() => parseConfig('', env)) instanceof ConfigError, 'empty file')
  t.match((catchErr(() => parseConfig('a: 1\na: 2\n', env)) as Error).message, /invalid YAML/, 'duplicate keys')
})

t.test('generateKey', async t => {
  const k = generateKey()
  t.match(k, /^[A-Za-z0-9_-]{43}$/)
  t.equal(Buffer.from(k, 'base64url').length, 32)
  t.not(k, generateKey())
})

rejects('a route under authPrefix', c => { c.routes = [{ prefix: '/auth/x', upstream: 'http://127.0.0.1:3000' }] }, 'routes[0].prefix', /must not be under authPrefix/)
rejects('a route at authPrefix', c => { c.routes = [{ prefix: '/auth', upstream: 'http://127.0.0.1:3000' }] }, 'routes[0].prefix', /must not be under authPrefix/)
t.test('a route that merely starts like authPrefix is fine', async t => {
  const c = base()
  c.routes = [{ prefix: '/authors', upstream: 'http://127.0.0.1:3000' }]
  t.equal(parseObj(c).routes[0]!.prefix, '/authors')
})

t.test('bearer routes: oidc.audience, oidc.accessTokenMaxAge, routes[].bearer', async t => {
  const c = base()
  c.oidc.audience = ['https://api.example.com', 'api://default']
  c.oidc.accessTokenMaxAge = '15m'
  c.routes.push({ prefix: '/api', upstream: 'http://127.0.0.1:3001', bearer: true, auth: 'optional' })
  const n = parseObj(c)
  t.same(n.oidc.audience, ['https://api.example.com', 'api://default'])
  t.equal(n.oidc.accessTokenMaxAge, 900)
  t.equal(n.routes[0]!.bearer, false, 'off by default')
  t.equal(n.routes[1]!.bearer, true)
  t.equal(n.routes[1]!.auth, 'optional', 'optional routes may take bearer tokens')
})
rejects('a bearer route without oidc.audience', c => { c.routes.push({ prefix: '/api', upstream: 'http://127.0.0.1:3001', bearer: true }) }, 'oidc.audience', /required when a route has bearer: true \(routes\[1\]\)/)
rejects('bearer on an auth: none route', c => {
  c.oidc.audience = ['https://api.example.com']
  c.routes.push({ prefix: '/api', upstream: 'http://127.0.0.1:3001', bearer: true, auth: 'none' })
}, 'routes[1].bearer', /needs auth: required or optional/)
rejects('an empty oidc.audience', c => { c.oidc.audience = [] }, 'oidc.audience', /must not be empty/)
rejects('an empty audience value', c => { c.oidc.audience = [''] }, 'oidc.audience[0]', /must not be empty/)
rejects('oidc.audience not a list', c => { c.oidc.audience = 'https://api.example.com' }, 'oidc.audience', /expected list/)
rejects('a bad oidc.accessTokenMaxAge', c => { c.oidc.accessTokenMaxAge = '1 hour' }, 'oidc.accessTokenMaxAge', /./)
rejects('routes[].bearer not a boolean', c => { c.routes[0].bearer = 'yes' }, 'routes[0].bearer', /expected boolean/)

t.test('a loaded config matches the schema its type is derived from (ConfigSchema)', async t => {
  const { Value } = await import('@sinclair/typebox/value')
  const { ConfigSchema } = await import('../../src/config/types.js')
  for (const file of ['config/example.yaml', 'config/demo.yaml']) {
    const c = loadConfig(join(root, file), env)
    t.same([...Value.Errors(ConfigSchema, c)].map(e => `${e.path}: ${e.message}`), [], file)
  }
  const c = base()
  c.store = { kind: 'redis', redis: { url: 'redis://r' } }
  c.tracing = { otlpEndpoint: 'http://collector:4318' }
  c.ssf = { transmitters: [{ issuer: 'https://tx.example', jwksUri: 'https://tx.example/jwks', pushToken: 'p'.repeat(20) }] }
  t.ok(Value.Check(ConfigSchema, parseObj(c)), 'with Redis, tracing and a transmitter')
  t.notOk(Value.Check(ConfigSchema, { ...parseObj(c), store: { kind: 'redis', failMode: 'closed', nearCache: false } }), 'a Redis store without its settings is not a Config')
})

t.test('every problem is collected; the thrown error is the first and carries them all', async t => {
  const c = base()
  c.admin.token = 'short'
  c.session.ttl = 'soon'
  c.routes.push({ prefix: 'api', upstream: 'ftp://x' })
  c.pages = { accentColor: 'red' }
  const err = catchErr(() => parseObj(c))
  t.ok(err instanceof ConfigError)
  if (!(err instanceof ConfigError)) return
  t.equal(err.key, 'admin.token', 'the first problem leads, as before')
  t.same(err.problems.map(p => p.key), ['admin.token', 'session.ttl', 'routes[1].prefix', 'pages.accentColor'])
  t.ok(err.problems.every(p => p.code === 'SG_CONFIG_INVALID' && p.source === '<inline>'))
})

t.test('a value that failed its schema is not used by the rules that run after it (a caFile of 0 is not stdin)', async t => {
  const c = base()
  c.oidc.caFile = 0
  c.routes[0].tls = { caFile: 0, certFile: 1 }
  c.routes[0].upstream = 'https://127.0.0.1:3000'
  const err = catchErr(() => parseObj(c))
  t.ok(err instanceof ConfigError)
  t.same((err as ConfigError).problems.map(p => p.message).sort(), [
    'oidc.caFile: expected string, got integer',
    'routes[0].tls.caFile: expected string, got integer',
    'routes[0].tls.certFile: expected string, got integer',
    'routes[0].tls.keyFile: certFile and keyFile go together (a client certificate and its key)'
  ], 'the schema errors, and the cross-field rule that still holds')
})
