/**
 * Every logout and revocation path, as the fault tests drive it (see fault-kit.ts): how to sign in the
 * session it ends, the very same request it sends each time, and its documented failure and success.
 */
import { Browser, login } from './browser.js'
import { logoutToken, postLogout } from './logout-token.js'
import { call, deviceOf, signIn, sleep, storeUnavailable, user, type Answer, type Check, type Device, type Env, type LogoutPath } from './fault-kit.js'

// --- the IdP's channels ---

async function post (env: Env, token: string): Promise<Answer> {
  const r = await postLogout(env.a.url, token)
  return { status: r.status, body: JSON.stringify(r.body), location: null, setCookies: [] }
}

/** Back-channel failure: 400 temporarily_unavailable (README section "Public port"), so the IdP retries. */
function temporarilyUnavailable (t: Check, a: Answer): void {
  t.equal(a.status, 400, `answered 400 (got ${a.status} ${a.body.slice(0, 160)})`)
  t.equal(JSON.parse(a.body || '{}').error, 'temporarily_unavailable', 'error temporarily_unavailable, so the IdP retries')
}

const accepted = (t: Check, a: Answer): void => { t.equal(a.status, 200, `the retry of the same token is accepted (got ${a.status} ${a.body.slice(0, 160)})`) }

/**
 * The jti is recorded once the logout is done (the last command). Its reply lost: the logout stands (200),
 * and the same token again is a replay.
 */
const jtiRecorded = {
  after: ['reply:SET'],
  again: (t: Check, a: Answer): void => {
    t.equal(a.status, 400, `the same token again is refused (got ${a.status} ${a.body.slice(0, 160)})`)
    t.match(a.body, /replay/, 'as a replay')
  }
}

const sign = async (env: Env, claims: Record<string, unknown>): Promise<string> =>
  await logoutToken(env.s.idp.signingKey, env.s.idp.issuer, 'gateway', { claims })

export const backchannelSid: LogoutPath = {
  name: 'back-channel by sid',
  setup: async (env) => {
    const victim = await signIn(env, user('bcsid'))
    const token = await sign(env, { sid: victim.idpSid, sub: victim.sub })
    return { victim, send: async () => await post(env, token), failed: temporarilyUnavailable, succeeded: accepted, done: jtiRecorded }
  }
}

export const backchannelSub: LogoutPath = {
  name: 'back-channel by sub only',
  setup: async (env) => {
    const victim = await signIn(env, user('bcsub'))
    const token = await sign(env, { sub: victim.sub })
    return { victim, send: async () => await post(env, token), failed: temporarilyUnavailable, succeeded: accepted, done: jtiRecorded }
  }
}

export const frontchannel: LogoutPath = {
  name: 'front-channel (iss + sid)',
  setup: async (env) => {
    const victim = await signIn(env, user('fc'))
    const url = `${env.a.url}/auth/frontchannel-logout?${new URLSearchParams({ iss: env.s.idp.issuer, sid: victim.idpSid }).toString()}`
    return {
      victim,
      send: async () => await call(url),
      failed: storeUnavailable,
      succeeded: (t, a) => { t.equal(a.status, 200, `the IdP's reload of the frame succeeds (got ${a.status})`) }
    }
  }
}

export const frontchannelCookie: LogoutPath = {
  name: 'front-channel (no parameters: the session cookie)',
  setup: async (env) => {
    const victim = await signIn(env, user('fck'))
    return {
      victim,
      // Framed by the IdP's page (the parameterless form revokes nothing for a request from elsewhere).
      send: async () => await call(`${env.a.url}/auth/frontchannel-logout`, { headers: { cookie: victim.cookie, referer: `${env.s.idp.issuer}/session/end` } }),
      failed: storeUnavailable,
      succeeded: (t, a) => { t.equal(a.status, 200, `the same request again succeeds (got ${a.status})`) }
    }
  }
}

// --- the help desk ---

const del = async (env: Env, path: string): Promise<Answer> =>
  await call(`${env.a.adminUrl}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${env.s.adminToken}` } })

/** A DELETE after the session was revoked and its indexes dropped: it no longer exists. */
const goneAlready = {
  after: [] as string[],
  again: (t: Check, a: Answer): void => { t.ok(a.status === 204 || a.status === 404, `the same DELETE again: 204 or 404 (got ${a.status} ${a.body.slice(0, 120)})`) }
}

const noContent = (t: Check, a: Answer): void => {
  t.equal(a.status, 204, `the same DELETE again answers 204 (got ${a.status} ${a.body.slice(0, 120)})`)
}

export const adminUser: LogoutPath = {
  name: 'admin: all sessions of a user',
  setup: async (env) => {
    const victim = await signIn(env, user('adu'))
    return { victim, send: async () => await del(env, `/admin/users/${encodeURIComponent(victim.sub)}/sessions`), failed: storeUnavailable, succeeded: noContent }
  }
}

export const adminSession: LogoutPath = {
  name: 'admin: one session',
  setup: async (env) => {
    const victim = await signIn(env, user('ads'))
    return { victim, send: async () => await del(env, `/admin/sessions/${encodeURIComponent(victim.sid)}`), failed: storeUnavailable, succeeded: noContent, done: goneAlready }
  }
}

// --- the user ---

export const rpLogout: LogoutPath = {
  name: 'RP-initiated logout',
  setup: async (env) => {
    const victim = await signIn(env, user('rp'))
    return {
      victim,
      send: async () => await call(`${env.a.url}/auth/logout?sid=${encodeURIComponent(victim.sid)}`, { headers: { cookie: victim.cookie } }),
      failed: storeUnavailable,
      succeeded: (t, a) => {
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

export const devicesOther: LogoutPath = {
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
      succeeded: (t, a) => {
        t.equal(a.status, 200, `the same form again answers 200 (got ${a.status})`)
        t.match(a.body, /The device was signed out\./, 'and says the device was signed out')
        t.notMatch(a.body, `data-device="${victim.sid}"`, 'the device is no longer listed')
      }
    }
  }
}

export const devicesThis: LogoutPath = {
  name: 'devices page: sign out this device',
  setup: async (env) => {
    const victim = await signIn(env, user('dpt'))
    const csrf = await formToken(env, victim)
    return {
      victim,
      send: async () => await postForm(env, victim, victim.sid, csrf),
      failed: storeUnavailable,
      succeeded: (t, a) => {
        t.equal(a.status, 303, `the same form again answers 303 (got ${a.status} ${a.body.slice(0, 120)})`)
        t.equal(a.location, '/', 'to the home page')
      }
    }
  }
}

export const sessionsApi: LogoutPath = {
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
      succeeded: (t, a) => { t.equal(a.status, 204, `the same DELETE again answers 204 (got ${a.status} ${a.body.slice(0, 120)})`) },
      done: goneAlready
    }
  }
}

// --- reuse detection ---

/** rememberMe.rotationGrace of the reuse path's gateways (its config: REUSE_CONFIG). */
const GRACE_MS = 1000
export const REUSE_CONFIG = { rememberMe: { ttl: '1h', rotationGrace: `${GRACE_MS / 1000}s` } }

export const reuseDetection: LogoutPath = {
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
      succeeded: (t, a) => {
        t.equal(a.status, 401, `the stale credential again is refused (got ${a.status} ${a.body.slice(0, 120)})`)
        t.ok(a.setCookies.some((c) => /^sg-device=;/.test(c)), 'and cleared')
      }
    }
  }
}
