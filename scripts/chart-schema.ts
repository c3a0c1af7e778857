/**
 * Writes helm/sessiongate/values.schema.json: the JSON Schema helm checks values against before it
 * renders (helm install / upgrade / template / lint).
 * - `config`: generated from the gateway's own config schema (RawConfigSchema, src/config/schema.ts),
 *   minus the keys the chart sets itself (`listen`, `admin.listen`). So after a change to the config
 *   schema, rerun this script: `npm run chart:schema`. test/packaging/chart-schema.test.ts fails while
 *   the committed file is out of date.
 * - every other key: the chart's own, described below. Kubernetes objects passed through as-is
 *   (affinity, resources, extraVolumes, ...) are only checked for being a map or a list.
 * JSON Schema draft-07, which every helm 3 validates.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Type, type TSchema, type TProperties, type ObjectOptions } from '@sinclair/typebox'
import { RawConfigSchema } from '../src/config/schema.js'

type Json = Record<string, unknown>

export const SCHEMA_PATH = fileURLToPath(new URL('../helm/sessiongate/values.schema.json', import.meta.url))

/** A plain JSON copy of a TypeBox schema (TypeBox's symbol keys dropped). */
const json = (s: TSchema): Json => JSON.parse(JSON.stringify(s)) as Json

/** The chart's own maps are closed: a typo such as `replicaCout` is an error, not a silent no-op. */
const Closed = <T extends TProperties>(props: T, opts: ObjectOptions = {}) => Type.Object(props, { ...opts, additionalProperties: false })
const Opt = <T extends TSchema>(s: T) => Type.Optional(s)
const Int = (min = 0) => Type.Integer({ minimum: min })
const Bool = () => Type.Boolean()
const Str = () => Type.String()
const Enum = (values: string[]) => Type.Unsafe<string>({ type: 'string', enum: values })
/** Kubernetes IntOrString: a number of pods or a percentage. */
const IntOrPercent = (allowEmpty = false) => Type.Unsafe<string | number>({
  anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: allowEmpty ? '^(\\d+%?)?$' : '^\\d+%?$' }]
})
/** A Kubernetes object or list taken as-is. */
const KMap = (description: string) => Type.Object({}, { additionalProperties: true, description })
const KList = (description: string) => Type.Array(Type.Object({}, { additionalProperties: true }), { description })
const StringMap = () => Type.Record(Type.String(), Type.String())
/** An object with a mandatory `name` (containers, volumes, env vars). */
const Named = (description: string) => Type.Array(Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: true }), { description })
const Probe = (extra: TProperties = {}) => Closed({
  ...extra,
  initialDelaySeconds: Opt(Int()),
  periodSeconds: Opt(Int(1)),
  timeoutSeconds: Opt(Int(1)),
  failureThreshold: Opt(Int(1))
})

/** The gateway config as the chart takes it: RawConfigSchema without the keys the chart sets. */
export function configSchema (): Json {
  const config = json(RawConfigSchema)
  const props = config['properties'] as Record<string, Json>
  delete props['listen']
  const admin = props['admin'] as Json
  delete (admin['properties'] as Json)['listen']
  admin['required'] = ((admin['required'] as string[] | undefined) ?? []).filter(k => k !== 'listen')
  config['required'] = ((config['required'] as string[] | undefined) ?? []).filter(k => k !== 'listen')
  config['description'] = 'The gateway config file (src/config/schema.ts, generated); listen and admin.listen are set by the chart.'
  return config
}

const secretKeys = ['clientSecret', 'sessionKey', 'adminToken', 'sessionKeyPrevious', 'redisPassword', 'sentinelPassword'] as const
const secretMap = () => Closed(Object.fromEntries(secretKeys.map(k => [k, Opt(Str())])) as TProperties)

