/**
 * Fault injection on the IdP's logout channels: back-channel by `sid`, back-channel by `sub` only, and
 * front-channel (`iss` + `sid`). Every store step fails in turn, then Redis unreachable, a stall, SIGSTOP
 * and ACLs; each time the answer is the documented failure, the IdP's retry of the very same logout token
 * (or front-channel URL) succeeds, and no revoked session is live on either replica afterwards.
 */
import t, { type Test } from 'tap'
import { logoutToken, postLogout } from '../helpers/logout-token.js'
import { FAULTS, call, faultRun, signIn, startEnv, sweep, user, type Answer, type Env, type LogoutPath } from '../helpers/fault-kit.js'

/** The back-channel answer as an Answer (postLogout parses JSON). */
async function post (env: Env, token: string): Promise<Answer> {
  const r = await postLogout(env.a.url, token)
  return { status: r.status, body: JSON.stringify(r.body), location: null, setCookies: [] }
}

function temporarilyUnavailable (t: Test, a: Answer): void {
  t.equal(a.status, 400, `answered 400 (got ${a.status} ${a.body.slice(0, 160)})`)
  t.equal(JSON.parse(a.body || '{}').error, 'temporarily_unavailable', 'error temporarily_unavailable, so the IdP retries')
}

const accepted = (t: Test, a: Answer): void => { t.equal(a.status, 200, `the retry of the same token is accepted (got ${a.status} ${a.body.slice(0, 160)})`) }

const sign = async (env: Env, claims: Record<string, unknown>): Promise<string> =>
  await logoutToken(env.s.idp.signingKey, env.s.idp.issuer, 'gateway', { claims })

const bySid: LogoutPath = {
  name: 'back-channel by sid',
  setup: async (env) => {
    const victim = await signIn(env, user('bcsid'))
    const token = await sign(env, { sid: victim.idpSid, sub: victim.sub })
    return { victim, send: async () => await post(env, token), failed: temporarilyUnavailable, succeeded: accepted }
  }
}

const bySub: LogoutPath = {
  name: 'back-channel by sub only',
  setup: async (env) => {
    const victim = await signIn(env, user('bcsub'))
    const token = await sign(env, { sub: victim.sub })
    return { victim, send: async () => await post(env, token), failed: temporarilyUnavailable, succeeded: accepted }
  }
}

const frontChannel: LogoutPath = {
  name: 'front-channel (iss + sid)',
  setup: async (env) => {
    const victim = await signIn(env, user('fc'))
    const url = `${env.a.url}/auth/frontchannel-logout?${new URLSearchParams({ iss: env.s.idp.issuer, sid: victim.idpSid }).toString()}`
    return {
      victim,
      send: async () => await call(url),
      failed: (t, a) => {
        t.equal(a.status, 503, `answered 503 (got ${a.status})`)
        t.match(a.body, /store_unavailable/)
      },
      succeeded: (t, a) => { t.equal(a.status, 200, `the IdP's reload of the frame succeeds (got ${a.status})`) }
    }
  }
}

const env = await startEnv(t)
const faults = [FAULTS.unreachable, FAULTS.stall, FAULTS.sigstop, FAULTS.noScripting, FAULTS.noPublish, FAULTS.noDel]

for (const path of [bySid, bySub, frontChannel]) {
  await t.test(path.name, async (t) => {
    await sweep(t, env, path)
    for (const f of faults) await t.test(`${path.name}: ${f.name}`, async (t) => { await faultRun(t, env, path, f) })
  })
}
