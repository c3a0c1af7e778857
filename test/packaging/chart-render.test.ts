/**
 * The Helm chart, rendered: test/helpers/helm-template.ts stands in for `helm template` (no helm
 * binary here), so these tests assert the manifests the chart produces for given values, and what it
 * refuses, rather than the template text.
 */
import t, { type Test } from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { HelmError, loadChart, renderChart, type Chart, type RenderOptions, type Rendered } from '../helpers/helm-template.js'

type Obj = Record<string, unknown>

const root = fileURLToPath(new URL('../../', import.meta.url))
const chartDir = join(root, 'helm', 'sessiongate')
const chart = loadChart(chartDir)
/** The same chart without values.schema.json: what the templates do when schema validation is skipped. */
const schemaless: Chart = { ...chart, schema: undefined }
const ciFiles = readdirSync(join(chartDir, 'ci')).filter(f => f.endsWith('-values.yaml')).sort()
const ci = (f: string): string => readFileSync(join(chartDir, 'ci', f), 'utf8')

/** The one value every install needs. */
const base: Obj = { secrets: { existingSecret: 'sessiongate-secrets' } }
const redis: Obj = { config: { store: { kind: 'redis', redis: { url: 'redis://redis.platform:6379' } } } }

const render = (values: Array<Obj | string>, opts: RenderOptions = {}, c: Chart = chart): Rendered =>
  renderChart(c, { releaseName: 'portal', namespace: 'gateway', ...opts, values: [base, ...values] })

/** Rendering must fail, with a message matching `expect`. */
function refused (t: Test, label: string, values: Array<Obj | string>, expect: RegExp, c: Chart = chart): void {
  try {
    render(values, {}, c)
    t.fail(`${label}: rendered, should have been refused`)
  } catch (err) {
    t.ok(err instanceof HelmError, `${label}: a helm error`)
    t.match((err as Error).message, expect, `${label}: refused with ${String(expect)}`)
  }
}

const get = (o: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((n, k) => (typeof n === 'object' && n !== null ? (n as Obj)[k] : undefined), o)
const podSpec = (r: Rendered): Obj => get(r.one('Deployment'), 'spec.template.spec') as Obj
const container = (r: Rendered): Obj => ((podSpec(r)['containers'] as Obj[]).find(c => c['name'] === 'sessiongate'))!

t.test('every ci/*-values.yaml renders, each object once, with the labels that select the pods', async t => {
  t.ok(ciFiles.length >= 4, ciFiles.join(' '))
  for (const f of ciFiles) {
    const r = renderChart(chart, { releaseName: 'portal', namespace: 'gateway', values: [ci(f)] })
    const ids = r.manifests.map(m => `${String(m.doc['kind'])}/${String(get(m.doc, 'metadata.name'))}`)
    t.same(ids, [...new Set(ids)], `${f}: no object twice (${ids.join(', ')})`)
    const dep = r.one('Deployment')
    t.same(get(dep, 'spec.selector.matchLabels'), { 'app.kubernetes.io/name': 'sessiongate', 'app.kubernetes.io/instance': 'portal' }, `${f}: selector`)
    t.match(get(dep, 'spec.template.metadata.labels'), get(dep, 'spec.selector.matchLabels'), `${f}: pod labels match the selector`)
  }
})

t.test('defect: updateStrategy.type Recreate kept the default rollingUpdate block', async t => {
  const rolling = render([])
  t.same(get(rolling.one('Deployment'), 'spec.strategy'), { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } }, 'default: rolling update, one extra pod at a time')
  const recreate = render([{ updateStrategy: { type: 'Recreate' } }])
  t.same(get(recreate.one('Deployment'), 'spec.strategy'), { type: 'Recreate' }, 'Recreate: no rollingUpdate (the API server rejects it)')
  const tuned = render([{ updateStrategy: { rollingUpdate: { maxUnavailable: '25%', maxSurge: 0 } } }])
  t.same(get(tuned.one('Deployment'), 'spec.strategy'), { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: 0 } }, 'rolling update settings pass through, 0 included')
  refused(t, 'unknown strategy type (the schema)', [{ updateStrategy: { type: 'BlueGreen' } }], /values don't meet the specifications[\s\S]*updateStrategy\.type/)
  refused(t, 'unknown strategy type, schema skipped', [{ updateStrategy: { type: 'BlueGreen' } }], /updateStrategy\.type must be RollingUpdate or Recreate/, schemaless)
})

t.test('defect: a podLabels key the chart already sets was emitted twice', async t => {
  // The stand-in parses each manifest strictly: a duplicate key would throw here, as it does at the API server.
  const r = render([{ podLabels: { 'app.kubernetes.io/version': '2.0.0-custom', 'app.kubernetes.io/instance': 'portal', team: 'identity' } }])
  const labels = get(r.one('Deployment'), 'spec.template.metadata.labels') as Obj
  t.equal(labels['app.kubernetes.io/version'], '2.0.0-custom', 'podLabels override a label the chart sets')
  t.equal(labels['team'], 'identity', 'and add their own')
  t.equal(labels['app.kubernetes.io/instance'], 'portal', 'a selector label given with the same value is fine')
  const text = r.files.get('sessiongate/templates/deployment.yaml') ?? ''
  t.equal(text.match(/app\.kubernetes\.io\/version:/g)?.length, 2, 'version label once on the Deployment, once on the pod')
  refused(t, 'a selector label changed by podLabels', [{ podLabels: { 'app.kubernetes.io/name': 'other' } }], /podLabels\.app\.kubernetes\.io\/name.*selects/)
})

