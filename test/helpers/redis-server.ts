/**
 * Starts a throwaway standalone redis-server for a test: on a free port, no persistence unless asked
 * (`args` such as `['--appendonly', 'yes']` come last and win), in a temp dir removed on stop.
 * Never touches the Redis a developer may run on 6379.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnRedis } from './redis-process.js'

export interface RedisServer {
  port: number
  url: string
  /** Graceful shutdown (SIGTERM); the data is gone unless persistence was asked for. */
  stop: () => Promise<void>
  /** Abrupt death (SIGKILL), as in a crash or an OOM kill. */
  kill: () => Promise<void>
  /** Stops if running, then starts again on the same port and dir (empty unless persisted). */
  restart: () => Promise<void>
}

/** Starts redis-server; `args` are extra command-line options such as `['--requirepass', 'x']`. */
export async function startRedis (opts: { args?: string[] } = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-redis-'))
  try {
    const proc = await spawnRedis((port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(opts.args ?? [])])
    return {
      port: proc.port,
      url: `redis://127.0.0.1:${proc.port}`,
      stop: async () => {
        await proc.stop()
        await rm(dir, { recursive: true, force: true })
      },
      kill: proc.kill,
      restart: proc.restart
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}
