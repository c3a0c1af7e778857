/**
 * fast-check under tap: run counts from the environment, and a failure report that says how to replay it.
 *
 * - `FUZZ_RUNS` (default 100): runs of a property of weight 1; heavier properties (a real gateway)
 *   take a fraction of it, cheap ones a multiple. Examples (known tricky cases) run on top, every time.
 *   `npm run fuzz` sets it 100 times higher.
 * - `FUZZ_PROPERTY`, `FUZZ_SEED`, `FUZZ_PATH`: replay one failure. Only the named property runs (the
 *   others of the file are skipped), with that seed and, when given, straight down that shrink path.
 */
import fc from 'fast-check'
import type { Test } from 'tap'

function envNumber (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number (got ${JSON.stringify(raw)})`)
  return n
}

/** Runs of a property of weight 1. */
export const FUZZ_RUNS = envNumber('FUZZ_RUNS', 100)

/** Runs for a property of `weight` (1 = cheap unit property; 0.3 = one HTTP round trip per run, ...). */
export function runs (weight = 1): number {
  return Math.max(1, Math.ceil(FUZZ_RUNS * weight))
}

const replay = process.env['FUZZ_PROPERTY']

function parameters<Ts> (weight: number, examples: Ts[]): fc.Parameters<Ts> {
  // fast-check counts examples among numRuns: add them, so every example runs and the random runs stay as many.
  const p: fc.Parameters<Ts> = { numRuns: runs(weight) + examples.length }
  if (examples.length > 0) p.examples = examples
  const seed = process.env['FUZZ_SEED']
  const path = process.env['FUZZ_PATH']
  if (seed !== undefined && seed !== '') p.seed = envNumber('FUZZ_SEED', 0)
  if (path !== undefined && path !== '') {
    p.path = path
    p.endOnFailure = true
  }
  return p
}

function report<Ts> (file: string, id: string, details: fc.RunDetails<Ts>): string {
  const lines = [fc.defaultReportMessage(details) ?? `property ${id} failed`]
  if (details.errorInstance instanceof Error) lines.push(`error: ${details.errorInstance.message}`)
  lines.push(`replay: FUZZ_PROPERTY=${id} FUZZ_SEED=${details.seed}` +
    (details.counterexamplePath !== null ? ` FUZZ_PATH=${details.counterexamplePath}` : '') + ` npx tap ${file}`)
  return lines.join('\n')
}

/**
 * Checks `property` as subtest `id` of `t`: one tap assertion that fails with fast-check's report
 * (counterexample, seed, path) and the command that replays it. `examples` run first, every time.
 */
export function property<Ts extends unknown[]> (t: Test, file: string, id: string, prop: fc.IRawProperty<Ts>, weight = 1, examples: Ts[] = []): Promise<void> {
  return t.test(id, { skip: replay !== undefined && replay !== '' && replay !== id ? `replaying ${replay}` : false }, async (t) => {
    const details = await fc.check(prop, parameters(weight, examples))
    t.equal(details.failed, false, details.failed ? report(file, id, details) : `${id}: ${details.numRuns} runs, seed ${details.seed}`)
    t.ok(details.numRuns > 0 && !details.interrupted, `${id}: the runs happened`)
  }).then(() => undefined)
}
