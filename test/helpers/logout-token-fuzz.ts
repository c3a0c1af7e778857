/**
 * Generated logout tokens for the fuzz properties: a valid token, then mutations of its header, its
 * claims, its JSON text and its compact serialization; and an oracle, written from the rules
 * (docs/conformance.md A, RFC 7515/7519) independently of src/core/logout-token.ts, that says
 * whether the result must be accepted, must be refused, or may go either way.
 */
import { createSign, type KeyObject } from 'node:crypto'
import fc from 'fast-check'

export const EVENT = 'http://schemas.openid.net/event/backchannel-logout'

export type Verdict = 'valid' | 'invalid' | 'either'

/**
 * Latest `exp` accepted, in seconds after now: the gateway's own bound (a logout token lives minutes;
 * the jti must be kept until exp, so a far exp is refused rather than stored).
 */
export const MAX_EXP_AHEAD = 86_400
/** Longest `jti` accepted (the gateway stores it for the replay window). */
export const MAX_JTI_LENGTH = 256

export interface TokenContext {
  issuer: string
  clientId: string
  kid: string
  /** The IdP's signing key, and a key the IdP never published. */
  key: KeyObject
  otherKey: KeyObject
  skew: number
  maxAge: number
  /**
   * Seconds to stay away from the time limits (iat window, exp) when choosing times: 0 in unit tests
   * (a fixed clock, so the exact limits are tested), a few seconds against a real gateway's clock.
   */
  margin: number
}

/** What to build; `now` is applied when the token is built, so a spec can be made before the clock is known. */
export interface TokenSpec {
  header: Array<[string, unknown] | [string]>
  claims: Array<[string, Time | unknown] | [string]>
  /** Edits of the claims' JSON text. */
  payloadText: PayloadEdit
  /** Edits of the header's JSON text. */
  headerText: HeaderEdit
  signer: 'ours' | 'other' | 'empty'
  raw: RawEdit
}

/** A time relative to now (resolved when the token is built). */
export class Time {
  constructor (readonly offset: number) {}
  toJSON (): string { return `now${this.offset >= 0 ? '+' : ''}${this.offset}` }
}

type PayloadEdit =
  | { kind: 'none' }
  | { kind: 'literal', claim: 'exp' | 'iat' | 'nbf', literal: string } // the claim's JSON value replaced by this text
  | { kind: 'duplicate', claim: string, value: unknown } // a first occurrence of claim before the real one
  | { kind: 'whole', text: string } // another JSON text altogether
  | { kind: 'bom' }
  | { kind: 'bytes', bytes: number[] } // raw bytes appended inside the object (may be invalid UTF-8)

type HeaderEdit = { kind: 'none' } | { kind: 'duplicate', name: string, value: unknown } | { kind: 'whole', text: string }

type RawEdit =
  | { kind: 'none' }
  | { kind: 'drop', segment: number }
  | { kind: 'extra', text: string }
  | { kind: 'edit', segment: number, at: number, char: string, op: 'replace' | 'insert' | 'delete' }
  | { kind: 'wrap', before: string, after: string }
  | { kind: 'truncate', keep: number }
  | { kind: 'oversize' }
  | { kind: 'respell', n: number } // the signature's last character changed only in its unused low bits

