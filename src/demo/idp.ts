/**
 * An embedded OpenID Provider (panva's oidc-provider) for the demo and the test suite.
 * Any user name and any password sign in; consent is implied for the registered client.
 * Development only: oidc-provider is a dev dependency and is loaded on demand.
 */
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import type { ClientMetadata, Configuration, default as ProviderType } from 'oidc-provider'

export interface IdpOptions {
  /** Advertise and perform back-channel logout (default true); false plays an IdP without it. */
  backchannelLogout?: boolean
  /** 0 picks a free port. */
  port?: number
  host?: string
  /** Public host name in the issuer URL (default: localhost). */
  hostname?: string
  clients: ClientMetadata[]
  /** Access token lifetime in seconds (default 600). */
  accessTokenTtl?: number
  /**
   * API audiences (resource indicators, RFC 8707) for which the IdP issues JWT access tokens (RFC 9068,
   * RS256) when a client asks with `resource=`, by authorization code or client credentials; each with the
   * scope it grants. User tokens carry the IdP session's `sid` and Keycloak-shaped claims. Off by default
   * (the demo issues opaque tokens only).
   */
  resourceServers?: Record<string, { scope: string }>
}

export interface RunningIdp {
  issuer: string
  port: number
  provider: ProviderType
  /** The HTTP server (tests count the requests the IdP gets). */
  server: Server
  /** The private signing key (tests sign their own logout tokens with it). */
  signingKey: JWK & { kid: string }
  close (): Promise<void>
}

/**
 * Profile claims of a demo account: derived from the login name. Prefixes shape them like real IdPs do,
 * for the tests: `kc-*` carries Keycloak's nested roles (50 realm roles, like a large Keycloak realm),
 * `unverified-*` an unverified email, `strgroups-*` groups as one space/comma separated string.
 */
function accountClaims (id: string): Record<string, unknown> {
  const keycloak = id.startsWith('kc-')
    ? {
        realm_access: { roles: [...Array.from({ length: 49 }, (_, i) => `realm-role-${String(i).padStart(2, '0')}`), id.includes('admin') ? 'kc-admin' : 'kc-user'] },
        resource_access: { app: { roles: ['viewer'] } },
        department: id.includes('eng') ? 'eng' : 'sales'
      }
    : {}
  return {
    sub: id,
    email: id.includes('@') ? id : `${id}@example.com`,
    email_verified: !id.startsWith('unverified-'),
    ...keycloak,
    preferred_username: id,
    name: id.charAt(0).toUpperCase() + id.slice(1),
    // A user named many-groups-* belongs to 150 groups: enough to make the session cookie span chunks;
    // huge-groups-* belongs to 600: more than the gateway's cookies can carry (it refuses, saying why).
    // Names are opaque ids (as Entra ID sends), so the gateway's compression cannot shrink them away.
    groups: id.startsWith('many-groups') || id.startsWith('huge-groups')
      ? Array.from({ length: id.startsWith('huge') ? 600 : 150 }, (_, i) => `group-${createHash('sha256').update(String(i)).digest('base64url').slice(0, 28)}`)
      : ['demo-users', id === 'admin' ? 'admins' : 'staff'],
    ...(id.startsWith('strgroups-') ? { groups: 'alpha beta,gamma' } : {})
  }
}

/** Starts the IdP on `port` and resolves once it listens. */
export async function startIdp (opts: IdpOptions): Promise<RunningIdp> {
  const { default: Provider, errors } = await import('oidc-provider')
  const resourceServers = opts.resourceServers
  const host = opts.host ?? '127.0.0.1'
  const server: Server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as AddressInfo).port
  const issuer = `http://${opts.hostname ?? 'localhost'}:${port}`

  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'demo-rs256', alg: 'RS256', use: 'sig' }

  const configuration: Configuration = {
    clients: opts.clients,
    jwks: { keys: [signingKey] },
    cookies: { keys: ['demo-idp-cookie-key-not-a-secret'] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'realm_access', 'resource_access', 'department'],
      groups: ['groups']
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ ...accountClaims(id), sub: id }) }),
    features: {
      devInteractions: { enabled: true },
      backchannelLogout: { enabled: opts.backchannelLogout ?? true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
      ...(resourceServers !== undefined
        ? {
            clientCredentials: { enabled: true },
            resourceIndicators: {
              enabled: true,
              useGrantedResource: async () => true,
              getResourceServerInfo: async (_ctx, indicator) => {
                const rs = resourceServers[indicator]
                if (rs === undefined) throw new errors.InvalidTarget()
                return { scope: rs.scope, audience: indicator, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }
              }
            }
          }
        : {})
    },
    // JWT access tokens of a user carry what Keycloak's do: the IdP session's sid, roles, email, groups.
    ...(resourceServers !== undefined
      ? {
          extraTokenClaims: async (_ctx, token) => {
            const t = token as unknown as { accountId?: string, sid?: string }
            if (t.accountId === undefined) return undefined
            const { sub: _sub, name: _name, ...claims } = accountClaims(t.accountId)
            return { ...claims, ...(t.sid !== undefined ? { sid: t.sid } : {}) }
          }
        }
      : {}),
    // Consent is implied for registered clients: the demo is about sessions, not consent screens.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId)
      if (grantId !== undefined) return await ctx.oidc.provider.Grant.find(grantId)
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! })
      grant.addOIDCScope('openid offline_access profile email groups')
      for (const [resource, { scope }] of Object.entries(resourceServers ?? {})) grant.addResourceScope(resource, scope)
      await grant.save()
      return grant
    },
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: { AccessToken: opts.accessTokenTtl ?? 600, IdToken: 600, Session: 86400, Grant: 86400, RefreshToken: 86400 },
    // oidc-provider refuses outgoing calls to loopback (an SSRF guard); the demo's gateway lives there.
    fetch: async (url, options) => {
      const { dispatcher: _dropped, ...rest } = options as RequestInit & { dispatcher?: unknown }
      return await fetch(url, rest)
    }
  }
  const provider = new Provider(issuer, configuration)
  provider.proxy = true
  server.on('request', provider.callback())

  return {
    issuer,
    port,
    provider,
    server,
    signingKey,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
