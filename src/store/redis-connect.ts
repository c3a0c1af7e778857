/**
 * Builds the ioredis client for the configured topology (standalone URL, Sentinel, Cluster) with the
 * store's bounded-call settings, and classifies errors into "store unavailable" versus "bad request".
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { RedisConfig } from '../config/types.js'
import { tlsOptions } from '../config/tls.js'
import { StoreConfigError } from './store-errors.js'

export type Client = Redis | Cluster

/**
 * RedisOptions as the gateway builds them: never with `replyMapping`. Leaving that key out of the type is
 * what lets them reach `new Redis()`/`new Cluster()` under exactOptionalPropertyTypes: ioredis intersects
 * its constructor options with `{ replyMapping?: Mapping }`, which RedisOptions' own `replyMapping?: … |
 * undefined` does not satisfy.
 */
export type NodeOptions = Omit<RedisOptions, 'replyMapping'>
/** ClusterOptions whose node options are NodeOptions (for the same reason). */
type ClusterNodeOptions = Omit<ClusterOptions, 'redisOptions'> & { redisOptions: Omit<NonNullable<ClusterOptions['redisOptions']>, 'replyMapping'> }

const RETRY_CAP_MS = 2_000

/** Reconnection backoff shared by every connection: 100 ms doubling to 2 s, with jitter. */
export const backoff = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), RETRY_CAP_MS) + Math.floor(Math.random() * 100)

/**
 * Options of every data-node connection (one Redis, each Cluster node, the Cluster shard subscriber).
 * Auto-pipelining is not among them: connect() turns it on for the data client only, and every subscriber
 * connection turns it off explicitly (see redis-pubsub.ts).
 */
export function nodeOptions (cfg: RedisConfig): NodeOptions {
  return {
    commandTimeout: cfg.commandTimeoutMs,
    // Destroys a socket that stops answering (half-open TCP), so it reconnects instead of timing out forever.
    socketTimeout: Math.max(2 * cfg.commandTimeoutMs, 1000),
    connectTimeout: Math.max(2 * cfg.commandTimeoutMs, 1000),
    // The store waits for 'ready' itself; a queued or replayed write could run after its caller gave up.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    ...(cfg.username !== undefined ? { username: cfg.username } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    ...(cfg.tls !== undefined ? { tls: tlsOptions(cfg.tls) } : {})
  }
}

/**
 * Builds the data client for the configured topology; the store's bounded-call settings apply to all.
 * The data client auto-pipelines: commands issued in the same event-loop turn (many concurrent hot-path
 * checks) go out in one write. The subscriber connections derived from it override that (redis-pubsub.ts).
 */
export function connect (cfg: RedisConfig): Client {
  const common: NodeOptions = { ...nodeOptions(cfg), retryStrategy: backoff }
  if (cfg.url !== undefined) {
    const fromUrl = parseRedisUrl(cfg.url)
    // rediss:// turns TLS on; store.redis.tls adds a CA, a client certificate or a name to it.
    const tls = fromUrl.tls !== undefined && common.tls !== undefined ? { ...fromUrl.tls, ...common.tls } : fromUrl.tls ?? common.tls
    return new Redis({ ...fromUrl, ...common, ...(tls !== undefined ? { tls } : {}), enableAutoPipelining: true })
  }
  if (cfg.sentinel !== undefined) {
    // username/password are the data nodes'; sentinelPassword the sentinels'. duplicate() (the subscriber)
    // copies all of it, so both connections ask the sentinels for the master on every reconnect.
    return new Redis({
      ...common,
      enableAutoPipelining: true,
      sentinels: cfg.sentinel.nodes,
      name: cfg.sentinel.name,
      role: 'master',
      ...(cfg.sentinel.password !== undefined ? { sentinelPassword: cfg.sentinel.password } : {}),
      sentinelCommandTimeout: cfg.commandTimeoutMs,
      // The same TLS settings for the sentinels as for the data nodes.
      ...(common.tls !== undefined ? { sentinelTLS: common.tls, enableTLSForSentinelMode: true } : {}),
      // Listens to +switch-master on the sentinels and reconnects at once: without it a client stays on a
      // demoted-to-be master (which still accepts writes that the failover then discards) until the
      // sentinel reconfigures that node, seconds later.
      failoverDetector: true
    })
  }
  if (cfg.cluster !== undefined) {
    if (/[{}]/.test(cfg.keyPrefix)) throw new StoreConfigError('store.redis.keyPrefix must not contain { or } with Cluster: it would replace the per-user hash tag')
    const { retryStrategy: _r, enableOfflineQueue: _q, ...redisOptions } = common
    const options: ClusterNodeOptions = {
      redisOptions,
      // Reads see the last write: a replica may lag (a just-revoked session would still pass).
      scaleReads: 'master',
      enableOfflineQueue: false,
      // Per group of slots served by the same node; the node connections themselves (redisOptions) do not.
      enableAutoPipelining: true,
      enableReadyCheck: true,
      clusterRetryStrategy: backoff,
      slotsRefreshTimeout: Math.max(cfg.commandTimeoutMs, 500),
      // MOVED/ASK are followed at once; TRYAGAIN, CLUSTERDOWN and a closed node connection are retried
      // after a pause. Either way the store's own deadline (commandTimeoutMs) ends the wait.
      retryDelayOnMoved: 0,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      // Nodes announce IPs; with TLS the certificate names the host, so resolve without rewriting it.
      ...(common.tls !== undefined ? { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) } : {})
    }
    return new Cluster(cfg.cluster.nodes, options)
  }
  throw new StoreConfigError('store.redis needs one of url, sentinel or cluster')
}

/** redis:// and rediss:// URLs; credentials from the URL unless the config names its own. */
export function parseRedisUrl (url: string): NodeOptions {
  const u = new URL(url)
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new StoreConfigError(`store.redis.url: unsupported scheme ${u.protocol}`)
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0
  if (!Number.isInteger(db) || db < 0) throw new StoreConfigError('store.redis.url: bad database number')
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'), // IPv6 literal without brackets
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: { servername: u.hostname } } : {})
  }
}

// Replies that mean "not now" rather than "bad request". The Cluster client follows MOVED and ASK itself
// and retries TRYAGAIN/CLUSTERDOWN; they reach the store only after too many redirections, as a plain
// Error (a MOVED storm during resharding: unavailable). A raw MOVED ReplyError means a standalone URL
// points at a Cluster node: a misconfiguration, reported as is rather than as an outage.
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|OOM|MISCONF|NOREPLICAS)\b/

/**
 * Connection trouble, timeouts and "Too many Cluster redirections" (ioredis throws plain Errors) versus
 * server replies to a bad command (a ReplyError such as CROSSSLOT or a script error: a bug, not an outage).
 */
export function isUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return err.name !== 'ReplyError' || UNAVAILABLE_REPLY.test(err.message) || NOT_PERMITTED.test(err.message)
}

// An ACL that refuses a command (also inside a script): the store cannot do the work, and says so as an
// outage (503 store_unavailable, retryable once the ACL is fixed) rather than a 500.
const NOT_PERMITTED = /^NOPERM\b|user executing the script can't run this command/

/** Quits cleanly when connected, else just drops the socket (no offline queue to flush). */
export async function quit (client: Client): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit()
    } catch {
      // QUIT raced a disconnect; the socket must still go (below)
    }
  }
  // Always disconnect too: QUIT leaves a Sentinel client's failover-detector connections to the
  // sentinels open (only disconnect() ends them), and a non-ready client must stop reconnecting.
  if (client instanceof Redis || client.status !== 'end') client.disconnect()
}
