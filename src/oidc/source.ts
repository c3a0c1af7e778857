/**
 * Lazily discovered IdP metadata: the gateway starts (and answers 503 to logins, not ready on /readyz)
 * while the IdP is unreachable, and retries discovery in the background until it succeeds.
 */
import type { Logger } from 'pino'
import type { Config } from '../config/types.js'
import { discoverOidc, type OidcClient } from './client.js'
import type { IdpFetchWrap } from '../obs/observe.js'

export interface OidcSourceHandle {
  get (): Promise<OidcClient>
  current (): OidcClient | undefined
  /** Stops background retries. */
  close (): void
}

/** Starts discovery now and keeps retrying every `retryMs` until it succeeds; `fetch` instruments the IdP calls. */
export function createOidcSource (cfg: Config['oidc'], log: Logger, retryMs = 5000, fetch?: IdpFetchWrap): OidcSourceHandle {
  let client: OidcClient | undefined
  let inflight: Promise<OidcClient> | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false

  function attempt (): Promise<OidcClient> {
    inflight ??= discoverOidc(cfg, fetch !== undefined ? { fetch } : {}).then((c) => {
      client = c
      log.info({ issuer: c.issuer }, 'IdP metadata loaded')
      return c
    }, (err: Error) => {
      inflight = undefined
      throw err
    })
    return inflight
  }

  function background (): void {
    attempt().catch((err: Error) => {
      log.warn({ reason: err.message }, 'IdP discovery failed; retrying')
      if (!closed) timer = setTimeout(background, retryMs).unref()
    })
  }
  background()

  return {
    get: async () => client ?? await attempt(),
    current: () => client,
    close: () => { closed = true; if (timer !== undefined) clearTimeout(timer) }
  }
}
