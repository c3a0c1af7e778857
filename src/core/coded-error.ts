/**
 * Base of the gateway's errors (after panva's jose and openid-client): a stable `code` from a union per
 * error class, which logs and callers rely on instead of messages, and the `cause` kept for the log line.
 */
export class CodedError<C extends string> extends Error {
  readonly code: C
  constructor (code: C, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    // The subclass's own name (LogoutTokenError, OidcError, ...), without each repeating it.
    this.name = new.target.name
  }
}