export interface BuiltToken {
  token: string
  verdict: Verdict
  /** Why, for the failure report. */
  reasons: string[]
  claims: unknown
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url')

// ------------------------------------------------------------------------------------------ generators

export function tokenSpec (ctx: TokenContext): fc.Arbitrary<TokenSpec> {
  const { issuer, clientId } = ctx
  const m = ctx.margin
  const lo = -ctx.maxAge - ctx.skew // oldest iat accepted
  // Times around every limit (exact limits only when margin is 0), plus far and huge values.
  const offsets = [lo - 1 - m, lo + m, lo + 1 + m, -ctx.skew - 1 - m, -ctx.skew + m, -ctx.skew + 1 + m, 0, 1, ctx.skew - m,
    ctx.skew + 1 + m, 120, 3600, -3600, MAX_EXP_AHEAD - m, MAX_EXP_AHEAD + 1 + m]
  const time = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...offsets).map((o) => new Time(o)) },
    { weight: 1, arbitrary: fc.integer({ min: -100_000, max: 100_000 }).map((o) => new Time(o)) },
    { weight: 2, arbitrary: fc.constantFrom(1e16, 9.3e15, 9_300_000_000_000_001, 8.64e15, 1e308, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, -1e16, 0, -1, 1.5) },
    { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) }
  )
  const badType = fc.oneof(fc.constantFrom(null, true, false, [], {}, '', '0', 'now', [1], { a: 1 }), fc.string({ maxLength: 6 }))
  const str = fc.oneof(fc.constantFrom('alice', 'x', '', ' ', 'ü', 'a'.repeat(256), 'a'.repeat(257), 'a'.repeat(500), '\u{1f600}'.repeat(128), '\u{1f600}'.repeat(129)), fc.string({ maxLength: 8 }))

  const claimValue: Record<string, fc.Arbitrary<unknown>> = {
    iss: fc.oneof(fc.constantFrom(issuer, `${issuer}INVALID`, `${issuer}/`, issuer.toUpperCase(), `${issuer} `, [issuer], ''), badType),
    aud: fc.oneof(fc.constantFrom(clientId, [clientId], [clientId, clientId], [clientId, 'other'], ['other', clientId], ['other'], [],
      'other', `${clientId} `, clientId.toUpperCase(), [clientId, 5], [clientId, null], { aud: clientId }), badType),
    iat: fc.oneof({ weight: 4, arbitrary: time }, { weight: 1, arbitrary: badType }),
    exp: fc.oneof({ weight: 4, arbitrary: time }, { weight: 1, arbitrary: badType }),
    nbf: fc.oneof(time, badType),
    jti: fc.oneof(str, badType),
    sub: fc.oneof(str, badType),
    sid: fc.oneof(str, badType),
    events: fc.oneof(
      fc.constantFrom({ [EVENT]: {} }, { [EVENT]: { a: 1 } }, { [EVENT]: [] }, { [EVENT]: null }, { [EVENT]: 'yes' }, { [EVENT]: 1 },
        {}, { 'http://schemas.openid.net/event/foobar': {} }, [EVENT], [{ [EVENT]: {} }], { [EVENT]: {}, other: 1 },
        { [`${EVENT} `]: {} }, { [EVENT.toUpperCase()]: {} }, { [EVENT]: { [EVENT]: {} } }),
      badType),
    nonce: fc.oneof(fc.constantFrom('n-0S6_WzA2Mj', '', null, 0, false, {}), badType),
    extra: fc.jsonValue({ maxDepth: 2 })
  }
  const claimName = fc.constantFrom(...Object.keys(claimValue))
  const claimEdit: fc.Arbitrary<[string, unknown] | [string]> = claimName.chain((name) => fc.oneof(
    fc.constant<[string]>([name]),
    claimValue[name]!.map((v): [string, unknown] => [name, v])))

  const headerValue: Record<string, fc.Arbitrary<unknown>> = {
    alg: fc.constantFrom('RS384', 'PS256', 'ES256', 'HS256', 'none', 'rs256', 'RS256 ', '', null, 1, ['RS256']),
    kid: fc.constantFrom('k2', '', null, 1, ['k1'], 'K1'),
    typ: fc.oneof(fc.constantFrom('logout+jwt', 'application/logout+jwt', 'JWT', 'jwt', 'at+jwt', 'AT+JWT', 'application/at+jwt',
      'secevent+jwt', 'application/secevent+jwt', 'dpop+jwt', 'token-introspection+jwt', 'jwt+id-token', 'at+jwt ', 'x/at+jwt',
      '', null, 1, ['at+jwt'], { typ: 'at+jwt' }), fc.string({ maxLength: 8 })),
    crit: fc.constantFrom(['exp'], [], 'b64', ['b64'], [''], ['b64', 'b64'], null),
    b64: fc.constantFrom(true, false, 'false'),
    jku: fc.constant('https://evil.example/jwks'),
    x5u: fc.constant('https://evil.example/cert'),
    extra: fc.jsonValue({ maxDepth: 2 })
  }
  const headerEdit: fc.Arbitrary<[string, unknown] | [string]> = fc.constantFrom(...Object.keys(headerValue)).chain((name) => fc.oneof(
    fc.constant<[string]>([name]),
    headerValue[name]!.map((v): [string, unknown] => [name, v])))

  const payloadText: fc.Arbitrary<PayloadEdit> = fc.oneof(
    { weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 2, arbitrary: fc.record({
      kind: fc.constant('literal' as const),
      claim: fc.constantFrom('exp' as const, 'iat' as const, 'nbf' as const),
      literal: fc.constantFrom('1e400', '-1e400', '1E16', '9300000000000000', '-0', '1.0e0', '0x10', 'NaN', 'Infinity', '"1"', '1_0', '01')
    }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), claim: claimName, value: fc.oneof(...Object.values(claimValue)) }) },
    { weight: 1, arbitrary: fc.record({
      kind: fc.constant('whole' as const),
      text: fc.oneof(fc.constantFrom('[]', '"x"', '1', 'null', '', '{', '{}', ' {} ', '{"iss":'), fc.json())
    }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'bom' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }) }) }
  )
  const headerText: fc.Arbitrary<HeaderEdit> = fc.oneof(
    { weight: 8, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), name: fc.constantFrom('alg', 'kid', 'typ', 'crit'), value: fc.constantFrom('none', 'RS256', 'k2', 'at+jwt', ['exp']) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('whole' as const), text: fc.oneof(fc.constantFrom('[]', '{', '', 'null', '{"alg":"RS256"}'), fc.json()) }) }
  )
  const raw: fc.Arbitrary<RawEdit> = fc.oneof(
    { weight: 10, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), segment: fc.integer({ min: 0, max: 2 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('extra' as const), text: fc.constantFrom('.', '.x', '.e30', '..') }) },
    { weight: 4, arbitrary: fc.record({
      kind: fc.constant('edit' as const),
      segment: fc.integer({ min: 0, max: 2 }),
      at: fc.nat(),
      char: fc.constantFrom('A', 'B', 'Q', 'g', 'w', '_', '-', '+', '/', '=', ' ', '\n', '\t', '.', '%', '\u00e9'),
      op: fc.constantFrom('replace' as const, 'insert' as const, 'delete' as const)
    }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrap' as const), before: fc.constantFrom('', ' ', '\n', '"'), after: fc.constantFrom('', ' ', '\n', '=', '==', '"') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'oversize' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('respell' as const), n: fc.integer({ min: 1, max: 15 }) }) }
  )

  const untouched: TokenSpec = { header: [], claims: [], payloadText: { kind: 'none' }, headerText: { kind: 'none' }, signer: 'ours', raw: { kind: 'none' } }
  // Mostly one mutation, so that each rule is tested on its own (a token broken twice is refused if
  // either rule works); sometimes several at once.
  const single: fc.Arbitrary<TokenSpec> = fc.oneof(
    { weight: 1, arbitrary: fc.constant(untouched) },
    { weight: 3, arbitrary: headerEdit.map((e) => ({ ...untouched, header: [e] })) },
    { weight: 6, arbitrary: claimEdit.map((e) => ({ ...untouched, claims: [e] })) },
    { weight: 2, arbitrary: payloadText.map((e) => ({ ...untouched, payloadText: e })) },
    { weight: 1, arbitrary: headerText.map((e) => ({ ...untouched, headerText: e })) },
    { weight: 1, arbitrary: fc.constantFrom('other' as const, 'empty' as const).map((signer) => ({ ...untouched, signer })) },
    { weight: 2, arbitrary: raw.map((e) => ({ ...untouched, raw: e })) }
  )
  const several: fc.Arbitrary<TokenSpec> = fc.record({
    header: fc.array(headerEdit, { maxLength: 2 }),
    claims: fc.array(claimEdit, { maxLength: 3 }),
    payloadText,
    headerText,
    signer: fc.oneof({ weight: 8, arbitrary: fc.constant('ours' as const) }, { weight: 1, arbitrary: fc.constantFrom('other' as const, 'empty' as const) }),
    raw
  })
  return fc.oneof({ weight: 3, arbitrary: single }, { weight: 1, arbitrary: several })
}

