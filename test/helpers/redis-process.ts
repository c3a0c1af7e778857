/**
 * Spawning throwaway redis-server processes for tests: on free ports (retrying when another process
 * takes the port first), killed when the test process exits, never the Redis a developer runs on 6379.
 * Shared by the standalone, Cluster and Sentinel helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import { freePort } from './ports.js'

export interface RedisNodeAddress { host: string, port: number }

const START_TIMEOUT_MS = 10_000
const children = new Set<ChildProcess>()
// A crashed test must not leave servers behind.
process.once('exit', () => { for (const c of children) c.kill('SIGKILL') })

/** One spawned redis-server (data node or sentinel). */
export interface RedisProcess {
  port: number
  /** Graceful shutdown (SIGTERM, then SIGKILL after 3 s). */
  stop: () => Promise<void>
  /** Abrupt death (SIGKILL). */
  kill: () => Promise<void>
  /** Stops if running, then starts again on the same port with the same arguments. */
  restart: () => Promise<void>
}

export class PortInUseError extends Error {}

/**
 * Spawns `redis-server ...argsFor(port)` on a free port (retrying when another process takes the port
 * first) and resolves once it answers PING. `argsFor` may reserve more ports itself (cluster bus).
 */
export async function spawnRedis (argsFor: (port: number) => Promise<string[]> | string[]): Promise<RedisProcess> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    try {
      const args = await argsFor(port)
      let child = await launch(port, args)
      return {
        port,
        stop: async () => { await terminate(child, 'SIGTERM') },
        kill: async () => { await terminate(child, 'SIGKILL') },
        restart: async () => {
          await terminate(child, 'SIGTERM')
          child = await launch(port, args)
        }
      }
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= 5) throw err
    }
  }
}

async function launch (port: number, args: string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000) })
  child.stderr?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000) })
  const exited = new Promise<never>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      children.delete(child)
      reject(err.code === 'ENOENT' ? new Error('redis-server not found on PATH: install Redis to run these tests') : err)
    })
    child.once('exit', (code, signal) => {
      children.delete(child)
      const msg = `redis-server exited early (code ${String(code)}, signal ${String(signal)}): ${output.trim()}`
      reject(/address already in use/i.test(output) ? new PortInUseError(msg) : new Error(msg))
    })
  })
  try {
    await Promise.race([waitUntil(async () => await pingOnce(port), START_TIMEOUT_MS, `redis-server on ${port} answers PING`), exited])
  } catch (err) {
    await terminate(child, 'SIGKILL')
    throw err
  }
  exited.catch(() => {}) // later exits are expected (stop/kill)
  return child
}

async function terminate (child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
  await gone
  clearTimeout(timer)
}

/** One short-lived admin connection: runs `fn`, then closes. Errors (refused, timeout) propagate. */
export async function withAdmin<T> (port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000, commandTimeout: 2000 })
  r.on('error', () => {})
  try {
    await r.connect()
    return await fn(r)
  } finally {
    r.disconnect()
  }
}

async function pingOnce (port: number): Promise<boolean> {
  try {
    return await withAdmin(port, async (r) => await r.ping()) === 'PONG'
  } catch {
    return false
  }
}

/** Polls `cond` every 50 ms until it is true; throws `waiting for <what>` after `ms`. Errors mean "not yet". */
export async function waitUntil (cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      if (await cond()) return
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: last })
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

