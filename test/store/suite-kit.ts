/**
 * What the per-concern store suites share: the harness a target provides, each case's context (store,
 * clock, record factory), and small helpers.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import type { RevocationEvent, SessionRecord, Store } from '../../src/store/store.js'

export interface StoreHarness {
  store: Store
  /** Fast-forwards the store's clock; without it the suite waits for real (short TTLs only). */
  advance?: (ms: number) => void | Promise<void>
  /** The store's clock in ms; defaults to Date.now. */
  now?: () => number
  cleanup: () => Promise<void>
}

export type NewRecord = Omit<SessionRecord, 'version'>

export const ISS = 'https://idp.example.test'
export const USER_TTL = 3600
export const DENY_TTL = 300

/** `setup(t)`: a fresh store from `make` for one case, closed in teardown. */
export function setupWith (make: () => Promise<StoreHarness>): (t: Test) => Promise<Ctx> {
  return async (t) => {
    const h = await make()
    t.teardown(h.cleanup)
    return new Ctx(h)
  }
}

/** One case's store, clock and record factory. */
export class Ctx {
  readonly store: Store
  readonly now: () => number
  private readonly h: StoreHarness

  constructor (h: StoreHarness) {
    this.h = h
    this.store = h.store
    this.now = h.now ?? Date.now
  }

  /** Lets `ms` pass: on the fake clock when there is one, else for real. */
  async elapse (ms: number): Promise<void> {
    if (this.h.advance !== undefined) await this.h.advance(ms)
    else await new Promise((resolve) => setTimeout(resolve, ms))
  }

  /** A valid record of a new random user (unless `sub` is given), live for an hour. */
  record (over: Partial<NewRecord> = {}): NewRecord {
    const now = this.now()
    return {
      sid: randomUUID(),
      sub: randomUUID(),
      iss: ISS,
      createdAt: now,
      lastSeenAt: now,
      userAgent: 'Mozilla/5.0 (suite)',
      ip: '192.0.2.1',
      rememberMe: true,
      expiresAt: now + 3_600_000,
      credHash: randomUUID(),
      ...over
    }
  }
}

/** Resolves with the first event matching `pred`; fails after 2 s (events must arrive within 1 s). */
export async function nextEvent (store: Store, pred: (e: RevocationEvent) => boolean): Promise<RevocationEvent> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error('no revocation event within 2 s'))
    }, 2000)
    const off = store.subscribe((e) => {
      if (!pred(e)) return
      clearTimeout(timer)
      off()
      resolve(e)
    })
  })
}

/** A credential hash as the gateway makes them (base64url SHA-256): the store keeps these as raw bytes. */
export function hashOf (credential: string): string {
  return createHash('sha256').update(credential).digest('base64url')
}

export function sortPairs (pairs: Array<{ sub: string, sid: string }>): Array<{ sub: string, sid: string }> {
  return [...pairs].sort((x, y) => (x.sub + x.sid).localeCompare(y.sub + y.sid))
}
