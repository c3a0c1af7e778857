/**
 * `workers` (README section "Workers"): 1 by default, a number, or `auto` (one per CPU); more than one needs
 * the Redis store, and the error names `workers`.
 */
import t from 'tap'
import { availableParallelism } from 'node:os'
import { stringify } from 'yaml'
import { ConfigError, parseConfig } from '../../src/config/loader.js'
import { generateKey } from '../../src/config/keygen.js'

const env = { SG_SESSION_KEY: generateKey() }
const base = (extra: Record<string, unknown>): string => stringify({
  publicUrl: 'https://app.example.com',
  admin: { token: 'admin-token-0123456789' },
  oidc: { issuer: 'https://idp.example.com', clientId: 'gw' },
  session: { keys: ['${SG_SESSION_KEY}'] },
  routes: [{ prefix: '/', upstream: 'http://127.0.0.1:3000' }],
  ...extra
})
const redis = { store: { kind: 'redis', redis: { url: 'redis://127.0.0.1:6379' } } }

t.equal(parseConfig(base({}), env).workers, 1, 'one worker by default')
t.equal(parseConfig(base({ workers: 4, ...redis }), env).workers, 4)
t.equal(parseConfig(base({ workers: 'auto', ...redis }), env).workers, Math.min(availableParallelism(), (await import('../../src/config/cpus.js')).cgroupCpus() ?? Infinity), 'auto: one per usable CPU')

for (const [value, store, message] of [
  [2, {}, /store\.kind: redis/],
  [2, { store: { kind: 'memory' } }, /store\.kind: redis/],
  [0, redis, /./],
  ['many', redis, /./],
  [1.5, redis, /./]
] as const) {
  t.test(`workers: ${String(value)} ${store === redis ? 'with redis' : 'with the memory store'} is refused`, async (t) => {
    let err: unknown
    try { parseConfig(base({ workers: value, ...store }), env) } catch (e) { err = e }
    t.ok(err instanceof ConfigError)
    t.equal((err as ConfigError).key, 'workers')
    t.match((err as ConfigError).message, message)
  })
}

t.test('auto counts a container CPU quota, rounded up', async (t) => {
  const { cgroupCpus } = await import('../../src/config/cpus.js')
  const files = (m: Record<string, string>) => (p: string): string | undefined => m[p]
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': '200000 100000' })), 2, 'v2: 2 CPUs')
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': '150000 100000' })), 2, 'v2: 1.5 CPUs rounds up')
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': '50000 100000' })), 1, 'v2: half a CPU is one worker')
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': 'max 100000' })), undefined, 'v2: no quota')
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '300000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' })), 3, 'v1')
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' })), undefined, 'v1: no quota')
  t.equal(cgroupCpus(files({})), undefined, 'no cgroup files')
})
