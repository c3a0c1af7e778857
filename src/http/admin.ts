/**
 * The admin port: health, readiness, metrics, and the help-desk API that ends a user's sessions.
 * `/admin/*` needs `Authorization: Bearer <admin.token>`, compared in constant time.
 */
import { metadataWarnings } from '../oidc/warnings.js'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.js'
import type { Store } from '../store/store.js'
import type { IdpSource } from '../session/deps.js'
import type { Revoker } from '../session/revoke.js'
import type { IdpWarnings } from '../oidc/warnings.js'
import type { SsfService } from '../ssf/service.js'
import type { Metrics } from './metrics.js'
import type { ReadinessView } from './readiness.js'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Public view of a session record: no credential hashes, no tokens. */
export function publicSession (r: { sid: string, createdAt: number, lastSeenAt: number, userAgent: string, ip: string, rememberMe: boolean, expiresAt: number }): Record<string, unknown> {
  return {
    id: r.sid,
    createdAt: new Date(r.createdAt).toISOString(),
    lastSeenAt: new Date(r.lastSeenAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
    userAgent: r.userAgent,
    ip: r.ip,
    rememberMe: r.rememberMe
  }
}

export interface AdminOptions {
  config: Pick<Config, 'admin' | 'store' | 'oidc' | 'rememberMe'>
  store: Pick<Store, 'ping' | 'listSessions' | 'findOwner'>
  idp: IdpSource
  idpWarnings: IdpWarnings
  metrics: Pick<Metrics, 'registry'>
  readiness: ReadinessView
  revoker: Revoker
  ssf?: SsfService
}

/** Registers /healthz, /readyz, /metrics and /admin/*. */
export async function adminRoutes (app: FastifyInstance, { config, store, idp: oidc, idpWarnings, metrics, readiness, revoker, ssf }: AdminOptions): Promise<void> {
  const expected = digest(config.admin.token)

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    const checks: Record<string, string> = {}
    checks.shutdown = readiness.accepting ? 'ok' : 'shutting down'
    const idp = oidc.current()
    checks.idp = idp !== undefined ? 'ok' : 'metadata not loaded'
    if (idp !== undefined) idpWarnings.add(metadataWarnings(idp.metadata, config))
    // failMode open serves sessions on their cookie alone while the store is out: taking every pod out of
    // the Service then would turn a partial outage into a total one, so the store check only degrades.
    const failOpen = config.store.failMode === 'open'
    checks.store = await store.ping().then(() => 'ok', () => failOpen ? 'degraded' : 'unreachable')
    const ready = Object.entries(checks).every(([name, v]) => v === 'ok' || (name === 'store' && v === 'degraded'))
    const warnings = idpWarnings.list()
    return await reply.code(ready ? 200 : 503).header('cache-control', 'no-store').send({ status: ready ? 'ready' : 'not ready', checks, ...(warnings.length > 0 ? { warnings } : {}) })
  })

  app.get('/metrics', async (_request, reply) => {
    return await reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  await app.register(async (admin) => {
    admin.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      const h = request.headers.authorization
      const token = typeof h === 'string' && h.startsWith('Bearer ') ? h.slice(7) : ''
      // Equal-length digests: the comparison leaks neither content nor length.
      if (!timingSafeEqual(digest(token), expected)) {
        await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' })
      }
    })

    admin.get<{ Params: { sub: string } }>('/admin/users/:sub/sessions', async (request) => {
      const sessions = await store.listSessions(request.params.sub)
      return sessions.map(publicSession)
    })

    admin.delete<{ Params: { sub: string } }>('/admin/users/:sub/sessions', async (request, reply) => {
      await revoker.user(request.params.sub, 'admin', request.log)
      return await reply.code(204).send()
    })

    // Shared Signals: each transmitter's stream status and last verification (README section "Shared Signals").
    admin.get('/admin/ssf', async (_request, reply) => {
      return await reply.header('cache-control', 'no-store').send({ transmitters: ssf === undefined ? [] : await ssf.status() })
    })

    admin.delete<{ Params: { id: string } }>('/admin/sessions/:id', async (request, reply) => {
      const sub = await store.findOwner(request.params.id)
      if (sub === null) return await reply.code(404).send({ error: 'not_found' })
      await revoker.session(sub, request.params.id, 'admin', request.log)
      return await reply.code(204).send()
    })
  })
}
