/**
 * Push delivery of Security Event Tokens (RFC 8935) at `POST <authPrefix>/ssf/push`: the bearer token
 * picks the transmitter (before the body is read), the body is one SET (`application/secevent+jwt`), and
 * the answer is 202 when it was applied (or is of a type the gateway ignores), 400 `{"err","description"}`
 * when it is invalid or replayed, 401 without the right bearer, 503 when it could not be applied now
 * (the transmitter retries; the same SET is accepted then). The logic is in ../ssf/.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { MAX_SET_LENGTH } from '../ssf/set.js'
import type { SsfService } from '../ssf/service.js'
import type { TransmitterLink } from '../ssf/transmitter.js'
import type { Counter } from 'prom-client'
import { RateLimitedError } from './rate-limit.js'

export interface SsfRoutesOptions {
  authPrefix: string
  ssf: SsfService
  ssfEvents: Counter<'transmitter' | 'type' | 'result'>
  storeErrors: Pick<Counter, 'inc'>
}

const SET_TYPE = /^application\/secevent\+jwt\s*(;|$)/i

/** Registers the push endpoint. */
export async function ssfRoutes (app: FastifyInstance, { authPrefix, ssf, ssfEvents, storeErrors }: SsfRoutesOptions): Promise<void> {
  const path = `${authPrefix}/ssf/push`
  const pushers = new WeakMap<FastifyRequest, TransmitterLink>()

  function answer (reply: FastifyReply, status: number, err?: string, description?: string): FastifyReply {
    reply.code(status).header('cache-control', 'no-store')
    return err === undefined ? reply.send() : reply.send({ err, description })
  }

  // Only this plugin reads SETs: the body arrives as one string, never larger than a SET may be.
  app.addContentTypeParser('application/secevent+jwt', { parseAs: 'string', bodyLimit: MAX_SET_LENGTH }, (_request, body, done) => { done(null, body) })
  // Body problems (too large, a type nothing parses) are invalid requests in RFC 8935's terms.
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const status = err.statusCode ?? 500
    // The rate limiter's 429 is the gateway's to answer (app.ts), like on every limited endpoint.
    if (err instanceof RateLimitedError) throw err
    if (status >= 500) {
      request.log.error({ err }, 'SSF push failed')
      return answer(reply, 500, 'temporarily_unavailable', 'internal error')
    }
    const description = status === 413 ? `the SET is larger than ${MAX_SET_LENGTH} bytes` : status === 415 ? 'Content-Type must be application/secevent+jwt' : 'the request cannot be read'
    request.log.info({ status, code: (err as { code?: string }).code }, 'SSF push refused')
    ssfEvents.inc({ transmitter: pushers.get(request)?.config.issuer ?? 'unknown', type: 'none', result: 'invalid' })
    return answer(reply, 400, 'invalid_request', description)
  })

  app.route({
    method: ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: path,
    handler: async (_request, reply) => answer(reply.header('allow', 'POST'), 405, 'invalid_request', 'use POST')
  })

  app.post(path, {
    // Who is pushing is settled before the body is read (an unauthenticated request costs no parsing),
    // and after the onRequest hooks: the rate limiter counts every request, authenticated or not.
    preParsing: async (request, reply) => {
      const h = request.headers.authorization
      const bearer = typeof h === 'string' && /^bearer /i.test(h) ? h.slice(7).trim() : undefined
      const link = bearer === undefined || bearer === '' ? undefined : ssf.pushTransmitter(bearer)
      if (link === undefined) {
        ssfEvents.inc({ transmitter: 'unknown', type: 'none', result: 'unauthenticated' })
        request.log.info({ bearer: bearer === undefined ? 'missing' : 'unknown' }, 'SSF push refused: authentication failed')
        await answer(reply.header('www-authenticate', 'Bearer'), 401, 'authentication_failed', 'a transmitter\'s push bearer token is required')
        return
      }
      pushers.set(request, link)
    }
  }, async (request, reply) => {
    const link = pushers.get(request)!
    if (!SET_TYPE.test(request.headers['content-type'] ?? '')) {
      ssfEvents.inc({ transmitter: link.config.issuer, type: 'none', result: 'invalid' })
      return answer(reply, 400, 'invalid_request', 'Content-Type must be application/secevent+jwt')
    }
    const d = await ssf.receiver.receive(link, request.body)
    switch (d.result) {
      case 'applied':
      case 'ignored':
      case 'recorded':
        return answer(reply, 202)
      case 'replay':
        return answer(reply, 400, 'invalid_request', 'jti was already received (replay)')
      case 'invalid':
        return answer(reply, 400, d.err, d.description)
      case 'unavailable':
        if (d.cause === 'store') storeErrors.inc()
        return answer(reply.header('retry-after', '5'), 503, 'temporarily_unavailable', d.description)
    }
  })
}