/**
 * Mutations that each break exactly one rule, or sit exactly on a limit: checked first in every run, so
 * even a short run tests every rule alone (random runs then combine them).
 */
export function criticalSpecs (ctx: TokenContext): TokenSpec[] {
  const lo = -ctx.maxAge - ctx.skew
  const base: TokenSpec = { header: [], claims: [], payloadText: { kind: 'none' }, headerText: { kind: 'none' }, signer: 'ours', raw: { kind: 'none' } }
  const claims = (...c: TokenSpec['claims']): TokenSpec => ({ ...base, claims: c })
  const header = (...h: TokenSpec['header']): TokenSpec => ({ ...base, header: h })
  const specs: TokenSpec[] = [
    base,
    claims(['iat', new Time(ctx.skew)]), claims(['iat', new Time(ctx.skew + 1)]),
    claims(['iat', new Time(lo)]), claims(['iat', new Time(lo - 1)]),
    claims(['exp', new Time(-ctx.skew + 1)]), claims(['exp', new Time(-ctx.skew)]),
    claims(['exp', new Time(MAX_EXP_AHEAD)]), claims(['exp', new Time(MAX_EXP_AHEAD + 1)]), claims(['exp', new Time(MAX_EXP_AHEAD + 0.5)]),
    claims(['nbf', new Time(ctx.skew)]), claims(['nbf', new Time(ctx.skew + 1)]),
    claims(['iat']), claims(['exp']), claims(['jti']), claims(['iss']), claims(['aud']), claims(['events']),
    claims(['iat', String(0)]), claims(['exp', null]), claims(['exp', 1e16]), claims(['exp', 9.3e15]), claims(['exp', 1e308]),
    claims(['jti', '']), claims(['jti', 1]), claims(['jti', 'j'.repeat(MAX_JTI_LENGTH)]), claims(['jti', 'j'.repeat(MAX_JTI_LENGTH + 1)]), claims(['sub', '']), claims(['sid', '']), claims(['sub', 1]), claims(['sid', null]),
    claims(['sub'], ['sid']), claims(['sub']), claims(['sid']),
    claims(['iss', `${ctx.issuer}INVALID`]), claims(['aud', `${ctx.clientId}INVALID`]), claims(['aud', [ctx.clientId, 'other']]),
    claims(['aud', [ctx.clientId, ctx.clientId]]), claims(['aud', []]),
    claims(['events', { [EVENT]: [] }]), claims(['events', { [EVENT]: null }]), claims(['events', { 'http://schemas.openid.net/event/foobar': {} }]),
    claims(['events', [EVENT]]), claims(['events', { [EVENT]: { a: 1 } }]),
    claims(['nonce', 'n']), claims(['nonce', null]), claims(['extra', { nonce: 'n' }]),
    header(['typ']), header(['typ', 'at+jwt']), header(['typ', 'Application/AT+JWT']), header(['typ', 'secevent+jwt']), header(['typ', 'JWT']),
    header(['kid']), header(['kid', 'k2']), header(['alg', 'RS384']), header(['alg', 'none']), header(['crit', ['exp']]),
    { ...base, signer: 'other' }, { ...base, signer: 'empty' },
    { ...base, raw: { kind: 'edit', segment: 2, at: 0, char: ' ', op: 'insert' } },
    { ...base, raw: { kind: 'wrap', before: '', after: '\n' } },
    { ...base, raw: { kind: 'wrap', before: '', after: '==' } },
    { ...base, raw: { kind: 'drop', segment: 2 } },
    { ...base, payloadText: { kind: 'literal', claim: 'exp', literal: '1e400' } },
    { ...base, payloadText: { kind: 'duplicate', claim: 'nonce', value: 'n' } }
  ]
  // The last character of the signature carries unused bits: its other spellings decode to the same bytes.
  for (const n of [1, 5, 15]) specs.push({ ...base, raw: { kind: 'respell', n } })
  return specs
}

