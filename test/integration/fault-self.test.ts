/**
 * Fault injection on the user's own ways out: RP-initiated logout (`GET /auth/logout?sid=`), the devices
 * page's sign-out form (another device, and this device), and the own-sessions API
 * (`DELETE /auth/sessions/:id`). Every store step fails in turn, then Redis unreachable, a stall, SIGSTOP
 * and ACLs; each time the answer is 503 store_unavailable, the very same request sent again (same cookies,
 * same form) succeeds, and the signed-out session is refused on both replicas, by cookie and by device
 * credential, with its WebSockets closed, while the device that signed it out stays signed in.
 */
import t, { type Test } from 'tap'
import { FAULTS, call, faultRun, signIn, startEnv, storeUnavailable, sweep, user, type Answer, type Device, type Env, type LogoutPath } from '../helpers/fault-kit.js'

const rpLogout: LogoutPath = {
  name: 'RP-initiated logout',
  setup: async (env) => {
    const victim = await signIn(env, user('rp'))
    return {
      victim,
      send: async () => await call(`${env.a.url}/auth/logout?sid=${encodeURIComponent(victim.sid)}`, { headers: { cookie: victim.cookie } }),
      failed: storeUnavailable,
      succeeded: (t: Test, a: Answer) => {
        t.equal(a.status, 302, `the same logout again redirects (got ${a.status} ${a.body.slice(0, 120)})`)
        const loc = new URL(a.location ?? '/', env.a.url)
        t.equal(`${loc.origin}${loc.pathname}`, `${env.s.idp.issuer}/session/end`, `to the IdP's end-session endpoint (got ${a.location ?? 'none'})`)
      }
    }
  }
}

/** The CSRF token of the devices page form, as the page renders it for `d`. */
async function formToken (env: Env, d: Device): Promise<string> {
  const page = await call(`${env.a.url}/auth/devices`, { headers: { cookie: d.cookie, accept: 'text/html' } })
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1]
  if (page.status !== 200 || csrf === undefined) throw new Error(`no devices page form (${page.status})`)
  return csrf
}

const postForm = async (env: Env, actor: Device, id: string, csrf: string): Promise<Answer> =>
  await call(`${env.a.url}/auth/devices`, {
    method: 'POST',
    headers: { cookie: actor.cookie, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
    body: new URLSearchParams({ id, csrf }).toString()
  })

const devicesOther: LogoutPath = {
  name: 'devices page: sign out another device',
  setup: async (env) => {
    const sub = user('dpo')
    const victim = await signIn(env, sub)
    const actor = await signIn(env, sub)
    const csrf = await formToken(env, actor)
    return {
      victim,
      bystanders: [actor],
      send: async () => await postForm(env, actor, victim.sid, csrf),
      failed: storeUnavailable,
      succeeded: (t: Test, a: Answer) => {
        t.equal(a.status, 200, `the same form again answers 200 (got ${a.status})`)
        t.match(a.body, /The device was signed out\./, 'and says the device was signed out')
        t.notMatch(a.body, new RegExp(`data-device="${victim.sid}"`), 'the device is no longer listed')
      }
    }
  }
}

const devicesThis: LogoutPath = {
  name: 'devices page: sign out this device',
  setup: async (env) => {
    const victim = await signIn(env, user('dpt'))
    const csrf = await formToken(env, victim)
    return {
      victim,
      send: async () => await postForm(env, victim, victim.sid, csrf),
      failed: storeUnavailable,
      succeeded: (t: Test, a: Answer) => {
        t.equal(a.status, 303, `the same form again answers 303 (got ${a.status} ${a.body.slice(0, 120)})`)
        t.equal(a.location, '/', 'to the home page')
      }
    }
  }
}

const sessionsApi: LogoutPath = {
  name: 'own-sessions API: DELETE another device',
  setup: async (env) => {
    const sub = user('api')
    const victim = await signIn(env, sub)
    const actor = await signIn(env, sub)
    return {
      victim,
      bystanders: [actor],
      send: async () => await call(`${env.a.url}/auth/sessions/${encodeURIComponent(victim.sid)}`, { method: 'DELETE', headers: { cookie: actor.cookie, 'x-csrf': '1' } }),
      failed: storeUnavailable,
      succeeded: (t: Test, a: Answer) => { t.equal(a.status, 204, `the same DELETE again answers 204 (got ${a.status} ${a.body.slice(0, 120)})`) }
    }
  }
}

const env = await startEnv(t)
const faults = [FAULTS.unreachable, FAULTS.stall, FAULTS.sigstop, FAULTS.noScripting, FAULTS.noPublish, FAULTS.noDel]

for (const path of [rpLogout, devicesOther, devicesThis, sessionsApi]) {
  await t.test(path.name, async (t) => {
    await sweep(t, env, path)
    for (const f of faults) await t.test(`${path.name}: ${f.name}`, async (t) => { await faultRun(t, env, path, f) })
  })
}
