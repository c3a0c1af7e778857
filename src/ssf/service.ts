/**
 * The Shared Signals receiver of one replica: its configured transmitters, the receiver that applies
 * their SETs, the pollers (delivery: poll), stream management at start-up (manageStream), and the status
 * /admin/ssf shows. Built by app.ts; the HTTP side is http/ssf-routes.ts.
 */
import { randomUUID } from 'node:crypto'
import type { Config } from '../config/types.js'
import { safeEqual } from '../core/device.js'
import type { Store } from '../store/store.js'
import { Poller } from './poller.js'
import { Receiver, type DeliveryResult, type ReceiverLogger, type SsfActions } from './receiver.js'
import { manageStream, readNote, type StreamNote, type VerificationRequest } from './stream.js'
import { TransmitterLink } from './transmitter.js'

export interface SsfServiceDeps {
  config: Config
  store: Store
  actions: SsfActions
  log: ReceiverLogger
  /** Epoch seconds. */
  now: () => number
  count?: (transmitter: string, type: string, result: DeliveryResult) => void
  /** Poller timings (tests shorten them). */
  poll?: { leaseMs?: number, idleMs?: number }
}

interface Verified { jti: string, at: number, state?: string }

export class SsfService {
  readonly links: TransmitterLink[]
  readonly receiver: Receiver
  readonly pushUrl: string
  private readonly holder = randomUUID()
  private readonly pollers = new Map<string, Poller>()
  /** Resolve after the first stream management attempt of each managed transmitter. */
  private readonly managing: Array<Promise<unknown>> = []
  private readonly retries: Array<Promise<unknown>> = []
  private readonly stopping = new AbortController()

  constructor (private readonly deps: SsfServiceDeps) {
    const { config } = deps
    this.links = config.ssf.transmitters.map((t) => new TransmitterLink(t))
    this.pushUrl = `${config.publicUrl}${config.authPrefix}/ssf/push`
    this.receiver = new Receiver({
      store: deps.store,
      actions: deps.actions,
      idpIssuer: config.oidc.issuer,
      now: deps.now,
      log: deps.log,
      ...(deps.count !== undefined ? { count: deps.count } : {})
    })
  }

  /**
   * The push transmitter whose token is `bearer`. Every configured token is compared, in constant time,
   * whatever matches first: the answer time says nothing about which (or whether one) matched.
   */
  pushTransmitter (bearer: string): TransmitterLink | undefined {
    let found: TransmitterLink | undefined
    for (const link of this.links) {
      const token = link.config.pushToken
      if (token === undefined) continue
      if (safeEqual(bearer, token) && found === undefined) found = link
    }
    return found
  }

  /** Starts stream management (in the background) and the pollers. */
  start (): void {
    for (const link of this.links) {
      const cfg = link.config
      if (cfg.manageStream) {
        let first: () => void = () => {}
        this.managing.push(new Promise<void>((resolve) => { first = resolve }))
        this.retries.push(this.manage(link, first))
      }
      if (cfg.delivery === 'poll') {
        const poller = new Poller({
          link,
          receiver: this.receiver,
          store: this.deps.store,
          holder: this.holder,
          log: this.deps.log,
          pollUrl: async () => cfg.pollUrl ?? (await readNote<StreamNote>(this.deps.store, 'ssf-stream', cfg.issuer))?.pollUrl,
          ...this.deps.poll
        })
        this.pollers.set(cfg.issuer, poller)
        poller.start()
      }
    }
  }

  /** Resolves once the start-up stream management calls are done (tests wait for it). */
  async managed (): Promise<void> {
    await Promise.all(this.managing)
  }

  async stop (): Promise<void> {
    this.stopping.abort()
    await Promise.all([...this.pollers.values()].map(async (p) => { await p.stop() }))
    await Promise.all(this.retries)
  }

  /**
   * Stream management for one transmitter: at start-up, and again after a failure (the transmitter or
   * the store was down) every minute or so, until it succeeded once, another replica did it, or shutdown.
   * The gateway serves meanwhile (push still works on a stream registered before).
   */
  private async manage (link: TransmitterLink, first: () => void): Promise<void> {
    const deps = { store: this.deps.store, pushUrl: this.pushUrl, holder: this.holder, now: this.deps.now, log: this.deps.log }
    const signal = this.stopping.signal
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        await manageStream(link, deps)
        break // done here, or by the replica holding the lease
      } catch {
        // Logged (and recorded when the store answers) by manageStream; tried again below.
      } finally {
        if (attempt === 0) first()
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(300_000, 30_000 * 2 ** attempt))
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
    }
  }

  /** Each transmitter's configuration, stream, last verification and (poll) poller, for /admin/ssf. */
  async status (): Promise<Array<Record<string, unknown>>> {
    const { store } = this.deps
    return await Promise.all(this.links.map(async (link) => {
      const cfg = link.config
      const [stream, requested, verified, streamEvent] = await Promise.all([
        readNote<StreamNote>(store, 'ssf-stream', cfg.issuer),
        readNote<VerificationRequest>(store, 'ssf-verify-request', cfg.issuer),
        readNote<Verified>(store, 'ssf-verified', cfg.issuer),
        readNote<Record<string, unknown>>(store, 'ssf-stream-event', cfg.issuer)
      ])
      const meta = link.loadedMetadata()
      const poller = this.pollers.get(cfg.issuer)
      return {
        issuer: cfg.issuer,
        audience: cfg.audience,
        delivery: cfg.delivery,
        ...(cfg.delivery === 'push' ? { pushEndpoint: this.pushUrl } : { pollEndpoint: cfg.pollUrl ?? stream?.pollUrl ?? null }),
        keys: cfg.jwksUri ?? (meta?.value?.jwks_uri ?? null),
        configuration: cfg.configurationUrl === undefined ? null : meta === undefined ? 'not loaded yet' : meta.error ?? 'loaded',
        manageStream: cfg.manageStream,
        stream: stream === null ? null : { ...stream, ...(stream.updatedAt !== undefined ? { updatedAt: iso(stream.updatedAt) } : {}) },
        streamUpdatedEvent: streamEvent === null ? null : { ...streamEvent, at: iso(Number(streamEvent.at)) },
        verification: {
          requested: requested === null ? null : { streamId: requested.streamId, at: iso(requested.at) },
          received: verified === null
            ? null
            : { jti: verified.jti, at: iso(verified.at), ...(requested !== null ? { matchesRequest: verified.state === requested.state } : {}) }
        },
        ...(poller !== undefined
          ? { poller: { ...poller.state, lastPollAt: poller.state.lastPollAt === undefined ? null : new Date(poller.state.lastPollAt).toISOString() } }
          : {})
      }
    }))
  }
}

const iso = (seconds: number): string | null => Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : null
