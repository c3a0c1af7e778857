/**
 * A cookie-jar HTTP client that follows redirects across hosts like a browser would, for flows through
 * the gateway and the real IdP without a real browser. Cookies are kept per host:port.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'

export interface Response {
  status: number
  url: string
  headers: Headers
  body: string
  /** Set-Cookie lines of this response. */
  setCookies: string[]
  json <T = unknown>(): T
}

export class Browser {
  /** host -> name -> value */
  readonly jar = new Map<string, Map<string, string>>()
  /** Every URL visited, in order (redirects included). */
  readonly visited: string[] = []

  constructor (readonly userAgent = 'sessiongate-test-browser') {}

  cookies (url: string): Map<string, string> {
    const host = new URL(url).host
    let m = this.jar.get(host)
    if (m === undefined) this.jar.set(host, (m = new Map()))
    return m
  }

  cookieHeader (url: string): string {
    return [...this.cookies(url)].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  /** Takes Set-Cookie lines received outside fetch (a WebSocket 101, an event stream's head). */
  absorb (url: string, lines: string[]): void { this.store(url, lines) }

  private store (url: string, lines: string[]): void {
    const jar = this.cookies(url)
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const maxAge = attrs.map((a) => a.trim().toLowerCase()).find((a) => a.startsWith('max-age='))
      const expires = attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('expires='))
      const expired = (maxAge !== undefined && Number(maxAge.slice(8)) <= 0) ||
        (expires !== undefined && Date.parse(expires.slice(8)) < Date.now())
      if (expired || value === '') jar.delete(name)
      else jar.set(name, value)
    }
  }

  /** One request, no redirect following. */
  async fetch (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...init.headers }
    const cookie = this.cookieHeader(url)
    if (cookie !== '' && headers.cookie === undefined) headers.cookie = cookie
    const res = await fetch(url, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: init.body } : {}), redirect: 'manual' })
    const setCookies = res.headers.getSetCookie()
    this.store(url, setCookies)
    this.visited.push(url)
    const body = await res.text()
    return { status: res.status, url, headers: res.headers, body, setCookies, json: <T>() => JSON.parse(body) as T }
  }

  /** Follows redirects (max 20) like a browser: 303 and 302 after POST become GET. */
  async go (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Response> {
    let current = url
    let req = init
    for (let i = 0; i < 20; i++) {
      const res = await this.fetch(current, req)
      const loc = res.headers.get('location')
      if (res.status < 300 || res.status >= 400 || loc === null) return res
      current = new URL(loc, current).href
      req = { headers: init.headers ?? {} }
    }
    throw new Error(`too many redirects from ${url}`)
  }
}

/**
 * A Browser whose requests look like a real browser's top-level navigations (`Sec-Fetch-Mode: navigate`,
 * `Sec-Fetch-Dest: document`, `Accept: text/html`), sent with node:http because fetch (undici) always says
 * `Sec-Fetch-Mode: cors`. mod_auth_openidc answers such requests 401 instead of redirecting to the IdP.
 */
export class NavigatingBrowser extends Browser {
  override async fetch (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = {
      'user-agent': this.userAgent,
      accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-dest': 'document',
      ...init.headers
    }
    const cookie = this.cookieHeader(url)
    if (cookie !== '' && headers.cookie === undefined) headers.cookie = cookie
    const u = new URL(url)
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: init.method ?? 'GET', headers, agent: false }, resolve)
      req.once('error', reject)
      req.end(init.body)
    })
    const chunks: Buffer[] = []
    for await (const c of res) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString()
    const out = new Headers()
    for (const [k, v] of Object.entries(res.headers)) {
      for (const one of Array.isArray(v) ? v : v !== undefined ? [v] : []) out.append(k, one)
    }
    const setCookies = res.headers['set-cookie'] ?? []
    this.absorb(url, setCookies)
    this.visited.push(url)
    return { status: res.statusCode ?? 0, url, headers: out, body, setCookies, json: <T>() => JSON.parse(body) as T }
  }
}

/** The IdP's interaction form on a page (login or consent), if any. */
export function interactionForm (res: Response): { action: string, prompt: string } | null {
  const action = /<form[^>]*action="([^"]+)"/.exec(res.body)?.[1]
  const prompt = /name="prompt" value="([^"]+)"/.exec(res.body)?.[1]
  if (action === undefined || prompt === undefined || !new URL(res.url).pathname.startsWith('/interaction/')) return null
  return { action: new URL(action.replace(/&amp;/g, '&'), res.url).href, prompt }
}

/**
 * Signs in through the gateway and the demo IdP (any user, any password): follows the login redirect to
 * the IdP, submits its login (and consent) forms, and follows everything back. With `stopAtCallback`,
 * returns the gateway's callback response itself (to read its Set-Cookie lines).
 */
export async function login (browser: Browser, gatewayUrl: string, user: string, opts: { returnTo?: string, remember?: boolean, stopAtCallback?: boolean } = {}): Promise<Response> {
  const q = new URLSearchParams()
  if (opts.returnTo !== undefined) q.set('returnTo', opts.returnTo)
  if (opts.remember === true) q.set('remember', '1')
  const atCallback = (res: Response): boolean => opts.stopAtCallback === true && res.url.startsWith(`${gatewayUrl}/auth/callback`)
  let stopped: Response | undefined
  const res = await walkForms(browser, await browser.go(`${gatewayUrl}/auth/login?${q.toString()}`), user, async (res) => {
    // follow redirects by hand so the callback response can be returned as is
    while (res.status >= 300 && res.status < 400 && !atCallback(res)) res = await browser.fetch(new URL(res.headers.get('location')!, res.url).href)
    if (atCallback(res)) stopped = res
    return res
  }, () => stopped !== undefined)
  return stopped ?? res
}

/** Submits the IdP's login (and consent) forms from `res` on, `after` following each answer, until none is left. */
async function walkForms (browser: Browser, res: Response, user: string, after: (res: Response) => Promise<Response>, done: () => boolean = () => false): Promise<Response> {
  for (let step = 0; step < 4 && !done(); step++) {
    const form = interactionForm(res)
    if (form === null) break
    const fields: Record<string, string> = form.prompt === 'login' ? { prompt: 'login', login: user, password: 'any-password' } : { prompt: form.prompt }
    res = await after(await browser.fetch(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString()
    }))
  }
  if (!done() && interactionForm(res) !== null) throw new Error(`stuck at the IdP: ${res.url}`)
  return res
}

/**
 * Signs in through any relying party in front of the demo IdP (bench/lib/apache.ts: mod_auth_openidc):
 * requests `startUrl`, follows the redirect to the IdP, submits its login (and consent, if asked) forms and
 * follows everything back to the protected resource. Returns the last response.
 */
export async function signInFrom (browser: Browser, startUrl: string, user: string): Promise<Response> {
  return await walkForms(browser, await browser.go(startUrl), user, async (res) => {
    // the redirects after the POST are plain GETs (no form content type carried along)
    const loc = res.headers.get('location')
    return res.status >= 300 && res.status < 400 && loc !== null ? await browser.go(new URL(loc, res.url).href) : res
  })
}
