/**
 * The gateway's own browser endpoints under `authPrefix`: login, callback, logout, session, sessions,
 * events. Thin: the session service (../session/) decides, this plugin reads the request and answers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Counter } from 'prom-client'
import { safeReturnTo } from '../core/return-to.js'
import { allowedAbsoluteUrl } from '../core/hosts.js'
import { safeEqual } from '../core/device.js'
import type { SessionClaims } from '../core/session.js'
import type { SessionService } from '../session/service.js'
import type { CallbackFailure } from '../session/login.js'
import { CLEAR_ALL } from '../session/types.js'
import type { CookieJar } from './cookies.js'
import type { Gate } from './gate.js'
import type { WatchConnection } from './watch.js'
import { publicSession } from './admin.js'
import { escapeHtml, type Pages } from './pages.js'
import type { LoginOutcome } from './metrics.js'

export interface AuthRoutesOptions {
  settings: {
    authPrefix: string
    publicUrl: string
    forwardAuth: { enabled: boolean, allowedHosts: string[] }
    rememberMe: { enabled: boolean, ask: boolean, ttl: number }
  }
  sessions: SessionService
  gate: Gate
  /** For hijacked replies (event streams), which must write the Set-Cookie lines themselves. */
  jar: Pick<CookieJar, 'pending' | 'names'>
  pages: Pages
  /** sessiongate_logins_total, by outcome of the callback */
  logins: Counter<'result'>
  watch: WatchConnection
  /** Epoch seconds. */
  now: () => number
}

/** What the person reads when a callback fails. */
function failureMessage (failure: CallbackFailure, refusal?: { claim: string, problem: string }): string {
  switch (failure) {
    case 'expired': return 'This sign-in link has expired or was not started in this browser.'
    case 'idp_error': return 'The identity provider did not complete the sign-in.'
    case 'state_mismatch': return 'The sign-in response does not match this browser.'
    case 'replay': return 'This sign-in response was already used.'
    case 'exchange_failed': return 'The identity provider response could not be verified.'
    case 'refused_identity': return `Your account's ${refusal?.claim ?? 'identity'} ${refusal?.problem ?? 'cannot be used'}, so it cannot be passed on to the application. Ask an administrator to correct it at the identity provider.`
  }
}

