/**
 * Readiness of a cluster: ready only when every worker is serving and says it is ready. One body in
 * the single-process shape (`status`, `checks`, `warnings`) plus a `workers` check.
 */
import { jsonReply, type AdminReply } from './messages.js'

interface WorkerReadyz { status?: string, checks?: Record<string, string>, warnings?: unknown[] }

/** `replies[i]` is worker i's own /readyz, or undefined while it is not serving (starting, restarting). */
export function readyzOf (replies: Array<AdminReply | undefined>, stopping: boolean): AdminReply {
  const checks: Record<string, string> = {}
  const warnings = new Map<string, unknown>()
  let serving = 0
  let allReady = true
  for (const reply of replies) {
    if (reply === undefined) { allReady = false; continue }
    serving++
    let body: WorkerReadyz = {}
    try { body = JSON.parse(Buffer.from(reply.body, 'base64').toString('utf8')) as WorkerReadyz } catch { allReady = false }
    if (reply.status !== 200) allReady = false
    // The worst value of each check wins: one worker without its store is a worker not ready.
    for (const [name, value] of Object.entries(body.checks ?? {})) if (checks[name] === undefined || checks[name] === 'ok') checks[name] = value
    for (const w of body.warnings ?? []) warnings.set(JSON.stringify(w), w)
  }
  if (stopping) checks.shutdown = 'shutting down'
  checks.workers = serving === replies.length ? 'ok' : `${serving} of ${replies.length} serving`
  const ready = allReady && !stopping
  const body = { status: ready ? 'ready' : 'not ready', checks, ...(warnings.size > 0 ? { warnings: [...warnings.values()] } : {}) }
  return jsonReply(ready ? 200 : 503, body, { 'cache-control': 'no-store' })
}
