/**
 * `tls` blocks of the config (routes, Redis) and `oidc.caFile` as Node TLS options: one mapping for the
 * proxy (undici, ws), ioredis and the IdP client.
 */
import { rootCertificates, type ConnectionOptions } from 'node:tls'
import type { TlsConfig } from './types.js'

/** A private CA is trusted in addition to the public roots, not instead of them. */
export function withPublicRoots (ca: Buffer): string[] {
  return [...rootCertificates, ca.toString('utf8')]
}

/** The TLS options the config sets: no more, so they also fit undici's and ws's narrower option types. */
export type TlsOptions = Pick<ConnectionOptions, 'rejectUnauthorized' | 'ca' | 'cert' | 'key' | 'servername'>

/** Verification on unless `insecureSkipVerify`; the CA, the client certificate and the SNI name when set. */
export function tlsOptions (tls: TlsConfig | undefined): TlsOptions {
  return {
    rejectUnauthorized: tls?.insecureSkipVerify !== true,
    ...(tls?.ca !== undefined ? { ca: withPublicRoots(tls.ca) } : {}),
    ...(tls?.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls?.key !== undefined ? { key: tls.key } : {}),
    ...(tls?.serverName !== undefined ? { servername: tls.serverName } : {})
  }
}
