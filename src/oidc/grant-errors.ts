/**
 * What an IdP's token endpoint error means to the gateway, so callers need not know openid-client's
 * error classes.
 */
import { ResponseBodyError } from 'openid-client'

/** True when the IdP refused a grant for good (invalid_grant): the refresh token is dead. */
export function isInvalidGrant (err: unknown): boolean {
  return err instanceof ResponseBodyError && err.error === 'invalid_grant'
}
