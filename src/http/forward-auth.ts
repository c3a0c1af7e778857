/**
 * Forward-auth (README section "Forward-auth behind an ingress controller"): `GET <authPrefix>/check` judges a request an ingress controller
 * is about to pass on (nginx `auth_request`, ingress-nginx `auth-url`, Traefik `forwardAuth`, Envoy
 * `ext_authz`), with the same cookies, revocation, sliding and `authorize` rules as proxying. It trusts
 * `X-Original-*` / `X-Forwarded-*` because only the controller may reach it (README, Forward-auth).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { RouteConfig } from '../config/types.js'
import { canonicalHost, hostMatches } from '../core/hosts.js'
import type { IdentityMapping } from '../core/identity.js'
import type { Gate, ResolveOptions } from './gate.js'
import type { Authorizer } from './authorization.js'
import { createIdentityHeaders } from './identity-headers.js'
import type { BearerGuard } from './bearer.js'
import type { SessionClaims } from '../core/session.js'
import { prefixBase, targetChecker, underPrefix } from './request-target.js'

export interface ForwardAuthOptions {
  authPrefix: string
  routes: readonly RouteConfig[]
  identity: Pick<IdentityMapping, 'headers'>
  gate: Gate
  authorizer: Authorizer
  bearer?: BearerGuard
}

// One Set-Cookie line at most (the controller relays only the first); per access-token setting.
const ONE_COOKIE: ResolveOptions = Object.freeze({ oneCookie: true, accessToken: false })
const ONE_COOKIE_WITH_TOKEN: ResolveOptions = Object.freeze({ oneCookie: true, accessToken: true })

/** The request the controller asks about. */
export interface OriginalRequest { method: string, host: string, target: string }

function header (request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name]
  return typeof v === 'string' && v !== '' ? v : undefined
}

/**
 * Reads the original request: `X-Original-URL` (+ `X-Original-Method`) as nginx and ingress-nginx send
 * them, else `X-Forwarded-Host`/`-Uri`/`-Method` (Traefik; Envoy configured to add them), else the
 * path after `/check` and the Host header (Envoy ext_authz with a path prefix). The target is kept raw,
 * as the controller received it, so the ambiguity rules see what the upstream will; the host is
 * canonical. Undefined (refused) when nothing names it, when it is malformed, or when both header sets
 * are present and disagree.
 */
export function originalRequest (request: FastifyRequest, checkPath: string): OriginalRequest | undefined {
  const url = header(request, 'x-original-url')
  const fwdHost = header(request, 'x-forwarded-host')
  const fwdUri = header(request, 'x-forwarded-uri')
  const fwdMethod = header(request, 'x-forwarded-method')
  let found: OriginalRequest | undefined
  if (url !== undefined) {
    const m = /^https?:\/\/([^/?#]+)(.*)$/i.exec(url)
    if (m === null) return undefined
    const rest = m[2]!
    found = { method: (header(request, 'x-original-method') ?? 'GET').toUpperCase(), host: m[1]!, target: rest === '' || rest.startsWith('?') ? `/${rest}` : rest }
    // A controller sends one set; a client can add the other (nginx and Traefik pass client headers
    // into the check). When both name the request and disagree, nobody can tell which one it forwards.
    const host = fwdHost === undefined ? undefined : canonicalHost(fwdHost)
    if (fwdHost !== undefined && host !== canonicalHost(found.host)) return undefined
    if (fwdUri !== undefined && fwdUri !== found.target) return undefined
    if (fwdMethod !== undefined && fwdMethod.toUpperCase() !== found.method) return undefined
  } else {
    const host = fwdHost ?? header(request, 'host')
    if (host === undefined) return undefined
    const own = request.url.slice(checkPath.length)
    const target = fwdUri ?? (own.startsWith('/') ? own : undefined)
    if (target === undefined) return undefined
    found = { method: (fwdMethod ?? request.method).toUpperCase(), host, target }
  }
  const host = canonicalHost(found.host)
  return host === undefined ? undefined : { ...found, host }
}

/** The route for a host and path: the longest prefix, and at equal prefixes an exact host over a wildcard over none. */
export function routeFor (routes: readonly RouteConfig[], host: string, path: string): RouteConfig | undefined {
  let best: RouteConfig | undefined
  let bestScore = -1
  for (const r of routes) {
    if (r.host !== undefined && !hostMatches(r.host, host)) continue
    const base = prefixBase(r.prefix)
    if (!underPrefix(base, path)) continue
    const score = base.length * 4 + (r.host === undefined ? 0 : r.host.startsWith('*.') ? 1 : 2)
    if (score > bestScore) { best = r; bestScore = score }
  }
  return best
}

/** Registers the check endpoint (only called when forwardAuth.enabled). */
export async function forwardAuthRoutes (app: FastifyInstance, { authPrefix, routes, identity: mapping, gate, authorizer, bearer }: ForwardAuthOptions): Promise<void> {
  const checkPath = `${authPrefix}/check`
  const identity = createIdentityHeaders(mapping)
  const checkTarget = targetChecker(routes.map((r) => r.prefix))

  function answer (reply: FastifyReply, status: number, body?: Record<string, string>): FastifyReply {
    reply.code(status).header('cache-control', 'no-store')
    return body === undefined ? reply.send() : reply.send(body)
  }

  async function check (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const original = originalRequest(request, checkPath)
    if (original === undefined) {
      request.log.warn('forward-auth check: the original request is not named, malformed, or named twice differently: refused')
      return answer(reply, 403, { error: 'forbidden', error_description: 'the original request is not named unambiguously' })
    }
    const refusal = checkTarget(original.target)
    if (refusal !== undefined) {
      request.log.info({ refusal }, 'forward-auth: ambiguous original request target refused')
      return answer(reply, 403, { error: 'forbidden', error_description: `ambiguous request target (${refusal})` })
    }
    const route = routeFor(routes, original.host, original.target.split('?', 1)[0]!)
    if (route === undefined) {
      request.log.info({ host: original.host }, 'forward-auth: no route for this host and path: refused')
      return answer(reply, 403, { error: 'forbidden', error_description: 'no route for this host and path' })
    }
    if (route.auth === 'none') return answer(reply, 200)
    if (route.bearer && bearer !== undefined && request.headers.authorization !== undefined) {
      // The controller passes the client's Authorization header along: the token alone judges (as proxying).
      request.sgSession = null
      await bearer.guard(route, request, reply)
      if (reply.sent) return reply
      return identityAnswer(reply, route, request.sgSession!)
    }
    const session = await gate.resolve(request, reply, route.forwardAccessToken ? ONE_COOKIE_WITH_TOKEN : ONE_COOKIE)
    if (session === null) return route.auth === 'optional' ? answer(reply, 200) : answer(reply, 401, { error: 'unauthenticated' })
    if (!authorizer.allows(route, session)) return authorizer.forbid(request, reply, route, session)
    return identityAnswer(reply, route, session)
  }

  /** 200 with the identity headers for the controller to copy upstream (it replaces what the client sent). */
  function identityAnswer (reply: FastifyReply, route: RouteConfig, session: SessionClaims): FastifyReply {
    const headers = identity({}, session, route.forwardAccessToken, undefined)
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) reply.header(k, v)
    return answer(reply, 200)
  }

  app.all(checkPath, check)
  app.all(`${checkPath}/*`, check)
}
