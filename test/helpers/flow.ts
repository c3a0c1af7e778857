/**
 * Small building blocks shared by the integration tests: a browser that records what it sent to the
 * callback, Set-Cookie parsing, admin calls, and a raw HTTP request that keeps header names as written.
 */
import { request as httpRequest } from 'node:http'
import { Browser, type Response } from './browser.js'
import type { Stack } from './stack.js'

export interface CallbackCapture {
  /** The full callback URL the IdP redirected to (carries code and state). */
  url: string
  /** The Cookie header the browser sent with it (carries the login transaction cookie). */
  cookie: string
}

/** A Browser that remembers every callback it visited and every Set-Cookie line it received. */
export class RecordingBrowser extends Browser {
  readonly callbacks: CallbackCapture[] = []
  readonly setCookieLog: string[] = []
  readonly locations: string[] = []

  override async fetch (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Response> {
    if (new URL(url).pathname.endsWith('/auth/callback')) this.callbacks.push({ url, cookie: this.cookieHeader(url) })
    const res = await super.fetch(url, init)
    this.setCookieLog.push(...res.setCookies)
    const loc = res.headers.get('location')
    if (loc !== null) this.locations.push(loc)
    return res
  }
}

/** The Set-Cookie line for `name` in these lines, if any. */
export function setCookieLine (lines: string[], name: string): string | undefined {
  return lines.find((l) => l.split('=', 1)[0]!.trim() === name)
}

/** The value a Set-Cookie line for `name` sets ('' when it clears), or undefined when there is none. */
export function setCookieValue (lines: string[], name: string): string | undefined {
  const line = setCookieLine(lines, name)
  if (line === undefined) return undefined
  const pair = line.split(';', 1)[0]!
  return pair.slice(pair.indexOf('=') + 1).trim()
}

/** True when the lines clear `name` (empty value and Max-Age=0 or a past Expires). */
export function clears (lines: string[], name: string): boolean {
  const line = setCookieLine(lines, name)
  if (line === undefined || setCookieValue(lines, name) !== '') return false
  return /max-age=0/i.test(line) || /expires=thu, 01 jan 1970/i.test(line)
}

export interface SessionInfo { sub: string, sid: string, claims: Record<string, unknown>, expiresAt: string, rememberMe: boolean }

/** GET /auth/session as this browser; throws unless 200. */
export async function sessionOf (b: Browser, url: string): Promise<SessionInfo> {
  const res = await b.fetch(`${url}/auth/session`)
  if (res.status !== 200) throw new Error(`/auth/session answered ${res.status}`)
  return res.json<SessionInfo>()
}

/** One call to the admin port; `token` null sends no Authorization header. */
export async function adminCall (s: Stack, method: string, path: string, token: string | null = s.adminToken): Promise<{ status: number, body: string, json: <T>() => T }> {
  const res = await fetch(`${s.adminUrl}${path}`, {
    method,
    headers: token === null ? {} : { authorization: `Bearer ${token}` }
  })
  const body = await res.text()
  return { status: res.status, body, json: <T>() => JSON.parse(body) as T }
}

/**
 * A GET with header names sent exactly as given (case and repeats kept), as `[name, value]` pairs.
 * fetch() normalises names; node:http with a raw header array does not.
 */
export async function rawGet (url: string, headers: Array<[string, string]>): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    // with a raw array node:http adds no Host header of its own
    const raw = [['Host', new URL(url).host], ...headers].flat()
    const req = httpRequest(url, { method: 'GET', headers: raw as unknown as Record<string, string> }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
    })
    req.once('error', reject)
    req.end()
  })
}

/** An HTML page answer must not show a stack trace or an error class name. */
export function looksLikeStackTrace (body: string): boolean {
  return /^\s*at /m.test(body) || /\bError:/.test(body) || /node:internal|\.ts:\d+|\.js:\d+/.test(body)
}
