/**
 * Top self-time frames of a V8 .cpuprofile (from `node --cpu-prof`): `node --import tsx
 * bench/tools/top-frames.ts FILE [N]`. Frames are grouped by function and file; the share is of all
 * samples, idle and GC included (so "(idle)" says how much of the run the process waited).
 */
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

const [file, n = '20'] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: top-frames FILE [N]')
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(p.nodes.map((x) => [x.id, x]))
const self = new Map<string, number>()
let total = 0
p.samples.forEach((id, i) => {
  const dt = p.timeDeltas[i] ?? 0
  total += dt
  const f = byId.get(id)!.callFrame
  const where = f.url === '' ? '' : ` ${f.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')}:${f.lineNumber + 1}`
  const key = `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`
  self.set(key, (self.get(key) ?? 0) + dt)
})
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(n))
for (const [k, v] of rows) console.log(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`)
