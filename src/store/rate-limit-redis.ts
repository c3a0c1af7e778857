/**
 * The rate limiter's own Redis connection (same topology, credentials and bounds as the store's), so
 * that every replica counts against one budget per client IP. Kept apart from the store's connection:
 * @fastify/rate-limit defines its Lua command on the client it is given.
 */
import { Redis } from 'ioredis'
import type { RedisConfig } from '../config/types.js'
import { connect, quit, type Client } from './redis-connect.js'

export interface LimiterConnection {
  client: Client
  /** Key prefix of the counters: the store's keyPrefix + `ratelimit:`. */
  nameSpace: string
  close (): Promise<void>
}

export function connectRateLimiter (cfg: RedisConfig, log: { debug: (obj: object, msg: string) => void }): LimiterConnection {
  const client = connect(cfg)
  // The store reports Redis outages; without a listener ioredis would print each error itself.
  client.on('error', (err: Error) => { log.debug({ reason: err.message }, 'rate limit store connection error') })
  // Unlike the store, which waits for 'ready' itself, the limiter lets its commands queue while the
  // connection is being made, so the first requests after start-up are counted too (commandTimeout
  // still bounds each one). A Cluster refuses them until ready: those few pass uncounted.
  if (client instanceof Redis) client.options.enableOfflineQueue = true
  return { client, nameSpace: `${cfg.keyPrefix}ratelimit:`, close: async () => { await quit(client) } }
}
