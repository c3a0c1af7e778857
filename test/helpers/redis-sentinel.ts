/**
 * Starts a throwaway Sentinel setup for one test file: a master, one replica (`--replicaof`) and one
 * sentinel (quorum 1, down-after 1 s, failover-timeout 3 s), all on free ports without persistence.
 * Never touches the Redis a developer may run on 6379.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnRedis, waitUntil, withAdmin, type RedisNodeAddress, type RedisProcess } from './redis-process.js'

export interface RedisSentinel {
  /** The monitored master group's name. */
  name: string
  sentinels: RedisNodeAddress[]
  /** The master's address as the sentinel reports it now. */
  master: () => Promise<RedisNodeAddress>
  /** SENTINEL FAILOVER, then waits until the sentinel names a new master and that node answers as master. */
  failover: () => Promise<void>
  /**
   * Waits until the sentinel's master has an in-sync replica the sentinel knows about: after a failover
   * the sentinel turns the old master into a replica of the new one, some seconds later.
   */
  settled: () => Promise<void>
  /** The data nodes (master and replica, whichever role they have now). */
  dataNodes: RedisNodeAddress[]
  stop: () => Promise<void>
}

const NAME = 'mymaster'

export async function startRedisSentinel (): Promise<RedisSentinel> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-sentinel-'))
  const procs: RedisProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map(async (p) => { await p.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
  const data = (port: number, extra: string[] = []): string[] => [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    // Full syncs start at once (the default waits 5 s for more replicas to join a diskless transfer).
    '--repl-diskless-sync-delay', '0',
    // Tests stall a replica with DEBUG SLEEP.
    '--enable-debug-command', 'local', ...extra
  ]

  let sentinelPort = 0
  const master = async (): Promise<RedisNodeAddress> => await withAdmin(sentinelPort, async (r) => {
    const reply = await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME) as [string, string] | null
    if (reply === null) throw new Error('sentinel knows no master yet')
    return { host: reply[0], port: Number(reply[1]) }
  })

  try {
    const primary = await spawnRedis((port) => data(port))
    procs.push(primary)
    const replica = await spawnRedis((port) => data(port, ['--replicaof', '127.0.0.1', String(primary.port)]))
    procs.push(replica)
    const sentinel = await spawnRedis(async (port) => {
      // A sentinel rewrites its config file (discovered replicas, epochs): it must be writable.
      const conf = join(dir, `sentinel-${port}.conf`)
      await writeFile(conf, [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${NAME} 127.0.0.1 ${primary.port} 1`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 3000`,
        ''
      ].join('\n'))
      return [conf, '--sentinel']
    })
    procs.push(sentinel)
    sentinelPort = sentinel.port

    await waitUntil(async () => await inSync(replica.port, primary.port), 10_000, 'the replica in sync with the master')
    await waitUntil(async () => {
      if ((await master()).port !== primary.port) return false
      return await knowsReplica(sentinelPort, replica.port)
    }, 15_000, 'the sentinel to report the master and its replica')
  } catch (err) {
    await stop()
    throw err
  }

  const failover = async (): Promise<void> => {
    const before = await master()
    await withAdmin(sentinelPort, async (r) => await r.call('SENTINEL', 'FAILOVER', NAME))
    let after = before
    await waitUntil(async () => {
      after = await master()
      return after.port !== before.port
    }, 15_000, 'the sentinel to name a new master')
    await waitUntil(async () => await withAdmin(after.port, async (r) => (await r.role())[0] === 'master'), 10_000, 'the new master to answer as master')
  }

  const settled = async (): Promise<void> => {
    await waitUntil(async () => {
      const m = await master()
      const replicas = procs.slice(0, 2).filter((p) => p.port !== m.port)
      for (const r of replicas) {
        if (!await inSync(r.port, m.port) || !await knowsReplica(sentinelPort, r.port)) return false
      }
      return true
    }, 30_000, 'the master to have an in-sync replica known to the sentinel')
  }

  const dataNodes = procs.slice(0, 2).map((p) => ({ host: '127.0.0.1', port: p.port }))
  return { name: NAME, sentinels: [{ host: '127.0.0.1', port: sentinelPort }], master, failover, settled, dataNodes, stop }
}

/**
 * True when the node on `port` is a replica with an up link to `of`, and acknowledges `of`'s writes: a
 * probe write is confirmed by WAIT (right after a sync, a replica can be "online" and still not counted
 * by WAIT for a while).
 */
async function inSync (port: number, of: number): Promise<boolean> {
  const info = await withAdmin(port, async (r) => await r.info('replication'))
  if (!/role:slave/.test(info) || !/master_link_status:up/.test(info)) return false
  if (!new RegExp(`master_port:${of}\\b`).test(info)) return false
  return await withAdmin(of, async (r) => {
    await r.set('sg-test-helper:replication-probe', String(Date.now()))
    return Number(await r.call('WAIT', 1, 100)) >= 1
  })
}

/** True when the sentinel lists the replica on `port` as a healthy replica of the master. */
async function knowsReplica (sentinelPort: number, port: number): Promise<boolean> {
  const replicas = await withAdmin(sentinelPort, async (r) => await r.call('SENTINEL', 'REPLICAS', NAME)) as string[][]
  return replicas.some((fields) => {
    const f = toMap(fields)
    return f.get('port') === String(port) && f.get('flags') === 'slave' && f.get('master-link-status') === 'ok'
  })
}

function toMap (fields: string[]): Map<string, string> {
  const m = new Map<string, string>()
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(String(fields[i]), String(fields[i + 1]))
  return m
}
