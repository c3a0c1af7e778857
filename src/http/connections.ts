/**
 * The registry of long-lived connections (proxied WebSockets, event streams) per gateway session, so a
 * revocation can close them on every replica. Each entry knows how to close itself.
 */
import type { RevocationEvent, SessionCheck } from '../store/store.js'

export type CloseReason = 'revoked' | 'shutdown'
export type Closer = (reason: CloseReason) => void

/**
 * Whose connection it is: the session, its user, the user version the session carries and, once known,
 * the store epoch it belongs to (reconciliation closes it when the store's epoch differs).
 */
export interface ConnectionOwner { sid: string, sub: string, ver: number, epoch?: string, kind?: ConnectionKind }

/** What the connection is, for the open-connections gauge. */
export type ConnectionKind = 'websocket' | 'event_stream'

interface Entry { owner: ConnectionOwner, close: Closer }

/** Whether what the store says now ends the owner's connection: the session revoked, or its user or epoch moved on. */
export function endsConnection (owner: ConnectionOwner, state: SessionCheck, epoch: string): boolean {
  return state.denied || state.version === null || state.version > owner.ver || (owner.epoch !== undefined && owner.epoch !== epoch)
}

export class ConnectionRegistry {
  private readonly bySub = new Map<string, Set<Entry>>()

  /** Registers a connection; returns the function that unregisters it (call it when it closes). */
  add (owner: ConnectionOwner, close: Closer): () => void {
    let set = this.bySub.get(owner.sub)
    if (set === undefined) this.bySub.set(owner.sub, (set = new Set()))
    const entry: Entry = { owner, close }
    set.add(entry)
    return () => {
      set.delete(entry)
      if (set.size === 0 && this.bySub.get(owner.sub) === set) this.bySub.delete(owner.sub)
    }
  }

  /**
   * Closes the connections a revocation event ends: those of the listed sessions, and, for a user-wide
   * revocation, every connection of the user whose session carries an older version. Returns the count.
   */
  closeFor (event: Pick<RevocationEvent, 'sub' | 'sids' | 'version'>): number {
    const set = this.bySub.get(event.sub)
    if (set === undefined) return 0
    const sids = new Set(event.sids)
    const doomed = [...set].filter((e) => sids.has(e.owner.sid) || (event.version !== undefined && e.owner.ver < event.version))
    for (const e of doomed) {
      set.delete(e)
      e.close('revoked')
    }
    if (set.size === 0) this.bySub.delete(event.sub)
    return doomed.length
  }

  /** The owners of the open connections, one per connection (a snapshot). */
  owners (): ConnectionOwner[] {
    const out: ConnectionOwner[] = []
    for (const set of this.bySub.values()) for (const e of set) out.push(e.owner)
    return out
  }

  /** Closes, as revoked, the connections whose owner `doomed` picks; returns the count. */
  closeWhere (doomed: (owner: ConnectionOwner) => boolean): number {
    let n = 0
    for (const [sub, set] of this.bySub) {
      for (const e of [...set]) {
        if (!doomed(e.owner)) continue
        set.delete(e)
        e.close('revoked')
        n++
      }
      if (set.size === 0) this.bySub.delete(sub)
    }
    return n
  }

  /** Closes everything (graceful shutdown); returns the count. */
  closeAll (reason: CloseReason = 'shutdown'): number {
    let n = 0
    for (const set of this.bySub.values()) for (const e of set) { e.close(reason); n++ }
    this.bySub.clear()
    return n
  }

  /** Open connections by kind; walks every entry, so it is for scrapes, not for the hot path. */
  counts (): Record<ConnectionKind, number> {
    const out: Record<ConnectionKind, number> = { websocket: 0, event_stream: 0 }
    for (const set of this.bySub.values()) for (const e of set) if (e.owner.kind !== undefined) out[e.owner.kind]++
    return out
  }

  get size (): number {
    let n = 0
    for (const s of this.bySub.values()) n += s.size
    return n
  }
}
