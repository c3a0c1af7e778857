/**
 * Routes to upstreams through @fastify/http-proxy: one proxy per configured route, the gate in front of
 * each, header and cookie hygiene both ways, and WebSocket upgrades checked like any request and kept in
 * the connection registry so a revocation can close them.
 */
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy from '@fastify/http-proxy'
import type { ClientOptions, WebSocket } from 'ws'
import type { RouteConfig } from '../config/types.js'
import type { GatewayContext } from './context.js'
import type { Gate } from './gate.js'
import type { ConnectionOwner } from './connections.js'
import { upstreamHeaders } from './identity-headers.js'
import { watchConnection } from './revocation.js'

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export interface ProxyOptions { ctx: GatewayContext, gate: Gate }

/** Registers every configured route. Longest prefix wins by the router's own specificity. */
export async function proxyRoutes (app: FastifyInstance, { ctx, gate }: ProxyOptions): Promise<void> {
  // Upgrade sockets waiting for their WebSocket: filled by the gate, read by onConnect.
  const pendingUpgrades = new WeakMap<Socket, ConnectionOwner>()

  for (const route of ctx.config.routes) {
    await app.register(httpProxy, {
      upstream: route.upstream,
      prefix: route.prefix,
      rewritePrefix: route.prefix,
      websocket: true,
      preHandler: async (request: FastifyRequest, reply: FastifyReply) => { await guard(route, request, reply) },
      replyOptions: {
        rewriteRequestHeaders: (request, headers) => upstreamHeaders(headers, request.sgSession ?? null, {
          forwardAccessToken: route.forwardAccessToken,
          cookie: ctx.jar.stripOwn(headers.cookie)
        }),
        rewriteHeaders: (headers) => {
          const setCookie = ctx.jar.filterSetCookie(headers['set-cookie'])
          const out = { ...headers }
          if (setCookie === undefined) delete out['set-cookie']
          else out['set-cookie'] = setCookie
          return out
        }
      },
      // http-proxy calls rewriteRequestHeaders(headers, request) for the upstream WebSocket; its types omit it
      wsClientOptions: {
        rewriteRequestHeaders: (_headers: Record<string, unknown>, request: FastifyRequest) => {
          const h = upstreamHeaders({}, request.sgSession ?? null, {
            forwardAccessToken: route.forwardAccessToken,
            cookie: ctx.jar.stripOwn(request.headers.cookie)
          })
          return Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined))
        }
      } as ClientOptions,
      wsHooks: {
        onConnect: (_context, source: WebSocket) => {
          // ws keeps the upgraded socket in `_socket`: the only link from the WebSocket to its request.
          const raw = (source as unknown as { _socket?: Socket })._socket
          const owner = raw !== undefined ? pendingUpgrades.get(raw) : undefined
          if (owner === undefined) return
          pendingUpgrades.delete(raw!)
          const remove = watchConnection(ctx, owner, (reason) => {
            source.close(reason === 'revoked' ? 1008 : 1001, reason === 'revoked' ? 'session revoked' : 'going away')
          }, ctx.log)
          source.once('close', remove)
        }
      }
    })
  }

  async function guard (route: RouteConfig, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    request.sgSession = null
    if (route.csrf && UNSAFE.has(request.method) && request.headers['x-csrf'] !== '1') {
      await reply.code(403).send({ error: 'csrf', error_description: 'X-CSRF: 1 header required' })
      return
    }
    if (route.auth === 'none') return
    const session = await gate.resolve(request, reply, { accessToken: route.forwardAccessToken })
    if (session === null) {
      if (route.auth === 'required') await gate.deny(request, reply)
      return
    }
    request.sgSession = session
    // A WebSocket upgrade keeps its socket: remember whose it is until the proxied WebSocket opens.
    if (request.headers.upgrade !== undefined) pendingUpgrades.set(request.raw.socket, { sid: session.sid, sub: session.sub, ver: session.ver })
  }
}
