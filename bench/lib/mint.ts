/**
 * Mints sessions the way a finished login does (auth-routes createSession): a store record with a device
 * credential hash, and a sealed session cookie with the gateway's keys. Used where a scenario needs many
 * sessions; each bench run also signs in once for real through the IdP and copies that record's fields
 * (sealed tokens, profile) so the minted records look exactly like real ones.
 */
import { KeyRing, seal, splitCookie } from '../../src/core/sealed-cookie.js'
import { formatDeviceCookie, hashCredential, newCredential, newSessionId } from '../../src/core/device.js'
import { issueSession, type ProfileClaims } from '../../src/core/session.js'
import { SESSION_PURPOSE } from '../../src/http/gate.js'
import type { Config } from '../../src/config/types.js'
import type { SessionRecord, Store } from '../../src/store/store.js'

export interface Minted {
  sub: string
  sid: string
  idpSid?: string
  /** `Cookie` header value carrying the session cookie. */
  session: string
  /** `sg-device` cookie value. */
  device: string
}

export class Minter {
  private readonly ring: KeyRing
  private epoch: string | undefined

  constructor (private readonly config: Config, private readonly store: Store, private readonly template: SessionRecord, private readonly profile: ProfileClaims) {
    this.ring = new KeyRing(config.session.keys)
  }

  /** Creates one session (record + cookies) for `sub`. */
  async session (sub: string, opts: { idpSid?: string, rememberMe?: boolean } = {}): Promise<Minted> {
    this.epoch ??= await this.store.epoch()
    const now = Math.floor(Date.now() / 1000)
    const sid = newSessionId()
    const credential = newCredential()
    const rememberMe = opts.rememberMe ?? true
    const lifetime = rememberMe ? this.config.rememberMe.ttl : this.config.session.absoluteTtl
    const t = this.template
    const version = await this.store.createSession({
      sid,
      sub,
      iss: t.iss,
      ...(opts.idpSid !== undefined ? { idpSid: opts.idpSid } : {}),
      createdAt: now * 1000,
      lastSeenAt: now * 1000,
      userAgent: t.userAgent,
      ip: t.ip,
      rememberMe,
      expiresAt: (now + lifetime) * 1000,
      credHash: hashCredential(credential),
      ...(t.tokens !== undefined ? { tokens: t.tokens } : {}),
      // A login indexes the user's email (one address per user here, like the bulk loader's).
      ...(t.email !== undefined ? { email: `${sub}@example.com` } : {})
    }, Math.max(this.config.rememberMe.ttl, this.config.session.absoluteTtl) + this.config.session.ttl)
    const claims = issueSession({
      sid,
      sub,
      iss: t.iss,
      ...(opts.idpSid !== undefined ? { idpSid: opts.idpSid } : {}),
      ver: version,
      epoch: this.epoch,
      authTime: now,
      rememberMe,
      profile: this.profile,
      loginAt: now
    }, now, this.config.session.ttl, this.config.session.absoluteTtl)
    const parts = splitCookie('sg', seal(this.ring, SESSION_PURPOSE, claims))
    return {
      sub,
      sid,
      ...(opts.idpSid !== undefined ? { idpSid: opts.idpSid } : {}),
      session: parts.map((p) => `${p.name}=${p.value}`).join('; '),
      device: formatDeviceCookie(sid, credential, sub)
    }
  }

  /** `count` sessions, `concurrency` at a time. */
  async many (count: number, make: (i: number) => { sub: string, idpSid?: string }, concurrency = 64): Promise<Minted[]> {
    const out: Minted[] = new Array(count)
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const m = make(i)
        out[i] = await this.session(m.sub, m.idpSid !== undefined ? { idpSid: m.idpSid } : {})
      }
    }))
    return out
  }
}
