/**
 * `npm start` without SG_CONFIG: the embedded IdP on :8081, the demo app on :8082 and the gateway on
 * :8080 (admin :9090) with the in-memory store, in one process. No Redis needed.
 */
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { loadConfig } from '../config/loader.js'
import type { Config } from '../config/types.js'
import { buildGateway, type Gateway } from '../app.js'
import { startIdp, type RunningIdp } from './idp.js'
import { startDemoUpstream, type RunningUpstream } from './upstream.js'

export const DEMO_CONFIG = fileURLToPath(new URL('../../config/demo.yaml', import.meta.url))

export interface Demo { gateway: Gateway, idp: RunningIdp, upstream: RunningUpstream, adminToken: string, close (): Promise<void> }

export interface DemoPorts { gateway: number, idp: number, upstream: number, admin: number }

/** Starts the three parts of the demo; `ports` default to the contract's 8080/8081/8082/9090. */
export async function startDemo (opts: { ports?: Partial<DemoPorts>, logger?: Logger, adjust?: (config: Config) => void } = {}): Promise<Demo> {
  const ports: DemoPorts = { gateway: 8080, idp: 8081, upstream: 8082, admin: 9090, ...opts.ports }
  const env = {
    SG_ADMIN_TOKEN: randomBytes(18).toString('base64url'),
    SG_CLIENT_SECRET: randomBytes(24).toString('base64url'),
    SG_SESSION_KEY: randomBytes(32).toString('base64url')
  }
  const config = loadConfig(DEMO_CONFIG, env)
  config.publicUrl = `http://localhost:${ports.gateway}`
  config.listen.port = ports.gateway
  config.admin.listen.port = ports.admin
  config.oidc.issuer = `http://localhost:${ports.idp}`
  config.routes = config.routes.map((r) => ({ ...r, upstream: `http://127.0.0.1:${ports.upstream}` }))
  opts.adjust?.(config)

  const idp = await startIdp({
    port: ports.idp,
    host: 'localhost',
    clients: [{
      client_id: config.oidc.clientId,
      client_secret: env.SG_CLIENT_SECRET,
      redirect_uris: [`${config.publicUrl}${config.authPrefix}/callback`],
      post_logout_redirect_uris: [`${config.publicUrl}/`],
      backchannel_logout_uri: `${config.publicUrl}${config.authPrefix}/backchannel-logout`,
      backchannel_logout_session_required: true,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic'
    }]
  })
  const upstream = await startDemoUpstream({
    port: ports.upstream,
    issuer: idp.issuer,
    signingKey: idp.signingKey,
    clientId: config.oidc.clientId,
    gatewayUrl: `http://127.0.0.1:${ports.gateway}`,
    authPrefix: config.authPrefix
  })
  const gateway = await buildGateway(config, opts.logger !== undefined ? { logger: opts.logger } : {})
  await gateway.ctx.oidc.get()
  await gateway.listen()
  return {
    gateway,
    idp,
    upstream,
    adminToken: env.SG_ADMIN_TOKEN,
    async close () {
      await gateway.close()
      await upstream.close()
      await idp.close()
    }
  }
}

/** The lines printed for a person who just ran `npm start`. */
export function demoBanner (d: Demo): string {
  const pub = d.gateway.ctx.config.publicUrl
  const admin = `http://127.0.0.1:${d.gateway.ctx.config.admin.listen.port}`
  return [
    '',
    'sessiongate demo is running',
    `  open            ${pub}/                (sign in with any user name and any password)`,
    `  remember me     ${pub}/auth/login?remember=1`,
    `  your devices    ${pub}/auth/devices`,
    `  identity provider ${d.idp.issuer}   demo app (behind the gateway) ${d.upstream.url}`,
    '',
    'End every session of a user (what a help-desk agent or the IdP does):',
    `  curl -X DELETE -H 'Authorization: Bearer ${d.adminToken}' ${admin}/admin/users/<user>/sessions`,
    'Or sign out at the IdP, which calls the gateway back-channel:',
    `  ${d.idp.issuer}/session/end`,
    `Metrics: ${admin}/metrics   Ctrl-C stops everything.`,
    ''
  ].join('\n')
}
