/**
 * The `cause` chain of an error as log fields: name, code and message of each link, so a log line
 * says why (a failed code exchange: the IdP's answer, a TLS failure, a refused connection). Only
 * those fields: never the objects themselves, which can hold response bodies with tokens.
 */

export interface CauseLink {
  name: string
  code?: string
  message?: string
  /** HTTP status, when the link is a fetch Response. */
  status?: number
}

const MAX_LINKS = 5
const MAX_MESSAGE = 300

/** The causes of `err` (not `err` itself), outermost first; at most five, messages cut to 300 characters. */
export function causeChain (err: unknown): CauseLink[] {
  const out: CauseLink[] = []
  const seen = new Set<unknown>()
  let link = (err as { cause?: unknown } | null | undefined)?.cause
  while (link !== undefined && link !== null && out.length < MAX_LINKS && !seen.has(link)) {
    seen.add(link)
    out.push(describeLink(link))
    link = (link as { cause?: unknown }).cause
  }
  return out
}

function describeLink (link: unknown): CauseLink {
  if (link instanceof Error) {
    const code = (link as { code?: unknown }).code
    return {
      name: link.name,
      ...(typeof code === 'string' || typeof code === 'number' ? { code: String(code) } : {}),
      message: link.message.length > MAX_MESSAGE ? `${link.message.slice(0, MAX_MESSAGE)}...` : link.message
    }
  }
  if (typeof Response !== 'undefined' && link instanceof Response) return { name: 'Response', status: link.status }
  // A plain object or value (openid-client puts response bodies here): its kind only.
  return { name: typeof link === 'object' && link !== null ? (link.constructor?.name ?? 'Object') : typeof link }
}
