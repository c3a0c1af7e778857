/**
 * The registry of long-lived connections (proxied WebSockets, event streams) per gateway session, so a
 * revocation can close them. Each entry knows how to close itself.
 */
export type Closer = (reason: 'revoked' | 'shutdown') => void

export class ConnectionRegistry {
  private readonly bySid = new Map<string, Set<Closer>>()

  /** Registers a connection of session `sid`; returns the function that unregisters it. */
  add (sid: string, close: Closer): () => void {
    let set = this.bySid.get(sid)
    if (set === undefined) this.bySid.set(sid, (set = new Set()))
    set.add(close)
    return () => {
      set.delete(close)
      if (set.size === 0 && this.bySid.get(sid) === set) this.bySid.delete(sid)
    }
  }

  /** Closes every connection of these sessions; returns how many were closed. */
  closeSessions (sids: Iterable<string>, reason: 'revoked' | 'shutdown' = 'revoked'): number {
    let n = 0
    for (const sid of sids) {
      const set = this.bySid.get(sid)
      if (set === undefined) continue
      this.bySid.delete(sid)
      for (const close of set) { close(reason); n++ }
    }
    return n
  }

  /** Closes everything (graceful shutdown). */
  closeAll (reason: 'revoked' | 'shutdown' = 'shutdown'): number {
    return this.closeSessions([...this.bySid.keys()], reason)
  }

  get size (): number {
    let n = 0
    for (const s of this.bySid.values()) n += s.size
    return n
  }
}
