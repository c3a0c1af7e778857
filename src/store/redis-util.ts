/**
 * RedisStore's pure helpers: reply and event parsing, TTL rounding, a deadline for a pending command, and
 * one bounded question to a sentinel. Kept apart so redis.ts holds the store itself.
 */
import { Redis } from 'ioredis'
import type { RedisConfig, RedisNode } from '../config/types.js'
import { StoreBadReplyError } from './store-errors.js'
import type { RevocationEvent } from './store.js'

type Sentinel = NonNullable<RedisConfig['sentinel']>

export interface Deleted { sid: string, iss: string, idpSid: string, email: string }

/** The revoke scripts' reply: sid, iss, idpSid, email ('' when absent) per deleted record. */
export function toDeleted (reply: unknown): Deleted[] {
  if (!Array.isArray(reply)) throw new StoreBadReplyError('store: unexpected revoke reply')
  const out: Deleted[] = []
  for (let i = 0; i + 3 < reply.length; i += 4) {
    out.push({ sid: String(reply[i]), iss: String(reply[i + 1]), idpSid: String(reply[i + 2]), email: String(reply[i + 3]) })
  }
  return out
}

export const secondsToS = (ttl: number): number => Math.max(1, Math.ceil(ttl))
export const secondsToMs = (ttl: number): number => secondsToS(ttl) * 1000

export function parseMember (member: string): { sub: string, sid: string } | null {
  const v: unknown = JSON.parse(member)
  if (!Array.isArray(v) || typeof v[0] !== 'string' || typeof v[1] !== 'string') return null
  return { sub: v[0], sid: v[1] }
}

/** Validates a message from the channel; null when it is not a RevocationEvent. */
export function parseEvent (message: string): RevocationEvent | null {
  let v: unknown
  try {
    v = JSON.parse(message)
  } catch {
    return null // reported by the caller as a malformed event
  }
  if (typeof v !== 'object' || v === null) return null
  const o = v as Record<string, unknown>
  if (typeof o.sub !== 'string' || typeof o.at !== 'number') return null
  if (!Array.isArray(o.sids) || !o.sids.every((s) => typeof s === 'string')) return null
  if (o.version !== undefined && typeof o.version !== 'number') return null
  if (o.revokedAt !== undefined && typeof o.revokedAt !== 'number') return null
  let idpSession: { iss: string, sid: string } | undefined
  if (o.idpSession !== undefined) {
    const m = o.idpSession as Record<string, unknown> | null
    if (typeof m !== 'object' || m === null || typeof m.iss !== 'string' || typeof m.sid !== 'string') return null
    idpSession = { iss: m.iss, sid: m.sid }
  }
  return {
    sub: o.sub,
    sids: o.sids as string[],
    at: o.at,
    ...(typeof o.version === 'number' ? { version: o.version } : {}),
    ...(typeof o.revokedAt === 'number' ? { revokedAt: o.revokedAt } : {}),
    ...(idpSession !== undefined ? { idpSession } : {})
  }
}

export interface SentinelView { at: string, runId: string, ip: string, port: number, flags: string }

/** One sentinel's view of the master (SENTINEL MASTER), on a short-lived bounded connection. */
export async function askSentinel (node: RedisNode, sentinel: Sentinel, timeoutMs: number): Promise<SentinelView> {
  const r = new Redis({
    host: node.host,
    port: node.port,
    ...(sentinel.password !== undefined ? { password: sentinel.password } : {}),
    lazyConnect: true,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs
  })
  r.on('error', () => {}) // the caller sees the rejection
  try {
    await r.connect()
    const fields = await r.call('SENTINEL', 'MASTER', sentinel.name)
    const f = new Map<string, string>()
    if (Array.isArray(fields)) for (let i = 0; i + 1 < fields.length; i += 2) f.set(String(fields[i]), String(fields[i + 1]))
    return { at: `${node.host}:${node.port}`, runId: f.get('runid') ?? '', ip: f.get('ip') ?? '', port: Number(f.get('port')), flags: f.get('flags') ?? '' }
  } finally {
    r.disconnect()
  }
}

/** Rejects after `ms` when `pending` has not settled; `pending` keeps running (its outcome is dropped). */
export async function within<T> (pending: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no reply within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([pending, timeout])
  } finally {
    clearTimeout(timer)
    pending.catch(() => {})
  }
}

/** Lets callers wait, with a deadline, for a condition that connection events make true. */
export class Waiters {
  private readonly wakers = new Set<() => void>()

  async until (cond: () => boolean, ms: number, what: string): Promise<void> {
    if (cond()) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wakers.delete(wake)
        // Only ever a cause: send() and ping() turn it into StoreUnavailableError.
        reject(new Error(`${what} within ${ms} ms`))
      }, ms)
      const wake = (): void => {
        if (!cond()) return
        clearTimeout(timer)
        this.wakers.delete(wake)
        resolve()
      }
      this.wakers.add(wake)
    })
  }

  notify (): void {
    for (const wake of [...this.wakers]) wake()
  }
}
