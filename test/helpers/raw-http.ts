/**
 * A raw HTTP/1.1 exchange over a socket: sends the request target byte for byte (fetch and node:http
 * would normalise or refuse `/./x`, `\`, NUL), and reads the status line and headers of the answer.
 */
import { request } from 'node:http'
import { connect } from 'node:net'

export interface RawAnswer { status: number, head: string, body: string }

export async function rawRequest (base: string, target: string, opts: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<RawAnswer> {
  const u = new URL(base)
  const lines = [`${opts.method ?? 'GET'} ${target} HTTP/1.1`, ...(Object.keys(opts.headers ?? {}).some((k) => k.toLowerCase() === 'host') ? [] : [`Host: ${u.host}`]), 'Connection: close']
  for (const [k, v] of Object.entries(opts.headers ?? {})) lines.push(`${k}: ${v}`)
  if (opts.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(opts.body)}`)
  const payload = Buffer.from(`${lines.join('\r\n')}\r\n\r\n${opts.body ?? ''}`, 'latin1')
  return await new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => sock.write(payload))
    const chunks: Buffer[] = []
    let done = false
    const finish = (): void => {
      if (done) return
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      const head = end === -1 ? text : text.slice(0, end)
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
      done = true
      sock.destroy()
      resolve({ status, head, body: end === -1 ? '' : text.slice(end + 4) })
    }
    /** True once the answer is complete: the server may keep the connection open (keep-alive). */
    const complete = (): boolean => {
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end === -1) return false
      const head = text.slice(0, end).toLowerCase()
      const body = text.slice(end + 4)
      if (/^http\/1\.1 (101|1\d\d|204|304)/.test(head)) return true
      const len = /\r\ncontent-length: *(\d+)/.exec(head)
      if (len !== null) return Buffer.byteLength(body, 'latin1') >= Number(len[1])
      if (head.includes('transfer-encoding: chunked')) return body.endsWith('0\r\n\r\n')
      return false
    }
    sock.on('data', (c: Buffer) => { chunks.push(c); if (complete()) finish() })
    sock.on('error', (err) => { if (chunks.length > 0) finish(); else reject(err) })
    sock.on('close', finish)
  })
}

/**
 * One request through node:http on a connection of its own (no keep-alive pool), so each reaches the
 * server afresh (with several workers behind one port, any of them); resolves with status and body.
 */
export async function freshRequest (url: string, opts: { method?: string, headers?: Record<string, string> } = {}): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', agent: false, headers: opts.headers ?? {} }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}
