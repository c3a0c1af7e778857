/**
 * Poll delivery (RFC 8936) for a transmitter with `delivery: poll`. One replica polls at a time: the one
 * holding the store lease `ssf-poll:<issuer>`, renewed while it polls; the others try to take it over
 * now and then. Each poll request acknowledges (`ack`) the SETs of the previous answers that were applied,
 * replayed (applied before) or recorded, and reports (`setErrs`) those that are invalid and can never
 * apply; a SET that could not be applied now (store error) is neither, so the transmitter sends it again.
 */
import type { Store } from '../store/store.js'
import type { Receiver, ReceiverLogger } from './receiver.js'
import { TransmitterError, type TransmitterLink } from './transmitter.js'

export interface PollerOptions {
  link: TransmitterLink
  receiver: Receiver
  store: Pick<Store, 'lease' | 'releaseLease'>
  /** This replica, as lease holder. */
  holder: string
  /** The poll endpoint: `pollUrl`, else the managed stream's (undefined while unknown). */
  pollUrl: () => Promise<string | undefined>
  log: ReceiverLogger
  /** Lease lifetime (ms); renewed every third of it while polling. Default 10 s. */
  leaseMs?: number
  /** An empty answer that came sooner than this (ms) is followed by a pause, so a transmitter that does not hold requests is not hammered. Default 1 s. */
  idleMs?: number
  /** Bound on one poll request, long polling included (ms). Default 60 s. */
  requestMs?: number
  maxEvents?: number
}

/** What /admin/ssf shows of a poller. Times are epoch ms. */
export interface PollerState {
  /** This replica holds the lease (it is the one polling). */
  polling: boolean
  lastPollAt?: number
  /** Cleared to undefined by the next successful poll. */
  lastError?: string | undefined
  acknowledged: number
  rejected: number
}

type SetErrs = Record<string, { err: string, description: string }>
/** Longest pause after a store failure, and after a transmitter that failed to answer (ms). */
const STORE_BACKOFF_MAX = 5_000
const TRANSMITTER_BACKOFF_MAX = 30_000
const sleep = async (ms: number, signal: AbortSignal): Promise<void> => await new Promise((resolve) => {
  const timer = setTimeout(resolve, ms)
  signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
})

export class Poller {
  readonly state: PollerState = { polling: false, acknowledged: 0, rejected: 0 }
  private readonly stopping = new AbortController()
  private readonly lease: string
  private readonly leaseMs: number
  private acks = new Set<string>()
  private errs: SetErrs = {}
  private running: Promise<void> | undefined

  constructor (private readonly o: PollerOptions) {
    this.lease = `ssf-poll:${o.link.config.issuer}`
    this.leaseMs = o.leaseMs ?? 10_000
  }

  start (): void {
    this.running ??= this.run()
  }

  /** Stops polling, sends the acknowledgements still owed (briefly), and gives the lease up. */
  async stop (): Promise<void> {
    this.stopping.abort()
    await this.running
  }

  private async run (): Promise<void> {
    let backoff = 0
    const signal = this.stopping.signal
    while (!signal.aborted) {
      try {
        if (!await this.o.store.lease(this.lease, this.o.holder, this.leaseMs)) {
          this.state.polling = false
          // Owed acknowledgements go with the lease: the next holder gets those SETs again, finds them
          // replayed, and acknowledges them itself.
          this.acks.clear()
          this.errs = {}
          await sleep(this.leaseMs / 2, signal)
          continue
        }
        this.state.polling = true
        const url = await this.o.pollUrl()
        if (url === undefined) throw new TransmitterError('no poll endpoint known yet (pollUrl, or the managed stream\'s)')
        const started = Date.now()
        const { received, retry } = await this.pollOnce(url, false)
        // Some SETs could not be applied (the store): they come back with the next answer, a little later.
        backoff = retry ? Math.min(STORE_BACKOFF_MAX, Math.max(1000, backoff * 2)) : 0
        if (backoff > 0) await sleep(backoff, signal)
        else if (!received && Date.now() - started < (this.o.idleMs ?? 1000)) await sleep((this.o.idleMs ?? 1000) - (Date.now() - started), signal)
      } catch (err) {
        if (signal.aborted) break
        this.state.lastError = (err as Error).message
        this.o.log.warn({ transmitter: this.o.link.config.issuer, reason: this.state.lastError }, 'SSF poll failed')
        backoff = Math.min(err instanceof TransmitterError ? TRANSMITTER_BACKOFF_MAX : STORE_BACKOFF_MAX, Math.max(1000, backoff * 2))
        await sleep(backoff, signal)
      }
    }
    await this.finish()
  }

  /**
   * One poll request (acknowledging what is owed) and the SETs it returned. `received`: it returned some
   * (or says more are available); `retry`: some could not be applied now.
   */
  private async pollOnce (url: string, ackOnly: boolean): Promise<{ received: boolean, retry: boolean }> {
    const ack = [...this.acks]
    const setErrs = this.errs
    const body: Record<string, unknown> = { maxEvents: ackOnly ? 0 : (this.o.maxEvents ?? 100), returnImmediately: ackOnly }
    if (ack.length > 0) body.ack = ack
    if (Object.keys(setErrs).length > 0) body.setErrs = setErrs

    // The lease is renewed while the request is held open; losing it ends the request.
    const inFlight = new AbortController()
    const renew = setInterval(() => {
      this.o.store.lease(this.lease, this.o.holder, this.leaseMs).then((held) => { if (!held) inFlight.abort() }, () => inFlight.abort())
    }, this.leaseMs / 3)
    let answer: unknown
    try {
      answer = await this.o.link.call('POST', url, {
        token: this.o.link.config.pollToken!,
        body,
        timeoutMs: ackOnly ? 2000 : (this.o.requestMs ?? 60_000),
        signal: ackOnly ? inFlight.signal : AbortSignal.any([inFlight.signal, this.stopping.signal])
      })
    } finally {
      clearInterval(renew)
    }
    this.state.lastPollAt = Date.now()
    this.state.lastError = undefined
    // Sent and answered: the transmitter has them.
    for (const jti of ack) this.acks.delete(jti)
    this.state.acknowledged += ack.length
    this.state.rejected += Object.keys(setErrs).length
    if (this.errs === setErrs) this.errs = {}
    if (ackOnly) return { received: false, retry: false }

    const o = typeof answer === 'object' && answer !== null ? answer as Record<string, unknown> : {}
    const sets = typeof o.sets === 'object' && o.sets !== null && !Array.isArray(o.sets) ? o.sets as Record<string, unknown> : {}
    let retry = false
    for (const [jti, token] of Object.entries(sets)) {
      if (this.stopping.signal.aborted) break
      const d = await this.o.receiver.receive(this.o.link, token, jti)
      if (d.result === 'unavailable') retry = true
      else if (d.result === 'invalid') this.errs[jti] = { err: d.err, description: d.description }
      else this.acks.add(jti)
    }
    return { received: Object.keys(sets).length > 0 || o.moreAvailable === true, retry }
  }

  /** At shutdown: the acknowledgements owed, in one acknowledge-only request, then the lease. */
  private async finish (): Promise<void> {
    if (this.state.polling && (this.acks.size > 0 || Object.keys(this.errs).length > 0)) {
      const url = await this.o.pollUrl().catch(() => undefined)
      if (url !== undefined) await this.pollOnce(url, true).catch(() => {})
    }
    this.state.polling = false
    await this.o.store.releaseLease(this.lease, this.o.holder).catch(() => {})
  }
}