// ------------------------------------------------------------------------------------------ building

function resolve (v: unknown, now: number): unknown {
  return v instanceof Time ? now + v.offset : v
}

/** Builds the token of `spec` at `now`, and the oracle's verdict on it. */
export function buildToken (spec: TokenSpec, ctx: TokenContext, now: number, jti: string): BuiltToken {
  const header: Record<string, unknown> = { alg: 'RS256', kid: ctx.kid, typ: 'logout+jwt' }
  for (const e of spec.header) {
    if (e.length === 1) delete header[e[0]]
    else Object.defineProperty(header, e[0], { value: e[1], enumerable: true, writable: true, configurable: true })
  }
  const claims: Record<string, unknown> = {
    iss: ctx.issuer, aud: ctx.clientId, iat: now, exp: now + 120, jti, sub: 'alice', sid: 'idp-sid-1', events: { [EVENT]: {} }
  }
  for (const e of spec.claims) {
    if (e.length === 1) delete claims[e[0]]
    else Object.defineProperty(claims, e[0], { value: resolve(e[1], now), enumerable: true, writable: true, configurable: true })
  }

  let headerText = JSON.stringify(header)
  const ht = spec.headerText
  if (ht.kind === 'duplicate') headerText = `{${JSON.stringify(ht.name)}:${JSON.stringify(ht.value)}${headerText === '{}' ? '' : ','}${headerText.slice(1)}`
  if (ht.kind === 'whole') headerText = ht.text

  let payload = Buffer.from(JSON.stringify(claims))
  const pt = spec.payloadText
  if (pt.kind === 'literal' && Object.hasOwn(claims, pt.claim)) {
    const text = payload.toString()
    const re = new RegExp(`"${pt.claim}":(-?[0-9.eE+]+|"[^"]*"|null|true|false|\\[[^\\]]*\\]|\\{\\})`)
    payload = Buffer.from(text.replace(re, `"${pt.claim}":${pt.literal}`))
  }
  if (pt.kind === 'duplicate') {
    const rest = payload.toString().slice(1)
    payload = Buffer.from(`{${JSON.stringify(pt.claim)}:${JSON.stringify(resolve(pt.value, now))}${rest === '}' ? '' : ','}${rest}`)
  }
  if (pt.kind === 'whole') payload = Buffer.from(pt.text)
  if (pt.kind === 'bom') payload = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), payload])
  if (pt.kind === 'bytes') {
    // `"x":"<bytes>"` as the first member: invalid UTF-8 unless the bytes happen to form valid UTF-8.
    const rest = payload.toString().slice(1)
    payload = Buffer.concat([Buffer.from('{"x":"'), Buffer.from(pt.bytes), Buffer.from(`"${rest === '}' ? '' : ','}${rest}`)])
  }

  const signingInput = `${b64url(headerText)}.${b64url(payload)}`
  let signature = ''
  if (spec.signer !== 'empty') {
    signature = createSign('RSA-SHA256').update(signingInput).sign(spec.signer === 'ours' ? ctx.key : ctx.otherKey).toString('base64url')
  }
  const intact = `${signingInput}.${signature}`
  const token = applyRaw(intact, spec.raw)

  const reasons: string[] = []
  let either = false
  const invalid = (why: string): void => { reasons.push(why) }
  const maybe = (why: string): void => { either = true; reasons.push(`either: ${why}`) }

  // The compact serialization: exactly the bytes that were signed, three base64url parts.
  if (token !== intact) invalid(`compact serialization edited (${spec.raw.kind})`)
  if (token.length > 16_384) invalid('longer than 16 KiB')
  if (spec.signer !== 'ours') invalid(`signature ${spec.signer}`)

  // The JOSE header.
  let h: unknown
  try {
    h = JSON.parse(headerText)
  } catch {
    invalid('header is not JSON')
  }
  if (!isPlainObject(h)) invalid('header is not a JSON object')
  else {
    if (h['alg'] !== 'RS256') invalid(`alg ${JSON.stringify(h['alg'])}`)
    if (Object.hasOwn(h, 'kid') && h['kid'] !== ctx.kid) invalid(`kid ${JSON.stringify(h['kid'])}`)
    if (Object.hasOwn(h, 'crit')) {
      const crit = h['crit']
      if (Array.isArray(crit) && crit.length === 1 && crit[0] === 'b64' && h['b64'] === true) maybe('crit [b64] with b64 true')
      else invalid(`crit ${JSON.stringify(crit)}`)
    }
    const typ = h['typ']
    if (typ !== undefined) {
      if (typeof typ !== 'string') maybe(`typ ${JSON.stringify(typ)} is not a string`)
      else {
        const t = typ.toLowerCase()
        const bare = t.startsWith('application/') ? t.slice('application/'.length) : t
        if (['at+jwt', 'secevent+jwt', 'dpop+jwt', 'token-introspection+jwt', 'jwt+id-token'].includes(bare)) invalid(`typ ${typ}`)
      }
    }
  }

  // The claims.
  let c: unknown
  try {
    let text = strictUtf8.decode(payload)
    if (text.startsWith('\ufeff')) {
      maybe('payload starts with a byte order mark')
      text = text.slice(1)
    }
    c = JSON.parse(text)
  } catch {
    invalid('payload is not UTF-8 JSON')
  }
  if (!isPlainObject(c)) invalid('payload is not a JSON object')
  else checkClaims(c, ctx, now, invalid, maybe)

  const verdict: Verdict = reasons.some((r) => !r.startsWith('either: ')) ? 'invalid' : either ? 'either' : 'valid'
  return { token, verdict, reasons, claims: c }
}

