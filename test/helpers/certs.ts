/**
 * A throwaway private CA with server and client certificates, made with the openssl CLI for one test.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestPki {
  dir: string
  caFile: string
  /** Issues a certificate for `name` (a SAN: DNS or IP), for a server or a client; returns its files. */
  issue (name: string, usage: 'server' | 'client'): { certFile: string, keyFile: string }
}

export function makePki (): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'sg-pki-'))
  const run = (args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' }) }
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=sessiongate test CA'])
  let n = 0
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    issue (name, usage) {
      const id = `${usage}-${n++}`
      const san = /^[\d.]+$/.test(name) ? `IP:${name}` : `DNS:${name}`
      writeFileSync(join(dir, `${id}.cnf`), `subjectAltName=${san}\nextendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}\n`)
      run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${id}.key`, '-out', `${id}.csr`, '-subj', `/CN=${name}`])
      run(['x509', '-req', '-in', `${id}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${id}.pem`, '-days', '1', '-extfile', `${id}.cnf`])
      return { certFile: join(dir, `${id}.pem`), keyFile: join(dir, `${id}.key`) }
    }
  }
}
