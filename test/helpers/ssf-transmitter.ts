/**
 * A Shared Signals transmitter for the tests, on a free port: it signs SETs with its own RS256 key (and
 * lets a test break any rule), serves its JWKS and its SSF configuration document, accepts stream
 * management calls (create, read, update, status, verification: a verification SET is then delivered by
 * the stream's method), and serves an RFC 8936 poll endpoint that keeps every SET until it is acknowledged.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { EVENT } from '../../src/ssf/events.js'

export { EVENT }
export const PUSH = 'urn:ietf:rfc:8935'
export const POLL = 'urn:ietf:rfc:8936'

export interface SetParts {
  /** Event type URI (one event); default CAEP session-revoked. */
  type?: string
  /** The event's own claims. */
  event?: Record<string, unknown>
  /** Top-level sub_id (SSF 1.0); omit with `omit: ['sub_id']`. */
  subject?: Record<string, unknown>
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  /** Claim names to delete after defaults are applied. */
  omit?: string[]
  /** Sign with this key instead of the published one. */
  key?: CryptoKey
}

export interface Stream { stream_id: string, delivery: Record<string, unknown>, events_requested: string[], status: string }

export interface Transmitter {
  issuer: string
  jwksUri: string
  configurationUrl: string
  kid: string
  managementToken: string
  pollToken: string
  /** The audience SETs carry by default (settable). */
  audience: string
  sign (parts?: SetParts): Promise<string>
  /** Stream management calls received: method, path, body. */
  calls: Array<{ method: string, path: string, body: unknown }>
  streams: Map<string, Stream>
  /** Verification requests received (state per stream). */
  verifications: Array<{ stream_id: string, state?: string }>
  /** Pushes of verification SETs it made: status of the receiver's answer. */
  pushed: number[]
  /** Poll endpoint: SETs waiting for an ack, by jti. */
  queue: Map<string, string>
  acked: string[]
  setErrs: Record<string, { err: string, description: string }>
  /** Every poll request: what it acknowledged, and the jtis answered. */
  polls: Array<{ ack: string[], setErrs: string[], returned: string[] }>
  /** Most poll requests that may return SETs (maxEvents > 0) open at once. */
  maxConcurrentPolls: number
  enqueue (set: string, jti?: string): string
  close (): Promise<void>
}

/** jti of a compact JWS (no verification). */
export function jtiOf (set: string): string {
  return String((JSON.parse(Buffer.from(set.split('.')[1] ?? '', 'base64url').toString()) as { jti?: unknown }).jti)
}

