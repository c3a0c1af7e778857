/**
 * Types the HTTP plugins share. There is no shared bag: app.ts gives each plugin only what it uses.
 */
import type { SessionClaims } from '../core/session.js'
import type { IdpSource } from '../session/deps.js'

/** Gives the discovered IdP client, discovering (again) when needed. */
export type OidcSource = IdpSource

declare module 'fastify' {
  interface FastifyRequest {
    /** The live session of this request, once the gate resolved it. */
    sgSession: SessionClaims | null
  }
}
