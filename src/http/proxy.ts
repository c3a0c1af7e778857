/**
 * Routes to upstreams through @fastify/http-proxy: one proxy per configured route, the gate in front of
 * each, header and cookie hygiene both ways, and WebSocket upgrades checked like any request and kept in
 * the connection registry so a revocation can close them.
 */
import type { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy from '@fastify/http-proxy'
import type { ClientOptions, WebSocket } from 'ws'
import type { RouteConfig } from '../config/types.js'
import { tlsOptions } from '../config/tls.js'
import type { IdentityMapping } from '../core/identity.js'
import type { SessionClaims } from '../core/session.js'
import type { Observability } from '../obs/observe.js'
import type { Log } from '../session/types.js'
import type { Gate, ResolveOptions } from './gate.js'
import type { ConnectionOwner } from './connections.js'
import type { CookieJar } from './cookies.js'
import { createIdentityHeaders } from './identity-headers.js'
import type { Authorizer } from './authorization.js'
import type { WatchConnection } from './watch.js'
import type { BearerGuard } from './bearer.js'

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

// TLS towards https upstreams is always explicit (config/tls.ts): @fastify/reply-from's default undici
// options turn certificate verification off (`tls.rejectUnauthorized: false`), so without it an https
// upstream would be trusted whatever certificate it shows.

/** The router's host constraint for a route `host` pattern: case-insensitive, any port. */
function hostConstraint (pattern: string): RegExp {
  const escaped = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const body = pattern.startsWith('*.') ? `.+${escaped.slice(2)}` : escaped
  return new RegExp(`^${body}${pattern.includes(':') ? '' : '(:\\d+)?'}$`, 'i')
}

export interface ProxyOptions {
  routes: readonly RouteConfig[]
  /** Origins a browser's WebSocket upgrade may come from (the gateway's own, websocket.allowedOrigins). */
  origins: readonly string[]
  identity: Pick<IdentityMapping, 'headers'>
  gate: Gate
  authorizer: Authorizer
  bearer?: BearerGuard
  jar: Pick<CookieJar, 'pending' | 'stripOwn' | 'filterSetCookie'>
  obs: Pick<Observability, 'upstream'>
  watch: WatchConnection
  log: Log
}

type Done = (err?: Error) => void

/** Registers every configured route. Longest prefix wins by the router's own specificity. */
export async function proxyRoutes (app: FastifyInstance, { routes, origins: allowed, identity, gate, authorizer, bearer, jar, obs, watch, log }: ProxyOptions): Promise<void> {
  const upstreamHeaders = createIdentityHeaders(identity)
  // Upgrade sockets waiting for their WebSocket: filled by the gate, read by onConnect.
  const pendingUpgrades = new WeakMap<Socket, ConnectionOwner>()
  // Set-Cookie lines for an upgrade's 101 answer (a renewal rotated the device credential), by request.
  const upgradeCookies = new WeakMap<IncomingMessage, string[]>()
  const hooked = new WeakSet<EventEmitter>()
  const origins = new Set(allowed)

  /** ws lets the 101's headers be extended on its 'headers' event; one listener per proxied route's server. */
  function carryCookies (request: FastifyRequest, reply: FastifyReply): void {
    const lines = jar.pending(reply)
    if (lines.length === 0) return
    const wss = (reply as unknown as { wsProxy?: { wss?: EventEmitter } }).wsProxy?.wss
    if (wss === undefined) throw new Error('the WebSocket proxy exposes no server: cannot send the renewed cookies')
    if (!hooked.has(wss)) {
      hooked.add(wss)
      wss.on('headers', (headers: string[], req: IncomingMessage) => {
        for (const line of upgradeCookies.get(req) ?? []) headers.push(`Set-Cookie: ${line}`)
      })
    }
    upgradeCookies.set(request.raw, lines)
  }

  for (const route of routes) {
    // A route without upstream serves forward-auth only (GET <authPrefix>/check judges it).
    if (route.upstream === undefined) continue
    const tls = tlsOptions(route.tls)
    const observed = obs.upstream(route.prefix) // timing, X-Request-ID, traceparent
    const forward = route.forwardAccessToken
    // Built once per route: the hot path allocates no options or closures per request.
    const resolveOpts: ResolveOptions = { accessToken: forward }
    await app.register(httpProxy, {
      upstream: route.upstream,
      undici: { connect: tls },
      prefix: route.prefix,
      ...(route.host !== undefined ? { constraints: { host: hostConstraint(route.host) } } : {}),
      rewritePrefix: route.prefix,
      websocket: true,
      preHandler: (request: FastifyRequest, reply: FastifyReply, done: Done) => { guard(route, resolveOpts, request, reply, done) },
      replyOptions: {
        rewriteRequestHeaders: (request, headers) => observed.sent(request, upstreamHeaders(headers, request.sgSession, forward, jar.stripOwn(headers.cookie))),
        // The upstream's header object is this response's own (reply-from copies it onto the reply next):
        // edited in place, and only when it carries Set-Cookie.
        rewriteHeaders: (headers, request) => {
          const raw = headers['set-cookie']
          if (raw !== undefined) {
            const setCookie = jar.filterSetCookie(raw)
            if (setCookie === undefined) delete headers['set-cookie']
            else headers['set-cookie'] = setCookie
          }
          return observed.answered(request, headers)
        }
      },
      // http-proxy calls rewriteRequestHeaders(headers, request) for the upstream WebSocket; its types omit it
      wsClientOptions: {
        ...tls,
        rewriteRequestHeaders: (_headers: Record<string, unknown>, request: FastifyRequest) => {
          const h = upstreamHeaders({}, request.sgSession, forward, jar.stripOwn(request.headers.cookie))
          return observed.upgrade(request, Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)))
        }
      } as ClientOptions,
      wsHooks: {
        onConnect: (_context, source: WebSocket) => {
          // ws keeps the upgraded socket in `_socket`: the only link from the WebSocket to its request.
          const raw = (source as unknown as { _socket?: Socket })._socket
          const owner = raw !== undefined ? pendingUpgrades.get(raw) : undefined
          if (owner === undefined) return
          pendingUpgrades.delete(raw!)
          const remove = watch(owner, (reason) => {
            source.close(reason === 'revoked' ? 1008 : 1001, reason === 'revoked' ? 'session revoked' : 'going away')
          }, log)
          source.once('close', remove)
        }
      }
    })
  }

  /**
   * The proxy's preHandler, callback style: when the gate decides synchronously (caches hit), so does
   * this, without a promise. A reply sent here ends the request (done is not called then).
   */
  function guard (route: RouteConfig, opts: ResolveOptions, request: FastifyRequest, reply: FastifyReply, done: Done): void {
    request.sgSession = null
    const upgrade = request.headers.upgrade !== undefined
    // Cross-site WebSocket hijacking: a browser always sends Origin on an upgrade, and SameSite=Lax
    // cookies still flow from same-site pages (another port of the same host, a sibling subdomain).
    if (upgrade && request.headers.origin !== undefined && !origins.has(request.headers.origin)) {
      request.log.info({ origin: request.headers.origin }, 'WebSocket upgrade from a foreign origin refused')
      reply.code(403).header('cache-control', 'no-store').send({ error: 'forbidden', error_description: 'origin not allowed' })
      return
    }
    // Bearer routes (http/bearer.ts): the token alone judges; no cookie is read, so CSRF does not apply.
    if (route.bearer && bearer !== undefined && request.headers.authorization !== undefined) {
      bearer.guard(route, request, reply).then(() => { if (!reply.sent) done() }, done)
      return
    }
    if (route.csrf && UNSAFE.has(request.method) && request.headers['x-csrf'] !== '1') {
      reply.code(403).send({ error: 'csrf', error_description: 'X-CSRF: 1 header required' })
      return
    }
    if (route.auth === 'none') { done(); return }
    let resolved
    try {
      resolved = gate.resolve(request, reply, opts)
    } catch (err) {
      done(err as Error)
      return
    }
    if (resolved instanceof Promise) {
      resolved.then((session) => { admit(route, request, reply, session, upgrade, done) }, done)
      return
    }
    admit(route, request, reply, resolved, upgrade, done)
  }

  function admit (route: RouteConfig, request: FastifyRequest, reply: FastifyReply, session: SessionClaims | null, upgrade: boolean, done: Done): void {
    try {
      if (session === null) {
        if (route.auth === 'required') { gate.deny(request, reply); return }
        if (upgrade) carryCookies(request, reply) // optional route: cookies of a refused session are cleared
        done()
        return
      }
      if (!authorizer.allows(route, session)) {
        if (upgrade) carryCookies(request, reply)
        authorizer.forbid(request, reply, route, session)
        return
      }
      request.sgSession = session
      if (upgrade) {
        carryCookies(request, reply)
        // A WebSocket upgrade keeps its socket: remember whose it is until the proxied WebSocket opens.
        pendingUpgrades.set(request.raw.socket, { sid: session.sid, sub: session.sub, ver: session.ver, epoch: session.epoch, kind: 'websocket' })
      }
    } catch (err) {
      done(err as Error)
      return
    }
    done()
  }
}
