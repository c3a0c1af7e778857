/**
 * One configured transmitter as seen from this replica: its SSF configuration document (read from
 * `configurationUrl`), its signing keys (jose remote JWKS: refetched on an unknown `kid` at most once a
 * minute), and bounded JSON calls to its endpoints (stream management, polling).
 */
import { createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose'
import type { SsfTransmitterConfig } from '../config/types.js'
import { KeysUnavailableError } from './set.js'

/** The members of the transmitter configuration metadata (SSF 1.0 section 7.1) the gateway uses. */
export interface SsfMetadata {
  issuer: string
  jwks_uri?: string
  delivery_methods_supported?: string[]
  configuration_endpoint?: string
  status_endpoint?: string
  verification_endpoint?: string
}

/** A transmitter endpoint answered badly or not at all; `message` names the endpoint, never a token. */
export class TransmitterError extends Error {
  readonly code = 'SG_SSF_TRANSMITTER'
  constructor (message: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TransmitterError'
  }
}

/** Refetch the JWKS on an unknown kid at most this often (ms). */
const JWKS_COOLDOWN_MS = 60_000
const TIMEOUT_MS = 5_000
/** A configuration document that failed to load is tried again after this long (ms), not on every SET. */
const METADATA_RETRY_MS = 10_000
const METADATA_MAX_AGE_MS = 3_600_000
const MAX_JSON = 1024 * 1024

export class TransmitterLink {
  private metadataCache: { at: number, value?: SsfMetadata, error?: Error } | undefined
  private jwks: { uri: string, get: JWTVerifyGetKey } | undefined

  constructor (readonly config: SsfTransmitterConfig, private readonly now: () => number = Date.now) {}

  /** The key lookup for SET verification; failures to read the keys become KeysUnavailableError. */
  readonly keys: JWTVerifyGetKey = async (header, token) => {
    let get: JWTVerifyGetKey
    try {
      get = await this.keySet()
    } catch (err) {
      throw new KeysUnavailableError(`the key set location is unknown: ${(err as Error).message}`, { cause: err })
    }
    try {
      return await get(header, token)
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err
      throw new KeysUnavailableError('the transmitter key set could not be fetched', { cause: err })
    }
  }

  /** The configuration document; cached an hour, a failure for ten seconds. */
  async metadata (): Promise<SsfMetadata> {
    const url = this.config.configurationUrl
    if (url === undefined) throw new TransmitterError('no configurationUrl configured')
    const now = this.now()
    const c = this.metadataCache
    if (c !== undefined && now - c.at < (c.value !== undefined ? METADATA_MAX_AGE_MS : METADATA_RETRY_MS)) {
      if (c.value !== undefined) return c.value
      throw c.error!
    }
    try {
      const doc = await this.call('GET', url)
      const value = checkMetadata(doc, this.config.issuer)
      this.metadataCache = { at: now, value }
      return value
    } catch (err) {
      this.metadataCache = { at: now, error: err as Error }
      throw err
    }
  }

  /** The metadata when loaded (for status pages), without a fetch. */
  loadedMetadata (): { value?: SsfMetadata, error?: string } | undefined {
    const c = this.metadataCache
    if (c === undefined) return undefined
    return c.value !== undefined ? { value: c.value } : { error: c.error?.message ?? 'unknown' }
  }

  /** Where the keys are: `jwksUri`, else the configuration's `jwks_uri`. */
  async jwksUri (): Promise<string> {
    if (this.config.jwksUri !== undefined) return this.config.jwksUri
    const uri = (await this.metadata()).jwks_uri
    if (uri === undefined) throw new TransmitterError('the configuration document has no jwks_uri')
    return uri
  }

  /**
   * A JSON call to one of the transmitter's endpoints with a bearer token, bounded in time and size.
   * Resolves with the parsed body (undefined for an empty one); non-2xx is a TransmitterError.
   */
  async call (method: string, url: string, opts: { token?: string | undefined, body?: unknown, timeoutMs?: number, signal?: AbortSignal } = {}): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    const what = `${method} ${redact(url)}`
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? TIMEOUT_MS), ...(opts.signal !== undefined ? [opts.signal] : [])]
    let res: Response
    try {
      res = await fetch(url, { method, headers, redirect: 'error', signal: AbortSignal.any(signals), ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) })
    } catch (err) {
      throw new TransmitterError(`${what}: ${(err as Error).name === 'TimeoutError' ? 'no answer in time' : 'unreachable'}`, undefined, { cause: err })
    }
    const text = await readBounded(res, what)
    if (!res.ok) throw new TransmitterError(`${what}: HTTP ${res.status}`, res.status)
    if (text.trim() === '') return undefined
    try {
      return JSON.parse(text) as unknown
    } catch (err) {
      throw new TransmitterError(`${what}: the answer is not JSON`, res.status, { cause: err })
    }
  }

  private async keySet (): Promise<JWTVerifyGetKey> {
    const uri = await this.jwksUri()
    if (this.jwks?.uri !== uri) {
      this.jwks = { uri, get: createRemoteJWKSet(new URL(uri), { timeoutDuration: 3000, cooldownDuration: JWKS_COOLDOWN_MS }) }
    }
    return this.jwks.get
  }
}

/** Validates the configuration document: a JSON object whose `issuer` is the configured one. */
function checkMetadata (doc: unknown, issuer: string): SsfMetadata {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new TransmitterError('the configuration document is not a JSON object')
  const d = doc as Record<string, unknown>
  if (d.issuer !== issuer) throw new TransmitterError('the configuration document names another issuer')
  const out: SsfMetadata = { issuer }
  for (const k of ['jwks_uri', 'configuration_endpoint', 'status_endpoint', 'verification_endpoint'] as const) {
    const v = d[k]
    if (v === undefined) continue
    if (typeof v !== 'string' || !/^https?:\/\//.test(v)) throw new TransmitterError(`the configuration document's ${k} is not an http(s) URL`)
    out[k] = v
  }
  if (Array.isArray(d.delivery_methods_supported)) out.delivery_methods_supported = d.delivery_methods_supported.filter((m): m is string => typeof m === 'string')
  return out
}

/** Reads a body up to MAX_JSON bytes. */
async function readBounded (res: Response, what: string): Promise<string> {
  const len = Number(res.headers.get('content-length') ?? '0')
  if (len > MAX_JSON) {
    await res.body?.cancel()
    throw new TransmitterError(`${what}: the answer is too large`, res.status)
  }
  const text = await res.text()
  if (text.length > MAX_JSON) throw new TransmitterError(`${what}: the answer is too large`, res.status)
  return text
}

/** A URL for logs and errors: no query (a stream id is fine, but a token in a query is not). */
function redact (url: string): string {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return 'an invalid URL'
  }
}
