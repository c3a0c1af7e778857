/**
 * Stream management (SSF 1.0 section 8) for a transmitter with `manageStream: true`: at start-up, create
 * the receiver's stream or update the existing one (the events the gateway acts on, the delivery method
 * and, for push, this gateway's endpoint and bearer), then ask for a verification event. One replica at a
 * time does it (a store lease); what it found is kept as a note every replica's /admin/ssf shows.
 */
import { randomBytes } from 'node:crypto'
import type { Store } from '../store/store.js'
import { REQUESTED_EVENTS } from './events.js'
import { NOTE_TTL, type ReceiverLogger } from './receiver.js'
import { TransmitterError, type TransmitterLink } from './transmitter.js'

export const PUSH_METHOD = 'urn:ietf:rfc:8935'
export const POLL_METHOD = 'urn:ietf:rfc:8936'

/** What the last management run found (note `ssf-stream`). Times are epoch seconds. */
export interface StreamNote {
  streamId?: string
  status?: string
  eventsDelivered?: string[]
  /** The poll endpoint the transmitter gave the stream (poll delivery). */
  pollUrl?: string
  updatedAt: number
  error?: string
}

/** The verification the gateway asked for (note `ssf-verify-request`). */
export interface VerificationRequest { streamId: string, state: string, at: number }

export interface ManageDeps {
  store: Pick<Store, 'lease' | 'releaseLease' | 'putNote' | 'getNote'>
  /** This gateway's push endpoint: publicUrl + authPrefix + /ssf/push. */
  pushUrl: string
  /** Who holds the lease (this replica). */
  holder: string
  /** Epoch seconds. */
  now: () => number
  log: ReceiverLogger
}

const LEASE_MS = 60_000
type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Reads a note written as JSON; null when absent or unreadable. */
export async function readNote<T> (store: Pick<Store, 'getNote'>, kind: string, id: string): Promise<T | null> {
  const raw = await store.getNote(kind, id)
  if (raw === null) return null
  try {
    return JSON.parse(raw) as T
  } catch {
    return null
  }
}

/**
 * Creates or updates the stream and requests a verification; records the outcome (also a failure).
 * Resolves false when another replica holds the lease (it does the work).
 */
export async function manageStream (link: TransmitterLink, deps: ManageDeps): Promise<boolean> {
  const cfg = link.config
  const lease = `ssf-manage:${cfg.issuer}`
  let held: boolean
  try {
    held = await deps.store.lease(lease, deps.holder, LEASE_MS)
  } catch (err) {
    deps.log.warn({ transmitter: cfg.issuer, reason: (err as Error).message }, 'SSF stream management could not run: the store failed')
    throw err
  }
  if (!held) return false
  try {
    const note = await createOrUpdate(link, deps)
    await deps.store.putNote('ssf-stream', cfg.issuer, JSON.stringify(note), NOTE_TTL)
    deps.log.info({ transmitter: cfg.issuer, streamId: note.streamId, status: note.status }, 'SSF stream created or updated')
  } catch (err) {
    const message = err instanceof TransmitterError ? err.message : `failed: ${(err as Error).message}`
    deps.log.error({ transmitter: cfg.issuer, reason: message }, 'SSF stream management failed')
    const prev = await readNote<StreamNote>(deps.store, 'ssf-stream', cfg.issuer).catch(() => null)
    await deps.store.putNote('ssf-stream', cfg.issuer, JSON.stringify({ ...prev, updatedAt: deps.now(), error: message }), NOTE_TTL).catch(() => {})
    throw err
  } finally {
    await deps.store.releaseLease(lease, deps.holder).catch(() => {})
  }
  return true
}

async function createOrUpdate (link: TransmitterLink, deps: ManageDeps): Promise<StreamNote> {
  const cfg = link.config
  const meta = await link.metadata()
  const endpoint = meta.configuration_endpoint
  if (endpoint === undefined) throw new TransmitterError('the configuration document has no configuration_endpoint')
  const token = cfg.managementToken
  const method = cfg.delivery === 'push' ? PUSH_METHOD : POLL_METHOD
  const delivery: Obj = cfg.delivery === 'push'
    ? { method, endpoint_url: deps.pushUrl, authorization_header: `Bearer ${cfg.pushToken!}` }
    : { method }

  const existing = pickStream(await link.call('GET', endpoint, { token }), method, deps.pushUrl)
  const wanted = { delivery, events_requested: [...REQUESTED_EVENTS], description: 'sessiongate' }
  const answer = existing !== undefined
    ? await link.call('PATCH', endpoint, { token, body: { stream_id: existing, ...wanted } })
    : await link.call('POST', endpoint, { token, body: wanted })
  if (!isObj(answer) || typeof answer.stream_id !== 'string' || answer.stream_id === '') throw new TransmitterError('the stream configuration has no stream_id')
  const streamId = answer.stream_id
  const note: StreamNote = { streamId, updatedAt: deps.now() }
  if (Array.isArray(answer.events_delivered)) note.eventsDelivered = answer.events_delivered.filter((e): e is string => typeof e === 'string')
  const url = isObj(answer.delivery) ? answer.delivery.endpoint_url : undefined
  if (cfg.delivery === 'poll' && typeof url === 'string' && /^https?:\/\//.test(url)) note.pollUrl = url

  if (meta.status_endpoint !== undefined) {
    const status = await link.call('GET', withStream(meta.status_endpoint, streamId), { token })
    if (isObj(status) && typeof status.status === 'string') note.status = status.status.slice(0, 32)
  }
  if (meta.verification_endpoint !== undefined) {
    const request: VerificationRequest = { streamId, state: randomBytes(12).toString('base64url'), at: deps.now() }
    // Recorded first: the event may arrive (on another replica) before the request returns.
    await deps.store.putNote('ssf-verify-request', cfg.issuer, JSON.stringify(request), NOTE_TTL)
    await link.call('POST', meta.verification_endpoint, { token, body: { stream_id: streamId, state: request.state } })
  }
  return note
}

/** The receiver's existing stream for this delivery, if the transmitter lists one. */
function pickStream (listed: unknown, method: string, pushUrl: string): string | undefined {
  const streams = (Array.isArray(listed) ? listed : isObj(listed) ? [listed] : []).filter(isObj)
  const id = (s: Obj): string | undefined => typeof s.stream_id === 'string' && s.stream_id !== '' ? s.stream_id : undefined
  const deliveryOf = (s: Obj): Obj => isObj(s.delivery) ? s.delivery : {}
  const mine = streams.find((s) => deliveryOf(s).method === method && (method === POLL_METHOD || deliveryOf(s).endpoint_url === pushUrl)) ??
    (streams.length === 1 ? streams[0] : undefined)
  return mine === undefined ? undefined : id(mine)
}

function withStream (url: string, streamId: string): string {
  const u = new URL(url)
  u.searchParams.set('stream_id', streamId)
  return u.href
}
