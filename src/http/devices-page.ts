/**
 * GET /auth/devices: a server-rendered page where a person sees their signed-in devices and signs one
 * out. Works without JavaScript: each button is a small form that POSTs back here with a CSRF token
 * bound to the current session (a form cannot send the X-CSRF header the JSON API asks for).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import formbody from '@fastify/formbody'
import { safeEqual } from '../core/device.js'
import type { SessionClaims } from '../core/session.js'
import type { SessionRecord } from '../store/store.js'
import type { SessionService } from '../session/service.js'
import { CLEAR_ALL } from '../session/types.js'
import type { Gate } from './gate.js'
import { escapeHtml, type Pages } from './pages.js'

export interface DevicesPageOptions {
  authPrefix: string
  sessions: Pick<SessionService, 'sessionsOf' | 'revokeOwn' | 'revoke'>
  gate: Gate
  pages: Pages
  /** The form token bound to one session (Seals.devicesFormToken). */
  formToken: (sid: string) => string
  /** Epoch seconds. */
  now: () => number
}

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

export async function devicesPage (app: FastifyInstance, { authPrefix: prefix, sessions, gate, pages, formToken: csrfToken, now: clock }: DevicesPageOptions): Promise<void> {
  await app.register(formbody, { bodyLimit: 4096 })

  function render (reply: FastifyReply, s: SessionClaims, records: SessionRecord[], notice?: string): FastifyReply {
    const now = clock() * 1000
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
    return pages.headers(reply, { forms: true }).send(pages.page('Your devices', body))
  }

  app.get(`${prefix}/devices`, async (request, reply) => {
    const s = await gate.resolve(request, reply)
    if (s === null) return await gate.deny(request, reply)
    return render(reply, s, await sessions.sessionsOf(s.sub))
  })

  /** Signing this very device out: revoke, clear the cookies, leave for the home page. */
  async function signOutHere (request: FastifyRequest, reply: FastifyReply, sub: string, sid: string): Promise<FastifyReply> {
    await sessions.revoke.session(sub, sid, 'self', request.log)
    gate.apply(request, reply, CLEAR_ALL)
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
    // Only the caller's own devices: another user's id changes nothing; one whose sign-out stopped half-way is finished.
    if (await sessions.revokeOwn(s, id, request.log, { finishHalfDone: true }) === 'not_found') {
      return render(reply.code(404), s, await sessions.sessionsOf(s.sub), 'That device is not signed in any more.')
    }
    return render(reply, s, await sessions.sessionsOf(s.sub), 'The device was signed out.')
  })
}
