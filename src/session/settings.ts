/**
 * The session service's settings, read from the gateway's config.
 */
import type { Config } from '../config/types.js'
import { claimPathsOf } from '../core/authorize.js'
import type { SessionSettings } from './deps.js'

export function sessionSettings (config: Config): SessionSettings {
  return {
    session: config.session,
    rememberMe: config.rememberMe,
    failMode: config.store.failMode,
    keepsAccessToken: config.routes.some((r) => r.forwardAccessToken),
    redirectUri: `${config.publicUrl}${config.authPrefix}/callback`,
    scopes: config.oidc.scopes,
    postLogoutRedirectUri: `${config.publicUrl}/`,
    identity: config.identity,
    // The claims a session keeps: those that rules and header mappings read, nothing more (cookie size).
    keptPaths: [...config.routes.flatMap((r) => claimPathsOf(r.authorize ?? [])), ...Object.values(config.identity.headers)]
  }
}
