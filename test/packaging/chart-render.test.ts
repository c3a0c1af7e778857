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
  t.same(pdb({ minAvailable: null, maxUnavailable: 2 }), { maxUnavailable: 2, selector: { matchLabels: { 'app.kubernetes.io/name': 'sessiongate', 'app.kubernetes.io/instance': 'portal' } } }, 'minAvailable removed with null')
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

t.test('Ingress: off by default; to the public port only, host from publicUrl unless given, TLS and class', async t => {
  t.same(render([]).find('Ingress'), [], 'off by default')
  const r = render([{ config: { publicUrl: 'https://portal.example.com/' }, ingress: { enabled: true } }])
  const ing = r.one('Ingress')
  t.equal(get(ing, 'apiVersion'), 'networking.k8s.io/v1')
  const rules = get(ing, 'spec.rules') as Obj[]
  t.same(rules.map(x => x['host']), ['portal.example.com'], 'the host of config.publicUrl')
  const path = (get(rules[0], 'http.paths') as Obj[])[0]!
  t.same(path, { path: '/', pathType: 'Prefix', backend: { service: { name: 'portal-sessiongate', port: { name: 'http' } } } }, 'everything to the Service port "http"')
  t.notMatch(JSON.stringify(ing), /admin|9090/, 'never the admin port')
  t.notOk('tls' in (get(ing, 'spec') as Obj), 'no TLS unless asked')
  t.notOk('ingressClassName' in (get(ing, 'spec') as Obj), 'the cluster default class unless named')

  const full = render([{
    ingress: {
      enabled: true,
      className: 'nginx',
      annotations: { 'cert-manager.io/cluster-issuer': 'corporate' },
      labels: { exposure: 'public' },
      hosts: ['app.example.com', 'www.example.com'],
      paths: [{ path: '/auth', pathType: 'Prefix' }, { path: '/app', pathType: 'Exact' }],
      tls: [{ secretName: 'portal-tls', hosts: ['app.example.com', 'www.example.com'] }]
    }
  }]).one('Ingress')
  t.equal(get(full, 'spec.ingressClassName'), 'nginx')
  t.same(get(full, 'metadata.annotations'), { 'nginx.ingress.kubernetes.io/proxy-buffer-size': '16k', 'cert-manager.io/cluster-issuer': 'corporate' }, 'yours merged with the default')
  t.same(get(ing, 'metadata.annotations'), { 'nginx.ingress.kubernetes.io/proxy-buffer-size': '16k' }, 'by default: room for a large session\'s Set-Cookie headers (test/integration/ingress-buffers.test.ts)')
  t.equal(get(full, 'metadata.labels.exposure'), 'public')
  t.same(get(full, 'spec.tls'), [{ secretName: 'portal-tls', hosts: ['app.example.com', 'www.example.com'] }])
  t.same((get(full, 'spec.rules') as Obj[]).map(x => `${String(x['host'])}:${(get(x, 'http.paths') as Obj[]).map(p => `${String(p['path'])}/${String(p['pathType'])}`).join(',')}`),
    ['app.example.com:/auth/Prefix,/app/Exact', 'www.example.com:/auth/Prefix,/app/Exact'])
  t.match(render([{ config: { publicUrl: 'https://portal.example.com' }, ingress: { enabled: true, hosts: ['other.example.com'] } }]).notes, /WARNING: ingress\.hosts does not include portal\.example\.com/, 'NOTES warn when the callback host is not routed')
})

t.test('HTTPRoute: off by default; needs parentRefs; to the public port only', async t => {
  t.same(render([]).find('HTTPRoute'), [], 'off by default')
  refused(t, 'no parentRefs', [{ httpRoute: { enabled: true } }], /httpRoute\.enabled needs httpRoute\.parentRefs/)
  const parentRefs = [{ name: 'shared-gateway', namespace: 'gateway-system', sectionName: 'https' }]
  const route = render([{ config: { publicUrl: 'https://portal.example.com' }, httpRoute: { enabled: true, parentRefs, annotations: { team: 'identity' }, timeouts: { request: '120s' } } }]).one('HTTPRoute')
  t.equal(get(route, 'apiVersion'), 'gateway.networking.k8s.io/v1')
  t.same(get(route, 'spec.parentRefs'), parentRefs)
  t.same(get(route, 'spec.hostnames'), ['portal.example.com'], 'the host of config.publicUrl')
  t.same(get(route, 'spec.rules'), [{
    backendRefs: [{ name: 'portal-sessiongate', port: 80 }],
    matches: [{ path: { type: 'PathPrefix', value: '/' } }],
    timeouts: { request: '120s' }
  }], 'everything to the Service port 80 (http)')
  t.same(get(route, 'metadata.annotations'), { team: 'identity' })
  const custom = render([{ service: { port: 8081 }, httpRoute: { enabled: true, parentRefs, hostnames: ['a.example.com'], matches: [{ path: { type: 'PathPrefix', value: '/auth' } }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['x-forwarded-user'] } }] } }]).one('HTTPRoute')
  t.same(get(custom, 'spec.hostnames'), ['a.example.com'])
  const rule = (get(custom, 'spec.rules') as Obj[])[0]!
  t.same(rule['backendRefs'], [{ name: 'portal-sessiongate', port: 8081 }], 'follows service.port')
  t.same(rule['filters'], [{ type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['x-forwarded-user'] } }])
  t.notMatch(JSON.stringify(custom), /9090/, 'never the admin port')
})

