/**
 * A browser for tests with several host names on one machine: every name resolves to 127.0.0.1, and
 * cookies follow RFC 6265's Domain rules (host-only, or shared by a domain and its subdomains), which
 * is what `session.cookieDomain` relies on.
 */
import { request } from 'node:http'
import type { LookupFunction } from 'node:net'

/** Every host name resolves to 127.0.0.1 (Node asks for one address or, with `all`, a list). */
const loopback = ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void): void => {
  if (opts.all === true) cb(null, [{ address: '127.0.0.1', family: 4 }])
  else cb(null, '127.0.0.1', 4)
}) as unknown as LookupFunction

interface Cookie { name: string, value: string, domain: string, hostOnly: boolean }

export interface HostResponse { status: number, url: string, headers: Record<string, string | string[] | undefined>, body: string, setCookies: string[] }

export class HostBrowser {
  readonly cookies: Cookie[] = []

  cookieHeader (url: string): string {
    const host = new URL(url).hostname
    return this.cookies.filter((c) => c.hostOnly ? c.domain === host : host === c.domain || host.endsWith(`.${c.domain}`))
      .map((c) => `${c.name}=${c.value}`).join('; ')
  }

  get (name: string): string | undefined { return this.cookies.find((c) => c.name === name)?.value }

  private store (url: string, lines: string[]): void {
    const host = new URL(url).hostname
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const attr = (k: string): string | undefined => attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith(`${k}=`))?.slice(k.length + 1)
      const domainAttr = attr('domain')?.replace(/^\./, '').toLowerCase()
      const domain = domainAttr ?? host
      const i = this.cookies.findIndex((c) => c.name === name && c.domain === domain)
      if (i !== -1) this.cookies.splice(i, 1)
      const maxAge = attr('max-age')
      if (value === '' || (maxAge !== undefined && Number(maxAge) <= 0)) continue
      this.cookies.push({ name, value, domain, hostOnly: domainAttr === undefined })
    }
  }

  async fetch (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<HostResponse> {
    const u = new URL(url)
    const headers: Record<string, string> = { ...init.headers }
    const cookie = this.cookieHeader(url)
    if (cookie !== '' && headers.cookie === undefined) headers.cookie = cookie
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body))
    return await new Promise((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: init.method ?? 'GET', headers, lookup: loopback }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('end', () => {
          const setCookies = [res.headers['set-cookie'] ?? []].flat()
          this.store(url, setCookies)
          resolve({ status: res.statusCode ?? 0, url, headers: res.headers, body, setCookies })
        })
      })
      req.on('error', reject)
      req.end(init.body)
    })
  }

  /** Follows redirects like a browser (GET after each). */
  async go (url: string, init: { headers?: Record<string, string> } = {}): Promise<HostResponse> {
    let current = url
    for (let i = 0; i < 20; i++) {
      const res = await this.fetch(current, init)
      const loc = res.headers.location
      if (res.status < 300 || res.status >= 400 || typeof loc !== 'string') return res
      current = new URL(loc, current).href
    }
    throw new Error(`too many redirects from ${url}`)
  }

  /** Signs in at the demo IdP when a page lands on its login form (any user, any password). */
  async signIn (startUrl: string, user: string): Promise<HostResponse> {
    let res = await this.go(startUrl)
    for (let step = 0; step < 4; step++) {
      const action = /<form[^>]*action="([^"]+)"/.exec(res.body)?.[1]
      const prompt = /name="prompt" value="([^"]+)"/.exec(res.body)?.[1]
      if (action === undefined || prompt === undefined) break
      const body = new URLSearchParams(prompt === 'login' ? { prompt, login: user, password: 'x' } : { prompt }).toString()
      const target = new URL(action.replace(/&amp;/g, '&'), res.url).href
      res = await this.post(target, body)
      while (res.status >= 300 && res.status < 400 && typeof res.headers.location === 'string') res = await this.fetch(new URL(res.headers.location, res.url).href)
    }
    return res
  }

  async post (url: string, body: string): Promise<HostResponse> {
    return await this.fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })
  }
}
