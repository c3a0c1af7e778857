/**
 * What the IdP cannot do that the operator may believe it does: said once in the log at start-up and
 * kept for `/readyz`, so nobody learns about a missing logout channel during an incident.
 */
import type { ServerMetadata } from 'openid-client'
import type { Config } from '../config/types.js'

/** Stable codes, one per finding. */
export type IdpWarningCode = 'no_backchannel_logout' | 'no_backchannel_session' | 'no_sid_in_id_token' | 'checkidp_with_offline_access'

export interface IdpWarning { code: IdpWarningCode, message: string }

/** Findings from the discovery document and the config alone. */
export function metadataWarnings (metadata: ServerMetadata, config: Pick<Config, 'oidc' | 'rememberMe'>): IdpWarning[] {
  const out: IdpWarning[] = []
  const m = metadata as ServerMetadata & { backchannel_logout_supported?: boolean, backchannel_logout_session_supported?: boolean }
  if (m.backchannel_logout_supported !== true) {
    out.push({ code: 'no_backchannel_logout', message: 'the IdP does not advertise backchannel_logout_supported: a logout at the IdP may never reach the gateway (sessions end at session.ttl, remembered devices only with rememberMe.checkIdp)' })
  } else if (m.backchannel_logout_session_supported !== true) {
    out.push({ code: 'no_backchannel_session', message: 'the IdP does not advertise backchannel_logout_session_supported: its logout tokens may carry only sub, which signs the user out on every device' })
  }
  if (config.rememberMe.checkIdp && config.oidc.scopes.includes('offline_access')) {
    out.push({ code: 'checkidp_with_offline_access', message: 'rememberMe.checkIdp with the offline_access scope: offline refresh tokens outlive the IdP session by design, so the check cannot notice an IdP logout; drop offline_access from oidc.scopes' })
  }
  return out
}

export const NO_SID_WARNING: IdpWarning = {
  code: 'no_sid_in_id_token',
  message: 'the IdP put no sid in the ID token: back-channel logout tokens naming a session cannot be matched, only sub-wide logouts work'
}

/** Collects warnings, logging each code once. */
export class IdpWarnings {
  private readonly seen = new Map<IdpWarningCode, IdpWarning>()
  constructor (private readonly log: (w: IdpWarning) => void) {}
  add (warnings: readonly IdpWarning[]): void {
    for (const w of warnings) {
      if (this.seen.has(w.code)) continue
      this.seen.set(w.code, w)
      this.log(w)
    }
  }

  list (): IdpWarning[] { return [...this.seen.values()] }
}
