/**
 * Durations in the config file: `90s`, `5m`, `12h`, `30d`, or a bare integer number of seconds.
 */

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }
const DURATION_RE = /^(\d+)(ms|s|m|h|d)$/

/** Parses a positive duration into whole seconds; throws on anything else. */
export function parseDuration (s: string | number): number {
  const ms = parseDurationMs(s)
  if (ms % 1000 !== 0) throw new Error(`invalid duration ${JSON.stringify(s)}: must be whole seconds`)
  return ms / 1000
}

/**
 * Parses a positive duration into milliseconds; like parseDuration but also accepts `ms`
 * (used for sub-second timeouts such as redis.commandTimeout).
 */
export function parseDurationMs (s: string | number): number {
  let ms: number
  if (typeof s === 'number') {
    if (!Number.isSafeInteger(s)) throw new Error(`invalid duration ${s}: a number must be an integer count of seconds`)
    ms = s * 1000
  } else {
    const m = DURATION_RE.exec(s)
    if (m === null) {
      throw new Error(`invalid duration ${JSON.stringify(s)}: expected an integer followed by s, m, h or d (e.g. "90s", "5m", "12h", "30d")`)
    }
    const n = Number(m[1])
    const unit = m[2] as string
    ms = unit === 'ms' ? n : n * (UNIT_SECONDS[unit] as number) * 1000
  }
  if (ms <= 0) throw new Error(`invalid duration ${JSON.stringify(s)}: must be greater than zero`)
  // Keeps later arithmetic (expiry timestamps) exact.
  if (!Number.isSafeInteger(ms)) throw new Error(`invalid duration ${JSON.stringify(s)}: too large`)
  return ms
}
