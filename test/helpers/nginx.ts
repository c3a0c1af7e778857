/**
 * A real nginx (Debian's, with auth_request) in front of a real upstream, configured as ingress-nginx
 * does forward-auth: an internal auth subrequest to the gateway's /auth/check with X-Original-URL and
 * X-Original-Method, the identity headers and Set-Cookie copied with auth_request_set, and 401 sent to
 * the gateway's sign-in URL. Started on a free port in its own temp dir; `available` says whether the
 * machine has nginx at all.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'

export const nginxBinary = ['/usr/sbin/nginx', 'nginx'].find((b) => spawnSync(b, ['-v']).status === 0)

export interface Nginx { port: number, stop (): Promise<void> }

export interface NginxOptions {
  /** Where the check endpoint is, e.g. http://127.0.0.1:PORT (the gateway's own listener). */
  gateway: string
  upstream: string
  /** The browser-facing sign-in URL; `rd=<original URL>` is appended. */
  signin: string
  /** Identity headers copied from the check answer to the upstream request. */
  headers?: string[]
}

export async function startNginx (opts: NginxOptions): Promise<Nginx> {
  const headers = opts.headers ?? ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-preferred-username']
  const vars = headers.map((h) => h.replace(/-/g, '_'))
  return await runNginx((port) => `
    listen 127.0.0.1:${port};
    server_name _;
    location = /_sessiongate_auth {
      internal;
      proxy_pass ${opts.gateway}/auth/check;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Sent-From "nginx-ingress-controller";
    }
    location @signin {
      return 302 ${opts.signin}?rd=$scheme://$http_host$request_uri;
    }
    location / {
      auth_request /_sessiongate_auth;
${vars.map((v, i) => `      auth_request_set $sg_${v} $upstream_http_${v};\n      proxy_set_header ${headers[i]} $sg_${v};`).join('\n')}
      auth_request_set $sg_cookie $upstream_http_set_cookie;
      add_header Set-Cookie $sg_cookie;
      error_page 401 = @signin;
      proxy_pass ${opts.upstream};
      proxy_set_header Host $http_host;
    }`)
}

/**
 * nginx as the gateway's own Ingress: a plain reverse proxy to it. `proxyBufferSize` is what
 * ingress-nginx's `proxy-buffer-size` annotation sets (`proxy_buffer_size` and `proxy_buffers 4 <size>`,
 * as its template writes them); undefined: nginx's defaults (one memory page).
 */
export async function startNginxProxy (opts: { gateway: string, proxyBufferSize?: string }): Promise<Nginx> {
  return await runNginx((port) => `
    listen 127.0.0.1:${port};
    server_name _;
    location / {
      proxy_pass ${opts.gateway};
      proxy_set_header Host $http_host;${opts.proxyBufferSize !== undefined ? `\n      proxy_buffer_size ${opts.proxyBufferSize};\n      proxy_buffers 4 ${opts.proxyBufferSize};` : ''}
    }`)
}

async function runNginx (server: (port: number) => string): Promise<Nginx> {
  if (nginxBinary === undefined) throw new Error('nginx is not installed')
  const dir = await mkdtemp(join(tmpdir(), 'sg-nginx-'))
  await mkdir(join(dir, 'logs'))
  const port = await freePort()
  const conf = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {${server(port)}
  }
}
`
  await writeFile(join(dir, 'nginx.conf'), conf)
  const proc: ChildProcess = spawn(nginxBinary, ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  const deadline = Date.now() + 10_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    if (await listening(port)) break
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`nginx did not listen: ${stderr}`) }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    port,
    async stop () {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve))
        proc.kill('SIGQUIT')
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))])
        if (proc.exitCode === null) proc.kill('SIGKILL')
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}

async function listening (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  })
}
