/**
 * The gateway's own browser endpoints under `authPrefix`: login, callback, logout, session.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { seal, unseal } from '../core/sealed-cookie.js'
import { safeReturnTo } from '../core/return-to.js'
import { allowedAbsoluteUrl } from '../core/hosts.js'
import { metadataWarnings, NO_SID_WARNING } from '../oidc/warnings.js'
import { buildProfile, identityRefusal } from '../core/identity.js'
import { claimPathsOf } from '../core/authorize.js'
import { formatDeviceCookie, hashCredential, newCredential, newSessionId, safeEqual } from '../core/device.js'
import { issueSession, type ProfileClaims, type SessionClaims } from '../core/session.js'
import { accessTokenOf, openTokenBundle, TOKENS_PURPOSE, type TokenBundle } from '../core/tokens.js'
import type { LoginChecks, LoginResult, OidcError } from '../oidc/client.js'
import { causeChain } from '../core/cause.js'
import type { GatewayContext } from './context.js'
import type { Gate } from './gate.js'
import { watchConnection, type Revoker } from './revocation.js'
import { publicSession } from './admin.js'
import { escapeHtml } from './pages.js'
import type { LoginOutcome } from './metrics.js'

const TX_PURPOSE = 'login-tx'
/** A login must come back from the IdP within this many seconds. */
const TX_TTL = 600

/** The login transaction, sealed into a short cookie for the IdP round trip. */
interface LoginTx { checks: LoginChecks, returnTo: string, remember: boolean, iat: number }

export interface AuthRoutesOptions { ctx: GatewayContext, gate: Gate, revoker: Revoker }

