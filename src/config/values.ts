/**
 * Value formats of the config file that JSON Schema cannot state with a useful message: URLs,
 * durations, session keys, host:port lists, PEM files, origins. Each throws a ConfigError naming `key`.
 */
import { readFileSync } from 'node:fs'
import { parseDuration, parseDurationMs } from './duration.js'
import { ConfigError, formatPath, type Path } from './errors.js'
import type { RawTls } from './schema.js'
import type { RedisNode, TlsConfig } from './types.js'

export const HTTP = ['http:', 'https:'] as const
export const HTTP_LABEL = 'http(s)'

export function url (value: string, key: string, protocols: readonly string[], label: string): URL {
  let u: URL
  try {
    u = new URL(value)
  } catch {
    throw new ConfigError(key, `must be an absolute ${label} URL`)
  }
  if (!protocols.includes(u.protocol)) throw new ConfigError(key, `must be an absolute ${label} URL (got scheme ${u.protocol})`)
  return u
}

export function noQueryOrFragment (value: string, key: string): void {
  if (value.includes('?') || value.includes('#')) throw new ConfigError(key, 'must not contain a query or fragment')
}

export function duration (value: string | number, key: string, ms = false): number {
  try {
    return ms ? parseDurationMs(value) : parseDuration(value)
  } catch (err) {
    throw new ConfigError(key, (err as Error).message)
  }
}

export function publicUrl (value: string): string {
  const u = url(value, 'publicUrl', HTTP, HTTP_LABEL)
  noQueryOrFragment(value, 'publicUrl')
  if (u.username !== '' || u.password !== '') throw new ConfigError('publicUrl', 'must not contain credentials')
  return (u.origin + u.pathname).replace(/\/+$/, '')
}

export function authPrefix (value: string): string {
  const key = 'authPrefix'
  if (!value.startsWith('/')) throw new ConfigError(key, 'must start with "/"')
  if (value === '/') throw new ConfigError(key, 'must not be "/" (the gateway\'s endpoints need their own path, e.g. /auth)')
  if (value.endsWith('/')) throw new ConfigError(key, 'must not end with "/"')
  if (/[?#\s]|\/\//.test(value)) throw new ConfigError(key, 'must be a plain path such as /auth')
  return value
}

const B64URL_RE = /^[A-Za-z0-9_-]+={0,2}$/
const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/

export function sessionKey (value: string, key: string): Buffer {
  // Buffer's strict-enough check: it silently skips bad characters, so test the alphabet first.
  if (!B64URL_RE.test(value) && !B64_RE.test(value)) {
    throw new ConfigError(key, 'must be base64url (generate one with `sessiongate keygen`)')
  }
  const buf = Buffer.from(value, 'base64') // also accepts the url-safe alphabet
  if (buf.length !== 32) throw new ConfigError(key, `must decode to 32 bytes (got ${buf.length})`)
  return buf
}

const NODE_RE = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/

export function redisNodes (nodes: string[], base: Path): RedisNode[] {
  return nodes.map((n, i) => {
    const m = NODE_RE.exec(n)
    const port = Number(m?.[3])
    if (m === null || port < 1 || port > 65535) {
      throw new ConfigError(formatPath([...base, i]), `must be "host:port" (got ${JSON.stringify(n)})`)
    }
    return { host: (m[1] ?? m[2]) as string, port }
  })
}

export function readPem (file: string, key: string): Buffer {
  // Checked again at run time: a file that failed its schema is still normalised (to report the rest),
  // and readFileSync(0) would read stdin.
  if (typeof file !== 'string') throw new TypeError(`${key}: not a path`)
  let buf: Buffer
  try { buf = readFileSync(file) } catch (err) { throw new ConfigError(key, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err }) }
  if (!buf.toString('latin1').includes('-----BEGIN ')) throw new ConfigError(key, `${file} is not a PEM file`)
  return buf
}

/** TLS material for an upstream or Redis, read once at start-up. */
export function tls (raw: RawTls, base: Path): TlsConfig {
  const key = (k: string): string => formatPath([...base, k])
  if ((raw.certFile === undefined) !== (raw.keyFile === undefined)) throw new ConfigError(key(raw.certFile === undefined ? 'certFile' : 'keyFile'), 'certFile and keyFile go together (a client certificate and its key)')
  const out: TlsConfig = { insecureSkipVerify: raw.insecureSkipVerify }
  if (raw.caFile !== undefined) out.ca = readPem(raw.caFile, key('caFile'))
  if (raw.certFile !== undefined) out.cert = readPem(raw.certFile, key('certFile'))
  if (raw.keyFile !== undefined) out.key = readPem(raw.keyFile, key('keyFile'))
  if (raw.serverName !== undefined) out.serverName = raw.serverName
  return out
}

/** An origin as browsers send it in `Origin`: scheme://host[:port], nothing else. */
export function origin (value: string, key: string): string {
  const u = url(value, key, HTTP, HTTP_LABEL)
  if (u.origin !== value.replace(/\/$/, '')) throw new ConfigError(key, `must be an origin such as https://app.example.com (got ${JSON.stringify(value)})`)
  return u.origin
}

/** The cookie Domain: a parent of publicUrl's host (a browser refuses any other). */
export function cookieDomain (value: string, rawPublicUrl: string): string {
  const d = value.toLowerCase().replace(/^\./, '')
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d)) throw new ConfigError('session.cookieDomain', `must be a domain such as example.com (got ${JSON.stringify(value)})`)
  let host = ''
  try { host = new URL(rawPublicUrl).hostname } catch { /* publicUrl reports its own error */ }
  if (host !== d && !host.endsWith(`.${d}`)) throw new ConfigError('session.cookieDomain', `must be publicUrl's host or a parent of it (${host})`)
  return d
}
