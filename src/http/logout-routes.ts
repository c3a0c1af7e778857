/**
 * The IdP's logout receivers: OIDC Back-Channel Logout 1.0 (POST, form-encoded logout_token) and
 * Front-Channel Logout 1.0 (GET in an iframe, iss + sid). Rules: docs/conformance.md A, B.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyInstance, FastifyReply } from 'fastify'
import formbody from '@fastify/formbody'
import type { JWTVerifyGetKey } from 'jose'
import type { Counter } from 'prom-client'
import { LogoutTokenError, replayWindow, validateLogoutToken } from '../core/logout-token.js'
import { causeChain } from '../core/cause.js'
import { safeEqual } from '../core/device.js'
import { StoreUnavailableError, type Store } from '../store/store.js'
import type { IdpSource } from '../session/deps.js'
import type { Revoker } from '../session/revoke.js'
import { CLEAR_ALL } from '../session/types.js'
import type { Gate } from './gate.js'

export interface LogoutRoutesOptions {
  authPrefix: string
  publicUrl: string
  idp: IdpSource
  /** The IdP's key set for logout tokens (oidc/jwks.ts). */
  keys: JWTVerifyGetKey
  gate: Gate
  revoker: Revoker
  /** The logout tokens' replay guard. */
  replay: Pick<Store, 'wasClaimed' | 'claimOnce'>
  storeErrors: Pick<Counter, 'inc'>
  /** Epoch seconds. */
  now: () => number
}

const SKEW = 60

/**
 * True when a browser request provably comes from one of these origins: by its `Origin` or `Referer`
 * when sent, else by `Sec-Fetch-Site: same-origin`. A request that shows neither is not trusted.
 */
export function fromTrustedPage (headers: IncomingHttpHeaders, origins: readonly string[]): boolean {
  const claimed = headers.origin ?? headers.referer
  if (typeof claimed === 'string' && claimed !== '' && claimed !== 'null') {
    try { return origins.includes(new URL(claimed).origin) } catch { return false }
  }
  return headers['sec-fetch-site'] === 'same-origin'
}

