/**
 * `${NAME}` substitution (src/config/env.ts) on its own and through parseConfig: where references
 * may stand, that values are data (never YAML), and that every unset variable is reported.
 */
import t from 'tap'
import { stringify } from 'yaml'
import { ConfigError } from '../../src/config/errors.js'
import { protectRefs, substituteEnv, substituteTree } from '../../src/config/env.js'
import { parseConfig } from '../../src/config/loader.js'
import { generateKey } from '../../src/config/keygen.js'

t.test('substituteEnv replaces each reference, keeps $${NAME} literal and names the key of an unset one', async t => {
  t.equal(substituteEnv('${A}-${B}-${A}', { A: 'x', B: 'y' }), 'x-y-x')
  t.equal(substituteEnv('pre $${A} post', { A: 'x' }), 'pre ${A} post')
  t.equal(substituteEnv('${lower_ok} ${9bad} $A {A}', { lower_ok: 'v' }), 'v ${9bad} $A {A}', 'only ${NAME} with a valid name is a reference')
  try {
    substituteEnv('${MISSING}', {}, 'oidc.clientSecret')
    t.fail('an unset variable must throw')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    t.equal((err as ConfigError).key, 'oidc.clientSecret')
    t.equal((err as ConfigError).message, 'oidc.clientSecret: environment variable MISSING is not set')
  }
})

t.test('protectRefs makes references inert for the YAML parser and restores them exactly', async t => {
  const text = 'keys: [${K1}, "${K2}"]\nliteral: $${K3}\n'
  const { text: safe, restore } = protectRefs(text)
  t.notMatch(safe, /\$\{/, 'no reference left for YAML to read as a flow mapping')
  t.equal(restore(safe), text)
})

t.test('substituteTree walks lists and mappings, never substitutes in keys, and reports every unset variable', async t => {
  const problems: ConfigError[] = []
  const tree = substituteTree({ a: ['${X}', { b: '${Y}' }], '${X}': 1, n: 5 }, [], { X: 'x' }, s => s, problems)
  t.same(tree, { a: ['x', { b: '' }], '${X}': 1, n: 5 })
  t.same(problems.map(p => p.message), ['a[1].b: environment variable Y is not set'])
})

t.test('an environment value is data: YAML syntax in it stays one string', async t => {
  const key = generateKey()
  const text = stringify({
    publicUrl: 'https://app.example.com',
    admin: { token: '${TOKEN}' },
    oidc: { issuer: 'https://idp.example.com', clientId: 'gw' },
    session: { keys: ['${KEY}'] },
    routes: [{ prefix: '/', upstream: 'http://127.0.0.1:3000' }]
  })
  const c = parseConfig(text, { TOKEN: 'x: [1, 2]\n  # not: yaml', KEY: key })
  t.equal(c.admin.token, 'x: [1, 2]\n  # not: yaml')
  t.equal(c.session.keys[0]?.toString('base64url'), key)

  let err: unknown
  try { parseConfig(text, {}) } catch (e) { err = e }
  t.ok(err instanceof ConfigError)
  const problems = (err as ConfigError).problems.map(p => p.message)
  t.same(problems, ['admin.token: environment variable TOKEN is not set', 'session.keys[0]: environment variable KEY is not set'],
    'both unset variables, and nothing else about the same keys')
})
