/**
 * Waits until `url` answers 2xx: a CLI process started by a test is serving. Generous by default, since
 * a CLI transpiles its TypeScript at start-up and CI runs two test files at once on two cores; gives up
 * early when `exited()` says the process is gone.
 */
export async function waitForHttp (url: string, opts: { timeoutMs?: number, exited?: () => boolean } = {}): Promise<boolean> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000)
  while (Date.now() < deadline && opts.exited?.() !== true) {
    if (await fetch(url).then((r) => r.ok, () => false)) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}
