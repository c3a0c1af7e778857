/**
 * The gateway's cookies: names, attributes, and which of them must never reach an upstream.
 * With an https publicUrl every name carries the `__Host-` prefix (Secure, Path=/, no Domain), or
 * `__Secure-` with a Domain when `session.cookieDomain` shares the session across subdomains.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { fastifyCookie, type CookieSerializeOptions } from '@fastify/cookie'
import { cookieFits, joinCookie, splitCookie, staleChunkNames } from '../core/sealed-cookie.js'

export interface CookieNames {
  /** The short session cookie (chunks: `<session>.0`, `.1`, ...). */
  session: string
  /** The device credential. */
  device: string
  /** The login transaction (state, nonce, PKCE verifier, returnTo), for the IdP round trip only. */
  tx: string
}

/** Exactly what String.prototype.trim removes (a latin1 header can carry U+00A0; the rest for equality's sake). */
function isSpace (c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13)
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
}

export class CookieJar {
  readonly names: CookieNames
  private readonly secure: boolean
  /** Set-Cookie lines written per reply, for replies that are hijacked (SSE, WebSocket upgrades). */
  private readonly written = new WeakMap<FastifyReply, Map<string, string>>()

  /** With `domain` (session.cookieDomain) the cookies are shared by its subdomains: `__Secure-`, not `__Host-`. */
  constructor (publicUrl: string, private readonly domain?: string) {
    this.secure = new URL(publicUrl).protocol === 'https:'
    const p = this.secure ? (domain !== undefined ? '__Secure-' : '__Host-') : ''
    this.names = { session: `${p}sg`, device: `${p}sg-device`, tx: `${p}sg-tx` }
  }

  /** Attributes of every gateway cookie; Lax so the top-level redirect back from the IdP carries them. */
  options (maxAge?: number): CookieSerializeOptions {
    const o: CookieSerializeOptions = { path: '/', httpOnly: true, secure: this.secure, sameSite: 'lax' }
    if (this.domain !== undefined) o.domain = this.domain
    if (maxAge !== undefined) o.maxAge = maxAge
    return o
  }

  /** Every gateway cookie is written here: queued on the reply, and remembered for hijacked replies. */
  set (reply: FastifyReply, name: string, value: string, maxAge?: number): void {
    const opts = { ...this.options(maxAge), secure: this.secure }
    reply.setCookie(name, value, opts)
    let lines = this.written.get(reply)
    if (lines === undefined) this.written.set(reply, (lines = new Map()))
    lines.set(name, fastifyCookie.serialize(name, value, opts))
  }

  /**
   * The Set-Cookie lines this reply carries. A hijacked reply (event stream, WebSocket 101) never runs the
   * cookie plugin's onSend hook, so whoever writes its head must add these: a renewal there rotated the
   * device credential, and a browser that never gets the new one is signed out as a reuse later.
   */
  pending (reply: FastifyReply): string[] {
    const lines = this.written.get(reply)
    return lines === undefined ? [] : [...lines.values()]
  }

  /** True for a cookie name the gateway owns (including session chunks); such cookies never go upstream. */
  isOwn (name: string): boolean {
    const n = this.names
    return name === n.session || name === n.device || name === n.tx ||
      (name.startsWith(`${n.session}.`) && /^\d+$/.test(name.slice(n.session.length + 1)))
  }

  /** The sealed session value from the request, joined from chunks when needed. */
  readSession (request: FastifyRequest): string | undefined {
    return joinCookie(request.cookies, this.names.session)
  }

  /** Sets the session cookie (chunked above the per-cookie budget) and clears stale chunks. */
  writeSession (request: FastifyRequest, reply: FastifyReply, sealed: string, maxAge: number): void {
    const parts = splitCookie(this.names.session, sealed)
    for (const part of parts) this.set(reply, part.name, part.value, maxAge)
    for (const stale of staleChunkNames(request.cookies, this.names.session, parts.map((p) => p.name))) {
      this.set(reply, stale, '', 0)
    }
  }

  /** True when this sealed session value fits the cookie budget ({@link writeSession} would not throw). */
  sessionFits (sealed: string): boolean {
    return cookieFits(this.names.session, sealed)
  }

  /** True when this sealed value is one cookie and the request holds no chunks to delete: one Set-Cookie line. */
  fitsOneLine (request: FastifyRequest, sealed: string): boolean {
    return splitCookie(this.names.session, sealed).length === 1 && staleChunkNames(request.cookies, this.names.session, [this.names.session]).length === 0
  }

  /** Clears the session cookie and every chunk the browser sent. */
  clearSession (request: FastifyRequest, reply: FastifyReply): void {
    for (const name of staleChunkNames(request.cookies, this.names.session, [])) this.set(reply, name, '', 0)
    this.set(reply, this.names.session, '', 0)
  }

  /** Clears every gateway cookie (logout, revoked session). */
  clearAll (request: FastifyRequest, reply: FastifyReply): void {
    this.clearSession(request, reply)
    this.set(reply, this.names.device, '', 0)
  }

  /**
   * The `Cookie` header without the gateway's cookies, or undefined when nothing is left. Every proxied
   * request comes through here: one scan, and nothing allocated when only gateway cookies were sent.
   */
  stripOwn (header: string | string[] | undefined): string | undefined {
    if (header === undefined) return undefined
    const h = Array.isArray(header) ? header.join('; ') : header
    let kept: string | undefined
    for (let pos = 0; pos <= h.length;) {
      let end = h.indexOf(';', pos)
      if (end < 0) end = h.length
      // The pair, trimmed as String.prototype.trim would.
      let a = pos
      let b = end
      while (a < b && isSpace(h.charCodeAt(a))) a++
      while (b > a && isSpace(h.charCodeAt(b - 1))) b--
      if (a < b) {
        const eq = h.indexOf('=', a)
        let nameEnd = eq < 0 || eq > b ? b : eq
        while (nameEnd > a && isSpace(h.charCodeAt(nameEnd - 1))) nameEnd--
        if (!this.isOwnAt(h, a, nameEnd)) kept = kept === undefined ? h.slice(a, b) : `${kept}; ${h.slice(a, b)}`
      }
      pos = end + 1
    }
    return kept
  }

  /** isOwn for the name `h[from, to)`, without slicing it out. */
  private isOwnAt (h: string, from: number, to: number): boolean {
    const n = this.names
    const len = to - from
    if ((len === n.session.length && h.startsWith(n.session, from)) ||
      (len === n.device.length && h.startsWith(n.device, from)) ||
      (len === n.tx.length && h.startsWith(n.tx, from))) return true
    // A chunk: `<session>.<digits>`
    const dot = from + n.session.length
    if (len < n.session.length + 2 || !h.startsWith(n.session, from) || h.charCodeAt(dot) !== 46) return false
    for (let i = dot + 1; i < to; i++) {
      const c = h.charCodeAt(i)
      if (c < 48 || c > 57) return false
    }
    return true
  }

  /** Drops upstream `Set-Cookie` lines that would overwrite a gateway cookie. */
  filterSetCookie (value: string | string[] | undefined): string[] | undefined {
    if (value === undefined) return undefined
    const lines = (Array.isArray(value) ? value : [value]).filter((line) => !this.isOwn(line.split('=', 1)[0]!.trim()))
    return lines.length > 0 ? lines : undefined
  }
}
