/**
 * The Helm chart, checked without the helm binary:
 * - Chart.yaml and values.yaml are well-formed; every value has a comment; every `.Values.x.y` a
 *   template reads exists in values.yaml; the ci/ values files only set keys the chart has.
 * - The gateway config the chart renders (the ConfigMap's config.yaml, rendered by the helm stand-in
 *   test/helpers/helm-template.ts) passes the gateway's own config loader with the environment the
 *   Deployment sets, for the defaults and for each ci/*-values.yaml.
 * - Templates keep the security and operations settings the issue asks for.
 * - scripts/helm-check.sh runs helm lint/template when helm is on PATH; otherwise the helm part is
 *   reported as skipped, never as passed.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join, sep } from 'node:path'
import { LineCounter, parse, parseDocument, stringify, isMap, isPair, isScalar, visit } from 'yaml'
import { parseConfig } from '../../src/config/loader.js'
import { helmMerge, loadChart, readHelmYaml, renderChart } from '../helpers/helm-template.js'
import { generateKey } from '../../src/config/keygen.js'

type Obj = Record<string, unknown>

const root = fileURLToPath(new URL('../../', import.meta.url))
const chartDir = join(root, 'helm', 'sessiongate')
const read = (...p: string[]): string => readFileSync(join(chartDir, ...p), 'utf8')
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

const valuesText = read('values.yaml')
const values = parse(valuesText) as Obj
const templateFiles = (readdirSync(join(chartDir, 'templates'), { recursive: true }) as string[])
  .filter(f => !statSync(join(chartDir, 'templates', f)).isDirectory()).map(f => f.split(sep).join('/')).sort()
const templates = new Map(templateFiles.map(f => [f, read('templates', f)]))
const ciFiles = readdirSync(join(chartDir, 'ci')).filter(f => f.endsWith('-values.yaml')).sort()

const chart = loadChart(chartDir)

function get (o: unknown, path: string[]): unknown {
  return path.reduce<unknown>((node, k) => (isObj(node) ? node[k] : undefined), o)
}

/** What `sessiongate.secretEnv` hands the container: env var -> key in the Secret. */
function secretEnv (v: Obj): Record<string, string> {
  const keys = (get(v, ['secrets', 'keys']) ?? {}) as Record<string, string>
  const names: Record<string, string> = {
    sessionKey: 'SG_SESSION_KEY',
    adminToken: 'SG_ADMIN_TOKEN',
    clientSecret: 'SG_CLIENT_SECRET',
    sessionKeyPrevious: 'SG_SESSION_KEY_PREVIOUS',
    redisPassword: 'SG_REDIS_PASSWORD',
    sentinelPassword: 'SG_SENTINEL_PASSWORD'
  }
  const env: Record<string, string> = {}
  for (const [valueKey, envName] of Object.entries(names)) {
    const key = keys[valueKey]
    if (typeof key === 'string' && key !== '') env[envName] = key
  }
  return env
}

/** The gateway config file the chart renders into its ConfigMap, for these values over the defaults. */
function chartConfig (over: unknown): Obj {
  const r = renderChart(chart, { values: [{ secrets: { existingSecret: 'sessiongate-secrets' } }, over as Obj] })
  const data = get(r.one('ConfigMap'), ['data', 'config.yaml'])
  return parse(String(data)) as Obj
}

/** The environment variables the rendered Deployment gives the container. */
function deploymentEnv (over: unknown): string[] {
  const r = renderChart(chart, { values: [{ secrets: { existingSecret: 'sessiongate-secrets' } }, over as Obj] })
  const containers = get(r.one('Deployment'), ['spec', 'template', 'spec', 'containers']) as Obj[]
  return ((containers.find(c => c['name'] === 'sessiongate')?.['env'] ?? []) as Obj[]).map(e => String(e['name']))
}

