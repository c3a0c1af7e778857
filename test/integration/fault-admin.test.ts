/**
 * Fault injection on the help-desk API: `DELETE /admin/users/:sub/sessions` and `DELETE /admin/sessions/:id`.
 * Every store step fails in turn, then Redis unreachable, a stall, SIGSTOP and ACLs; each time the answer
 * is 503 store_unavailable, the very same DELETE sent again answers 204, and the revoked sessions are
 * refused on both replicas, by cookie and by device credential, with their WebSockets closed.
 */
import t, { type Test } from 'tap'
import { FAULTS, call, faultRun, signIn, startEnv, storeUnavailable, sweep, user, type Env, type LogoutPath } from '../helpers/fault-kit.js'

const del = async (env: Env, path: string): ReturnType<typeof call> =>
  await call(`${env.a.adminUrl}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${env.s.adminToken}` } })

const noContent = (t: Test, a: { status: number, body: string }): void => {
  t.equal(a.status, 204, `the same DELETE again answers 204 (got ${a.status} ${a.body.slice(0, 120)})`)
}

const adminUser: LogoutPath = {
  name: 'admin: all sessions of a user',
  setup: async (env) => {
    const victim = await signIn(env, user('adu'))
    return { victim, send: async () => await del(env, `/admin/users/${encodeURIComponent(victim.sub)}/sessions`), failed: storeUnavailable, succeeded: noContent }
  }
}

const adminSession: LogoutPath = {
  name: 'admin: one session',
  setup: async (env) => {
    const victim = await signIn(env, user('ads'))
    return { victim, send: async () => await del(env, `/admin/sessions/${encodeURIComponent(victim.sid)}`), failed: storeUnavailable, succeeded: noContent }
  }
}

const env = await startEnv(t)
const faults = [FAULTS.unreachable, FAULTS.stall, FAULTS.sigstop, FAULTS.noScripting, FAULTS.noPublish, FAULTS.noDel]

for (const path of [adminUser, adminSession]) {
  await t.test(path.name, async (t) => {
    await sweep(t, env, path)
    for (const f of faults) await t.test(`${path.name}: ${f.name}`, async (t) => { await faultRun(t, env, path, f) })
  })
}
