/**
 * What the focused profilers (bench/profile.ts, bench/profile-backchannel.ts) share: a gateway child under
 * `--cpu-prof` (unless PROFILE_OFF=1), a store beside it for minting sessions, the record minted sessions
 * copy, and finding the main thread's profile afterwards.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/loader.js'
import type { Config } from '../../src/config/types.js'
import { RedisStore } from '../../src/store/redis.js'
import type { SessionRecord } from '../../src/store/store.js'
import { startChild, type Child } from './procs.js'

/** Starts the gateway of `raw` (profiled into `dir`) and a Redis store on its config. */
export async function startProfiledGateway (raw: Record<string, unknown>, dir: string): Promise<{ gateway: Child, config: Config, store: RedisStore }> {
  if (process.env.PROFILE_OFF !== '1') process.env.BENCH_CHILD_ARGS = `--cpu-prof --cpu-prof-dir=${dir}`
  const gateway = await startChild('gateway', { config: raw }) // only the gateway is profiled
  delete process.env.BENCH_CHILD_ARGS
  const config = parseConfig(stringify(raw), {})
  if (config.store.kind !== 'redis') throw new Error('the profilers run on Redis')
  return { gateway, config, store: new RedisStore({ redis: config.store.redis }) }
}

/** The device record minted sessions copy (`iss`: the IdP's issuer). */
export function templateRecord (iss: string): SessionRecord {
  const now = Date.now()
  return {
    sid: 'template', sub: 'alice', iss, createdAt: now, lastSeenAt: now, userAgent: 'bench', ip: '127.0.0.1',
    rememberMe: true, expiresAt: now + 3600_000, version: 0, credHash: 'x'
  }
}

/** The main thread's profile in `dir` (one per thread; tsx's loader has its own): the largest file. */
export async function mainProfile (dir: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))
  const sizes = await Promise.all(files.map(async (f) => (await readFile(join(dir, f))).length))
  const file = files[sizes.indexOf(Math.max(...sizes))]
  if (file === undefined) throw new Error(`no profile in ${dir}`)
  return join(dir, file)
}