function checkClaims (c: Record<string, unknown>, ctx: TokenContext, now: number, invalid: (why: string) => void, maybe: (why: string) => void): void {
  const has = (k: string): boolean => Object.hasOwn(c, k)
  if (c['iss'] !== ctx.issuer) invalid('iss')
  const aud = c['aud']
  const auds = Array.isArray(aud) ? aud : [aud]
  if (auds.length === 0 || auds.some((a) => a !== ctx.clientId)) invalid('aud')
  const num = (k: string): number | undefined => {
    const v = c[k]
    if (typeof v !== 'number') {
      invalid(`${k} is not a number`)
      return undefined
    }
    return v
  }
  // Near a time limit, the verdict depends on the exact second the gateway reads its clock.
  const near = (v: number, limit: number): boolean => ctx.margin > 0 && Math.abs(v - limit) <= ctx.margin
  if (!has('iat')) invalid('iat missing')
  else {
    const iat = num('iat')
    if (iat !== undefined) {
      const hi = now + ctx.skew
      const lo = now - ctx.maxAge - ctx.skew
      if (near(iat, hi) || near(iat, lo)) maybe('iat at a limit')
      else if (iat > hi) invalid('iat in the future')
      else if (iat < lo) invalid('iat too old')
    }
  }
  if (!has('exp')) invalid('exp missing')
  else {
    const exp = num('exp')
    if (exp !== undefined) {
      if (near(exp, now - ctx.skew) || near(exp, now + MAX_EXP_AHEAD)) maybe('exp at a limit')
      else if (exp <= now - ctx.skew) invalid('expired')
      else if (exp > now + MAX_EXP_AHEAD) invalid('exp too far ahead')
    }
  }
  if (has('nbf')) {
    const nbf = num('nbf')
    if (nbf !== undefined) {
      if (near(nbf, now + ctx.skew)) maybe('nbf at the limit')
      else if (nbf > now + ctx.skew) invalid('nbf in the future')
    }
  }
  if (typeof c['jti'] !== 'string' || c['jti'] === '') invalid('jti')
  else if (c['jti'].length > MAX_JTI_LENGTH) invalid('jti too long')
  const events = c['events']
  if (!isPlainObject(events) || !isPlainObject(events[EVENT])) invalid('events')
  if (has('nonce')) invalid('nonce present')
  for (const k of ['sub', 'sid']) if (has(k) && (typeof c[k] !== 'string' || c[k] === '')) invalid(`${k} not a non-empty string`)
  if (!has('sub') && !has('sid')) invalid('neither sub nor sid')
}

