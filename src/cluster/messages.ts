/**
 * What the primary and its workers say to each other over the cluster IPC channel. Every message of
 * ours carries `sg`, so prom-client's own metric requests on the same channel pass by untouched.
 */

/** An admin request the primary received, handed to one worker's admin app. */
export interface AdminRequest {
  method: string
  url: string
  headers: Record<string, string | string[]>
  /** base64 */
  body: string
  remoteAddress: string
}

export interface AdminReply {
  status: number
  headers: Record<string, string | string[]>
  /** base64 */
  body: string
}

export type ToWorker =
  | { sg: 'admin', id: number, request: AdminRequest }
  | { sg: 'shutdown', drainMs: number }

export type ToPrimary =
  | { sg: 'listening' }
  | { sg: 'failed', message: string }
  | { sg: 'admin-reply', id: number, reply: AdminReply }

/** An admin reply with a JSON body (the primary's own answers, a worker's failure, the cluster's readiness). */
export function jsonReply (status: number, body: unknown, headers: Record<string, string> = {}): AdminReply {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: Buffer.from(JSON.stringify(body)).toString('base64') }
}

export function isOurs<T extends { sg: string }> (m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { sg?: unknown }).sg === 'string'
}
