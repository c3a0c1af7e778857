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
export class StoreError extends Error {
  readonly code: StoreErrorCode
  constructor (code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'StoreError'
  }
}

/** Thrown (or rejected) when the store cannot be reached in time. Stable code for callers. */
export class StoreUnavailableError extends StoreError {
  declare readonly code: 'SG_STORE_UNAVAILABLE'
  constructor (message = 'store unavailable', options?: { cause?: unknown }) {
    super('SG_STORE_UNAVAILABLE', message, options)
    this.name = 'StoreUnavailableError'
  }
}

/** A stored value that cannot be read back: corrupt data, not an outage. */
export class StoreCorruptRecordError extends StoreError {
  declare readonly code: 'SG_STORE_CORRUPT_RECORD'
  constructor (message: string) {
    super('SG_STORE_CORRUPT_RECORD', message)
    this.name = 'StoreCorruptRecordError'
  }
}

/** A reply the store's protocol does not allow (a script answered something unexpected). */
export class StoreBadReplyError extends StoreError {
  declare readonly code: 'SG_STORE_BAD_REPLY'
  constructor (message: string) {
    super('SG_STORE_BAD_REPLY', message)
    this.name = 'StoreBadReplyError'
  }
}

/** Store settings that cannot work. */
export class StoreConfigError extends StoreError {
  declare readonly code: 'SG_STORE_CONFIG'
  constructor (message: string) {
    super('SG_STORE_CONFIG', message)
    this.name = 'StoreConfigError'
  }
}
