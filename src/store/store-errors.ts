import { CodedError } from '../core/coded-error.js'
/**
 * The errors store code throws: every one carries a stable `code` callers (and logs) can rely on.
 *
 * - SG_STORE_UNAVAILABLE: the store could not be reached in time (or is closed); retryable.
 * - SG_STORE_CORRUPT_RECORD: a stored value cannot be read back (a partial record, a bad number).
 * - SG_STORE_BAD_REPLY: the store answered something the protocol does not allow (a script's reply).
 * - SG_STORE_CONFIG: the store settings cannot work (a bad URL, braces in a Cluster key prefix).
 */
export type StoreErrorCode = 'SG_STORE_UNAVAILABLE' | 'SG_STORE_CORRUPT_RECORD' | 'SG_STORE_BAD_REPLY' | 'SG_STORE_CONFIG'

/** Base of every error store code throws on purpose. */
export class StoreError<C extends StoreErrorCode = StoreErrorCode> extends CodedError<C> {}

/** Thrown (or rejected) when the store cannot be reached in time. Stable code for callers. */
export class StoreUnavailableError extends StoreError<'SG_STORE_UNAVAILABLE'> {
  constructor (message = 'store unavailable', options?: { cause?: unknown }) {
    super('SG_STORE_UNAVAILABLE', message, options)
  }
}

/** A StoreError class for one code, named `name` (what logs and `instanceof` see). */
function storeErrorClass<C extends StoreErrorCode> (code: C, name: string): new (message: string) => StoreError<C> {
  const cls = class extends StoreError<C> { constructor (message: string) { super(code, message) } }
  Object.defineProperty(cls, 'name', { value: name })
  return cls
}

/** A stored value that cannot be read back: corrupt data, not an outage. */
export const StoreCorruptRecordError = storeErrorClass('SG_STORE_CORRUPT_RECORD', 'StoreCorruptRecordError')
/** A reply the store's protocol does not allow (a script answered something unexpected). */
export const StoreBadReplyError = storeErrorClass('SG_STORE_BAD_REPLY', 'StoreBadReplyError')
/** Store settings that cannot work. */
export const StoreConfigError = storeErrorClass('SG_STORE_CONFIG', 'StoreConfigError')
