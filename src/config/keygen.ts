import { randomBytes } from 'node:crypto'

/** Returns a new session key: base64url of 32 random bytes (for `session.keys`). */
export function generateKey (): string {
  return randomBytes(32).toString('base64url')
}
