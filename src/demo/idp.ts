/**
 * An embedded OpenID Provider (panva's oidc-provider) for the demo and the test suite.
 * Any user name and any password sign in; consent is implied for the registered client.
 * Development only: oidc-provider is a dev dependency and is loaded on demand.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import type { ClientMetadata, Configuration, default as ProviderType } from 'oidc-provider'

export interface IdpOptions {
  /** 0 picks a free port. */
  port?: number
  host?: string
  /** Public host name in the issuer URL (default: localhost). */
  hostname?: string
  clients: ClientMetadata[]
  /** Access token lifetime in seconds (default 600). */
  accessTokenTtl?: number
}

export interface RunningIdp {
  issuer: string
  port: number
  provider: ProviderType
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
    groups: id.startsWith('many-groups') || id.startsWith('huge-groups')
      ? Array.from({ length: id.startsWith('huge') ? 600 : 150 }, (_, i) => `group-with-a-long-name-${String(i).padStart(3, '0')}`)
      : ['demo-users', id === 'admin' ? 'admins' : 'staff'],
    ...(id.startsWith('strgroups-') ? { groups: 'alpha beta,gamma' } : {})
  }
}

/** Starts the IdP on `port` and resolves once it listens. */
export async function startIdp (opts: IdpOptions): Promise<RunningIdp> {
  const { default: Provider } = await import('oidc-provider')
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
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true }
    },
    // Consent is implied for registered clients: the demo is about sessions, not consent screens.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId)
      if (grantId !== undefined) return await ctx.oidc.provider.Grant.find(grantId)
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! })
      grant.addOIDCScope('openid offline_access profile email groups')
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
    signingKey,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
