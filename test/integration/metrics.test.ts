/**
 * /metrics on the admin port: valid Prometheus text exposition with the contract's metric names, and
 * counters that move with what happened.
 */
import t from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'

const CONTRACT = [
  'sessiongate_http_requests_total',
  'sessiongate_session_checks_total',
  'sessiongate_logouts_total',
  'sessiongate_store_errors_total',
  'sessiongate_revocation_propagation_seconds'
]

/** Parses the text format strictly enough to catch a broken exposition: every line is a comment or a sample. */
function parse (text: string): Map<string, Array<{ labels: string, value: number }>> {
  const samples = new Map<string, Array<{ labels: string, value: number }>>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line)
    if (m === null) throw new Error(`not Prometheus text: ${line}`)
    const list = samples.get(m[1]!) ?? []
    list.push({ labels: m[2] ?? '', value: Number(m[3]) })
    samples.set(m[1]!, list)
  }
  return samples
}

t.test('metrics exposition', async (t) => {
  const s = await startStack(t, { deps: { processMetrics: true } })
  const b = new Browser()
  await login(b, s.url, 'alice')
  await b.fetch(`${s.url}/api/x`, { headers: { accept: 'application/json' } })
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  await fetch(`${s.adminUrl}/admin/sessions/${sid}`, { method: 'DELETE', headers: { authorization: `Bearer ${s.adminToken}` } })
  await b.fetch(`${s.url}/api/y`, { headers: { accept: 'application/json' } })

  const res = await fetch(`${s.adminUrl}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type') ?? '', /text\/plain/)
  const text = await res.text()
  let samples = new Map<string, Array<{ labels: string, value: number }>>()
  t.doesNotThrow(() => { samples = parse(text) }, 'parses as Prometheus text')
  for (const name of CONTRACT) t.match(text, new RegExp(`# TYPE ${name} `), `${name} is exposed`)
  const checks = samples.get('sessiongate_session_checks_total') ?? []
  t.ok(checks.some((c) => c.labels.includes('result="live"') && c.value >= 1), 'live checks counted')
  t.ok(checks.some((c) => c.labels.includes('result="revoked"') && c.value >= 1), 'revoked checks counted')
  t.ok((samples.get('sessiongate_logouts_total') ?? []).some((c) => c.labels.includes('channel="admin"') && c.value === 1))
  t.ok((samples.get('sessiongate_http_requests_total') ?? []).some((c) => c.labels.includes('status="401"')), 'requests by status')
  t.ok(samples.has('sessiongate_process_cpu_user_seconds_total'), 'default process metrics')
  t.ok((samples.get('sessiongate_revocation_propagation_seconds_count') ?? [])[0]!.value >= 1, 'propagation observed')
})
