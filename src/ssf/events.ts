/**
 * The Shared Signals event types the gateway knows (SSF 1.0, CAEP 1.0, RISC 1.0) and what each one does.
 * Pure. Anything else is accepted and ignored (RFC 8935 section 2: a receiver need not act on every type).
 */

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/'
/** The drafts before SSF 1.0 named the stream events under `sse`. */
const SSE = 'https://schemas.openid.net/secevent/sse/event-type/'

export const EVENT = {
  sessionRevoked: `${CAEP}session-revoked`,
  credentialChange: `${CAEP}credential-change`,
  accountDisabled: `${RISC}account-disabled`,
  accountPurged: `${RISC}account-purged`,
  sessionsRevoked: `${RISC}sessions-revoked`,
  verification: `${SSF}verification`,
  streamUpdated: `${SSF}stream-updated`
} as const

/**
 * What an event does:
 * - `sessions`: CAEP session-revoked: the sessions its subject names (an IdP session), else all of the user's;
 * - `user`: every session and device credential of the user;
 * - `verification`, `stream`: SSF stream events, recorded;
 * - `ignore`: a type the gateway does not act on.
 */
export type EventAction = 'sessions' | 'user' | 'verification' | 'stream' | 'ignore'

const ACTIONS = new Map<string, EventAction>([
  [EVENT.sessionRevoked, 'sessions'],
  [EVENT.credentialChange, 'user'],
  [EVENT.accountDisabled, 'user'],
  [EVENT.accountPurged, 'user'],
  [EVENT.sessionsRevoked, 'user'],
  [EVENT.verification, 'verification'],
  [`${SSE}verification`, 'verification'],
  [EVENT.streamUpdated, 'stream'],
  [`${SSE}stream-updated`, 'stream']
])

export function actionOf (type: string): EventAction {
  return ACTIONS.get(type) ?? 'ignore'
}

/**
 * A short, bounded name for metrics and logs: `caep.session-revoked`, `risc.account-disabled`,
 * `ssf.verification`; `other` for any type the gateway does not know (a URI from outside never becomes a
 * label value).
 */
export function eventLabel (type: string | undefined): string {
  if (type === undefined) return 'none'
  if (!ACTIONS.has(type)) return 'other'
  for (const [prefix, name] of [[CAEP, 'caep'], [RISC, 'risc'], [SSF, 'ssf'], [SSE, 'ssf']] as const) {
    if (type.startsWith(prefix)) return `${name}.${type.slice(prefix.length)}`
  }
  return 'other'
}

/** The events the gateway asks a managed stream for (those it acts on, and verification). */
export const REQUESTED_EVENTS: readonly string[] = [
  EVENT.sessionRevoked,
  EVENT.credentialChange,
  EVENT.accountDisabled,
  EVENT.accountPurged,
  EVENT.sessionsRevoked,
  EVENT.verification
]