/** Fake values for the variables the Deployment sets from the Secret (and only those). */
function fakeEnv (over: unknown): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of deploymentEnv(over).filter(n => n.startsWith('SG_') && n !== 'SG_CONFIG')) env[name] = /KEY/.test(name) ? generateKey() : `${name.toLowerCase()}-0123456789abcdef`
  return env
}

t.test('Chart.yaml', async t => {
  const chart = parse(read('Chart.yaml')) as Obj
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
  t.equal(chart['apiVersion'], 'v2')
  t.equal(chart['name'], 'sessiongate')
  t.equal(chart['type'], 'application')
  t.match(chart['version'], /^\d+\.\d+\.\d+(-[\w.]+)?$/, 'SemVer chart version')
  t.equal(chart['version'], '0.1.0')
  t.equal(chart['appVersion'], pkg.version, 'appVersion is the package version (the default image tag)')
})

t.test('values.yaml: every key is documented', async t => {
  const lines = valuesText.split('\n')
  const lc = new LineCounter()
  const doc = parseDocument(valuesText, { lineCounter: lc })
  t.same(doc.errors, [], 'parses')
  const undocumented: string[] = []
  let count = 0
  const path: string[] = []
  visit(doc, {
    Pair (_key, pair, ancestors) {
      if (!isPair(pair) || !isScalar(pair.key) || pair.key.range === undefined || pair.key.range === null) return
      count++
      // the dotted path, for the message
      path.length = 0
      for (const a of ancestors) if (isPair(a) && isScalar(a.key)) path.push(String(a.key.value))
      path.push(String(pair.key.value))
      const line = lc.linePos(pair.key.range[0]).line // 1-based
      const text = lines[line - 1] ?? ''
      const inline = /\s#/.test(text.replace(/"[^"]*"|'[^']*'/g, '""'))
      let prev = line - 2
      while (prev >= 0 && (lines[prev] ?? '').trim() === '') prev--
      const above = prev >= 0 && (lines[prev] ?? '').trim().startsWith('#')
      // a key in a flow map ({host: a, port: 1}) shares its line with the key that holds it
      if (!inline && !above) undocumented.push(`${path.join('.')} (line ${line})`)
    }
  })
  t.ok(count > 100, `${count} keys checked`)
  t.same(undocumented, [], 'each key has a comment line above it or a comment on its line')
})

t.test('every .Values path a template reads exists in values.yaml', async t => {
  const missing: string[] = []
  let count = 0
  for (const [file, text] of templates) {
    for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      count++
      const path = (m[1] ?? '').slice(1).split('.')
      let node: unknown = values
      for (const k of path) {
        if (!isObj(node) || !Object.hasOwn(node, k)) {
          missing.push(`${file}: .Values.${path.join('.')}`)
          break
        }
        node = node[k]
      }
    }
  }
  t.ok(count > 50, `${count} references checked`)
  t.same(missing, [])
})

t.test('ci values files only set keys the chart has', async t => {
  // Below `config` the gateway's loader is the judge (next test); empty maps and lists are free-form, and
  // so are annotations (the Ingress has a default one).
  const unknown: string[] = []
  const walk = (file: string, over: unknown, base: unknown, path: string[]): void => {
    if (!isObj(over) || !isObj(base) || Object.keys(base).length === 0 || path[0] === 'config' || path.at(-1) === 'annotations') return
    for (const [k, v] of Object.entries(over)) {
      if (!Object.hasOwn(base, k)) unknown.push(`${file}: ${path.concat(k).join('.')}`)
      else walk(file, v, base[k], path.concat(k))
    }
  }
  for (const f of ciFiles) walk(f, parse(read('ci', f)), values, [])
  t.same(unknown, [])
})