function applyRaw (token: string, raw: RawEdit): string {
  const parts = token.split('.')
  switch (raw.kind) {
    case 'none': return token
    case 'drop': return parts.filter((_, i) => i !== raw.segment).join('.')
    case 'extra': return token + raw.text
    case 'wrap': return raw.before + token + raw.after
    case 'truncate': return token.slice(0, raw.keep % (token.length + 1))
    case 'oversize': return token + 'A'.repeat(16_385 - token.length + 1)
    case 'respell': {
      const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      const sig = parts[2]!
      if (sig === '' || sig.length % 4 === 0) return token // no unused bits
      const unused = sig.length % 4 === 2 ? 4 : 2
      const i = B64.indexOf(sig[sig.length - 1]!)
      const mask = (1 << unused) - 1
      const respelt = B64[(i & ~mask) | ((i + raw.n) & mask)]!
      return `${parts[0]}.${parts[1]}.${sig.slice(0, -1)}${respelt}`
    }
    case 'edit': {
      const seg = parts[raw.segment]!
      const at = raw.at % (seg.length + (raw.op === 'insert' ? 1 : 0) || 1)
      const edited = raw.op === 'insert'
        ? seg.slice(0, at) + raw.char + seg.slice(at)
        : raw.op === 'delete' ? seg.slice(0, at) + seg.slice(at + 1) : seg.slice(0, at) + raw.char + seg.slice(at + 1)
      parts[raw.segment] = edited
      return parts.join('.')
    }
  }
}
