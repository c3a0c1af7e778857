/**
 * X-Request-ID: the id of a request in the logs (`reqId`), on the response and upstream. A trusted proxy's
 * id is kept so one request can be followed across tiers; anyone else's is replaced (a client must not
 * be able to forge log correlation or inject into log lines).
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

export const REQUEST_ID_HEADER = 'x-request-id'

/** Visible ASCII only (no spaces, no control characters), and bounded. */
const VALID = /^[\x21-\x7e]{1,128}$/

/** Fastify's genReqId: the incoming id when `trustProxy` and well-formed, else a new UUID. */
export function requestIds (trustProxy: boolean): (req: IncomingMessage) => string {
  if (!trustProxy) return () => randomUUID()
  return (req) => {
    const id = req.headers[REQUEST_ID_HEADER]
    return typeof id === 'string' && VALID.test(id) ? id : randomUUID()
  }
}