/** The whole values schema. */
export function chartSchema (): Json {
  const chart = Closed({
    global: Opt(KMap('helm global values (parent charts)')),
    replicaCount: Int(),
    revisionHistoryLimit: Int(),
    updateStrategy: Closed({
      type: Enum(['RollingUpdate', 'Recreate']),
      rollingUpdate: Opt(Closed({ maxUnavailable: Opt(IntOrPercent()), maxSurge: Opt(IntOrPercent()) }))
    }),
    image: Closed({
      repository: Type.String({ minLength: 1 }),
      // a string: unquoted, 1.10 would be the number 1.1
      tag: Str(),
      digest: Opt(Type.String({ pattern: '^([a-z0-9]+:[a-fA-F0-9]{32,})?$' })),
      pullPolicy: Enum(['IfNotPresent', 'Always', 'Never'])
    }),
    imagePullSecrets: Named('LocalObjectReference list'),
    nameOverride: Str(),
    fullnameOverride: Str(),
    config: Type.Unsafe(configSchema()),
    secrets: Closed({
      existingSecret: Str(),
      create: Bool(),
      keys: secretMap(),
      values: secretMap()
    }),
    extraEnv: Named('EnvVar list'),
    extraVolumes: Named('Volume list'),
    extraVolumeMounts: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), mountPath: Type.String({ minLength: 1 }) }, { additionalProperties: true }), { description: 'VolumeMount list' }),
    initContainers: Named('Container list'),
    sidecars: Named('Container list'),
    service: Closed({
      type: Enum(['ClusterIP', 'NodePort', 'LoadBalancer']),
      allowExternalAdmin: Bool(),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      adminPort: Type.Integer({ minimum: 1, maximum: 65535 }),
      annotations: StringMap()
    }),
    startupProbe: Probe({ enabled: Bool() }),
    livenessProbe: Probe(),
    readinessProbe: Probe(),
    terminationGracePeriodSeconds: Int(),
    preStopSleepSeconds: Int(),
    resources: KMap('ResourceRequirements'),
    tmpSizeLimit: Type.Unsafe<string | number>({ type: ['string', 'integer'] }),
    podSecurityContext: KMap('PodSecurityContext'),
    securityContext: KMap('SecurityContext'),
    podAnnotations: StringMap(),
    podLabels: StringMap(),
    nodeSelector: StringMap(),
    tolerations: KList('Toleration list'),
    affinity: KMap('Affinity'),
    topologySpreadConstraints: KList('TopologySpreadConstraint list (through tpl)'),
    priorityClassName: Str(),
    autoscaling: Closed({
      enabled: Bool(),
      minReplicas: Int(1),
      maxReplicas: Int(1),
      targetCPUUtilizationPercentage: Int(),
      targetMemoryUtilizationPercentage: Int(),
      extraMetrics: KList('MetricSpec list'),
      behavior: KMap('HorizontalPodAutoscalerBehavior')
    }),
    podDisruptionBudget: Closed({
      enabled: Bool(),
      // optional: null in a values file removes a default (helm), leaving the other one
      minAvailable: Opt(Type.Unsafe({ anyOf: [json(IntOrPercent(true)), { type: 'null' }] })),
      maxUnavailable: Opt(Type.Unsafe({ anyOf: [json(IntOrPercent(true)), { type: 'null' }] }))
    }),
    metrics: Closed({
      serviceMonitor: Closed({
        enabled: Bool(),
        namespace: Str(),
        labels: StringMap(),
        interval: Type.String({ minLength: 1 }),
        scrapeTimeout: Type.String({ minLength: 1 })
      })
    }),
    networkPolicy: Closed({
      enabled: Bool(),
      publicFrom: KList('NetworkPolicyPeer list'),
      adminFrom: KList('NetworkPolicyPeer list')
    }),
    ingress: Closed({
      enabled: Bool(),
      className: Str(),
      annotations: StringMap(),
      labels: StringMap(),
      hosts: Type.Array(Type.String({ minLength: 1 })),
      paths: Type.Array(Closed({ path: Type.String({ minLength: 1 }), pathType: Opt(Enum(['Prefix', 'Exact', 'ImplementationSpecific'])) }), { minItems: 1 }),
      tls: Type.Array(Closed({ secretName: Opt(Str()), hosts: Opt(Type.Array(Str())) }))
    }),
    httpRoute: Closed({
      enabled: Bool(),
      annotations: StringMap(),
      labels: StringMap(),
      parentRefs: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: true }), { description: 'ParentReference list' }),
      hostnames: Type.Array(Type.String({ minLength: 1 })),
      matches: KList('HTTPRouteMatch list'),
      filters: KList('HTTPRouteFilter list'),
      timeouts: KMap('HTTPRouteTimeouts')
    }),
    tests: Closed({
      enabled: Bool(),
      resources: KMap('ResourceRequirements')
    })
  })
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'sessiongate chart values',
    description: 'Generated by scripts/chart-schema.ts (npm run chart:schema); config follows src/config/schema.ts. Do not edit by hand.',
    ...json(chart)
  }
}

export const schemaText = (): string => `${JSON.stringify(chartSchema(), null, 2)}\n`

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_PATH, schemaText())
  console.log(`wrote ${SCHEMA_PATH}`)
}
