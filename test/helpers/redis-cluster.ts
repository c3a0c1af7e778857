/**
 * Starts a throwaway 3-master Redis Cluster (redis-server processes on free ports, no persistence, no
 * replicas) for one test file.
 * Never touches the Redis a developer may run on 6379.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './ports.js'
import { spawnRedis, waitUntil, withAdmin, type RedisNodeAddress, type RedisProcess } from './redis-process.js'

export { spawnRedis, waitUntil, withAdmin, type RedisNodeAddress, type RedisProcess }

export interface RedisCluster {
  nodes: RedisNodeAddress[]
  /** SIGKILLs the node on `port` (a crash: its slots are uncovered, the cluster goes down). */
  kill: (port: number) => Promise<void>
  /** Starts the node on `port` again: same node id (nodes.conf), no data; waits for cluster_state:ok. */
  restart: (port: number) => Promise<void>
  stop: () => Promise<void>
}

/** Three masters, slots split evenly by `redis-cli --cluster create`, cluster_state:ok everywhere. */
export async function startRedisCluster (): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-cluster-'))
  const procs: RedisProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map(async (p) => { await p.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < 3; i++) {
      procs.push(await spawnRedis(async (port) => [
        '--port', String(port),
        '--bind', '127.0.0.1',
        // The bus port defaults to port + 10000, which may be taken or beyond 65535.
        '--cluster-port', String(await freePort()),
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '2000',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir
      ]))
    }
    const addrs = procs.map((p) => `127.0.0.1:${p.port}`)
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 20_000 })
    await clusterOk(procs)
  } catch (err) {
    await stop()
    throw err
  }
  const proc = (port: number): RedisProcess => {
    const p = procs.find((x) => x.port === port)
    if (p === undefined) throw new Error(`no cluster node on port ${port}`)
    return p
  }
  return {
    nodes: procs.map((p) => ({ host: '127.0.0.1', port: p.port })),
    kill: async (port) => { await proc(port).kill() },
    restart: async (port) => {
      await proc(port).restart()
      await clusterOk(procs)
    },
    stop
  }
}

async function clusterOk (procs: RedisProcess[]): Promise<void> {
  await waitUntil(async () => {
    const infos = await Promise.all(procs.map(async (p) => await withAdmin(p.port, async (r) => await r.cluster('INFO'))))
    return infos.every((info) => /cluster_state:ok/.test(info) && /cluster_known_nodes:3\b/.test(info))
  }, 15_000, 'cluster_state:ok on every node')
}
