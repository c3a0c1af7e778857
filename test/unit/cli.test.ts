/**
 * The CLI as a user runs it: keygen, check-config on a valid and an invalid file, unknown commands.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TS_LOADER } from '../helpers/ts-loader.js'

function cli (args: string[], env: Record<string, string> = {}): { code: number | null, out: string, err: string } {
  const r = spawnSync(process.execPath, [...TS_LOADER, 'src/cli.ts', ...args], { env: { ...process.env, ...env }, encoding: 'utf8' })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

t.test('keygen prints a base64url 32-byte key', async (t) => {
  const r = cli(['keygen'])
  t.equal(r.code, 0)
  t.match(r.out.trim(), /^[A-Za-z0-9_-]{43}$/)
  t.equal(Buffer.from(r.out.trim(), 'base64url').length, 32)
})

t.test('check-config accepts the annotated example and names the key of a bad file', async (t) => {
  const key = cli(['keygen']).out.trim()
  const env = { SG_ADMIN_TOKEN: 'x'.repeat(24), SG_CLIENT_SECRET: 'secret', SG_SESSION_KEY: key }
  const ok = cli(['check-config', 'config/example.yaml'], env)
  t.equal(ok.code, 0, ok.err)
  t.match(ok.out, /valid/)
  const dir = mkdtempSync(join(tmpdir(), 'sg-cli-'))
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'publicUrl: https://a.example\nadmin: { token: 0123456789abcdef }\noidc: { issuer: https://idp.example, clientId: x }\nsession: { keys: [c2hvcnQ] }\nroutes: [{ prefix: /, upstream: http://127.0.0.1:1 }]\n')
  const r = cli(['check-config', bad])
  t.equal(r.code, 1)
  t.match(r.err, /session\.keys\[0\]/, 'names the key')
  t.notMatch(r.err, /c2hvcnQ/, 'does not echo the key value')
  const missingEnv = cli(['check-config', 'config/example.yaml'], { SG_ADMIN_TOKEN: '', SG_CLIENT_SECRET: '', SG_SESSION_KEY: '' })
  t.equal(missingEnv.code, 1)
})

t.test('unknown commands and serve without SG_CONFIG fail clearly', async (t) => {
  const r = cli(['frobnicate'])
  t.equal(r.code, 1)
  t.match(r.err, /unknown command "frobnicate"/)
  const s = cli(['serve'], { SG_CONFIG: '' })
  t.equal(s.code, 1)
  t.match(s.err, /SG_CONFIG is not set/)
})

t.test('--version prints the package version', async (t) => {
  const { readFileSync } = await import('node:fs')
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
  for (const flag of ['--version', '-v']) {
    const r = cli([flag])
    t.equal(r.code, 0)
    t.equal(r.out, `sessiongate ${pkg.version}\n`, flag)
  }
})

t.test('serve FILE runs the gateway on that file, printing only JSON log lines (no deprecation warnings)', async (t) => {
  const { spawn } = await import('node:child_process')
  const { freePort } = await import('../helpers/ports.js')
  const { waitForHttp } = await import('../helpers/wait-http.js')
  const [port, adminPort, deadIdp] = [await freePort(), await freePort(), await freePort()]
  const dir = mkdtempSync(join(tmpdir(), 'sg-cli-'))
  const file = join(dir, 'gw.yaml')
  const key = cli(['keygen']).out.trim()
  writeFileSync(file, `publicUrl: http://127.0.0.1:${port}\nlisten: { host: 127.0.0.1, port: ${port} }\nadmin: { listen: { host: 127.0.0.1, port: ${adminPort} }, token: ${'t'.repeat(20)} }\n` +
    `oidc: { issuer: "http://127.0.0.1:${deadIdp}", clientId: gw, allowInsecureHttp: true }\nsession: { keys: [${key}] }\nroutes: [{ prefix: /, upstream: "http://127.0.0.1:1", auth: none }]\n`)
  const child = spawn(process.execPath, [...TS_LOADER, 'src/cli.ts', 'serve', file], { env: { ...process.env, SG_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const up = await waitForHttp(`http://127.0.0.1:${adminPort}/healthz`, { exited: () => child.exitCode !== null })
  t.ok(up, 'serves on the file given as argument, with SG_CONFIG unset', { stderr: err })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
  t.notMatch(err, /DeprecationWarning|FSTDEP|Warning:/, 'no runtime warnings on stderr')
  const lines = out.trim().split('\n').filter((l) => l !== '')
  t.ok(lines.length > 0 && lines.every((l) => l.startsWith('{')), 'stdout holds JSON log lines only')
})

t.test('check-config reports every problem of a file in one run, one `key: message` line each', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-cli-'))
  const bad = join(dir, 'many.yaml')
  writeFileSync(bad, [
    'publicUrl: https://a.example',
    'admin: { token: short }', // value rule (normalisation)
    'logLevel: loud', // schema: enum
    'oidc: { isuer: https://idp.example, clientId: x }', // schema: unknown key (and the missing issuer it causes)
    'session: { keys: [c2hvcnQ], ttl: soon }', // value rules: key length, duration
    'routes: [{ prefix: api, upstream: http://127.0.0.1:1 }]', // value rule: prefix
    'workers: 4', // cross-field: needs Redis
    'secret: ${SG_CLI_TEST_UNSET}' // unset variable (reported instead of the unknown key)
  ].join('\n') + '\n')
  const r = cli(['check-config', bad], { SG_CLI_TEST_UNSET: undefined as unknown as string })
  t.equal(r.code, 1)
  const lines = r.err.trim().split('\n')
  t.match(lines[0], /^invalid config \(.*many\.yaml\): \d+ problems$/, 'a count first')
  for (const [key, message] of [
    ['oidc.isuer', /unknown key \(did you mean "issuer"\?\)/],
    ['logLevel', /must be one of/],
    ['secret', /environment variable SG_CLI_TEST_UNSET is not set/],
    ['admin.token', /at least 16 characters/],
    ['session.ttl', /invalid duration/],
    ['session.keys[0]', /32 bytes/],
    ['routes[0].prefix', /must start with "\/"/],
    ['workers', /need store\.kind: redis/]
  ] as const) {
    const line = lines.find(l => l.startsWith(`${key}: `))
    t.ok(line, `reports ${key}`)
    t.match(line ?? '', message, `${key}: says why`)
  }
  t.notOk(lines.some(l => l.startsWith('oidc.issuer: ')), 'the misspelt key is reported, not the missing one it causes')
  t.equal(lines.length, 1 + 8, 'one line per problem, nothing twice')
  t.notMatch(r.err, /c2hvcnQ/, 'does not echo the key value')
})

t.test('check-config reports every unset environment variable', async (t) => {
  const r = cli(['check-config', 'config/example.yaml'], { SG_ADMIN_TOKEN: undefined as unknown as string, SG_CLIENT_SECRET: undefined as unknown as string, SG_SESSION_KEY: undefined as unknown as string })
  t.equal(r.code, 1)
  for (const name of ['SG_ADMIN_TOKEN', 'SG_CLIENT_SECRET', 'SG_SESSION_KEY']) t.match(r.err, new RegExp(`environment variable ${name} is not set`), name)
})
