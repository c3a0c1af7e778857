/**
 * The gate: the HTTP side of the session service (../session/). Reads the request's cookies, asks the
 * service for a decision, applies the decision's cookie operations to the reply, and says what an
 * unauthenticated request gets. Synchronous whenever the service's decision is.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { SessionClaims } from '../core/session.js'
import { StoreUnavailableError } from '../store/store.js'
import type { SessionService } from '../session/service.js'
import { sessionOf, type CookieOp, type Decision, type ResolveOptions } from '../session/types.js'
import type { CookieJar } from './cookies.js'

export type { ResolveOptions } from '../session/types.js'

export interface Gate {
  /**
   * The live session of this request, or null, with the decision's cookies applied (cleared for a
   * revoked or invalid session, slid, renewed). Throws StoreUnavailableError when the store decides and
   * cannot be reached. A plain value when the decision was synchronous.
   */
  resolve (request: FastifyRequest, reply: FastifyReply, opts?: ResolveOptions): SessionClaims | null | Promise<SessionClaims | null>
  /** The session the request's cookie names, whatever the store says of it now (see SessionService.cookieSession). */
  cookieSession (request: FastifyRequest): SessionClaims | null
  /** Applies cookie operations decided by the session service. */
  apply (request: FastifyRequest, reply: FastifyReply, cookies: readonly CookieOp[]): void
  /** What a request without a live session gets on an `auth: required` route. */
  deny (request: FastifyRequest, reply: FastifyReply): FastifyReply
}

export interface GateOptions {
  sessions: Pick<SessionService, 'resolve' | 'cookieSession'>
  jar: CookieJar
  authPrefix: string
  /** Epoch seconds. */
  now: () => number
}

const NO_OPTIONS: ResolveOptions = Object.freeze({})

export function createGate ({ sessions, jar, authPrefix, now }: GateOptions): Gate {
  const names = jar.names

  function apply (request: FastifyRequest, reply: FastifyReply, cookies: readonly CookieOp[]): void {
    for (const c of cookies) {
      switch (c.op) {
        case 'session': jar.writeSession(request, reply, c.value, c.maxAge); break
        case 'clear-session': jar.clearSession(request, reply); break
        case 'device': jar.set(reply, names.device, c.value, c.maxAge); break
        case 'clear-device': jar.set(reply, names.device, '', 0); break
        case 'tx': jar.set(reply, names.tx, c.value, c.maxAge); break
        case 'clear-tx': jar.set(reply, names.tx, '', 0); break
      }
    }
  }

  function settle (request: FastifyRequest, reply: FastifyReply, d: Decision, one: boolean): SessionClaims | null {
    if (d.cookies.length > 0) {
      // Forward-auth relays one Set-Cookie line at most: a slide that needs more is left for later.
      const first = d.cookies[0]!
      if (one && d.kind === 'slid' && first.op === 'session' && !jar.fitsOneLine(request, first.value)) return d.from
      apply(request, reply, d.cookies)
    }
    if (d.kind === 'unavailable') throw d.error ?? new StoreUnavailableError()
    return sessionOf(d)
  }

  function resolve (request: FastifyRequest, reply: FastifyReply, opts: ResolveOptions = NO_OPTIONS): SessionClaims | null | Promise<SessionClaims | null> {
    const one = opts.oneCookie === true
    const d = sessions.resolve(jar.readSession(request), request.cookies[names.device], now(), opts, request)
    if (d instanceof Promise) return d.then((x) => settle(request, reply, x, one))
    return settle(request, reply, d, one)
  }

  function deny (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const wantsHtml = (request.headers.accept ?? '').includes('text/html')
    if (request.method === 'GET' && wantsHtml && request.headers.upgrade === undefined) {
      const login = `${authPrefix}/login?returnTo=${encodeURIComponent(request.url)}`
      return reply.header('cache-control', 'no-store').redirect(login, 302)
    }
    return reply.code(401).header('cache-control', 'no-store').send({ error: 'unauthenticated' })
  }

  return {
    resolve,
    cookieSession: (request) => sessions.cookieSession(jar.readSession(request)),
    apply,
    deny
  }
}
