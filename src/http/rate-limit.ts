/**
 * Per-client-IP rate limits (@fastify/rate-limit) on the endpoints anyone can call without a session,
 * each of which makes the gateway or the IdP work: login, callback, back-channel logout and SSF push.
 * Routes are picked by method and path when they are registered, so the plugins that define them need
 * not know; every other route (the proxied traffic above all) carries no limiter at all.
 *
 * With the Redis store the counters live in Redis (a dedicated connection; every replica shares one
 * budget per IP), otherwise in memory per replica. The client IP is `request.ip`: behind a proxy, only
 * with `trustProxy` is it the browser's and not the proxy's.
 */
import type { FastifyInstance, RouteOptions } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import type { Config } from '../config/types.js'
import { connect, quit } from '../store/redis-connect.js'

/** Thrown by the limiter; app.ts answers 429 `{"error":"rate_limited"}` (Retry-After is already set). */
export class RateLimitedError extends Error {
  readonly statusCode = 429
  constructor () {
    super('rate limited')
    this.name = 'RateLimitedError'
  }
}

/** Whether a route (as registered) is one of the limited endpoints. */
export function isLimited (authPrefix: string, method: RouteOptions['method'], url: string): boolean {
  const methods = Array.isArray(method) ? method : [method]
  const has = (...m: string[]): boolean => methods.some((x) => m.includes(x))
  if (url === `${authPrefix}/login` || url === `${authPrefix}/callback`) return has('GET', 'HEAD')
  if (url === `${authPrefix}/backchannel-logout`) return has('POST')
  // Shared Signals: the push endpoint, and whatever else that receiver accepts by POST
  if (url.startsWith(`${authPrefix}/ssf/`)) return has('POST')
  return false
}

/**
 * Registers the limiter on `app` (before the limited routes are registered). Returns what closes its
 * Redis connection, if any.
 */
export async function registerRateLimits (app: FastifyInstance, config: Config): Promise<() => Promise<void>> {
  if (!config.rateLimit.enabled) return async () => {}
  const limit = { max: config.rateLimit.perMinute, timeWindow: 60_000 }
  const redisCfg = config.store.kind === 'redis' ? config.store.redis : undefined
  const redis = redisCfg !== undefined ? connect(redisCfg) : undefined
  // The store reports Redis outages; without a listener ioredis would print each error itself.
  redis?.on('error', (err: Error) => { app.log.debug({ reason: err.message }, 'rate limit store connection error') })
  // Unlike the store, which waits for 'ready' itself, the limiter lets its commands queue while the
  // connection is being made, so the first requests after start-up are counted too (commandTimeout
  // still bounds each one). A Cluster keeps refusing them until ready: those few pass uncounted.
  if (redis instanceof Redis) redis.options.enableOfflineQueue = true
  // Runs before the plugin's own onRoute hook (added next), which reads config.rateLimit.
  app.addHook('onRoute', (route) => {
    if (isLimited(config.authPrefix, route.method, route.url)) route.config = { ...route.config, rateLimit: limit }
  })
  await app.register(rateLimit, {
    global: false,
    ...limit,
    ...(redis !== undefined ? { redis, nameSpace: `${redisCfg!.keyPrefix}ratelimit:` } : {}),
    // A limiter that cannot count lets requests through: whether the gateway works without Redis is
    // the store's failMode to decide, not the limiter's.
    skipOnError: true,
    errorResponseBuilder: () => new RateLimitedError()
  })
  return async () => { if (redis !== undefined) await quit(redis) }
}