/** Starts it; `audience` can be set later (a gateway's publicUrl is known once it runs). */
export async function startTransmitter (opts: { audience?: string, holdMs?: number } = {}): Promise<Transmitter> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const kid = `t-${randomBytes(4).toString('hex')}`
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }
  const holdMs = opts.holdMs ?? 300
  const waiters = new Set<() => void>()
  let inFlight = 0
  const tx: Partial<Transmitter> = {
    kid,
    managementToken: randomBytes(16).toString('base64url'),
    pollToken: randomBytes(16).toString('base64url'),
    audience: opts.audience ?? '',
    calls: [],
    streams: new Map(),
    verifications: [],
    pushed: [],
    queue: new Map(),
    acked: [],
    setErrs: {},
    polls: [],
    maxConcurrentPolls: 0
  }
  const t = tx as Transmitter

  t.sign = async (parts = {}) => {
    const now = Math.floor(Date.now() / 1000)
    const claims: Record<string, unknown> = {
      iss: t.issuer,
      aud: t.audience,
      iat: now,
      jti: randomBytes(12).toString('base64url'),
      sub_id: parts.subject ?? { format: 'opaque', id: 'nobody' },
      events: { [parts.type ?? EVENT.sessionRevoked]: parts.event ?? {} },
      ...parts.claims
    }
    for (const k of parts.omit ?? []) delete claims[k]
    return await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'secevent+jwt', ...parts.header }).sign(parts.key ?? privateKey)
  }

  t.enqueue = (set, jti = jtiOf(set)) => {
    t.queue.set(jti, set)
    for (const wake of [...waiters]) wake()
    return jti
  }

  const json = (res: ServerResponse, status: number, body?: unknown): void => {
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' })
    res.end(body === undefined ? undefined : JSON.stringify(body))
  }
  const authorized = (req: IncomingMessage, token: string): boolean => req.headers.authorization === `Bearer ${token}`

  async function verify (stream: Stream, state: string | undefined): Promise<void> {
    const set = await t.sign({ type: EVENT.verification, subject: { format: 'opaque', id: stream.stream_id }, event: state === undefined ? {} : { state } })
    if (stream.delivery.method === POLL) { t.enqueue(set); return }
    const res = await fetch(String(stream.delivery.endpoint_url), {
      method: 'POST',
      headers: { 'content-type': 'application/secevent+jwt', authorization: String(stream.delivery.authorization_header) },
      body: set
    })
    t.pushed.push(res.status)
  }

  async function poll (req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>): Promise<void> {
    if (!authorized(req, t.pollToken)) { json(res, 401, { err: 'authentication_failed' }); return }
    const ack = Array.isArray(body.ack) ? body.ack.map(String) : []
    const errs = typeof body.setErrs === 'object' && body.setErrs !== null ? body.setErrs as Record<string, { err: string, description: string }> : {}
    for (const jti of ack) { t.queue.delete(jti); t.acked.push(jti) }
    for (const [jti, e] of Object.entries(errs)) { t.queue.delete(jti); t.setErrs[jti] = e }
    const max = typeof body.maxEvents === 'number' ? body.maxEvents : 100
    // Held open while nothing is queued: a poller whose request is still held (not given up) is polling.
    // An acknowledge-only request (maxEvents 0) delivers nothing: it is not counted.
    let gone = false
    const counted = max > 0
    if (counted) inFlight++
    t.maxConcurrentPolls = Math.max(t.maxConcurrentPolls, inFlight)
    try {
      if (t.queue.size === 0 && max > 0 && body.returnImmediately !== true) {
        await new Promise<void>((resolve) => {
          const wake = (): void => { clearTimeout(timer); waiters.delete(wake); resolve() }
          const timer = setTimeout(wake, holdMs)
          waiters.add(wake)
          res.once('close', () => { gone = !res.writableFinished; wake() })
        })
      }
    } finally {
      if (counted) inFlight--
    }
    if (gone) return // the poller gave the request up: nothing was delivered
    const returned = [...t.queue.keys()].slice(0, max)
    t.polls.push({ ack, setErrs: Object.keys(errs), returned })
    json(res, 200, { sets: Object.fromEntries(returned.map((j) => [j, t.queue.get(j)])), moreAvailable: t.queue.size > returned.length })
  }

  function manage (req: IncomingMessage, res: ServerResponse, url: URL, body: Record<string, unknown>): void {
    t.calls.push({ method: req.method ?? '', path: url.pathname, body })
    if (!authorized(req, t.managementToken)) { json(res, 401, { err: 'authentication_failed' }); return }
    const view = (s: Stream): Record<string, unknown> => ({
      stream_id: s.stream_id, iss: t.issuer, aud: t.audience, delivery: s.delivery,
      events_requested: s.events_requested, events_delivered: s.events_requested, events_supported: s.events_requested
    })
    const id = url.searchParams.get('stream_id') ?? (typeof body.stream_id === 'string' ? body.stream_id : undefined)
    if (url.pathname === '/ssf/status') {
      const s = id === undefined ? undefined : t.streams.get(id)
      if (s === undefined) { json(res, 404); return }
      json(res, 200, { stream_id: s.stream_id, status: s.status })
      return
    }
    if (url.pathname === '/ssf/verify') {
      if (id === undefined || !t.streams.has(id)) { json(res, 404); return }
      const state = typeof body.state === 'string' ? body.state : undefined
      t.verifications.push({ stream_id: id, ...(state !== undefined ? { state } : {}) })
      json(res, 204)
      setTimeout(() => { verify(t.streams.get(id)!, state).catch(() => { t.pushed.push(0) }) }, 10)
      return
    }
    // /ssf/stream
    if (req.method === 'GET') { json(res, 200, id === undefined ? [...t.streams.values()].map(view) : t.streams.has(id) ? view(t.streams.get(id)!) : undefined); return }
    const delivery = { ...(body.delivery as Record<string, unknown>) }
    if (delivery.method === POLL) delivery.endpoint_url = `${t.issuer}/ssf/poll`
    const events = Array.isArray(body.events_requested) ? body.events_requested.map(String) : []
    if (req.method === 'POST') {
      const s: Stream = { stream_id: randomBytes(8).toString('hex'), delivery, events_requested: events, status: 'enabled' }
      t.streams.set(s.stream_id, s)
      json(res, 201, view(s))
      return
    }
    if (req.method === 'PATCH' && id !== undefined && t.streams.has(id)) {
      const s = t.streams.get(id)!
      s.delivery = delivery
      s.events_requested = events
      json(res, 200, view(s))
      return
    }
    json(res, 404)
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', t.issuer)
      const text = Buffer.concat(chunks).toString()
      let body: Record<string, unknown> = {}
      try { body = text === '' ? {} : JSON.parse(text) as Record<string, unknown> } catch { json(res, 400); return }
      if (url.pathname === '/jwks') { json(res, 200, { keys: [jwk] }); return }
      if (url.pathname === '/.well-known/ssf-configuration') {
        json(res, 200, {
          spec_version: '1_0',
          issuer: t.issuer,
          jwks_uri: t.jwksUri,
          delivery_methods_supported: [PUSH, POLL],
          configuration_endpoint: `${t.issuer}/ssf/stream`,
          status_endpoint: `${t.issuer}/ssf/status`,
          verification_endpoint: `${t.issuer}/ssf/verify`,
          authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }]
        })
        return
      }
      if (url.pathname === '/ssf/poll' && req.method === 'POST') { poll(req, res, body).catch(() => json(res, 500)); return }
      if (url.pathname.startsWith('/ssf/')) { manage(req, res, url, body); return }
      json(res, 404)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  t.issuer = `http://127.0.0.1:${port}`
  t.jwksUri = `${t.issuer}/jwks`
  t.configurationUrl = `${t.issuer}/.well-known/ssf-configuration`
  t.close = async () => {
    for (const wake of [...waiters]) wake()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return t
}

/** POSTs a SET to a push endpoint; `token` undefined sends no Authorization header. */
export async function push (url: string, token: string | undefined, body: string, contentType = 'application/secevent+jwt'): Promise<{ status: number, body: Record<string, string>, headers: Headers }> {
  const headers: Record<string, string> = { 'content-type': contentType }
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${url}/auth/ssf/push`, { method: 'POST', headers, body })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : JSON.parse(text) as Record<string, string>, headers: res.headers }
}
