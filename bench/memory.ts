/**
 * Redis memory per device record (issue #14: <= 400 B), measured with MEMORY USAGE over 100,000 devices
 * written by RedisStore.createSession itself (2 devices per user, like the bench's population).
 *
 *   node --import tsx bench/memory.ts          # BENCH_MEMORY_DEVICES=100000 by default
 *
 * Per device it counts the device hash and its index entries (its share of the user's `devs` set, its
 * `sidx` key, its `idpsid` key, its share of the user's `email` index); the sealed token bundle, in its own
 * key, is a line of its own, and so is the per-user `ver` key. Also reported: `used_memory` delta per
 * device (everything, expires dict and allocator rounding included). The record copies a real login's
 * shape: a 101-character browser user agent, an IdP session id, an email, and a sealed bundle of the
 * length a real login produces (bench/results/latest.json: 1,123 characters). Exported for bench/run.ts.
 */
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { hashCredential, newCredential, newSessionId } from '../src/core/device.js'
import { KeyRing, seal } from '../src/core/sealed-cookie.js'
import { RedisStore } from '../src/store/redis.js'
import type { SessionRecord } from '../src/store/store.js'
import { startRedis } from '../test/helpers/redis-server.js'

export interface MemoryReport {
  devices: number
  devicesPerUser: number
  redisVersion: string
  /** MEMORY USAGE (bytes), averaged over the sampled devices. */
  perKey: Record<string, number>
  encodings: Record<string, string>
  /** Device hash + devs share + sidx + idpsid + email share: the "per device record". */
  recordBytes: number
  /** The token-bundle string key, separately. */
  tokenBytes: number
  /** The user's version key, per device. */
  userBytesPerDevice: number
  usedMemoryPerDevice: number
}

const TEMPLATE = {
  iss: 'http://127.0.0.1:41234',
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  ip: '127.0.0.1',
  tokensLength: 1123,
  idpSidLength: 43
}
const SAMPLE = 1000
const sub = (i: number): string => `dddddddd-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const tag = (s: string): string => `{${Buffer.from(s, 'utf8').toString('base64url')}}`

export async function measureMemory (devices = 100_000, devicesPerUser = 2): Promise<MemoryReport> {
  const server = await startRedis()
  const redis = new Redis(server.port, '127.0.0.1')
  const prefix = 'sg:'
  const store = new RedisStore({ redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: 10_000 } })
  try {
    await store.ping()
    const redisVersion = /^redis_version:(\S+)/m.exec(await redis.info('server'))?.[1] ?? 'unknown'
    const used = async (): Promise<number> => Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1])
    // A real sealed bundle (v1.<kid>.<iv>.<ciphertext>.<tag>) of a real login's length.
    const ring = new KeyRing([randomBytes(32)])
    let filler = 700
    let tokens = ''
    for (;;) {
      tokens = seal(ring, 'tokens', { idToken: randomBytes(filler).toString('base64url') })
      if (tokens.length >= TEMPLATE.tokensLength) break
      filler += 8
    }
    const now = Date.now()
    const written: Array<{ sub: string, sid: string, idpSid: string }> = []
    const before = await used()
    const one = async (i: number): Promise<void> => {
      const s = sub(Math.floor(i / devicesPerUser))
      const rec: Omit<SessionRecord, 'version'> = {
        sid: newSessionId(),
        sub: s,
        iss: TEMPLATE.iss,
        idpSid: randomBytes(32).toString('base64url').slice(0, TEMPLATE.idpSidLength),
        createdAt: now,
        lastSeenAt: now,
        userAgent: TEMPLATE.userAgent,
        ip: TEMPLATE.ip,
        rememberMe: true,
        expiresAt: now + 30 * 86_400_000,
        credHash: hashCredential(newCredential()),
        tokens,
        email: `${s}@example.com`
      }
      await store.createSession(rec, 31 * 86_400)
      if (i % Math.max(1, Math.floor(devices / SAMPLE)) === 0 && written.length < SAMPLE) written.push({ sub: rec.sub, sid: rec.sid, idpSid: rec.idpSid! })
    }
    const CONCURRENCY = 128
    let next = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < devices) await one(next++)
    }))
    const after = await used()

    const usage = async (key: string): Promise<number> => Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') ?? 0)
    const sums: Record<string, number> = { dev_hash: 0, token_key: 0, sidx: 0, idpsid_index: 0, devs_set_per_user: 0, email_index_per_user: 0, ver_per_user: 0 }
    for (const w of written) {
      const t = tag(w.sub)
      sums.dev_hash! += await usage(`${prefix}dev:${t}:${w.sid}`)
      sums.token_key! += await usage(`${prefix}tok:${t}:${w.sid}`)
      sums.sidx! += await usage(`${prefix}sidx:${w.sid}`)
      sums.idpsid_index! += await usage(`${prefix}idpsid:${TEMPLATE.iss}:${w.idpSid}`)
      sums.devs_set_per_user! += await usage(`${prefix}devs:${t}`)
      sums.email_index_per_user! += await usage(`${prefix}email:${w.sub}@example.com`)
      sums.ver_per_user! += await usage(`${prefix}ver:${t}`)
    }
    const perKey = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, Math.round(v / written.length)]))
    const w0 = written[0]!
    const encodings = {
      dev_hash: String(await redis.object('ENCODING', `${prefix}dev:${tag(w0.sub)}:${w0.sid}`)),
      devs_set: String(await redis.object('ENCODING', `${prefix}devs:${tag(w0.sub)}`)),
      idpsid_index: String(await redis.object('ENCODING', `${prefix}idpsid:${TEMPLATE.iss}:${w0.idpSid}`)),
      email_index: String(await redis.object('ENCODING', `${prefix}email:${w0.sub}@example.com`))
    }
    const k = (name: string): number => perKey[name] ?? 0
    return {
      devices,
      devicesPerUser,
      redisVersion,
      perKey,
      encodings,
      recordBytes: Math.round(k('dev_hash') + k('devs_set_per_user') / devicesPerUser + k('sidx') + k('idpsid_index') + k('email_index_per_user') / devicesPerUser),
      tokenBytes: k('token_key'),
      userBytesPerDevice: Math.round(k('ver_per_user') / devicesPerUser),
      usedMemoryPerDevice: Math.round((after - before) / devices)
    }
  } finally {
    await store.close()
    redis.disconnect()
    await server.stop()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const devices = Number(process.env.BENCH_MEMORY_DEVICES ?? 100_000)
  const started = performance.now()
  const r = await measureMemory(devices)
  console.log(JSON.stringify({ ...r, seconds: Math.round((performance.now() - started) / 100) / 10 }, null, 2))
  console.log(`per device record: ${r.recordBytes} B (target <= 400: ${r.recordBytes <= 400 ? 'met' : 'NOT met'}); token bundle key: ${r.tokenBytes} B; user version key: ${r.userBytesPerDevice} B/device; used_memory: ${r.usedMemoryPerDevice} B/device (everything)`)
}