/** Registers login, callback, logout and session under the auth prefix. */
export async function authRoutes (app: FastifyInstance, { ctx, gate, revoker }: AuthRoutesOptions): Promise<void> {
  const { config, jar, store } = ctx
  const prefix = config.authPrefix
  const redirectUri = `${config.publicUrl}${prefix}/callback`
  // The claims a session keeps: those that rules and header mappings read, nothing more (cookie size).
  const keptPaths = [...config.routes.flatMap((r) => claimPathsOf(r.authorize ?? [])), ...Object.values(config.identity.headers)]
  /** Profile claims from userinfo first, then the ID token. */
  const profileOf = (l: LoginResult): ProfileClaims => buildProfile([l.userinfo, l.idClaims as Record<string, unknown>], config.identity, keptPaths)

  // sessiongate_logins_total, by outcome of the callback
  const logins = ctx.metrics.logins
  const counted = (result: LoginOutcome): void => { logins.labels(result).inc() }

  function badLogin (reply: FastifyReply, message: string, result: LoginOutcome): FastifyReply {
    counted(result)
    return ctx.pages.headers(reply.code(400)).send(ctx.pages.errorPage('Sign-in failed', message, { href: `${prefix}/login`, text: 'Sign in again' }))
  }

  /** Creates the session record and device credential of a finished login and sets both cookies. */
  async function createSession (req: FastifyRequest, reply: FastifyReply, issuer: string, l: LoginResult, profile: ProfileClaims, remember: boolean): Promise<SessionClaims> {
    const now = ctx.now()
    const sid = newSessionId()
    const credential = newCredential()
    const lifetime = remember ? config.rememberMe.ttl : config.session.absoluteTtl
    const idpSid = typeof l.idClaims.sid === 'string' ? l.idClaims.sid : undefined
    // Kept (in the cookie and the record) only when some route forwards it.
    const access = ctx.keepsAccessToken ? accessTokenOf({ at: l.accessToken, atExp: l.accessTokenExp }) : {}
    const tokens: TokenBundle = {
      idToken: l.idToken,
      profile,
      ...(l.refreshToken !== undefined ? { refreshToken: l.refreshToken } : {}),
      ...access
    }
    const version = await store.createSession({
      sid,
      sub: l.idClaims.sub,
      iss: issuer,
      ...(idpSid !== undefined ? { idpSid } : {}),
      createdAt: now * 1000,
      lastSeenAt: now * 1000,
      userAgent: String(req.headers['user-agent'] ?? '').slice(0, 256),
      ip: req.ip,
      rememberMe: remember,
      expiresAt: (now + lifetime) * 1000,
      credHash: hashCredential(credential),
      tokens: seal(ctx.ring, TOKENS_PURPOSE, tokens),
      email: profile.email
    }, Math.max(config.rememberMe.ttl, config.session.absoluteTtl) + config.session.ttl)
    const session = issueSession({
      sid,
      sub: l.idClaims.sub,
      iss: issuer,
      ...(idpSid !== undefined ? { idpSid } : {}),
      ver: version,
      epoch: await store.epoch(),
      authTime: typeof l.idClaims.auth_time === 'number' ? l.idClaims.auth_time : now,
      rememberMe: remember,
      profile,
      ...access,
      loginAt: now
    }, now, config.session.ttl, config.session.absoluteTtl)
    gate.writeSession(req, reply, session)
    jar.set(reply, jar.names.device, formatDeviceCookie(sid, credential, l.idClaims.sub), remember ? config.rememberMe.ttl : undefined)
    req.log.info({ sid, rememberMe: remember }, 'login')
    return session
  }

  /**
   * Where a login returns: a path on this site, or with forward-auth an absolute URL on an allowed host
   * (`rd` is what ingress-nginx's auth-signin adds by default).
   */
  function returnTarget (q: Record<string, unknown>): string {
    const raw = q.returnTo ?? (config.forwardAuth.enabled ? q.rd : undefined)
    if (config.forwardAuth.enabled && typeof raw === 'string' && /^https?:/i.test(raw)) {
      return allowedAbsoluteUrl(raw, config.forwardAuth.allowedHosts, config.publicUrl.startsWith('http:')) ?? '/'
    }
    return safeReturnTo(raw)
  }

  app.get(`${prefix}/login`, async (request, reply) => {
    const q = request.query as Record<string, unknown>
    if (config.forwardAuth.enabled) {
      // Behind a controller the check endpoint neither renews nor clears (one Set-Cookie line at most):
      // the sign-in URL does, and a live or renewed session goes straight back without the IdP.
      const s = await gate.resolve(request, reply)
      if (s !== null) return reply.header('cache-control', 'no-store').redirect(returnTarget(q), 302)
    }
    if (config.rememberMe.enabled && config.rememberMe.ask && q.remember === undefined) {
      // The person chooses here: "remember me" is a property of this device, decided before the IdP.
      const back = encodeURIComponent(returnTarget(q))
      return ctx.pages.headers(reply).send(ctx.pages.page('Sign in', '<h1>Sign in</h1><p class="muted">You will sign in at your identity provider.</p>' +
        '<p style="display:flex;gap:.5rem;flex-wrap:wrap">' +
        `<a id="signin-remember" href="${escapeHtml(`${prefix}/login?remember=1&returnTo=${back}`)}"><button type="button">Sign in and remember this device</button></a>` +
        `<a id="signin" href="${escapeHtml(`${prefix}/login?remember=0&returnTo=${back}`)}"><button type="button" class="secondary">Sign in just for now</button></a></p>` +
        `<p class="muted">A remembered device stays signed in for up to ${Math.round(config.rememberMe.ttl / 86400)} days, until you or an administrator sign it out.</p>`))
    }
    const oidc = await ctx.oidc.get()
    const checks = oidc.newChecks()
    const tx: LoginTx = {
      checks,
      returnTo: returnTarget(q),
      remember: config.rememberMe.enabled && (q.remember === '1' || q.remember === 'true'),
      iat: ctx.now()
    }
    jar.set(reply, jar.names.tx, seal(ctx.ring, TX_PURPOSE, tx), TX_TTL)
    const url = await oidc.authorizationUrl(checks, redirectUri, config.oidc.scopes)
    return reply.header('cache-control', 'no-store').redirect(url, 302)
  })

  // A thrown outage (IdP or store unreachable) is answered 503 by the error handler; count it here (a 429 is no outcome).
  const onError = (_q: unknown, _r: unknown, err: { statusCode?: number }, done: () => void): void => {
    if ((err.statusCode ?? 500) >= 500) counted('unavailable')
    done()
  }
  app.get(`${prefix}/callback`, { onError }, async (request, reply) => {
    const q = request.query as Record<string, unknown>
    const sealedTx = request.cookies[jar.names.tx]
    jar.set(reply, jar.names.tx, '', 0)
    let tx: LoginTx
    try {
      if (sealedTx === undefined) throw new Error('no login in progress')
      tx = unseal(ctx.ring, TX_PURPOSE, sealedTx) as LoginTx
      if (ctx.now() - tx.iat > TX_TTL) throw new Error('login expired')
    } catch {
      return badLogin(reply, 'This sign-in link has expired or was not started in this browser.', 'expired')
    }
    if (typeof q.error === 'string') {
      request.log.info({ idpError: q.error }, 'IdP returned an error to the callback')
      return badLogin(reply, 'The identity provider did not complete the sign-in.', 'idp_error')
    }
    if (typeof q.state !== 'string' || !safeEqual(q.state, tx.checks.state)) {
      return badLogin(reply, 'The sign-in response does not match this browser.', 'state_mismatch')
    }
    // One use per state: a replayed callback (same cookie, same state) is refused before the IdP sees it.
    // The state is claimed only after the login succeeded, so a failed attempt can be retried.
    if (await store.wasClaimed('state', tx.checks.state)) {
      return badLogin(reply, 'This sign-in response was already used.', 'replay')
    }
    const oidc = await ctx.oidc.get()
    let login: LoginResult
    try {
      login = await oidc.finishLogin(new URL(request.url, config.publicUrl), tx.checks)
    } catch (err) {
      request.log.warn({ code: (err as OidcError).code, reason: (err as Error).message, causes: causeChain(err) }, 'login failed')
      return badLogin(reply, 'The identity provider response could not be verified.', 'exchange_failed')
    }
    ctx.idpWarnings.add(metadataWarnings(oidc.metadata, config))
    if (typeof login.idClaims.sid !== 'string') ctx.idpWarnings.add([NO_SID_WARNING])
    const profile = profileOf(login)
    const refused = identityRefusal(login.idClaims.sub, profile, config.identity.user)
    if (refused !== undefined) {
      request.log.warn({ claim: refused.claim, problem: refused.problem }, 'login refused: an identity claim cannot be forwarded safely')
      return badLogin(reply, `Your account's ${refused.claim} ${refused.problem}, so it cannot be passed on to the application. Ask an administrator to correct it at the identity provider.`, 'refused_identity')
    }
    // Two callbacks racing with one state: the IdP refuses the second code exchange, and should it not,
    // only the first to claim gets a session.
    if (!(await store.claimOnce('state', tx.checks.state, TX_TTL))) {
      return badLogin(reply, 'This sign-in response was already used.', 'replay')
    }
    await createSession(request, reply, oidc.issuer, login, profile, tx.remember)
    counted('success')
    return reply.header('cache-control', 'no-store').redirect(tx.returnTo, 302)
  })

  app.get(`${prefix}/session`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    reply.header('cache-control', 'no-store')
    if (s === null) return await reply.code(401).send({ error: 'unauthenticated' })
    return { sub: s.sub, sid: s.sid, claims: s.profile, expiresAt: new Date(s.exp * 1000).toISOString(), rememberMe: s.rememberMe }
  })

  /** Local logout: revoke this session and its device credential, clear cookies, go to the IdP. */
  async function logout (request: FastifyRequest, reply: FastifyReply, s: Pick<SessionClaims, 'sub' | 'sid'>): Promise<FastifyReply> {
    const record = await store.getSession(s.sub, s.sid)
    await revoker.session(s.sub, s.sid, 'rp', request.log)
    jar.clearAll(request, reply)
    const opened = openTokenBundle(ctx.ring, record?.tokens)
    // Logged: without the bundle the refresh token is not revoked at the IdP, nor the id_token_hint sent.
    if (!opened.ok) request.log.warn({ code: opened.code, seal: opened.seal, sid: s.sid }, 'the session\'s token bundle cannot be opened')
    const tokens = opened.bundle
    const oidc = ctx.oidc.current()
    if (oidc !== undefined && tokens.refreshToken !== undefined) {
      // RFC 7009: best effort; the local session is gone whatever the IdP answers.
      await oidc.revokeRefreshToken(tokens.refreshToken).catch((err: Error) => {
        request.log.warn({ reason: err.message }, 'refresh token revocation at the IdP failed')
      })
    }
    const target = oidc?.endSessionUrl(tokens.idToken, `${config.publicUrl}/`) ?? '/'
    return reply.header('cache-control', 'no-store').redirect(target, 302)
  }

  app.get(`${prefix}/logout`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    const q = request.query as Record<string, unknown>
    if (s === null) {
      // A logout whose store step failed half-way (no event published yet) is retried with the same
      // link: the cookie's session is refused now, but revoking it again is harmless and finishes it.
      const stale = gate.cookieSession(request)
      if (stale !== null && typeof q.sid === 'string' && safeEqual(q.sid, stale.sid)) return await logout(request, reply, stale)
      jar.clearAll(request, reply)
      return reply.header('cache-control', 'no-store').redirect('/', 302)
    }
    // A bare cross-site GET (an <img>, say) does not know the sid and logs nobody out.
    if (typeof q.sid === 'string' && safeEqual(q.sid, s.sid)) return await logout(request, reply, s)
    return ctx.pages.headers(reply).send(ctx.pages.page('Sign out', `<h1>Sign out?</h1><p>You are signed in as <strong>${escapeHtml(s.profile.preferred_username ?? s.sub)}</strong>.</p>` +
      `<form method="get" action="${escapeHtml(prefix)}/logout"><input type="hidden" name="sid" value="${escapeHtml(s.sid)}">` +
      `<button type="submit">Sign out</button></form>`))
  })

  app.post(`${prefix}/logout`, async (request, reply) => {
    if (request.headers['x-csrf'] !== '1') return await reply.code(403).send({ error: 'csrf', error_description: 'X-CSRF: 1 header required' })
    const s = await gate.resolve(request, reply) ?? gate.cookieSession(request) // see GET: a retry finishes
    if (s === null) {
      jar.clearAll(request, reply)
      return await reply.code(401).send({ error: 'unauthenticated' })
    }
    return await logout(request, reply, s)
  })

  /** The caller's own sessions (one per signed-in device), newest first. */
  app.get(`${prefix}/sessions`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    reply.header('cache-control', 'no-store')
    if (s === null) return await reply.code(401).send({ error: 'unauthenticated' })
    const records = await store.listSessions(s.sub)
    return records.map((r) => ({ ...publicSession(r), current: r.sid === s.sid }))
  })

  app.delete<{ Params: { id: string } }>(`${prefix}/sessions/:id`, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    if (request.headers['x-csrf'] !== '1') return await reply.code(403).send({ error: 'csrf', error_description: 'X-CSRF: 1 header required' })
    const s = await gate.resolve(request, reply)
    if (s === null) return await reply.code(401).send({ error: 'unauthenticated' })
    // Only the caller's own sessions: another user's id is "not found", never revoked.
    const owner = await store.findOwner(request.params.id)
    if (owner !== s.sub) return await reply.code(404).send({ error: 'not_found' })
    await revoker.session(s.sub, request.params.id, 'self', request.log)
    if (request.params.id === s.sid) jar.clearAll(request, reply)
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
    const remove = watchConnection(ctx, { sid: s.sid, sub: s.sub, ver: s.ver, epoch: s.epoch, kind: 'event_stream' }, (reason) => {
      clearInterval(heartbeat)
      res.end(reason === 'revoked' ? 'event: logout\ndata: {"reason":"revoked"}\n\n' : 'event: shutdown\ndata: {}\n\n')
    }, request.log)
    request.raw.once('close', () => { clearInterval(heartbeat); remove() })
  })

  /** Anything else under the auth prefix is ours, and does not exist: never proxied. */
  app.all(`${prefix}/*`, async (_request, reply) => await reply.code(404).send({ error: 'not_found' }))
}
