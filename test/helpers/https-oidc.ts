/**
 * For a gateway configured with an https `publicUrl` while the test reaches it over plain http: an
 * OidcSource on the real IdP that uses the gateway's http callback URL (the one the test IdP has
 * registered) for the authorization request and the code exchange. Everything else is the real client.
 */
import { discoverOidc, type OidcClient } from '../../src/oidc/client.js'
import type { OidcSource } from '../../src/http/context.js'
import type { Stack } from './stack.js'

/** `stack` is read lazily: the source is made before startStack returns. */
export function httpCallbackOidc (stack: () => Stack): OidcSource {
  let client: OidcClient | undefined
  async function get (): Promise<OidcClient> {
    if (client !== undefined) return client
    const s = stack()
    const real = await discoverOidc(s.config.oidc)
    const callback = `${s.url}${s.config.authPrefix}/callback`
    client = {
      ...real,
      authorizationUrl: async (checks, _redirectUri, scopes) => await real.authorizationUrl(checks, callback, scopes),
      finishLogin: async (url, checks) => await real.finishLogin(new URL(`${url.pathname}${url.search}`, s.url), checks)
    }
    return client
  }
  return { get, current: () => client }
}