t.test('extraEnv, extraVolumes, extraVolumeMounts, initContainers, sidecars (a private CA bundle)', async t => {
  const r = renderChart(chart, { releaseName: 'portal', namespace: 'gateway', values: [ci('full-values.yaml')] })
  const spec = podSpec(r)
  const c = container(r)
  t.same((spec['volumes'] as Obj[]).map(v => v['name']), ['config', 'tmp', 'corporate-ca'], 'extra volumes after the chart\'s own')
  t.same((c['volumeMounts'] as Obj[]).map(m => m['mountPath']), ['/etc/sessiongate', '/tmp', '/etc/sessiongate-ca'])
  t.match((c['env'] as Obj[]).find(e => e['name'] === 'NODE_EXTRA_CA_CERTS'), { value: '/etc/sessiongate-ca/ca.crt' }, 'Node trusts the mounted CA')
  t.same((spec['initContainers'] as Obj[]).map(x => x['name']), ['wait-for-redis'])
  t.same((spec['containers'] as Obj[]).map(x => x['name']), ['sessiongate', 'log-shipper'], 'the gateway first, then the sidecars')
  t.same(get(spec, 'imagePullSecrets'), [{ name: 'regcred' }])
  const plain = podSpec(render([]))
  t.notOk('initContainers' in plain, 'no initContainers by default')
  t.same((plain['containers'] as Obj[]).length, 1, 'no sidecar by default')
  refused(t, 'an extra volume named like the chart\'s', [{ extraVolumes: [{ name: 'tmp', emptyDir: {} }] }], /extraVolumes: the name "tmp" is the chart's own volume/)
  refused(t, 'a mount over the config', [{ extraVolumes: [{ name: 'x', emptyDir: {} }], extraVolumeMounts: [{ name: 'x', mountPath: '/etc/sessiongate/' }] }], /extraVolumeMounts: \/etc\/sessiongate\/ is already mounted/)
})

t.test('startupProbe: /healthz on the admin port before liveness starts; can be turned off', async t => {
  const c = container(render([]))
  t.same(c['startupProbe'], { httpGet: { path: '/healthz', port: 'admin' }, initialDelaySeconds: 0, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 30 })
  t.match(c['livenessProbe'], { httpGet: { path: '/healthz', port: 'admin' } })
  t.match(c['readinessProbe'], { httpGet: { path: '/readyz', port: 'admin' } })
  t.equal(get(container(render([{ startupProbe: { failureThreshold: 90 } }])), 'startupProbe.failureThreshold'), 90, 'a longer start-up budget')
  t.notOk('startupProbe' in container(render([{ startupProbe: { enabled: false } }])), 'startupProbe.enabled: false')
})

t.test('helm test: a hook pod that asks /readyz on the admin port, not selected as a gateway pod', async t => {
  const r = render([{ image: { repository: 'registry.example.com/sessiongate', tag: '1.10' } }])
  const pods = r.find('Pod')
  t.equal(pods.length, 1)
  const pod = pods[0]!
  t.equal((get(pod, 'metadata.annotations') as Obj)['helm.sh/hook'], 'test', 'helm.sh/hook: test')
  t.equal(get(pod, 'spec.restartPolicy'), 'Never')
  const tc = (get(pod, 'spec.containers') as Obj[])[0]!
  t.equal(tc['image'], 'registry.example.com/sessiongate:1.10', 'the gateway image (node, no curl)')
  t.same((tc['env'] as Obj[]), [{ name: 'READYZ_URL', value: 'http://portal-sessiongate:9090/readyz' }], 'the admin port through the Service')
  t.match(get(tc, 'securityContext'), { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false })
  // the Service, the PDB and the NetworkPolicy select gateway pods by these labels: the test pod must not match
  const selector = get(r.one('Service'), 'spec.selector') as Obj
  const labels = get(pod, 'metadata.labels') as Obj
  t.notOk(Object.entries(selector).every(([k, v]) => labels[k] === v), 'the Service does not select the test pod')
  t.same(render([{ tests: { enabled: false } }]).find('Pod'), [], 'tests.enabled: false')
})

t.test('helm test pod: its script exits 0 on 200 (also "degraded"), 1 on 503 and on no answer', async t => {
  const { createServer } = await import('node:http')
  const pod = render([]).find('Pod')[0]!
  const command = (get(pod, 'spec.containers') as Obj[])[0]!['command'] as string[]
  t.same(command.slice(0, 2), ['node', '-e'])
  let status = 200
  let body = '{"status":"ready","checks":{"shutdown":"ok","idp":"ok","store":"degraded"}}'
  const server = createServer((req, res) => { res.writeHead(req.url === '/readyz' ? status : 404, { 'content-type': 'application/json' }).end(body) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const { spawn } = await import('node:child_process')
  const run = async (url: string): Promise<number | null> => {
    return await new Promise(resolve => spawn(process.execPath, command.slice(1), { env: { READYZ_URL: url }, stdio: 'ignore' }).on('exit', code => resolve(code)))
  }
  t.equal(await run(`http://127.0.0.1:${port}/readyz`), 0, 'ready (store degraded under failMode open): passes')
  status = 503
  body = '{"status":"not ready","checks":{"shutdown":"ok","idp":"metadata not loaded","store":"ok"}}'
  t.equal(await run(`http://127.0.0.1:${port}/readyz`), 1, 'not ready: fails')
  server.close()
  t.equal(await run(`http://127.0.0.1:${port}/readyz`), 1, 'nothing listening: fails')
})

t.test('forward-auth: NOTES warn when the chart\'s Ingress or HTTPRoute would expose /auth/check', async t => {
  const fa = { config: { forwardAuth: { enabled: true, allowedHosts: ['*.example.com'] } } }
  const warning = /WARNING: config\.forwardAuth is enabled and the chart's (Ingress|HTTPRoute) routes \/auth\/check/
  const parentRefs = [{ name: 'gw' }]
  t.match(render([fa, { ingress: { enabled: true } }]).notes, warning, 'Ingress with the default path /')
  t.match(render([fa, { httpRoute: { enabled: true, parentRefs } }]).notes, warning, 'HTTPRoute with the default match /')
  t.match(render([fa, { ingress: { enabled: true, paths: [{ path: '/auth', pathType: 'Prefix' }] } }]).notes, warning, 'a prefix covering it')
  t.match(render([fa, { ingress: { enabled: true, paths: [{ path: '/auth/check', pathType: 'Exact' }] } }]).notes, warning, 'the path itself')
  const safe = [{ path: '/auth/login', pathType: 'Prefix' }, { path: '/auth/callback', pathType: 'Prefix' }, { path: '/auth/checkout', pathType: 'Prefix' }, { path: '/', pathType: 'Exact' }]
  t.notMatch(render([fa, { ingress: { enabled: true, paths: safe } }]).notes, /WARNING: config\.forwardAuth/, 'only the sign-in paths: no warning')
  t.notMatch(render([fa, { httpRoute: { enabled: true, parentRefs, matches: [{ path: { type: 'PathPrefix', value: '/auth/login' } }] } }]).notes, /WARNING: config\.forwardAuth/, 'HTTPRoute on the sign-in path only')
  t.notMatch(render([{ ingress: { enabled: true } }]).notes, /WARNING: config\.forwardAuth/, 'forward-auth off: no warning')
  const open = /WARNING: the public port is open to every pod/
  t.match(render([fa]).notes, open, 'forward-auth without a NetworkPolicy: the check endpoint is open to every pod')
  t.notMatch(render([fa, { networkPolicy: { enabled: true, publicFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }] } }]).notes, open, 'public port restricted to the controller: no warning')
  t.notMatch(render([{}]).notes, open, 'forward-auth off: no warning')
})

t.test('workers: more than one needs the Redis store, as the loader says', async t => {
  refused(t, 'workers 2, memory store', [{ config: { workers: 2 } }], /config\.workers is 2 but config\.store\.kind is memory/, schemaless)
  refused(t, 'workers auto, memory store', [{ config: { workers: 'auto' } }], /config\.workers is auto/, schemaless)
  const r = render([redis, { config: { workers: 'auto' } }])
  t.match(String((r.one('ConfigMap')['data'] as Obj)['config.yaml']), /workers: auto/, 'rendered into the config')
  t.ok(render([{ config: { workers: 1 } }]), 'one worker with the memory store renders')
})