/** Registers /backchannel-logout and /frontchannel-logout under the auth prefix. */
export async function logoutRoutes (app: FastifyInstance, { authPrefix: prefix, publicUrl, idp, keys, gate, revoker, replay, storeErrors, now }: LogoutRoutesOptions): Promise<void> {
  const publicOrigin = new URL(publicUrl).origin
  // Only this plugin parses forms; proxied bodies stay untouched streams.
  await app.register(formbody, { bodyLimit: 32 * 1024 })

  function answer (reply: FastifyReply, status: number, body?: Record<string, string>): FastifyReply {
    reply.code(status).header('cache-control', 'no-store').header('pragma', 'no-cache')
    return body === undefined ? reply.send() : reply.send(body)
  }

  app.route({
    method: ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: `${prefix}/backchannel-logout`,
    handler: async (_request, reply) => answer(reply.header('allow', 'POST'), 405, { error: 'invalid_request', error_description: 'use POST' })
  })

  app.post(`${prefix}/backchannel-logout`, async (request, reply) => {
    const form = request.body
    if (typeof form !== 'object' || form === null || !request.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
      return answer(reply, 400, { error: 'invalid_request', error_description: 'expected an application/x-www-form-urlencoded body with logout_token' })
    }
    let oidc
    try {
      oidc = await idp.get()
    } catch (err) {
      request.log.warn({ reason: (err as Error).message }, 'back-channel logout before the IdP metadata could be loaded')
      return answer(reply, 400, { error: 'temporarily_unavailable', error_description: 'the IdP metadata is not loaded' })
    }
    const jwksUri = oidc.metadata.jwks_uri
    if (jwksUri === undefined) return answer(reply, 400, { error: 'temporarily_unavailable', error_description: 'the IdP publishes no jwks_uri' })
    let token
    try {
      token = await validateLogoutToken((form as Record<string, unknown>).logout_token, {
        issuer: oidc.issuer,
        clientId: oidc.clientId,
        algorithm: oidc.idTokenAlg,
        keys,
        now: now(),
        skew: SKEW
      })
    } catch (err) {
      if (!(err instanceof LogoutTokenError)) throw err
      request.log.info({ code: err.code, reason: err.message, causes: causeChain(err) }, 'logout token refused')
      return answer(reply, 400, { error: 'invalid_request', error_description: err.message })
    }
    // Replay guard, claimed only once the revocation succeeded: a failed attempt (store error half-way)
    // must leave the jti free for the IdP's retry. Revoking twice is harmless; losing a logout is not.
    const jti = `${token.iss}|${token.jti}`
    try {
      if (await replay.wasClaimed('jti', jti)) {
        return answer(reply, 400, { error: 'invalid_request', error_description: 'jti was already used (replay)' })
      }
      if (token.sid !== undefined) await revoker.idpSession(token.iss, token.sid, 'backchannel', request.log, token.sub)
      else await revoker.user(token.sub!, 'backchannel', request.log)
    } catch (err) {
      // Any failure of the store step (outage, or a refusal such as an ACL) is a logout that did not
      // happen: 400 per the spec, so the IdP retries; the jti was not recorded, so the retry is accepted.
      storeErrors.inc()
      if (err instanceof StoreUnavailableError) request.log.warn({ reason: err.message }, 'back-channel logout could not reach the store')
      else request.log.error({ err }, 'back-channel logout failed in the store')
      return answer(reply, 400, { error: 'temporarily_unavailable', error_description: 'the session store cannot be reached' })
    }
    // The logout is done: a claim that fails now only weakens replay detection, so the answer stays 200.
    await replay.claimOnce('jti', jti, replayWindow(token, now(), { skew: SKEW })).catch((err: Error) => {
      request.log.warn({ reason: err.message }, 'logout done, but its jti could not be recorded (replay guard)')
    })
    return answer(reply, 200)
  })

  app.get(`${prefix}/frontchannel-logout`, async (request, reply) => {
    const q = request.query as Record<string, unknown>
    const oidc = await idp.get()
    // The IdP frames this page; every other gateway page refuses framing.
    reply.header('cache-control', 'no-store')
      .header('content-security-policy', `default-src 'none'; frame-ancestors ${new URL(oidc.issuer).origin}`)
      .type('text/html; charset=utf-8')
    const iss = q.iss
    const sid = q.sid
    if (iss === undefined && sid === undefined) {
      // No parameters: the IdP relies on the cookie, which a cross-site iframe may not carry (SameSite).
      // SameSite=Lax does carry it on a cross-site top-level navigation, so this form is a logout CSRF
      // unless the request comes from this site or from the IdP.
      if (!fromTrustedPage(request.headers, [publicOrigin, new URL(oidc.issuer).origin])) {
        request.log.info({ secFetchSite: request.headers['sec-fetch-site'] }, 'front-channel logout without iss/sid from a foreign page: nothing revoked')
        return await reply.send('<!doctype html><title>signed out</title>')
      }
      // A refused cookie may be a revocation stored without its event (a failed first attempt): revoking
      // again is harmless and announces it.
      const s = await gate.resolve(request, reply) ?? gate.cookieSession(request)
      if (s !== null) {
        await revoker.session(s.sub, s.sid, 'frontchannel', request.log)
        gate.apply(request, reply, CLEAR_ALL)
      }
      return await reply.send('<!doctype html><title>signed out</title>')
    }
    if (typeof iss !== 'string' || typeof sid !== 'string' || sid === '' || !safeEqual(iss, oidc.issuer)) {
      return await reply.code(400).send('<!doctype html><title>bad request</title>')
    }
    const ended = await revoker.idpSession(iss, sid, 'frontchannel', request.log)
    // Not silent: an IdP sending sids the gateway never saw is a misconfiguration worth seeing.
    if (ended === 0) request.log.info('front-channel logout matched no gateway session (already ended, or the IdP sid is unknown here)')
    return await reply.send('<!doctype html><title>signed out</title>')
  })
}
