/**
 * Long-lived connections (proxied WebSockets, event streams) registered so a revocation can close them.
 */
import type { Store } from '../store/store.js'
import type { Log } from '../session/types.js'
import { endsConnection, type Closer, type ConnectionOwner, type ConnectionRegistry } from './connections.js'

/** Registers a connection; returns its unregister function. */
export type WatchConnection = (owner: ConnectionOwner, close: Closer, log: Log) => () => void

/**
 * Registers a long-lived connection for revocation, then checks the session once more: a revocation
 * that landed between the gate's check and this registration would otherwise never reach it. The epoch
 * read then is the connection's, unless the caller gave one (reconciliation compares it; http/reconcile.ts).
 */
export function createConnectionWatch (connections: ConnectionRegistry, store: Pick<Store, 'check' | 'epoch'>): WatchConnection {
  return (owner, close, log) => {
    const remove = connections.add(owner, close)
    Promise.all([store.check(owner.sub, owner.sid), store.epoch()]).then(([st, epoch]) => {
      owner.epoch ??= epoch
      if (endsConnection(owner, st, epoch)) connections.closeFor({ sub: owner.sub, sids: [owner.sid] })
    }, (err: Error) => {
      log.warn({ reason: err.message }, 'could not re-check a new long-lived connection; revocation events still apply')
    })
    return remove
  }
}
