/**
 * The process logger: pino JSON lines. Cookies, tokens, codes and secrets never reach a log line:
 * headers that carry them are redacted, and every query-string value is masked (a callback URL carries
 * the authorization code; upstream URLs may carry anything).
 */
import { pino, type DestinationStream, type Logger } from 'pino'

const SECRET_HEADERS = ['cookie', 'authorization', 'set-cookie', 'x-forwarded-access-token', 'proxy-authorization']

/** The URL with every query value replaced by `_`, names kept for debugging. */
export function maskUrl (url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const names = url.slice(q + 1).split('&').map((kv) => kv.split('=', 1)[0]).filter((n) => n !== '')
  return `${url.slice(0, q)}?${names.map((n) => `${n}=_`).join('&')}`
}

/** A pino logger with the gateway's redaction rules; `destination` lets tests capture lines. */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'sessiongate' },
    redact: {
      paths: [
        ...SECRET_HEADERS.map((h) => `req.headers["${h}"]`),
        ...SECRET_HEADERS.map((h) => `res.headers["${h}"]`),
        'headers.cookie', 'headers.authorization'
      ],
      censor: '[redacted]'
    },
    serializers: {
      req: (req: { method: string, url: string, ip?: string, id?: string }) => ({ id: req.id, method: req.method, url: maskUrl(req.url), ip: req.ip }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      err: pino.stdSerializers.err
    }
  }, destination)
}
