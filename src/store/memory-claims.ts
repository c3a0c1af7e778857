/**
 * MemoryStore's one-time claims, locks, leases and notes (ClaimStore, Locks, CoordinationStore): plain
 * expiring maps on the store's clock, swept with the rest of the store.
 */
import type { ClaimStore, CoordinationStore, Locks } from './store.js'

interface Expiring<T> {
  value: T
  expiresAt: number
}

// Keys of composite maps: JSON, so no character in a kind or id can make two pairs collide.
const pair = (a: string, b: string): string => JSON.stringify([a, b])

/** Non-positive or fractional TTLs behave like Redis `EX`: at least one whole second. */
const secondsToMs = (ttl: number): number => Math.max(1, Math.ceil(ttl)) * 1000

export class MemoryClaims implements ClaimStore, Locks, CoordinationStore {
  private readonly claims = new Map<string, number>() // pair(kind, id) -> expiresAt
  private readonly locks = new Map<string, number>() // name -> expiresAt
  private readonly leases = new Map<string, Expiring<string>>() // name -> holder
  private readonly notes = new Map<string, Expiring<string>>() // pair(kind, id) -> value

  /** `open` throws StoreUnavailableError once the store is closed. */
  constructor (private readonly now: () => number, private readonly open: () => void) {}

  async claimOnce (kind: string, id: string, ttl: number): Promise<boolean> {
    this.open()
    return this.take(this.claims, pair(kind, id), ttl)
  }

  async wasClaimed (kind: string, id: string): Promise<boolean> {
    this.open()
    return (this.claims.get(pair(kind, id)) ?? 0) > this.now()
  }

  async tryLock (name: string, ttl: number): Promise<boolean> {
    this.open()
    return this.take(this.locks, name, ttl)
  }

  async lease (name: string, holder: string, ttlMs: number): Promise<boolean> {
    this.open()
    const now = this.now()
    const cur = this.leases.get(name)
    if (cur !== undefined && cur.expiresAt > now && cur.value !== holder) return false
    this.leases.set(name, { value: holder, expiresAt: now + Math.max(1, Math.ceil(ttlMs)) })
    return true
  }

  async releaseLease (name: string, holder: string): Promise<void> {
    this.open()
    if (this.leases.get(name)?.value === holder) this.leases.delete(name)
  }

  async putNote (kind: string, id: string, value: string, ttl: number): Promise<void> {
    this.open()
    this.notes.set(pair(kind, id), { value, expiresAt: this.now() + secondsToMs(ttl) })
  }

  async getNote (kind: string, id: string): Promise<string | null> {
    this.open()
    const note = this.notes.get(pair(kind, id))
    return note !== undefined && note.expiresAt > this.now() ? note.value : null
  }

  /** Frees every expired entry. */
  sweep (now: number): void {
    for (const [key, at] of this.claims) if (at <= now) this.claims.delete(key)
    for (const [key, at] of this.locks) if (at <= now) this.locks.delete(key)
    for (const [key, v] of this.leases) if (v.expiresAt <= now) this.leases.delete(key)
    for (const [key, v] of this.notes) if (v.expiresAt <= now) this.notes.delete(key)
  }

  /** True and marked for `ttl` seconds when `key` is free (never taken, or lapsed); false while taken. */
  private take (map: Map<string, number>, key: string, ttl: number): boolean {
    const now = this.now()
    if ((map.get(key) ?? 0) > now) return false
    map.set(key, now + secondsToMs(ttl))
    return true
  }
}