/** Registers login, callback, logout and session under the auth prefix. */
export async function authRoutes (app: FastifyInstance, { settings, sessions, gate, jar, pages, logins, watch, now }: AuthRoutesOptions): Promise<void> {
  const prefix = settings.authPrefix
  const counted = (result: LoginOutcome): void => { logins.labels(result).inc() }

  function badLogin (reply: FastifyReply, message: string, result: LoginOutcome): FastifyReply {
    counted(result)
    return pages.headers(reply.code(400)).send(pages.errorPage('Sign-in failed', message, { href: `${prefix}/login`, text: 'Sign in again' }))
  }

  /**
   * Where a login returns: a path on this site, or with forward-auth an absolute URL on an allowed host
   * (`rd` is what ingress-nginx's auth-signin adds by default).
   */
  function returnTarget (q: Record<string, unknown>): string {
    const raw = q.returnTo ?? (settings.forwardAuth.enabled ? q.rd : undefined)
    if (settings.forwardAuth.enabled && typeof raw === 'string' && /^https?:/i.test(raw)) {
      return allowedAbsoluteUrl(raw, settings.forwardAuth.allowedHosts, settings.publicUrl.startsWith('http:')) ?? '/'
    }
    return safeReturnTo(raw)
  }

  app.get(`${prefix}/login`, async (request, reply) => {
    const q = request.query as Record<string, unknown>
    if (settings.forwardAuth.enabled) {
      // Behind a controller the check endpoint neither renews nor clears (one Set-Cookie line at most):
      // the sign-in URL does, and a live or renewed session goes straight back without the IdP.
      const s = await gate.resolve(request, reply)
      if (s !== null) return reply.header('cache-control', 'no-store').redirect(returnTarget(q), 302)
    }
    if (settings.rememberMe.enabled && settings.rememberMe.ask && q.remember === undefined) {
      // The person chooses here: "remember me" is a property of this device, decided before the IdP.
      const back = encodeURIComponent(returnTarget(q))
      return pages.headers(reply).send(pages.page('Sign in', '<h1>Sign in</h1><p class="muted">You will sign in at your identity provider.</p>' +
        '<p style="display:flex;gap:.5rem;flex-wrap:wrap">' +
        `<a id="signin-remember" href="${escapeHtml(`${prefix}/login?remember=1&returnTo=${back}`)}"><button type="button">Sign in and remember this device</button></a>` +
        `<a id="signin" href="${escapeHtml(`${prefix}/login?remember=0&returnTo=${back}`)}"><button type="button" class="secondary">Sign in just for now</button></a></p>` +
        `<p class="muted">A remembered device stays signed in for up to ${Math.round(settings.rememberMe.ttl / 86400)} days, until you or an administrator sign it out.</p>`))
    }
    const started = await sessions.login({ returnTo: returnTarget(q), remember: q.remember === '1' || q.remember === 'true', now: now() })
    gate.apply(request, reply, started.cookies)
    return reply.header('cache-control', 'no-store').redirect(started.url, 302)
  })

  // A thrown outage (IdP or store unreachable) is answered 503 by the error handler; count it here (a 429 is no outcome).
  const onError = (_q: unknown, _r: unknown, err: { statusCode?: number }, done: () => void): void => {
    if ((err.statusCode ?? 500) >= 500) counted('unavailable')
    done()
  }
  app.get(`${prefix}/callback`, { onError }, async (request, reply) => {
    // A login transaction is used once, whatever happens next (an outage included).
    gate.apply(request, reply, [{ op: 'clear-tx' }])
    const result = await sessions.callback({ tx: request.cookies[jar.names.tx], url: new URL(request.url, settings.publicUrl), now: now() }, request)
    gate.apply(request, reply, result.cookies)
    if (result.kind === 'failed') return badLogin(reply, failureMessage(result.failure, result.refusal), result.failure)
    counted('success')
    return reply.header('cache-control', 'no-store').redirect(result.returnTo, 302)
  })

  app.get(`${prefix}/session`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    reply.header('cache-control', 'no-store')
    if (s === null) return await reply.code(401).send({ error: 'unauthenticated' })
    return { sub: s.sub, sid: s.sid, claims: s.profile, expiresAt: new Date(s.exp * 1000).toISOString(), rememberMe: s.rememberMe }
  })

  /** Local logout: revoke this session and its device credential, clear cookies, go to the IdP. */
  async function logout (request: FastifyRequest, reply: FastifyReply, s: Pick<SessionClaims, 'sub' | 'sid'>): Promise<FastifyReply> {
    const done = await sessions.logout(s, request.log)
    gate.apply(request, reply, done.cookies)
    return reply.header('cache-control', 'no-store').redirect(done.redirect, 302)
  }

  app.get(`${prefix}/logout`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    const q = request.query as Record<string, unknown>
    if (s === null) {
      // A logout whose store step failed half-way (no event published yet) is retried with the same
      // link: the cookie's session is refused now, but revoking it again is harmless and finishes it.
      const stale = gate.cookieSession(request)
      if (stale !== null && typeof q.sid === 'string' && safeEqual(q.sid, stale.sid)) return await logout(request, reply, stale)
      gate.apply(request, reply, CLEAR_ALL)
      return reply.header('cache-control', 'no-store').redirect('/', 302)
    }
    // A bare cross-site GET (an <img>, say) does not know the sid and logs nobody out.
    if (typeof q.sid === 'string' && safeEqual(q.sid, s.sid)) return await logout(request, reply, s)
    return pages.headers(reply).send(pages.page('Sign out', `<h1>Sign out?</h1><p>You are signed in as <strong>${escapeHtml(s.profile.preferred_username ?? s.sub)}</strong>.</p>` +
      `<form method="get" action="${escapeHtml(prefix)}/logout"><input type="hidden" name="sid" value="${escapeHtml(s.sid)}">` +
      `<button type="submit">Sign out</button></form>`))
  })

  app.post(`${prefix}/logout`, async (request, reply) => {
    if (request.headers['x-csrf'] !== '1') return await reply.code(403).send({ error: 'csrf', error_description: 'X-CSRF: 1 header required' })
    const s = await gate.resolve(request, reply) ?? gate.cookieSession(request) // see GET: a retry finishes
    if (s === null) {
      gate.apply(request, reply, CLEAR_ALL)
      return await reply.code(401).send({ error: 'unauthenticated' })
    }
    return await logout(request, reply, s)
  })

  /** The caller's own sessions (one per signed-in device), newest first. */
  app.get(`${prefix}/sessions`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    reply.header('cache-control', 'no-store')
    if (s === null) return await reply.code(401).send({ error: 'unauthenticated' })
    const records = await sessions.sessionsOf(s.sub)
    return records.map((r) => ({ ...publicSession(r), current: r.sid === s.sid }))
  })

  app.delete<{ Params: { id: string } }>(`${prefix}/sessions/:id`, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    if (request.headers['x-csrf'] !== '1') return await reply.code(403).send({ error: 'csrf', error_description: 'X-CSRF: 1 header required' })
    const s = await gate.resolve(request, reply)
    if (s === null) return await reply.code(401).send({ error: 'unauthenticated' })
    if (await sessions.revokeOwn(s, request.params.id, request.log) === 'not_found') return await reply.code(404).send({ error: 'not_found' })
    if (request.params.id === s.sid) gate.apply(request, reply, CLEAR_ALL)
    return await reply.code(204).send()
  })

  /** Server-Sent Events: `event: logout` when this session is revoked (on any replica), then close. */
  app.get(`${prefix}/events`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    if (s === null) return await reply.code(401).header('cache-control', 'no-store').send({ error: 'unauthenticated' })
    reply.hijack()
    const res = reply.raw
    // A renewal or slide in gate.resolve queued cookies; a hijacked reply must write them itself.
    const cookies = jar.pending(reply)
    res.writeHead(200, {
      ...(cookies.length > 0 ? { 'set-cookie': cookies } : {}),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    res.write(`retry: 5000\nevent: session\ndata: ${JSON.stringify({ sid: s.sid, expiresAt: new Date(s.exp * 1000).toISOString() })}\n\n`)
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 25_000)
    const remove = watch({ sid: s.sid, sub: s.sub, ver: s.ver, epoch: s.epoch, kind: 'event_stream' }, (reason) => {
      clearInterval(heartbeat)
      res.end(reason === 'revoked' ? 'event: logout\ndata: {"reason":"revoked"}\n\n' : 'event: shutdown\ndata: {}\n\n')
    }, request.log)
    request.raw.once('close', () => { clearInterval(heartbeat); remove() })
  })

  /** Anything else under the auth prefix is ours, and does not exist: never proxied. */
  app.all(`${prefix}/*`, async (_request, reply) => await reply.code(404).send({ error: 'not_found' }))
}
