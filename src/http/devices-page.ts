/**
 * GET /auth/devices: a server-rendered page where a person sees their signed-in devices and signs one
 * out. Works without JavaScript: each button is a small form that POSTs back here with a CSRF token
 * bound to the current session (a form cannot send the X-CSRF header the JSON API asks for).
 */
import { createHmac } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import formbody from '@fastify/formbody'
import { safeEqual } from '../core/device.js'
import type { SessionClaims } from '../core/session.js'
import type { SessionRecord } from '../store/store.js'
import type { GatewayContext } from './context.js'
import type { Gate } from './gate.js'
import type { Revoker } from './revocation.js'
import { escapeHtml } from './pages.js'

export interface DevicesPageOptions { ctx: GatewayContext, gate: Gate, revoker: Revoker }

/** A readable name for a user agent string: browser and platform, nothing clever. */
export function describeAgent (ua: string): string {
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : /curl\//.test(ua) ? 'curl' : ''
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : ''
  const label = [browser, os].filter((x) => x !== '').join(' on ')
  return label !== '' ? label : (ua === '' ? 'Unknown device' : ua.slice(0, 60))
}

function ago (ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 60) return 'just now'
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} days ago`
}

export async function devicesPage (app: FastifyInstance, { ctx, gate, revoker }: DevicesPageOptions): Promise<void> {
  const prefix = ctx.config.authPrefix
  await app.register(formbody, { bodyLimit: 4096 })
  const csrfKey = ctx.config.session.keys[0]!

  /** The form token: bound to this session, useless for any other. */
  const csrfToken = (sid: string): string => createHmac('sha256', csrfKey).update(`devices-csrf:${sid}`).digest('base64url')

  function render (reply: FastifyReply, s: SessionClaims, records: SessionRecord[], notice?: string): FastifyReply {
    const now = ctx.now() * 1000
    const rows = records.map((r) => {
      const current = r.sid === s.sid
      const button = `<form method="post" action="${escapeHtml(prefix)}/devices"><input type="hidden" name="id" value="${escapeHtml(r.sid)}">` +
        `<input type="hidden" name="csrf" value="${escapeHtml(csrfToken(s.sid))}"><button type="submit"${current ? ' class="secondary"' : ''}>Sign out</button></form>`
      return `<tr data-device="${escapeHtml(r.sid)}"><td><strong>${escapeHtml(describeAgent(r.userAgent))}</strong>${current ? ' <span class="tag">this device</span>' : ''}` +
        `<div class="muted">${r.rememberMe ? 'remembered' : 'until the browser closes'} · signed in ${escapeHtml(new Date(r.createdAt).toISOString().slice(0, 16).replace('T', ' '))} UTC</div></td>` +
        `<td>${escapeHtml(r.ip)}</td><td>${escapeHtml(ago(r.lastSeenAt, now))}</td><td>${button}</td></tr>`
    }).join('')
    const body = `<h1>Your signed-in devices</h1>` +
      (notice !== undefined ? `<p class="tag" role="status">${escapeHtml(notice)}</p>` : '') +
      `<p class="muted">Signed in as <strong>${escapeHtml(s.profile.preferred_username ?? s.sub)}</strong>. Signing a device out ends its session and its "remember me" at once.</p>` +
      `<table><thead><tr><th>Device</th><th>IP</th><th>Last seen</th><th></th></tr></thead><tbody>${rows}</tbody></table>` +
      `<p><a href="/">Back to the app</a></p>`
    return ctx.pages.headers(reply, { forms: true }).send(ctx.pages.page('Your devices', body))
  }

  app.get(`${prefix}/devices`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    if (s === null) return await gate.deny(request, reply)
    return render(reply, s, await ctx.store.listSessions(s.sub))
  })

  /** Signing this very device out: revoke, clear the cookies, leave for the home page. */
  async function signOutHere (request: FastifyRequest, reply: FastifyReply, sub: string, sid: string): Promise<FastifyReply> {
    await revoker.session(sub, sid, 'self', request.log)
    ctx.jar.clearAll(request, reply)
    return await reply.header('cache-control', 'no-store').redirect('/', 303)
  }

  app.post(`${prefix}/devices`, async (request, reply) => {
    const form = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, unknown>
    const formOk = (sid: string): boolean => typeof form.csrf === 'string' && safeEqual(form.csrf, csrfToken(sid))
    const s = await gate.resolve(request, reply)
    if (s === null) {
      // "Sign out this device" sent again after an error: the store may already refuse the session (the
      // first attempt stored the revocation, then failed before its event went out). Finish it: the
      // cookie still proves which session it was, and the form token that it is this page's own form.
      const own = gate.cookieSession(request)
      if (own !== null && form.id === own.sid && formOk(own.sid)) return await signOutHere(request, reply, own.sub, own.sid)
      return await gate.deny(request, reply)
    }
    if (!formOk(s.sid)) {
      return await reply.code(403).type('text/plain').send('invalid form token: reload the page and try again')
    }
    const id = typeof form.id === 'string' ? form.id : ''
    if (id === s.sid) return await signOutHere(request, reply, s.sub, s.sid)
    // Only the caller's own devices: another user's id changes nothing. An id nobody owns any more may be
    // one of the caller's devices whose sign-out stopped half-way (record and index gone, the event maybe
    // never sent): its denylist entry, under the caller's own keys, says so; then finish it.
    const owner = id === '' ? undefined : await ctx.store.findOwner(id)
    const mine = owner === s.sub || (owner === null && (await ctx.store.check(s.sub, id)).denied)
    if (!mine) {
      return render(reply.code(404), s, await ctx.store.listSessions(s.sub), 'That device is not signed in any more.')
    }
    await revoker.session(s.sub, id, 'self', request.log)
    return render(reply, s, await ctx.store.listSessions(s.sub), 'The device was signed out.')
  })
}
