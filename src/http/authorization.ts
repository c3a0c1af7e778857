/**
 * `authorize` rules applied to requests (README section "Who may pass"): one decision per session and route,
 * cached on the session's claims object (the gate hands out the same object for the same cookie), so
 * the hot path pays a WeakMap lookup. Denials get a 403 page or JSON, one log line and a metric.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Counter } from 'prom-client'
import { admits, type AuthzSubject } from '../core/authorize.js'
import type { SessionClaims } from '../core/session.js'
import type { RouteConfig } from '../config/types.js'
import { createPages, escapeHtml, type Pages } from './pages.js'

export interface Authorizer {
  /** True when the route has no rules or one admits the session; counts the decision. */
  allows (route: RouteConfig, session: SessionClaims): boolean
  /**
   * The answer to a signed-in user that no rule admits. A bearer request always gets JSON: it has no
   * session to sign out of.
   */
  forbid (request: FastifyRequest, reply: FastifyReply, route: RouteConfig, session: SessionClaims, opts?: { bearer?: boolean }): FastifyReply
}

/** What the rules see of a session. */
export function sessionSubject (s: SessionClaims): AuthzSubject {
  const p = s.profile
  return {
    sub: s.sub,
    ...(p.email !== undefined ? { email: p.email } : {}),
    ...(p.email_verified !== undefined ? { emailVerified: p.email_verified } : {}),
    ...(p.groups !== undefined ? { groups: p.groups } : {}),
    claim: (path) => p.claims?.[path]
  }
}

const UNKNOWN = 0
const ALLOWED = 1
const DENIED = 2

export function createAuthorizer (routes: readonly RouteConfig[], decisions: Counter<'route' | 'result'>, authPrefix: string, pages: Pages = createPages()): Authorizer {
  const ruled = routes.filter((r) => r.authorize !== undefined)
  const index = new Map(ruled.map((r, i) => [r, i]))
  const counted = ruled.map((r) => ({ allowed: decisions.labels({ route: r.prefix, result: 'allowed' }), denied: decisions.labels({ route: r.prefix, result: 'denied' }) }))
  const cache = new WeakMap<SessionClaims, Uint8Array>()

  function allows (route: RouteConfig, session: SessionClaims): boolean {
    const i = index.get(route)
    if (i === undefined) return true
    let seen = cache.get(session)
    if (seen === undefined) cache.set(session, (seen = new Uint8Array(ruled.length)))
    if (seen[i] === UNKNOWN) seen[i] = admits(route.authorize!, sessionSubject(session)) ? ALLOWED : DENIED
    const ok = seen[i] === ALLOWED
    ;(ok ? counted[i]!.allowed : counted[i]!.denied).inc()
    return ok
  }

  function forbid (request: FastifyRequest, reply: FastifyReply, route: RouteConfig, session: SessionClaims, opts: { bearer?: boolean } = {}): FastifyReply {
    const bearer = opts.bearer === true
    // The route and how many rules it has; never the claims that did not match.
    request.log.info({ route: route.prefix, rules: route.authorize?.length ?? 0, ...(bearer ? { credential: 'bearer' } : { sid: session.sid }) }, 'access denied by authorize rules')
    const html = !bearer && request.method === 'GET' && (request.headers.accept ?? '').includes('text/html') && request.headers.upgrade === undefined
    if (!html) return reply.code(403).header('cache-control', 'no-store').send({ error: 'forbidden' })
    const who = session.profile.preferred_username ?? session.profile.email ?? session.sub
    return pages.headers(reply.code(403)).send(pages.page('Access denied', '<h1>Access denied</h1>' +
      `<p>You are signed in as <strong>${escapeHtml(who)}</strong>, and this account may not open this page.</p>` +
      '<p class="muted">If you need access, ask an administrator, or sign in with another account.</p>' +
      `<form method="get" action="${escapeHtml(authPrefix)}/logout"><input type="hidden" name="sid" value="${escapeHtml(session.sid)}">` +
      '<button type="submit">Sign out</button></form>'))
  }

  return { allows, forbid }
}
