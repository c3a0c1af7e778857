/**
 * helm/sessiongate/values.schema.json, which helm checks values against before rendering:
 * - it is what scripts/chart-schema.ts generates now (`npm run chart:schema` after a change to
 *   src/config/schema.ts or to the chart's keys), its `config` derived from the gateway's RawConfigSchema;
 * - it describes exactly the keys values.yaml has;
 * - values.yaml and every ci/*-values.yaml (merged over the defaults, as helm validates them) pass;
 * - broken values sets are refused, naming the key, by ajv and through the helm stand-in.
 */
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { RawConfigSchema } from '../../src/config/schema.js'
import { chartSchema, configSchema, schemaText, SCHEMA_PATH } from '../../scripts/chart-schema.js'
import { HelmError, helmMerge, loadChart, readHelmYaml, renderChart } from '../helpers/helm-template.js'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

const root = fileURLToPath(new URL('../../', import.meta.url))
const chartDir = join(root, 'helm', 'sessiongate')
const committed = readFileSync(SCHEMA_PATH, 'utf8')
const schema = JSON.parse(committed) as Obj
const values = readHelmYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Obj
const ciFiles = readdirSync(join(chartDir, 'ci')).filter(f => f.endsWith('-values.yaml')).sort()
const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true })
const validate = ajv.compile(schema)

/** ajv's errors as `path: message` lines. */
function problems (v: unknown): string[] {
  if (validate(v)) return []
  return (validate.errors ?? []).map(e => {
    const extra = e.keyword === 'additionalProperties' ? ` ${String((e.params as { additionalProperty: string }).additionalProperty)}` : ''
    return `${e.instancePath.slice(1).split('/').join('.') || '(root)'}: ${e.message ?? e.keyword}${extra}`
  })
}

t.test('values.schema.json is up to date with scripts/chart-schema.ts (npm run chart:schema)', async t => {
  t.equal(committed, schemaText(), 'regenerate with `npm run chart:schema` and commit the result')
  t.equal(schema['$schema'], 'http://json-schema.org/draft-07/schema#', 'draft-07, as helm validates')
})

t.test('config is the gateway config schema, minus the listeners the chart sets', async t => {
  const config = (schema['properties'] as Obj)['config'] as Obj
  t.same(config, configSchema())
  const raw = JSON.parse(JSON.stringify(RawConfigSchema)) as Obj
  const rawKeys = Object.keys(raw['properties'] as Obj).filter(k => k !== 'listen').sort()
  t.same(Object.keys(config['properties'] as Obj).sort(), rawKeys, 'every top-level config key of RawConfigSchema but listen')
  t.notOk('listen' in (config['properties'] as Obj), 'listen: set by the chart')
  t.notOk('listen' in (((config['properties'] as Obj)['admin'] as Obj)['properties'] as Obj), 'admin.listen: set by the chart')
  // one nested rule, followed through: the store's failMode enum comes from the gateway
  const failMode = (((config['properties'] as Obj)['store'] as Obj)['properties'] as Obj)['failMode']
  t.same((failMode as Obj)['enum'], ['closed', 'open'])
})

t.test('the schema describes exactly the keys of values.yaml (outside config)', async t => {
  const missing: string[] = []
  const walk = (v: unknown, s: unknown, path: string[]): void => {
    if (!isObj(v) || !isObj(s) || path[0] === 'config') return
    const props = (s['properties'] ?? {}) as Obj
    if (Object.keys(props).length === 0) return // a Kubernetes object taken as-is, or a string map
    for (const k of Object.keys(props)) if (!(k in v) && k !== 'global') missing.push(`${path.concat(k).join('.')} (in the schema, not in values.yaml)`)
    for (const [k, x] of Object.entries(v)) walk(x, props[k], path.concat(k))
  }
  walk(values, schema, [])
  t.same(missing, [])
  t.same(problems(values), [], 'and values.yaml passes it (so it has no key the schema lacks)')
})

t.test('values.yaml and each ci/*-values.yaml pass the schema', async t => {
  t.same(problems(values), [], 'values.yaml')
  t.ok(ciFiles.length >= 5, ciFiles.join(' '))
  for (const f of ciFiles) {
    const merged = helmMerge(values, readHelmYaml(readFileSync(join(chartDir, 'ci', f), 'utf8')))
    t.same(problems(merged), [], `ci/${f} merged over values.yaml`)
  }
})

t.test('broken values sets are refused, naming the key', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['a typo in the gateway config', 'config: {oidc: {isuer: https://idp.example.com}}', /^config\.oidc: must NOT have additional properties isuer$/],
    ['a wrong enum in the gateway config', 'config: {store: {failMode: maybe}}', /^config\.store\.failMode: must be equal to one of the allowed values$/],
    ['a wrong type in the gateway config', 'config: {trustProxy: "yes please"}', /^config\.trustProxy: must be boolean$/],
    ['the chart sets the listeners', 'config: {listen: {port: 80}}', /^config: must NOT have additional properties listen$/],
    ['an empty route list', 'config: {routes: []}', /^config\.routes: must NOT have fewer than 1 items$/],
    ['a typo in a chart key', 'replicaCout: 3', /^\(root\): must NOT have additional properties replicaCout$/],
    ['a number tag', 'image: {tag: 1.10}', /^image\.tag: must be string$/],
    ['replicas as a string', 'replicaCount: "3"', /^replicaCount: must be integer$/],
    ['an unknown Service type', 'service: {type: ExternalName}', /^service\.type: must be equal to one of the allowed values$/],
    ['an unknown update strategy', 'updateStrategy: {type: BlueGreen}', /^updateStrategy\.type: must be equal to one of the allowed values$/],
    ['a negative HPA target', 'autoscaling: {targetCPUUtilizationPercentage: -1}', /^autoscaling\.targetCPUUtilizationPercentage: must be >= 0$/],
    ['a PDB budget that is neither a number nor a percentage', 'podDisruptionBudget: {maxUnavailable: half}', /^podDisruptionBudget\.maxUnavailable: /],
    ['a numeric pod label value', 'podLabels: {tier: 1}', /^podLabels\.tier: must be string$/],
    ['an extra volume without a name', 'extraVolumes: [{emptyDir: {}}]', /^extraVolumes\.0: must have required property 'name'$/],
    ['a probe key that is not a probe timing', 'startupProbe: {initialDelay: 5}', /^startupProbe: must NOT have additional properties initialDelay$/],
    ['removing a required chart key', 'service: null', /^\(root\): must have required property 'service'$/]
  ]
  for (const [label, text, expect] of cases) {
    const found = problems(helmMerge(values, readHelmYaml(text)))
    t.ok(found.some(p => expect.test(p)), `${label}: ${found.join('; ') || 'accepted'}`)
  }
})

t.test('helm (the stand-in) refuses a broken values set before rendering, with the key', async t => {
  const chart = loadChart(chartDir)
  t.same(chart.schema, chartSchema(), 'the chart carries the generated schema')
  try {
    renderChart(chart, { values: ['secrets: {existingSecret: s}', 'config: {store: {kind: redis, failMode: maybe}}'] })
    t.fail('rendered')
  } catch (err) {
    t.ok(err instanceof HelmError)
    t.match((err as Error).message, /values don't meet the specifications of the schema\(s\) in the following chart\(s\):\nsessiongate:\n- config\.store\.failMode: /)
  }
  t.ok(renderChart(chart, { values: ['secrets: {existingSecret: s}'] }).manifests.length > 0, 'valid values render')
})
