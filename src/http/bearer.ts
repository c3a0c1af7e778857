/**
 * Bearer access tokens on `bearer: true` routes (README section "API clients"), as a proxy step: the token alone
 * judges the request (no cookie is read, none is written), refusals answer as RFC 6750 says, and the
 * token's identity goes through the same `authorize` rules and identity headers as a session's.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Counter } from 'prom-client'
import type { RouteConfig } from '../config/types.js'
import type { BearerCheck } from '../bearer/bearer-check.js'
import type { Authorizer } from './authorization.js'

export interface BearerGuard {
  /** Judges the request's bearer token: sets `request.sgSession`, or answers 401/403 (store outage: throws). */
  guard (route: RouteConfig, request: FastifyRequest, reply: FastifyReply): Promise<void>
}

/** Builds the bearer step of one gateway over its token check (bearer/bearer-check.ts; app.ts builds it). */
export function createBearerGuard (judge: BearerCheck, authorizer: Authorizer, checks: Counter<'result'>): BearerGuard {
  const counted = Object.fromEntries(['live', 'invalid', 'revoked', 'fail_open'].map((r) => [r, checks.labels({ result: r })]))
  let warnedOpen = 0

  async function guard (route: RouteConfig, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const d = await judge.judge(request.headers.authorization)
    if (d.kind !== 'live') {
      counted[d.kind]!.inc()
      request.log.info({ route: route.prefix, verdict: d.kind, reason: d.reason }, 'bearer token refused')
      // RFC 6750 section 3: one answer for every refusal, so a client learns nothing it could probe with.
      await reply.code(401)
        .header('www-authenticate', 'Bearer error="invalid_token"')
        .header('cache-control', 'no-store')
        .send({ error: 'invalid_token' })
      return
    }
    if (d.failOpen === true) {
      counted.fail_open!.inc()
      if (Date.now() - warnedOpen > 10_000) {
        warnedOpen = Date.now()
        request.log.warn('store unavailable: admitting bearer tokens on their signature alone (failMode open)')
      }
    } else {
      counted.live!.inc()
    }
    if (!authorizer.allows(route, d.session)) {
      await authorizer.forbid(request, reply, route, d.session, { bearer: true })
      return
    }
    request.sgSession = d.session
  }

  return { guard }
}
