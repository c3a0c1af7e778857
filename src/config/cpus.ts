/**
 * How many CPUs this process may really use, for `workers: auto`. `availableParallelism()` counts the
 * CPUs the scheduler offers (affinity), not a container's CPU quota: in a pod limited to 2 CPUs on a
 * 64-core node it says 64, and 64 workers would thrash on 2 CPUs' worth of time. The cgroup quota
 * (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`) bounds it, rounded up.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const read = (path: string): string | undefined => {
  try { return readFileSync(path, 'utf8').trim() } catch { return undefined }
}

/** CPUs allowed by a cgroup quota, or undefined when there is none (or it cannot be read). */
export function cgroupCpus (readFile: (path: string) => string | undefined = read): number | undefined {
  const v2 = readFile('/sys/fs/cgroup/cpu.max')
  if (v2 !== undefined) {
    const [quota, period] = v2.split(/\s+/)
    return quota === 'max' ? undefined : ratio(Number(quota), Number(period))
  }
  const quota = readFile('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') ?? readFile('/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us')
  const period = readFile('/sys/fs/cgroup/cpu/cpu.cfs_period_us') ?? readFile('/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us')
  return quota === undefined || period === undefined ? undefined : ratio(Number(quota), Number(period))
}

function ratio (quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined
  return Math.max(1, Math.ceil(quota / period))
}

/** One worker per usable CPU. */
export function usableCpus (): number {
  return Math.max(1, Math.min(availableParallelism(), cgroupCpus() ?? Infinity))
}
