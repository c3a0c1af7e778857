/**
 * ConfigError: a bad config file, naming the offending key. Problems collects them so that one run
 * (check-config, start-up) reports every error in the file, not only the first.
 */

export type Path = ReadonlyArray<string | number>

/** A bad config file; `key` is the dotted path of the offending value ('' for file-level problems). */
export class ConfigError extends Error {
  readonly code = 'SG_CONFIG_INVALID'
  readonly key: string
  /** The file (or '<inline>') the config came from; set by parseConfig. */
  source?: string
  /** Every problem found in the file, this one first (set by parseConfig; [this] when it is the only one). */
  problems: readonly ConfigError[] = [this]

  constructor (key: string, problem: string, options?: ErrorOptions) {
    super(key === '' ? problem : `${key}: ${problem}`, options)
    this.name = 'ConfigError'
    this.key = key
  }
}

/** Formats a key path as `routes[0].upstream`; odd keys are quoted: `oidc["a b"]`. */
export function formatPath (path: Path): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

/** True when `key` is `at` or lies under it (`routes[0].prefix` under `routes[0]`). */
export function keyWithin (key: string, at: string): boolean {
  return at === '' || key === at || key.startsWith(`${at}.`) || key.startsWith(`${at}[`)
}

/**
 * The problems found so far. Each independent check runs through `check`: a ConfigError is recorded
 * and the fallback returned, so the checks after it still run. With `lenient` (the file already
 * failed its schema) a check that trips over a malformed value is skipped: the schema error says why.
 */
export class Problems {
  readonly list: ConfigError[] = []
  constructor (private readonly lenient = false) {}

  check<T>(fn: () => T, fallback: T): T {
    try {
      return fn()
    } catch (err) {
      if (err instanceof ConfigError) this.list.push(err)
      else if (!this.lenient) throw err
      return fallback
    }
  }
}
