/**
 * Receives one Security Event Token from a known transmitter, whatever the delivery (push or poll):
 * validates it, refuses a replayed `jti`, maps its subject and applies its event as one revocation (the
 * actions do one store step plus one published event each), and says how it went. No HTTP here.
 *
 * The replay guard is claimed only once the event was applied: a delivery that fails half-way (a store
 * error) leaves the `jti` free, so the transmitter's retry (or the next poll) is accepted.
 */
import type { JWTVerifyGetKey } from 'jose'
import type { SsfTransmitterConfig } from '../config/types.js'
import type { Store } from '../store/store.js'
import { actionOf, eventLabel } from './events.js'
import { KeysUnavailableError, SetError, setReplayWindow, validateSet, type SecurityEvent, type SetErrorCode } from './set.js'
import { parseSubject, SubjectError, type Target } from './subject.js'

/** The revocations an event can ask for (the gateway's Revoker, channel `ssf`). */
export interface SsfActions {
  /** Ends every session and device credential of the user (and its bearer tokens). */
  user (sub: string): Promise<void>
  /** Ends the gateway sessions created under this IdP session, only `onlySub`'s when given. */
  idpSession (idpSid: string, onlySub?: string): Promise<void>
}

/** A transmitter as the receiver needs it: its config and its key lookup. */
export interface TransmitterKeys {
  config: SsfTransmitterConfig
  keys: JWTVerifyGetKey
}

export interface ReceiverLogger {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

export interface ReceiverDeps {
  store: Pick<Store, 'wasClaimed' | 'claimOnce' | 'usersForEmail' | 'sessionsForIdpSession' | 'putNote'>
  actions: SsfActions
  /** The IdP whose `sub` and `sid` values sessions carry: `iss_sub` subjects must name it. */
  idpIssuer: string
  /** Epoch seconds. */
  now: () => number
  log: ReceiverLogger
  /** Counts each delivery (sessiongate_ssf_events_total). */
  count?: (transmitter: string, type: string, result: DeliveryResult) => void
}

export type DeliveryResult = 'applied' | 'ignored' | 'recorded' | 'replay' | 'invalid' | 'unavailable'

/**
 * How a delivery went. applied / ignored / recorded: accepted (202; acknowledged when polled).
 * replay: this jti was applied before (400; acknowledged when polled). invalid: never applicable (400;
 * a setErr when polled). unavailable: try again later (503; left unacknowledged when polled).
 */
export type Delivery =
  | { result: 'applied' | 'ignored' | 'recorded' | 'replay', jti: string, type: string }
  | { result: 'invalid', err: SetErrorCode, description: string, jti?: string, type?: string }
  | { result: 'unavailable', cause: 'store' | 'keys', description: string, jti?: string, type?: string }

export const SKEW = 60
/** How old a SET may be (its `iat`); its `jti` is kept that long. */
export const MAX_AGE = 86_400
/** How long the last verification and stream event stay visible on /admin/ssf. */
export const NOTE_TTL = 30 * 86_400

export class Receiver {
  constructor (private readonly deps: ReceiverDeps) {}

  /** Validates and applies one SET from `t`; never throws. `expectedJti` is the key a poll response used. */
  async receive (t: TransmitterKeys, token: unknown, expectedJti?: string): Promise<Delivery> {
    const delivery = await this.handle(t, token, expectedJti)
    this.deps.count?.(t.config.issuer, eventLabel(delivery.type), delivery.result)
    return delivery
  }

