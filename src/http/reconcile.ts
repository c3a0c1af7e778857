/**
 * Reconciliation of long-lived connections after a lost subscription. A replica that was not subscribed
 * for a while (a dropped subscriber connection, a stall, a failover) never receives the revocation events
 * published meanwhile, so the WebSockets and event streams of sessions revoked then would stay open. Each
 * time the store listens again (`Store.onResubscribed`), the sessions of the open connections are checked
 * against the store and the revoked ones closed as a live event closes them (WebSocket 1008, SSE logout).
 */
import type { SessionCheck, Store } from '../store/store.js'
import { endsConnection, type ConnectionRegistry } from './connections.js'

export interface ReconcileLogger {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export interface ReconcileResult {
  /** Distinct sessions with an open connection. */
  sessions: number
  /** Connections closed as revoked. */
  closed: number
  /** Sessions the store could not answer for (their connections stay open until a later pass). */
  failed: number
}

/** Checks in flight at once: a burst after a resubscribe must not flood the store. */
const BATCH = 100
/** Pauses before another pass when some session could not be checked. */
const RETRY_MS = [1000, 2000, 5000, 10_000, 30_000]

const keyOf = (sub: string, sid: string): string => `${sub.length}:${sub}${sid}`

/** One pass over the connections open now. Rejects when the store's epoch cannot be read. */
export async function reconcileConnections (store: Store, connections: ConnectionRegistry): Promise<ReconcileResult> {
  const owners = connections.owners()
  if (owners.length === 0) return { sessions: 0, closed: 0, failed: 0 }
  const epoch = await store.epoch()
  const sessions = new Map<string, { sub: string, sid: string }>()
  for (const o of owners) sessions.set(keyOf(o.sub, o.sid), { sub: o.sub, sid: o.sid })
  const states = new Map<string, SessionCheck>()
  let failed = 0
  const list = [...sessions]
  for (let i = 0; i < list.length; i += BATCH) {
    const batch = list.slice(i, i + BATCH)
    const results = await Promise.allSettled(batch.map(async ([, s]) => await store.check(s.sub, s.sid)))
    results.forEach((r, j) => {
      if (r.status === 'fulfilled') states.set(batch[j]![0], r.value)
      else failed++
    })
  }
  // Only the connections of the snapshot: one opened since was checked when it registered.
  const seen = new Set(owners)
  const closed = connections.closeWhere((o) => {
    if (!seen.has(o)) return false
    const state = states.get(keyOf(o.sub, o.sid))
    return state !== undefined && endsConnection(o, state, epoch)
  })
  return { sessions: sessions.size, closed, failed }
}

/**
 * Runs a pass after every resubscribe of `store` (one at a time; a resubscribe during a pass runs
 * another after it), and again after a pause while some session could not be checked. Returns a stop.
 */
export function reconcileOnResubscribe (store: Store, connections: ConnectionRegistry, log: ReconcileLogger, opts: { retryMs?: number[] } = {}): () => void {
  if (store.onResubscribed === undefined) return () => {} // a store that never misses an event
  const retryMs = opts.retryMs ?? RETRY_MS
  let stopped = false
  let running = false
  let rerun = false
  let failures = 0
  let timer: NodeJS.Timeout | undefined

  const run = async (): Promise<void> => {
    if (stopped) return
    if (running) {
      rerun = true
      return
    }
    running = true
    clearTimeout(timer)
    timer = undefined
    let incomplete = false
    try {
      const r = await reconcileConnections(store, connections)
      if (r.closed > 0) log.info({ connections: r.closed, sessions: r.sessions }, 'closed connections of sessions revoked while not subscribed')
      if (r.failed > 0) {
        incomplete = true
        log.warn({ sessions: r.failed }, 'could not re-check some sessions of open connections after resubscribing; will retry')
      }
    } catch (err) {
      incomplete = true
      log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'could not re-check open connections after resubscribing; will retry')
    } finally {
      running = false
    }
    if (stopped) return
    if (rerun) {
      rerun = false
      failures = 0
      void run()
    } else if (incomplete) {
      timer = setTimeout(() => { void run() }, retryMs[Math.min(failures++, retryMs.length - 1)])
      timer.unref()
    } else {
      failures = 0
    }
  }

  const off = store.onResubscribed(() => {
    failures = 0
    void run()
  })
  return () => {
    stopped = true
    off()
    clearTimeout(timer)
  }
}
