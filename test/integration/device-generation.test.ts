/**
 * Older-generation detection: a thief who copied the device cookie (C0) and renewed twice pushed C0 out of
 * the record's "previous" slot. The device cookie carries its generation and a MAC tag over it, so when the
 * owner presents C0 later it is recognised as a credential the gateway issued before: reuse, the device is
 * revoked. A forged cookie (tag that does not verify) or a generation not older than the record's never
 * revokes anything. Memory store and Redis.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { Browser, login } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis-server.js'
import { hashCredential, newCredential } from '../../src/core/device.js'
import { KeyRing, mac } from '../../src/core/sealed-cookie.js'

const api = { accept: 'application/json' }
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url')

/** The tag the gateway puts on a device cookie, made here under `ring` (the gateway's, or a foreign one). */
function tagOf (ring: KeyRing, sid: string, g: number, credential: string): string {
  return Buffer.from(mac(ring, 'device-gen', `${sid}.${g}.${hashCredential(credential)}`), 'base64url').subarray(0, 16).toString('base64url')
}

/** Renews from the device cookie alone (no session cookie); the status and the new device cookie, if any. */
async function renew (s: Stack, device: string): Promise<{ status: number, next: string | undefined }> {
  const res = await fetch(`${s.url}/api/x`, { headers: { ...api, cookie: `sg-device=${device}` } })
  const line = res.headers.getSetCookie().find((c) => c.startsWith('sg-device='))
  const next = line?.split(';')[0]?.slice('sg-device='.length)
  return { status: res.status, next: next === '' ? undefined : next }
}

async function metric (s: Stack, re: RegExp): Promise<number> {
  const text = await (await fetch(`${s.adminUrl}/metrics`)).text()
  const m = re.exec(text)
  return m === null ? 0 : Number(m[1])
}
const REUSE_DETECTED = /^sessiongate_device_reuse_detected_total (\d+)/m
const RENEWAL_REUSE = /^sessiongate_renewals_total\{result="reuse"\} (\d+)/m

async function signIn (s: Stack, user: string): Promise<{ sid: string, device: string }> {
  const b = new Browser()
  await login(b, s.url, user, { remember: true })
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  return { sid, device: b.cookies(s.url).get('sg-device')! }
}

/**
 * The thief renews twice with a copy of C0: the record is at generation 2, C0 is in no slot any more. Then
 * (unless `inFlight`) the last rotation's grace window (1 s here) passes, as it does before an owner returns.
 */
async function stealAndRenewTwice (t: Test, s: Stack, c0: string, inFlight = false): Promise<string> {
  const r1 = await renew(s, c0)
  t.equal(r1.status, 200, 'the copy renews (C1)')
  const r2 = await renew(s, r1.next!)
  t.equal(r2.status, 200, 'and again (C2)')
  t.match(r2.next, /\.2\.[A-Za-z0-9_-]{22}$/, 'the cookie carries generation 2')
  if (!inFlight) await new Promise((resolve) => setTimeout(resolve, 1100))
  return r2.next!
}

