/**
 * `ssf.transmitters` (README section "Shared Signals"): the Shared Signals transmitters whose Security Event Tokens
 * the gateway receives. Cross-field rules live here; every error names the key, like the rest of the file.
 */
import { ConfigError, type Problems } from './errors.js'
import type { FilledConfig, RawTransmitter } from './schema.js'
import type { Config, SsfTransmitterConfig } from './types.js'

/** Shortest push token accepted: it is the only thing that tells a transmitter from anyone else. */
const MIN_PUSH_TOKEN = 16

/** Normalises `ssf`; `publicUrl` is the normalised one (the default audience). One problem per transmitter goes to `problems`. */
export function ssfConfig (raw: FilledConfig['ssf'], publicUrl: string, allowInsecureHttp: boolean, problems: Problems): Config['ssf'] {
  const issuers = new Map<string, number>()
  const pushTokens = new Map<string, number>()
  const transmitters = raw.transmitters.map((t, i) => problems.check(() => {
    const out = transmitter(t, i, publicUrl, allowInsecureHttp)
    const first = issuers.get(out.issuer)
    if (first !== undefined) throw new ConfigError(key(i, 'issuer'), `duplicate issuer (also ssf.transmitters[${first}].issuer)`)
    issuers.set(out.issuer, i)
    if (out.pushToken !== undefined) {
      const same = pushTokens.get(out.pushToken)
      // The token picks the transmitter: two alike could not be told apart. The value is never echoed.
      if (same !== undefined) throw new ConfigError(key(i, 'pushToken'), `is the same as ssf.transmitters[${same}].pushToken; each transmitter needs its own`)
      pushTokens.set(out.pushToken, i)
    }
    return out
  }, undefined))
  return { transmitters: transmitters.filter(t => t !== undefined) }
}

const key = (i: number, name: string): string => `ssf.transmitters[${i}].${name}`

function transmitter (t: RawTransmitter, i: number, publicUrl: string, allowInsecureHttp: boolean): SsfTransmitterConfig {
  const link = (name: 'issuer' | 'jwksUri' | 'configurationUrl' | 'pollUrl', value: string | undefined): string | undefined => {
    if (value === undefined) return undefined
    let u: URL
    try {
      u = new URL(value)
    } catch {
      throw new ConfigError(key(i, name), 'must be an absolute http(s) URL')
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ConfigError(key(i, name), `must be an absolute http(s) URL (got scheme ${u.protocol})`)
    if (u.protocol === 'http:' && !allowInsecureHttp) throw new ConfigError(key(i, name), 'http:// refused; use https (oidc.allowInsecureHttp: true allows http for local tests)')
    if (u.username !== '' || u.password !== '') throw new ConfigError(key(i, name), 'must not contain credentials')
    return value
  }
  const { delivery, manageStream } = t
  const out: SsfTransmitterConfig = {
    issuer: link('issuer', t.issuer)!,
    audience: t.audience ?? publicUrl,
    delivery,
    manageStream
  }
  const jwksUri = link('jwksUri', t.jwksUri)
  const configurationUrl = link('configurationUrl', t.configurationUrl)
  const pollUrl = link('pollUrl', t.pollUrl)
  if (jwksUri !== undefined) out.jwksUri = jwksUri
  if (configurationUrl !== undefined) out.configurationUrl = configurationUrl
  if (jwksUri === undefined && configurationUrl === undefined) throw new ConfigError(key(i, 'jwksUri'), 'set jwksUri or configurationUrl (where the transmitter\'s signing keys are found)')

  if (delivery === 'push') {
    if (t.pushToken === undefined) throw new ConfigError(key(i, 'pushToken'), 'required key is missing (delivery: push)')
    if (t.pushToken.length < MIN_PUSH_TOKEN) throw new ConfigError(key(i, 'pushToken'), `must be at least ${MIN_PUSH_TOKEN} characters (got ${t.pushToken.length})`)
    out.pushToken = t.pushToken
    for (const name of ['pollUrl', 'pollToken'] as const) {
      if (t[name] !== undefined) throw new ConfigError(key(i, name), 'only used with delivery: poll')
    }
  } else {
    if (t.pushToken !== undefined) throw new ConfigError(key(i, 'pushToken'), 'only used with delivery: push')
    if (t.pollToken === undefined || t.pollToken === '') throw new ConfigError(key(i, 'pollToken'), 'required key is missing (delivery: poll)')
    out.pollToken = t.pollToken
    if (pollUrl !== undefined) out.pollUrl = pollUrl
    else if (!manageStream) throw new ConfigError(key(i, 'pollUrl'), 'required key is missing (delivery: poll without manageStream)')
  }

  if (manageStream) {
    if (configurationUrl === undefined) throw new ConfigError(key(i, 'configurationUrl'), 'required with manageStream: true (the stream management endpoints are found there)')
    if (t.managementToken === undefined || t.managementToken === '') throw new ConfigError(key(i, 'managementToken'), 'required with manageStream: true')
    out.managementToken = t.managementToken
  } else if (t.managementToken !== undefined) {
    throw new ConfigError(key(i, 'managementToken'), 'only used with manageStream: true')
  }
  return out
}