  private async handle (t: TransmitterKeys, token: unknown, expectedJti: string | undefined): Promise<Delivery> {
    const { store, log } = this.deps
    let set: SecurityEvent
    try {
      set = await validateSet(token, { issuer: t.config.issuer, audience: t.config.audience, keys: t.keys, now: this.deps.now(), skew: SKEW, maxAge: MAX_AGE })
    } catch (err) {
      if (err instanceof KeysUnavailableError) {
        log.warn({ transmitter: t.config.issuer, reason: err.message }, 'SET not checked: the transmitter keys are unavailable')
        return { result: 'unavailable', cause: 'keys', description: 'the transmitter keys cannot be read now' }
      }
      if (!(err instanceof SetError)) throw err
      log.info({ transmitter: t.config.issuer, err: err.err, code: err.code, reason: err.message }, 'SET refused')
      return { result: 'invalid', err: err.err, description: err.message }
    }
    const { jti, type } = set
    if (expectedJti !== undefined && expectedJti !== jti) {
      return { result: 'invalid', err: 'invalid_request', description: 'the SET is listed under another jti', jti: expectedJti, type }
    }
    const action = actionOf(type)
    let target: Target | undefined
    try {
      if (action === 'user' || action === 'sessions') target = parseSubject(set.subject, this.deps.idpIssuer)
    } catch (err) {
      if (!(err instanceof SubjectError)) throw err
      log.info({ transmitter: t.config.issuer, jti, reason: err.message }, 'SET refused')
      return { result: 'invalid', err: 'invalid_request', description: err.message, jti, type }
    }

    const replayKey = `${set.iss}|${jti}`
    let result: 'applied' | 'ignored' | 'recorded'
    try {
      if (await store.wasClaimed('ssf', replayKey)) {
        log.info({ transmitter: t.config.issuer, jti }, 'SET refused: jti was already applied (replay)')
        return { result: 'replay', jti, type }
      }
      result = await this.apply(t, set, target)
    } catch (err) {
      // Nothing was recorded as done: the same SET is accepted when delivered again.
      log.error({ transmitter: t.config.issuer, jti, event: eventLabel(type), reason: (err as Error).message }, 'SET not applied: the store failed')
      return { result: 'unavailable', cause: 'store', description: 'the session store cannot be reached', jti, type }
    }
    // Applied: a claim that fails now only weakens replay detection.
    await store.claimOnce('ssf', replayKey, setReplayWindow(set.iat, this.deps.now(), { skew: SKEW, maxAge: MAX_AGE })).catch((err: Error) => {
      log.warn({ transmitter: t.config.issuer, jti, reason: err.message }, 'SET applied, but its jti could not be recorded (replay guard)')
    })
    return { result, jti, type }
  }

  /** The event's effect; throws when the store fails. */
  private async apply (t: TransmitterKeys, set: SecurityEvent, target: Target | undefined): Promise<'applied' | 'ignored' | 'recorded'> {
    const { store, actions, log } = this.deps
    const where = { transmitter: t.config.issuer, jti: set.jti, event: eventLabel(set.type) }
    const action = actionOf(set.type)
    if (action === 'ignore') {
      log.info({ ...where, type: set.type.slice(0, 200) }, 'SET of a type the gateway does not act on: ignored')
      return 'ignored'
    }
    if (action === 'verification' || action === 'stream') {
      const p = set.payload
      const note = action === 'verification'
        ? { jti: set.jti, at: this.deps.now(), ...(typeof p.state === 'string' ? { state: p.state.slice(0, 256) } : {}) }
        : { jti: set.jti, at: this.deps.now(), status: String(p.status ?? '').slice(0, 32), ...(typeof p.reason === 'string' ? { reason: p.reason.slice(0, 256) } : {}) }
      await store.putNote(action === 'verification' ? 'ssf-verified' : 'ssf-stream-event', t.config.issuer, JSON.stringify(note), NOTE_TTL)
      log.info(where, action === 'verification' ? 'SSF verification event received' : 'SSF stream-updated event received')
      return 'recorded'
    }
    if (target === undefined || target.kind === 'unsupported') {
      log.warn({ ...where, reason: target?.reason }, 'SET names no user or session the gateway keeps: ignored')
      return 'ignored'
    }
    const subs = new Set<string>()
    for (const u of target.users) {
      if ('sub' in u) subs.add(u.sub)
      else for (const sub of await store.usersForEmail(u.email)) subs.add(sub)
    }
    if (target.session !== undefined && action === 'sessions') {
      // Those gateway sessions only; with a user that resolves to nobody, nothing.
      if (target.users.length === 0) await actions.idpSession(target.session)
      else for (const sub of subs) await actions.idpSession(target.session, sub)
    } else {
      if (target.session !== undefined && target.users.length === 0) {
        // A user-wide event naming only an IdP session: its users are the ones it names.
        for (const { sub } of await store.sessionsForIdpSession(this.deps.idpIssuer, target.session)) subs.add(sub)
      }
      for (const sub of subs) await actions.user(sub)
    }
    log.info({ ...where, users: subs.size, session: target.session !== undefined }, 'SET applied')
    return 'applied'
  }
}
