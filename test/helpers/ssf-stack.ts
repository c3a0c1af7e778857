/**
 * A gateway stack with one Shared Signals transmitter configured, and the small steps the SSF tests
 * share: a signed-in device, a WebSocket through a replica, whether a session still passes.
 */
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import WebSocket from 'ws'
import type { GatewayDeps } from '../../src/app.js'
import { Browser, login } from './browser.js'
import { startStack, type Stack } from './stack.js'
import { startTransmitter, type Transmitter } from './ssf-transmitter.js'

export interface SsfStack { s: Stack, tx: Transmitter, pushToken: string }

/** Starts a transmitter and a stack that trusts it: push with jwksUri, unless `transmitter` says otherwise. */
export async function startSsfStack (t: Test, opts: { redisUrl?: string, transmitter?: (tx: Transmitter, base: Record<string, unknown>) => Record<string, unknown>, deps?: Partial<GatewayDeps>, holdMs?: number } = {}): Promise<SsfStack> {
  const tx = await startTransmitter(opts.holdMs !== undefined ? { holdMs: opts.holdMs } : {})
  t.teardown(() => tx.close())
  const pushToken = randomBytes(24).toString('base64url')
  const base = { issuer: tx.issuer, jwksUri: tx.jwksUri, pushToken }
  const transmitter = opts.transmitter?.(tx, base) ?? base
  const s = await startStack(t, {
    ...(opts.redisUrl !== undefined ? { redisUrl: opts.redisUrl } : {}),
    config: { ssf: { transmitters: [transmitter] } },
    ...(opts.deps !== undefined ? { deps: opts.deps } : {})
  })
  tx.audience = s.config.publicUrl
  return { s, tx, pushToken }
}

/** A signed-in device: its cookies work on every replica (same keys, same store). */
export interface Device { b: Browser, sid: string, idpSid: string, user: string, cookie: string }

/** Signs `user` in on a new browser (a new device with its own IdP session). */
export async function device (s: Stack, user: string): Promise<Device> {
  const b = new Browser()
  await login(b, s.url, user)
  const me = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  const rec = await s.gateway.ctx.store.getSession(user, me.sid)
  if (rec?.idpSid === undefined) throw new Error('the IdP sent no sid in the ID token')
  return { b, sid: me.sid, idpSid: rec.idpSid, user, cookie: b.cookieHeader(s.url) }
}

/** Whether the device's session still passes the gate at `url`. */
export async function alive (d: Device, url: string): Promise<boolean> {
  const res = await fetch(`${url}/api/ping`, { headers: { accept: 'application/json', cookie: d.cookie } })
  await res.arrayBuffer()
  if (res.status !== 200 && res.status !== 401) throw new Error(`unexpected status ${res.status}`)
  return res.status === 200
}

/** An open WebSocket through the gateway at `url` and the promise of its close (code, ms after `mark`). */
export async function socket (t: Test, d: Device, url: string): Promise<{ ws: WebSocket, closed: Promise<number>, since: (at: number) => Promise<number> }> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/live`, { headers: { cookie: d.cookie } })
  t.teardown(() => ws.terminate())
  await new Promise<void>((resolve, reject) => { ws.once('message', () => resolve()); ws.once('error', reject) })
  let closedAt = 0
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => { closedAt = Date.now(); resolve(code) }))
  return { ws, closed, since: async (at) => { await closed; return closedAt - at } }
}
