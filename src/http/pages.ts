/**
 * The few small HTML pages the gateway renders itself. Every interpolated value is escaped.
 */
import type { FastifyReply } from 'fastify'

/** Escapes text for HTML content and attribute values. */
export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

const STYLE = `
  body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2433;margin:0}
  main{max-width:44rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem 2.5rem;box-shadow:0 2px 12px #0001}
  h1{font-size:1.4rem;margin-top:0} a{color:#2450d8}
  button{font:inherit;background:#2450d8;color:#fff;border:0;border-radius:8px;padding:.5rem 1.1rem;cursor:pointer}
  button.secondary{background:#e9ecf2;color:#1d2433}
  table{border-collapse:collapse;width:100%} td,th{text-align:left;padding:.5rem;border-bottom:1px solid #e6e8ee}
  .muted{color:#687085;font-size:.9rem} .tag{background:#e6f4ea;color:#1e7a3c;border-radius:6px;padding:0 .4rem;font-size:.8rem}
`

/** Branding of the gateway's own pages (config `pages`). */
export interface Branding { title?: string, logoUrl?: string, accentColor?: string }

export interface Pages {
  /**
   * Security headers of every page the gateway renders itself: no caching, no framing, no scripts.
   * `forms: true` lets the page post its own forms back (the devices page).
   */
  headers (reply: FastifyReply, opts?: { forms?: boolean }): FastifyReply
  /** A complete page around `body` (already-escaped HTML). */
  page (title: string, body: string): string
  /** A short error page: a title, one sentence, and a way forward. Never a stack trace. */
  errorPage (title: string, message: string, link?: { href: string, text: string }): string
}

/** The pages of one gateway, with its branding; every configured value is escaped or validated. */
export function createPages (brand: Branding = {}): Pages {
  // The logo is the only thing a page loads: from this site, or from the logo URL's origin.
  const img = brand.logoUrl === undefined ? '' : ` img-src ${brand.logoUrl.startsWith('/') ? "'self'" : new URL(brand.logoUrl).origin};`
  const style = brand.accentColor === undefined ? STYLE : STYLE.replaceAll('#2450d8', brand.accentColor)
  const header = brand.title === undefined && brand.logoUrl === undefined
    ? ''
    : '<header style="display:flex;align-items:center;gap:.6rem;margin-bottom:1.2rem">' +
      (brand.logoUrl !== undefined ? `<img src="${escapeHtml(brand.logoUrl)}" alt="" style="height:2rem">` : '') +
      (brand.title !== undefined ? `<strong>${escapeHtml(brand.title)}</strong>` : '') + '</header>'
  const page = (title: string, body: string): string =>
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${escapeHtml(brand.title !== undefined ? `${title} · ${brand.title}` : title)}</title><style>${style}</style></head><body><main>${header}${body}</main></body></html>`
  return {
    headers: (reply, opts = {}) => reply
      .header('cache-control', 'no-store')
      .header('content-security-policy', `default-src 'none'; style-src 'unsafe-inline';${img}${opts.forms === true ? " form-action 'self';" : ''} frame-ancestors 'none'`)
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8'),
    page,
    errorPage: (title, message, link) => {
      const next = link !== undefined ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>` : ''
      return page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${next}`)
    }
  }
}

const plain = createPages()
/** Unbranded pages (the demo app uses them). */
export const page = plain.page
export const errorPage = plain.errorPage
export const pageHeaders = plain.headers
