/**
 * Access tokens from the real test IdP (oidc-provider with resource indicators): a user's, through the
 * authorization code flow with PKCE and `resource=`, and a client's, through client credentials. And
 * tokens the IdP never issued, signed with its real key, so a test can break one rule at a time.
 */
import { createHash, randomBytes } from 'node:crypto'
import { SignJWT, importJWK, type JWK } from 'jose'
import { Browser, type Response } from './browser.js'

export interface ApiClient { id: string, secret: string, redirectUri: string }

interface Endpoints { authorization_endpoint: string, token_endpoint: string }

async function endpoints (issuer: string): Promise<Endpoints> {
  return await (await fetch(`${issuer}/.well-known/openid-configuration`)).json() as Endpoints
}

async function tokenRequest (issuer: string, client: ApiClient, params: Record<string, string>): Promise<string> {
  const res = await fetch((await endpoints(issuer)).token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`
    },
    body: new URLSearchParams(params).toString()
  })
  const body = await res.json() as { access_token?: string, error?: string, error_description?: string }
  if (res.status !== 200 || body.access_token === undefined) throw new Error(`token endpoint: ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`)
  return body.access_token
}

/**
 * A user's access token for `resource`: signs `user` in at the IdP on `browser` (one IdP session per
 * browser; a browser already signed in there gets a new token of the same session) and redeems the code.
 */
export async function userAccessToken (issuer: string, client: ApiClient, browser: Browser, user: string, resource: string, scope = 'openid'): Promise<string> {
  const verifier = randomBytes(32).toString('base64url')
  const q = new URLSearchParams({
    client_id: client.id,
    response_type: 'code',
    redirect_uri: client.redirectUri,
    scope,
    resource,
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256'
  })
  let res: Response = await browser.fetch(`${(await endpoints(issuer)).authorization_endpoint}?${q.toString()}`)
  for (let step = 0; step < 12; step++) {
    const loc = res.headers.get('location')
    if (loc !== null) {
      const next = new URL(loc, res.url)
      if (next.href.startsWith(client.redirectUri)) {
        const code = next.searchParams.get('code')
        if (code === null) throw new Error(`no code in the redirect: ${next.searchParams.get('error') ?? ''}`)
        return await tokenRequest(issuer, client, { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier, resource })
      }
      res = await browser.fetch(next.href)
      continue
    }
    const action = /<form[^>]*action="([^"]+)"/.exec(res.body)?.[1]
    const prompt = /name="prompt" value="([^"]+)"/.exec(res.body)?.[1]
    if (action === undefined || prompt === undefined) throw new Error(`stuck at the IdP: ${res.status} ${res.url}`)
    const fields: Record<string, string> = prompt === 'login' ? { prompt, login: user, password: 'any-password' } : { prompt }
    res = await browser.fetch(new URL(action.replace(/&amp;/g, '&'), res.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString()
    })
  }
  throw new Error('the IdP never redirected back with a code')
}

/** A client's own access token for `resource` (client credentials grant; `sub` is the client id). */
export async function clientAccessToken (issuer: string, client: ApiClient, resource: string, scope: string): Promise<string> {
  return await tokenRequest(issuer, client, { grant_type: 'client_credentials', resource, scope })
}

/** The claims of a JWT, unverified (the test reads what the IdP put in). */
export function claimsOf (jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
}

/** An access token signed with `jwk` (the IdP's real key unless told), valid unless `claims`/`header` break it. */
export async function signedAccessToken (jwk: JWK & { kid: string }, issuer: string, audience: string, over: { claims?: Record<string, unknown>, header?: Record<string, unknown>, omit?: string[] } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const claims: Record<string, unknown> = { iss: issuer, aud: audience, sub: 'signed-user', iat: now, exp: now + 300, jti: randomBytes(8).toString('hex'), client_id: 'cli', ...over.claims }
  for (const k of over.omit ?? []) delete claims[k]
  const key = await importJWK(jwk, 'RS256')
  return await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'at+jwt', ...over.header }).sign(key)
}

/** A fresh browser: a new IdP session on its first sign-in. */
export const newBrowser = (): Browser => new Browser()
