/**
 * Starts a throwaway `redis-server` (from PATH) on a free port, without persistence, for one test file.
 * Never touches the Redis a developer may run on 6379.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface RedisServer {
  port: number
  url: string
  /** Graceful shutdown (SIGTERM); the data is gone since nothing is persisted. */
  stop: () => Promise<void>
  /** Abrupt death (SIGKILL), as in a crash or an OOM kill. */
  kill: () => Promise<void>
  /** Stops if running, then starts an empty server on the same port. */
  restart: () => Promise<void>
}

const START_TIMEOUT_MS = 10_000
const children = new Set<ChildProcess>()
// A crashed test must not leave servers behind.
process.once('exit', () => { for (const c of children) c.kill('SIGKILL') })

/** Starts redis-server; `args` are extra command-line options such as `['--requirepass', 'x']`. */
export async function startRedis (opts: { args?: string[] } = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-redis-'))
  let child: ChildProcess | undefined
  let port = 0
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    try {
      child = await launch(port, dir, opts.args ?? [])
      break
    } catch (err) {
      // Another process may grab the port between our probe and redis binding it.
      if (!(err instanceof PortInUseError) || attempt >= 5) {
        await rm(dir, { recursive: true, force: true })
        throw err
      }
    }
  }

  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child
    child = undefined
    if (c !== undefined) await terminate(c, signal)
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await stopWith('SIGTERM')
      await rm(dir, { recursive: true, force: true })
    },
    kill: async () => { await stopWith('SIGKILL') },
    restart: async () => {
      await stopWith('SIGTERM')
      child = await launch(port, dir, opts.args ?? [])
    }
  }
}

class PortInUseError extends Error {}

/** Asks the OS for a free port: listen on 0, read it, close. */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close((err) => { if (err !== undefined) reject(err); else resolve(port) })
    })
  })
}

/** Spawns redis-server and resolves once it answers PING; rejects if it exits first. */
async function launch (port: number, dir: string, extra: string[]): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra]
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000) })
  child.stderr?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000) })
  const exited = new Promise<never>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      children.delete(child)
      reject(err.code === 'ENOENT'
        ? new Error('redis-server not found on PATH: install Redis (e.g. apt-get install redis-server) to run these tests')
        : err)
    })
    child.once('exit', (code, signal) => {
      children.delete(child)
      const msg = `redis-server exited early (code ${String(code)}, signal ${String(signal)}): ${output.trim()}`
      reject(/address already in use/i.test(output) ? new PortInUseError(msg) : new Error(msg))
    })
  })
  try {
    await Promise.race([waitForPong(port), exited])
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) await terminate(child, 'SIGKILL')
    throw err
  }
  exited.catch(() => {}) // later exits are expected (stop/kill); the test sees them as connection errors
  return child
}

async function waitForPong (port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (await pingOnce(port)) return
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** One raw RESP PING; true on +PONG. Connection errors mean "not yet". */
async function pingOnce (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let reply = ''
    const done = (ok: boolean): void => { sock.destroy(); resolve(ok) }
    sock.setTimeout(500, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d: Buffer) => {
      reply += d.toString()
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
  })
}

async function terminate (child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
  await gone
  clearTimeout(timer)
}