function suite (name: string, opts: (t: Test) => Promise<{ redisUrl?: string }>): void {
  t.test(name, async (t) => {
    const s = await startStack(t, { ...(await opts(t)), config: { rememberMe: { ttl: '1h', rotationGrace: '1s' } } })
    const ring = s.gateway.ctx.ring

    t.test('a new device cookie has five parts: sid, credential, user, generation 0, tag', async (t) => {
      const { sid, device } = await signIn(s, 'nora')
      const [dsid, credential, user, g, tag, ...rest] = device.split('.')
      t.equal(dsid, sid)
      t.equal(user, b64('nora'))
      t.equal(g, '0')
      t.equal(tag, tagOf(ring, sid, 0, credential!), 'tag = HMAC under the current key over sid.g.hash(credential), 16 bytes')
      t.same(rest, [])
    })

    t.test('the owner presenting C0 after the thief renewed twice revokes the device', async (t) => {
      const { sid, device: c0 } = await signIn(s, 'olive')
      const [reuseBefore, renewalBefore] = [await metric(s, REUSE_DETECTED), await metric(s, RENEWAL_REUSE)]
      const logsBefore = s.logs.length
      const c2 = await stealAndRenewTwice(t, s, c0)
      const owner = await renew(s, c0)
      t.equal(owner.status, 401, 'the owner\'s old credential is refused')
      t.equal(await s.gateway.ctx.store.getSession('olive', sid), null, 'and the device is revoked')
      t.equal((await renew(s, c2)).status, 401, 'the thief\'s current cookie no longer renews')
      t.ok(s.logs.slice(logsBefore).some((l) => l.includes('device credential reuse detected') && l.includes(sid)), 'reuse logged')
      t.equal(await metric(s, REUSE_DETECTED), reuseBefore + 1, 'reuse counted')
      t.equal(await metric(s, RENEWAL_REUSE), renewalBefore + 1, 'renewals_total{result="reuse"} counted')
    })

    t.test('an older credential inside the last rotation\'s grace window (a request in flight all along) is refused, not reuse', async (t) => {
      // A wide window of its own, so a slow machine cannot push the owner's request past it.
      const w = await startStack(t, { ...(await opts(t)), config: { rememberMe: { ttl: '1h', rotationGrace: '60s' } } })
      const { sid, device: c0 } = await signIn(w, 'paula')
      const reuseBefore = await metric(w, REUSE_DETECTED)
      const c2 = await stealAndRenewTwice(t, w, c0, true)
      t.equal((await renew(w, c0)).status, 401, 'refused')
      t.ok(await w.gateway.ctx.store.getSession('paula', sid), 'the device is still there')
      t.equal(await metric(w, REUSE_DETECTED), reuseBefore, 'no reuse counted')
      t.equal((await renew(w, c2)).status, 200, 'its current credential still renews')
    })

    t.test('a forged cookie with an old generation and a wrong tag is refused and revokes nothing', async (t) => {
      const { sid, device: c0 } = await signIn(s, 'pete')
      const reuseBefore = await metric(s, REUSE_DETECTED)
      const c2 = await stealAndRenewTwice(t, s, c0)
      const cred = newCredential()
      const forged = [
        `${sid}.${cred}.${b64('pete')}.0.${randomBytes(16).toString('base64url')}`, // random tag
        `${sid}.${cred}.${b64('pete')}.0.${tagOf(new KeyRing([randomBytes(32)]), sid, 0, cred)}`, // key not in the ring
        // the genuine C0 tag, moved onto another credential
        `${sid}.${cred}.${b64('pete')}.0.${c0.split('.')[4]!}`
      ]
      for (const f of forged) t.equal((await renew(s, f)).status, 401, 'refused')
      t.ok(await s.gateway.ctx.store.getSession('pete', sid), 'the device is still there')
      t.equal(await metric(s, REUSE_DETECTED), reuseBefore, 'no reuse counted')
      t.equal((await renew(s, c2)).status, 200, 'its current credential still renews')
    })

    t.test('a valid tag with a generation not older than the record\'s and an unknown credential revokes nothing', async (t) => {
      const { sid, device: c0 } = await signIn(s, 'quinn')
      const c2 = await stealAndRenewTwice(t, s, c0)
      for (const g of [2, 3, 1000]) {
        const cred = newCredential()
        t.equal((await renew(s, `${sid}.${cred}.${b64('quinn')}.${g}.${tagOf(ring, sid, g, cred)}`)).status, 401, `g=${g} refused`)
      }
      t.ok(await s.gateway.ctx.store.getSession('quinn', sid), 'the device is still there')
      t.equal((await renew(s, c2)).status, 200, 'its current credential still renews')
    })

    t.test('a three-part cookie of the previous release still renews and comes back in the five-part form', async (t) => {
      const { sid, device } = await signIn(s, 'rosa')
      const old = device.split('.').slice(0, 3).join('.')
      const r = await renew(s, old)
      t.equal(r.status, 200, 'renews')
      const [dsid, cred, user, g, tag, ...rest] = r.next!.split('.')
      t.equal(dsid, sid)
      t.equal(user, b64('rosa'))
      t.equal(g, '1', 'one rotation: generation 1')
      t.equal(tag, tagOf(ring, sid, 1, cred!))
      t.same(rest, [])
      t.equal((await renew(s, r.next!)).status, 200, 'the new cookie renews')
    })

    t.test('malformed generation or tag parts are refused as malformed', async (t) => {
      const { sid, device } = await signIn(s, 'sam')
      const [, cred, user, , tag] = device.split('.')
      const before = await metric(s, /^sessiongate_renewals_total\{result="malformed"\} (\d+)/m)
      const bad = [
        `${sid}.${cred!}.${user!}.00.${tag!}`, `${sid}.${cred!}.${user!}.-1.${tag!}`, `${sid}.${cred!}.${user!}.1e3.${tag!}`,
        `${sid}.${cred!}.${user!}.99999999999999999.${tag!}`, `${sid}.${cred!}.${user!}.0.${tag!}x`,
        `${sid}.${cred!}.${user!}.0.${tag!.slice(0, -1)}`, `${sid}.${cred!}.${user!}.0`, `${sid}.${cred!}.${user!}.0.${tag!}.0`
      ]
      for (const v of bad) t.equal((await renew(s, v)).status, 401, v.slice(66))
      t.equal(await metric(s, /^sessiongate_renewals_total\{result="malformed"\} (\d+)/m), before + bad.length, 'each counted as malformed')
      t.ok(await s.gateway.ctx.store.getSession('sam', sid), 'the device is untouched')
    })
  })
}

suite('memory store', async () => ({}))
suite('redis store', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  return { redisUrl: redis.url }
})
