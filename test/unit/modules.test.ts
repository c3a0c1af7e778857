/**
 * Every module under src/ loads on its own, with no side effect but its exports. This also makes the
 * coverage figure honest: tap reports only files some test loaded, so a module no test imports would
 * otherwise be missing from the total instead of counting as uncovered.
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { join } from 'node:path'

const src = fileURLToPath(new URL('../../src/', import.meta.url))
/** Entry points that act when loaded (main.ts starts the gateway or the demo); the CLI tests run them. */
const ENTRY_POINTS = new Set(['main.ts'])

const modules = (readdirSync(src, { recursive: true }) as string[])
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !ENTRY_POINTS.has(f))
  .sort()

t.ok(modules.length > 50, `found the modules (${modules.length})`)
for (const file of modules) {
  t.test(file, async (t) => {
    // Type-only modules (context.ts) export nothing at run time: loading without throwing is the check.
    await t.resolves(import(pathToFileURL(join(src, file)).href), 'loads')
  })
}