t.test('defect: HPA targets of 0 rendered metrics: null (Kubernetes then defaults to 80% CPU)', async t => {
  const hpa = (v: Obj): Obj => render([redis, { autoscaling: { enabled: true, ...v } }]).one('HorizontalPodAutoscaler')
  const names = (h: Obj): unknown => ((get(h, 'spec.metrics') ?? []) as Obj[]).map(m => `${String(get(m, 'resource.name'))}=${String(get(m, 'resource.target.averageUtilization'))}`)
  t.same(names(hpa({})), ['cpu=70'], 'default: CPU 70%')
  t.same(names(hpa({ targetCPUUtilizationPercentage: 0, targetMemoryUtilizationPercentage: 75 })), ['memory=75'], '0 means no CPU metric')
  t.same(names(hpa({ targetCPUUtilizationPercentage: 60, targetMemoryUtilizationPercentage: 80 })), ['cpu=60', 'memory=80'], 'both')
  const custom = hpa({ targetCPUUtilizationPercentage: 0, extraMetrics: [{ type: 'Pods', pods: { metric: { name: 'http_requests_per_second' }, target: { type: 'AverageValue', averageValue: '100' } } }] })
  t.same((get(custom, 'spec.metrics') as Obj[]).map(m => m['type']), ['Pods'], 'extraMetrics alone are enough')
  refused(t, 'both targets 0 and no extraMetrics', [redis, { autoscaling: { enabled: true, targetCPUUtilizationPercentage: 0, targetMemoryUtilizationPercentage: 0 } }], /autoscaling: no metric/)
  refused(t, 'minReplicas above maxReplicas', [redis, { autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 3 } }], /minReplicas \(5\) is above autoscaling\.maxReplicas \(3\)/)
})

t.test('defect: PDB maxUnavailable 0 was treated as unset', async t => {
  const pdb = (v: Obj): Obj => get(render([{ podDisruptionBudget: { enabled: true, ...v } }]).one('PodDisruptionBudget'), 'spec') as Obj
  t.match(pdb({}), { minAvailable: 1 }, 'default: minAvailable 1')
  t.notOk('maxUnavailable' in pdb({}), 'and no maxUnavailable')
  const zero = pdb({ maxUnavailable: 0 })
  t.equal(zero['maxUnavailable'], 0, 'maxUnavailable 0 is kept (no voluntary eviction at all)')
  t.notOk('minAvailable' in zero, 'and minAvailable is left out (both is invalid)')
  t.equal(pdb({ maxUnavailable: 1 })['maxUnavailable'], 1)
  t.equal(pdb({ maxUnavailable: '34%' })['maxUnavailable'], '34%')
  t.equal(pdb({ minAvailable: '50%' })['minAvailable'], '50%')
  t.match(render([{ podDisruptionBudget: { enabled: true, maxUnavailable: 0 } }]).notes, /maxUnavailable is 0.*drain/s, 'NOTES warn that node drains will wait')
})

t.test('defect: NetworkPolicy with adminFrom: [] silently blocked the ServiceMonitor scrape', async t => {
  const on = { networkPolicy: { enabled: true }, metrics: { serviceMonitor: { enabled: true } } }
  refused(t, 'ServiceMonitor with the admin port closed to every pod', [on], /networkPolicy\.adminFrom is empty.*ServiceMonitor/s)
  const peers = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]
  const r = render([{ ...on, networkPolicy: { enabled: true, adminFrom: peers } }])
  const admin = (get(r.one('NetworkPolicy'), 'spec.ingress') as Obj[]).filter(rule => (rule['ports'] as Obj[]).some(p => p['port'] === 9090))
  t.ok(admin.some(rule => JSON.stringify(rule['from']) === JSON.stringify(peers)), 'the admin port is open to adminFrom')
  // without a ServiceMonitor, a closed admin port is a choice, not a mistake
  const closed = render([{ networkPolicy: { enabled: true }, tests: { enabled: false } }])
  t.same((get(closed.one('NetworkPolicy'), 'spec.ingress') as Obj[]).map(rule => (rule['ports'] as Obj[]).map(p => p['port'])), [[8080]], 'only the public port is open')
})

t.test('defect: an unquoted image.tag 1.10 became 1.1', async t => {
  t.equal(container(render([]))['image'], 'sessiongate:0.1.0', 'default tag: the appVersion')
  t.equal(container(render(['image: {tag: "1.10"}']))['image'], 'sessiongate:1.10', 'a quoted tag is kept as written')
  refused(t, 'unquoted 1.10 (the schema)', ['image: {tag: 1.10}'], /values don't meet the specifications[\s\S]*image\.tag: must be string/)
  refused(t, 'unquoted 1.10 (the template, schema skipped)', ['image: {tag: 1.10}'], /image\.tag must be a string, got 1\.1 \(float64\): quote it/, schemaless)
  refused(t, '--set image.tag=110 (an int64)', [{ image: { tag: 110n } }], /image\.tag must be a string/, schemaless)
  const digest = `sha256:${'ab'.repeat(32)}`
  t.equal(container(render([{ image: { tag: '1.10', digest } }]))['image'], `sessiongate:1.10@${digest}`, 'a digest pins the image')
})
