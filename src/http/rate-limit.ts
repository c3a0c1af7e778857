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
import type { Config } from '../config/types.js'

/** Where the counters live when shared by the replicas (see store/rate-limit-redis.ts). */
export interface SharedCounters {
  /** An ioredis client (the plugin defines its Lua command on it). */
  client: object
  nameSpace: string
  close (): Promise<void>
}

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
 * Registers the limiter on `app` (before the limited routes are registered); counters in `shared`
 * (Redis) when given, else in this process. Returns what closes the shared counters' connection.
 */
export async function registerRateLimits (app: FastifyInstance, config: Config, shared?: SharedCounters): Promise<() => Promise<void>> {
  if (!config.rateLimit.enabled) {
    await shared?.close()
    return async () => {}
  }
  const limit = { max: config.rateLimit.perMinute, timeWindow: 60_000 }
  // Runs before the plugin's own onRoute hook (added next), which reads config.rateLimit.
  app.addHook('onRoute', (route) => {
    if (isLimited(config.authPrefix, route.method, route.url)) route.config = { ...route.config, rateLimit: limit }
  })
  await app.register(rateLimit, {
    global: false,
    ...limit,
    ...(shared !== undefined ? { redis: shared.client, nameSpace: shared.nameSpace } : {}),
    // A limiter that cannot count lets requests through: whether the gateway works without Redis is
    // the store's failMode to decide, not the limiter's.
    skipOnError: true,
    errorResponseBuilder: () => new RateLimitedError()
  })
  return async () => { await shared?.close() }
}
