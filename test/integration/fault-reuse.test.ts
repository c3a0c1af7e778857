/**
 * Fault injection on reuse detection: a device credential that was rotated away, presented again after the
 * grace window, revokes the device. Every store step fails in turn, then Redis unreachable, a stall,
 * SIGSTOP and ACLs; each time the answer is 503 store_unavailable, the very same request (the stale
 * credential again) is refused with 401, and the device is out on both replicas: its live session cookie,
 * its current credential and its WebSockets.
 */
import t, { type Test } from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { FAULTS, call, deviceOf, faultRun, sleep, startEnv, storeUnavailable, sweep, user, type Answer, type LogoutPath } from '../helpers/fault-kit.js'

const GRACE_MS = 1000

const reuse: LogoutPath = {
  name: 'reuse detection',
  setup: async (env) => {
    const sub = user('reuse')
    const b = new Browser()
    await login(b, env.a.url, sub, { remember: true })
    const stale = `sg-device=${b.cookies(env.a.url).get('sg-device') ?? ''}`
    // The session cookie is gone (a new browser session, say): the credential mints one and is rotated.
    const renewed = await b.fetch(`${env.a.url}/api/renew`, { headers: { accept: 'application/json', cookie: stale } })
    if (renewed.status !== 200 || !renewed.setCookies.some((c) => c.startsWith('sg-device='))) throw new Error(`no rotation (${renewed.status})`)
    const victim = await deviceOf(env, b, sub)
    if (victim.deviceOnly === stale) throw new Error('the credential did not change')
    await sleep(GRACE_MS + 150) // the stale copy is past its grace window now
    return {
      victim,
      // Someone else presents the stale copy: reuse.
      send: async () => await call(`${env.a.url}/api/steal`, { headers: { accept: 'application/json', cookie: stale } }),
      failed: storeUnavailable,
      succeeded: (t: Test, a: Answer) => {
        t.equal(a.status, 401, `the stale credential again is refused (got ${a.status} ${a.body.slice(0, 120)})`)
        t.ok(a.setCookies.some((c) => /^sg-device=;/.test(c)), 'and cleared')
      }
    }
  }
}

const env = await startEnv(t, { rememberMe: { ttl: '1h', rotationGrace: `${GRACE_MS / 1000}s` } })
const faults = [FAULTS.unreachable, FAULTS.stall, FAULTS.sigstop, FAULTS.noScripting, FAULTS.noPublish, FAULTS.noDel]

await t.test(reuse.name, async (t) => {
  await sweep(t, env, reuse)
  for (const f of faults) await t.test(`${reuse.name}: ${f.name}`, async (t) => { await faultRun(t, env, reuse, f) })
})