t.test('the rendered gateway config passes the gateway config loader', async t => {
  const cases: Array<[string, Obj, Obj]> = [['values.yaml', {}, values]]
  for (const f of ciFiles) cases.push([`ci/${f}`, readHelmYaml(read('ci', f)) as Obj, helmMerge(values, readHelmYaml(read('ci', f))) as Obj])
  t.ok(ciFiles.includes('ha-values.yaml'), 'ci/ha-values.yaml exists')
  t.ok(ciFiles.includes('full-values.yaml'), 'ci/full-values.yaml exists')
  for (const [label, over, v] of cases) {
    const yamlText = stringify(chartConfig(over))
    const env = fakeEnv(over)
    let config: ReturnType<typeof parseConfig> | undefined
    try {
      config = parseConfig(yamlText, env, label)
    } catch (err) {
      t.fail(`${label}: ${(err as Error).message}\n${yamlText}`)
      continue
    }
    t.match(config.store.kind, /^(memory|redis)$/, `${label}: valid (store ${config.store.kind}, env ${Object.keys(env).sort().join(' ')})`)
    t.same(config.listen, { host: '0.0.0.0', port: 8080 }, `${label}: public listener on the container port`)
    t.same(config.admin.listen, { host: '0.0.0.0', port: 9090 }, `${label}: admin listener reachable by probes`)
    const replicas = get(v, ['autoscaling', 'enabled']) === true ? Number(get(v, ['autoscaling', 'maxReplicas'])) : Number(v['replicaCount'])
    if (replicas > 1) t.equal(config.store.kind, 'redis', `${label}: ${replicas} replicas share Redis`)
    // no ${...} left for a variable the Deployment does not set: parseConfig would have thrown
    t.notMatch(yamlText, /(?<!\$)\$\{(?!SG_)/, `${label}: only SG_ placeholders`)
  }
})

t.test('defaults: one replica, memory store, no secret in values', async t => {
  const cfg = chartConfig({})
  t.equal(values['replicaCount'], 1)
  t.equal(get(cfg, ['store', 'kind']), 'memory')
  t.equal(get(values, ['secrets', 'existingSecret']), '', 'the operator names the Secret')
  t.equal(get(values, ['secrets', 'create']), false, 'the chart makes no Secret by default')
  for (const [k, v] of Object.entries(get(values, ['secrets', 'values']) as Obj)) t.equal(v, '', `secrets.values.${k} empty`)
  t.equal(get(values, ['config', 'admin', 'token']), '${SG_ADMIN_TOKEN}')
  t.equal(get(values, ['config', 'oidc', 'clientSecret']), '${SG_CLIENT_SECRET}')
  t.same(get(values, ['config', 'session', 'keys']), ['${SG_SESSION_KEY}'])
  t.same(secretEnv(values), { SG_SESSION_KEY: 'session-key', SG_ADMIN_TOKEN: 'admin-token', SG_CLIENT_SECRET: 'client-secret' })
  t.same(deploymentEnv({}).sort(), ['SG_ADMIN_TOKEN', 'SG_CLIENT_SECRET', 'SG_CONFIG', 'SG_SESSION_KEY'], 'the Deployment sets exactly those, and SG_CONFIG')
})

t.test('ci/ha-values.yaml: redis, 3+ replicas, HPA, PDB, ServiceMonitor, NetworkPolicy', async t => {
  const haOver = readHelmYaml(read('ci', 'ha-values.yaml'))
  const ha = helmMerge(values, haOver) as Obj
  const cfg = chartConfig(haOver)
  t.equal(ha['replicaCount'], 3)
  t.equal(get(cfg, ['store', 'kind']), 'redis')
  t.match(get(cfg, ['store', 'redis', 'url']), /^rediss:\/\//, 'TLS')
  t.equal(get(cfg, ['store', 'redis', 'password']), '${SG_REDIS_PASSWORD}', 'password from the Secret')
  t.same(get(cfg, ['session', 'keys']), ['${SG_SESSION_KEY}', '${SG_SESSION_KEY_PREVIOUS}'], 'rotation: previous key appended')
  for (const p of ['autoscaling', 'podDisruptionBudget', 'metrics.serviceMonitor', 'networkPolicy']) {
    t.equal(get(ha, [...p.split('.'), 'enabled']), true, `${p}.enabled`)
  }
  t.ok(Number(get(ha, ['autoscaling', 'minReplicas'])) >= 3)
  t.not(get(ha, ['networkPolicy', 'adminFrom']), [], 'admin port restricted to configured peers')
})

t.test('templates keep the security and operations settings', async t => {
  const tpl = (f: string): string => templates.get(f) ?? ''
  t.same(templateFiles, ['NOTES.txt', '_helpers.tpl', 'configmap.yaml', 'deployment.yaml', 'hpa.yaml', 'httproute.yaml', 'ingress.yaml', 'networkpolicy.yaml', 'pdb.yaml', 'secret.yaml', 'service.yaml', 'servicemonitor.yaml', 'tests/test-readyz.yaml'])

  // balanced template actions: every if/with/range/define has its end
  for (const [f, text] of templates) {
    const actions = [...text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '').matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)].map(m => m[1] ?? '')
    let depth = 0
    for (const a of actions) {
      if (/^(if|with|range|define|block)\b/.test(a)) depth++
      else if (/^end\b/.test(a)) depth--
      if (depth < 0) break
    }
    t.equal(depth, 0, `${f}: blocks balanced`)
    t.equal((text.match(/\{\{/g) ?? []).length, (text.match(/\}\}/g) ?? []).length, `${f}: braces balanced`)
  }

  const dep = tpl('deployment.yaml')
  t.match(dep, /^\{\{- include "sessiongate\.validate" \. \}\}/, 'guards run first')
  t.match(dep, /checksum\/config: \{\{ include \(print \$\.Template\.BasePath "\/configmap\.yaml"\) \. \| sha256sum \}\}/, 'checksum/config rolls pods on config change')
  t.match(dep, /path: \/healthz\s+port: admin/, 'liveness on /healthz, admin port')
  t.match(dep, /path: \/readyz\s+port: admin/, 'readiness on /readyz, admin port')
  t.match(dep, /secretKeyRef:\s+name: \{\{ \$secret \}\}/, 'env from Secret refs')
  t.match(dep, /mountPath: \/etc\/sessiongate\n/, 'config mounted at /etc/sessiongate')
  t.match(dep, /value: \/etc\/sessiongate\/config\.yaml/, 'SG_CONFIG')
  t.match(dep, /mountPath: \/tmp[\s\S]*emptyDir:/, 'writable /tmp emptyDir')
  t.match(dep, /terminationGracePeriodSeconds: \{\{ \.Values\.terminationGracePeriodSeconds \}\}/)
  t.match(dep, /securityContext:\s+\{\{- toYaml \.Values\.securityContext/)
  t.match(dep, /securityContext:\s+\{\{- toYaml \.Values\.podSecurityContext/)

  const helpers = tpl('_helpers.tpl')
  t.match(helpers, /eq \$kind "memory"\) \(or \(gt \(int \.Values\.replicaCount\) 1\) \.Values\.autoscaling\.enabled\)\s*\}\}\s*\{\{- fail/, 'memory store: more than one replica fails rendering')
  for (const s of ['"listen" (dict "host" "0.0.0.0"', '"${SG_SESSION_KEY_PREVIOUS}"', '"password" "${SG_REDIS_PASSWORD}"', '"password" "${SG_SENTINEL_PASSWORD}"']) {
    t.ok(helpers.includes(s), `sessiongate.config sets ${s}`)
  }
  t.match(tpl('configmap.yaml'), /config\.yaml: \|\n\s+\{\{- include "sessiongate\.config" \. \| nindent 4 \}\}/)

  const sc = values['securityContext'] as Obj
  const psc = values['podSecurityContext'] as Obj
  t.equal(psc['runAsNonRoot'], true)
  t.equal(psc['runAsUser'], 1000)
  t.equal(get(psc, ['seccompProfile', 'type']), 'RuntimeDefault')
  t.equal(sc['runAsNonRoot'], true)
  t.equal(sc['runAsUser'], 1000)
  t.equal(sc['readOnlyRootFilesystem'], true)
  t.equal(sc['allowPrivilegeEscalation'], false)
  t.same(get(sc, ['capabilities', 'drop']), ['ALL'])
  t.equal(get(sc, ['seccompProfile', 'type']), 'RuntimeDefault')
  t.ok(isObj(get(values, ['resources', 'requests'])), 'resources set')

  const svc = tpl('service.yaml')
  t.match(svc, /- name: http\s+port: \{\{ \.Values\.service\.port \}\}\s+targetPort: http/)
  t.match(svc, /- name: admin\s+port: \{\{ \.Values\.service\.adminPort \}\}\s+targetPort: admin/)
  t.equal(get(values, ['service', 'port']), 80)
  t.equal(get(values, ['service', 'adminPort']), 9090)

  const gated: Array<[string, string, RegExp]> = [
    ['hpa.yaml', '.Values.autoscaling.enabled', /apiVersion: autoscaling\/v2\nkind: HorizontalPodAutoscaler/],
    ['pdb.yaml', '.Values.podDisruptionBudget.enabled', /apiVersion: policy\/v1\nkind: PodDisruptionBudget/],
    ['servicemonitor.yaml', '.Values.metrics.serviceMonitor.enabled', /apiVersion: monitoring\.coreos\.com\/v1\nkind: ServiceMonitor[\s\S]*port: admin\s+path: \/metrics/],
    ['networkpolicy.yaml', '.Values.networkPolicy.enabled', /apiVersion: networking\.k8s\.io\/v1\nkind: NetworkPolicy/],
    ['secret.yaml', '.Values.secrets.create', /apiVersion: v1\nkind: Secret/],
    ['ingress.yaml', '.Values.ingress.enabled', /apiVersion: networking\.k8s\.io\/v1\nkind: Ingress/],
    ['httproute.yaml', '.Values.httpRoute.enabled', /apiVersion: gateway\.networking\.k8s\.io\/v1\nkind: HTTPRoute/],
    ['tests/test-readyz.yaml', '.Values.tests.enabled', /apiVersion: v1\nkind: Pod/]
  ]
  for (const [f, flag, body] of gated) {
    t.ok(tpl(f).startsWith(`{{- if ${flag} }}`), `${f} only when ${flag}`)
    t.match(tpl(f), body, `${f} resource`)
  }

  const notes = tpl('NOTES.txt')
  for (const s of ['{{ $base }}{{ $prefix }}/callback', '{{ $base }}{{ $prefix }}/backchannel-logout', '{{ $base }}{{ $prefix }}/frontchannel-logout', '{{ $base }}/', '/metrics']) {
    t.ok(notes.includes(s), `NOTES.txt tells ${s}`)
  }
})

// scripts/helm-check.sh: with helm on PATH it lints and renders; without, it says so and the helm part
// is reported as skipped.
const check = spawnSync('bash', [join(root, 'scripts', 'helm-check.sh')], { encoding: 'utf8', timeout: 300_000 })
const checkOut = `${check.stdout}${check.stderr}`
const helmSkipped = checkOut.includes('helm not found: skipped lint/template')

t.test('scripts/helm-check.sh exits 0 and says whether helm ran', async t => {
  t.equal(check.status, 0, 'exit status 0', { output: checkOut })
  t.ok(helmSkipped || /^helm-check: using /m.test(checkOut), helmSkipped ? 'says: helm not found: skipped lint/template' : 'names the helm it uses')
})

t.test('helm lint / helm template (scripts/helm-check.sh)', { skip: helmSkipped ? 'helm is not on PATH: helm lint / helm template did not run' : false }, async t => {
  t.equal(check.status, 0, 'helm lint, helm template and the refusal checks passed', { output: checkOut })
  t.match(checkOut, /^helm-check: ok$/m)
  t.notMatch(checkOut, /^FAIL /m)
})
