/**
 * Small pieces the Redis store tests share: a capturing logger, fresh key prefixes and records,
 * retry helpers, the near-cache target of the store suites, and Cluster slot tools (who serves a slot,
 * users on a given master, moving a slot).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { NearCacheStore } from '../../src/store/near-cache.js'
import type { StoreLogger } from '../../src/store/redis.js'
import { keySlot } from '../../src/store/redis-keys.js'
import type { SessionRecord } from '../../src/store/store.js'
import { waitUntil, withAdmin } from './redis-process.js'
import type { RedisCluster } from './redis-cluster.js'
import type { StoreHarness } from '../store/suite-kit.js'

/** A StoreLogger that keeps what it was told. */
export function captureLogger (): StoreLogger & { warns: string[], errors: string[] } {
  const warns: string[] = []
  const errors: string[] = []
  return { warns, errors, warn: (_obj, msg) => { warns.push(msg) }, error: (_obj, msg) => { errors.push(msg) } }
}

/** A fresh key prefix per store, so tests on one server never see each other's keys. */
export const newPrefix = (tag = 'sgt'): string => `${tag}${randomBytes(4).toString('hex')}:`

/** A session record with random ids, valid for an hour; `over` replaces fields. */
export function record (over: Partial<Omit<SessionRecord, 'version'>> = {}): Omit<SessionRecord, 'version'> {
  const now = Date.now()
  return { sid: randomUUID(), sub: randomUUID(), iss: 'https://idp.example.test', createdAt: now, lastSeenAt: now, userAgent: 'ua', ip: '192.0.2.1', rememberMe: true, expiresAt: now + 3_600_000, credHash: randomUUID(), ...over }
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Retries `fn` until it resolves or `ms` pass (then rethrows its last error). */
export async function waitFor (fn: () => Promise<void>, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await fn()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(100)
    }
  }
}

/**
 * The near-cache target of the store suites: a NearCacheStore over each store `make` returns (its clock,
 * if any, shared). The cache shows what the inner store expires by TTL up to `maxAgeMs` late; the suites'
 * shortest TTL is 1 s, hence a shorter maxAgeMs than the default 5 s.
 */
export function nearCacheOver (make: () => Promise<StoreHarness>, maxAgeMs = 500): () => Promise<StoreHarness> {
  return async () => {
    const inner = await make()
    const cache = new NearCacheStore(inner.store, { maxAgeMs, ...(inner.now !== undefined ? { now: inner.now } : {}) })
    return {
      ...inner,
      store: cache,
      cleanup: async () => {
        await cache.close() // closes the inner store too
        await inner.cleanup()
      }
    }
  }
}

/** The hash tag RedisStore gives a user's keys. */
export const tagOf = (sub: string): string => `{${Buffer.from(sub).toString('base64url')}}`

/** Port of the master serving `slot`, from CLUSTER SLOTS. */
export async function ownerOf (cluster: RedisCluster, slot: number): Promise<number> {
  const ranges = await withAdmin(cluster.nodes[0]!.port, async (r) => await r.cluster('SLOTS')) as unknown as Array<[number, number, [string, number, string]]>
  const range = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)
  if (range === undefined) throw new Error(`slot ${slot} is not served`)
  return Number(range[2][1])
}

/** Users whose tags land on masters `ports[i]`, one per requested port, each in its own slot. */
export async function usersOn (cluster: RedisCluster, ports: number[]): Promise<string[]> {
  const out: string[] = []
  for (const port of ports) {
    for (;;) {
      const sub = randomUUID()
      const slot = keySlot(tagOf(sub))
      if (out.some((o) => keySlot(tagOf(o)) === slot)) continue
      if (await ownerOf(cluster, slot) === port) { out.push(sub); break }
    }
  }
  return out
}

/**
 * Moves one slot between masters the way redis-cli --cluster reshard does: IMPORTING / MIGRATING,
 * MIGRATE its keys, then SETSLOT NODE everywhere (no client is told).
 */
export async function migrateSlot (slot: number, fromPort: number, toPort: number, c: RedisCluster): Promise<void> {
  const id = async (port: number): Promise<string> => await withAdmin(port, async (r) => String(await r.cluster('MYID')))
  const [fromId, toId] = [await id(fromPort), await id(toPort)]
  await withAdmin(toPort, async (r) => await r.cluster('SETSLOT', slot, 'IMPORTING', fromId))
  await withAdmin(fromPort, async (r) => await r.cluster('SETSLOT', slot, 'MIGRATING', toId))
  await withAdmin(fromPort, async (r) => {
    for (;;) {
      const keys = await r.cluster('GETKEYSINSLOT', slot, 100) as string[]
      if (keys.length === 0) break
      await r.migrate('127.0.0.1', toPort, '', 0, 5000, 'KEYS', ...keys)
    }
  })
  for (const port of [toPort, fromPort, ...c.nodes.map((n) => n.port).filter((p) => p !== fromPort && p !== toPort)]) {
    await withAdmin(port, async (r) => await r.cluster('SETSLOT', slot, 'NODE', toId))
  }
  await waitUntil(async () => {
    const owners = await Promise.all(c.nodes.map(async (n) => {
      const ranges = await withAdmin(n.port, async (r) => await r.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>
      return ranges.find(([lo, hi]) => slot >= lo && slot <= hi)?.[2][1]
    }))
    return owners.every((p) => Number(p) === toPort)
  }, 10_000, 'every node to agree on the slot\'s new owner')
}
