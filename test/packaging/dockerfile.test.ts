/**
 * The Dockerfile cannot be built here (no Docker engine), so its structure is linted: multi-stage,
 * production dependencies only in the image, non-root numeric USER, HEALTHCHECK, no secrets, and
 * every file it copies from the build context survives .dockerignore.
 */
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

const root = fileURLToPath(new URL('../../', import.meta.url))
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8')
const dockerignore = readFileSync(join(root, '.dockerignore'), 'utf8')
const { version: packageVersion, license: packageLicense } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string, license: string }

interface Instruction { cmd: string, args: string, line: number }
interface Stage { name: string, base: string, instructions: Instruction[] }

/** Instructions with continuation lines joined; comment lines (also inside a continuation) dropped. */
function parseInstructions (text: string): Instruction[] {
  const out: Instruction[] = []
  let buf = ''
  let start = 0
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '')
    if (/^\s*#/.test(line) || (buf === '' && line.trim() === '')) return
    if (buf === '') start = i + 1
    if (/\\\s*$/.test(line)) {
      buf += line.replace(/\\\s*$/, ' ')
      return
    }
    buf += line
    const m = /^\s*(\S+)\s*(.*)$/s.exec(buf)
    if (m !== null) out.push({ cmd: (m[1] ?? '').toUpperCase(), args: (m[2] ?? '').replace(/\s+/g, ' ').trim(), line: start })
    buf = ''
  })
  return out
}

function parseStages (text: string): Stage[] {
  const stages: Stage[] = []
  for (const ins of parseInstructions(text)) {
    if (ins.cmd === 'FROM') {
      const words = ins.args.split(' ').filter(w => !w.startsWith('--'))
      const asAt = words.findIndex(w => w.toUpperCase() === 'AS')
      stages.push({ base: words[0] ?? '', name: asAt >= 0 ? (words[asAt + 1] ?? '') : String(stages.length), instructions: [] })
    } else {
      stages.at(-1)?.instructions.push(ins)
    }
  }
  return stages
}

/** `ENV A=1 B="2"` or `ENV A 1` / `ARG A` or `ARG A=1` -> [name, value | undefined][] */
function assignments (ins: Instruction): Array<[string, string | undefined]> {
  if (!ins.args.includes('=')) {
    const [name = '', ...rest] = ins.args.split(' ')
    return [[name, rest.length > 0 ? rest.join(' ') : undefined]]
  }
  return [...ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=("[^"]*"|'[^']*'|\S*))?/g)]
    .map(m => [m[1] ?? '', m[2]])
}

const SECRETISH = /SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL/i

/** `COPY [--from=x] [--chown=..] src... dest` -> { from, sources } (JSON form too). */
function copyArgs (ins: Instruction): { from: string | undefined, sources: string[] } {
  let words: string[]
  const flags = ins.args.match(/^(?:--\S+\s+)*/)?.[0] ?? ''
  const rest = ins.args.slice(flags.length)
  if (rest.startsWith('[')) words = JSON.parse(rest) as string[]
  else words = rest.split(' ')
  const from = /--from=(\S+)/.exec(flags)?.[1]
  return { from, sources: words.slice(0, -1) }
}

function runs (stage: Stage): string[] {
  return stage.instructions.filter(i => i.cmd === 'RUN').map(i => i.args)
}

const npmCi = (cmd: string): boolean => /\bnpm (ci|clean-install)\b/.test(cmd)
const prodOnly = (cmd: string): boolean => /--omit[= ]dev|--production|--only[= ]prod/.test(cmd)

/** Every rule the image must keep; returns the broken ones (empty: all good). */
function lintDockerfile (text: string): string[] {
  const problems: string[] = []
  const stages = parseStages(text)
  if (stages.length < 2) return [`multi-stage: expected at least 2 FROM stages, got ${stages.length}`]
  const final = stages.at(-1) as Stage
  const byName = new Map(stages.map(s => [s.name, s]))
  const all = (cmd: string): Instruction[] => final.instructions.filter(i => i.cmd === cmd)

  // base images: a current Node LTS (even major >= 20); the runtime on the same base as the build
  for (const s of stages) {
    if (byName.has(s.base)) continue // FROM <earlier stage>
    const major = /^node:(\d+)/.exec(s.base)?.[1]
    if (major === undefined || Number(major) < 20 || Number(major) % 2 !== 0) problems.push(`stage ${s.name}: base ${s.base} is not a Node LTS image`)
  }

  // non-root numeric user
  const user = all('USER').at(-1)?.args
  if (user === undefined) problems.push('final stage: no USER (would run as root)')
  else if (!/^\d+(:\d+)?$/.test(user)) problems.push(`final stage: USER ${user} is not numeric uid[:gid] (runAsNonRoot cannot verify a name)`)
  else if (Number(user.split(':')[0]) === 0) problems.push('final stage: USER is root (0)')

  // health check with node (no curl in slim images)
  const hc = all('HEALTHCHECK').at(-1)?.args
  if (hc === undefined || /^NONE\b/i.test(hc)) problems.push('final stage: no HEALTHCHECK')
  else if (!/\bCMD\b.*\bnode\b/.test(hc)) problems.push('final stage: HEALTHCHECK must use node (slim images have no curl)')

  // no secrets in ARG / ENV, in any stage
  for (const s of stages) {
    for (const ins of s.instructions.filter(i => i.cmd === 'ARG' || i.cmd === 'ENV')) {
      for (const [name, value] of assignments(ins)) {
        if (!SECRETISH.test(name)) continue
        if (ins.cmd === 'ARG') problems.push(`stage ${s.name}: ARG ${name} looks like a secret (build args stay in the image history)`)
        else if (value !== undefined && value !== '') problems.push(`stage ${s.name}: ENV ${name} bakes a secret-looking value into the image`)
      }
    }
  }

  // the final stage: dist from a build stage, never src; production dependencies only
  const copies = all('COPY').concat(all('ADD')).map(copyArgs)
  const distCopy = copies.find(c => c.sources.some(src => /(^|\/)dist\/?$/.test(src)))
  if (distCopy === undefined) problems.push('final stage: does not copy dist/')
  if (copies.some(c => c.sources.some(src => /(^|\/)src(\/|$)/.test(src) || src === '.' || src === './'))) {
    problems.push('final stage: copies src/ or the whole context (only dist/ belongs in the image)')
  }
  const buildStage = distCopy?.from !== undefined ? byName.get(distCopy.from) : undefined
  if (distCopy !== undefined && buildStage === undefined) problems.push('final stage: dist/ does not come from a build stage (COPY --from=<stage>)')
  if (buildStage !== undefined && !runs(buildStage).some(npmCi)) problems.push(`build stage ${buildStage.name}: does not run npm ci`)
  if (buildStage !== undefined && !runs(buildStage).some(r => /\bnpm run (prepare|build)\b|\btsc\b/.test(r) || (npmCi(r) && !r.includes('--ignore-scripts')))) {
    problems.push(`build stage ${buildStage.name}: does not compile (npm run prepare / build)`)
  }
  const nm = copies.find(c => c.sources.some(src => /(^|\/)node_modules\/?$/.test(src)))
  if (nm === undefined) {
    if (!runs(final).some(r => npmCi(r) && prodOnly(r))) problems.push('final stage: no production node_modules (copied or npm ci --omit=dev)')
  } else {
    const from = nm.from !== undefined ? byName.get(nm.from) : undefined
    if (from === undefined) problems.push('final stage: node_modules copied from the build context, not a stage')
    else if (!runs(from).some(r => prodOnly(r))) problems.push(`final stage: node_modules from stage ${from.name}, which does not omit dev dependencies`)
  }
  if (runs(final).some(r => /\bnpm (ci|install|i)\b/.test(r) && !prodOnly(r))) problems.push('final stage: installs dev dependencies')

  // runtime settings the chart and the README rely on
  const env = new Map(all('ENV').flatMap(assignments))
  if (env.get('NODE_ENV') !== 'production') problems.push('final stage: ENV NODE_ENV=production missing')
  if (env.get('SG_CONFIG') !== '/etc/sessiongate/config.yaml') problems.push('final stage: ENV SG_CONFIG=/etc/sessiongate/config.yaml missing')
  const exposed = all('EXPOSE').flatMap(i => i.args.split(' ')).map(p => p.replace(/\/tcp$/, ''))
  for (const port of ['8080', '9090']) if (!exposed.includes(port)) problems.push(`final stage: EXPOSE ${port} missing`)
  // OCI image annotations: the version (ARG VERSION, the package version by default) and where it came from
  const labels = new Map(all('LABEL').flatMap(ins => [...ins.args.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S+)/g)].map(m => [m[1] ?? '', (m[2] ?? '').replace(/^"|"$/g, '')] as const)))
  for (const key of ['title', 'description', 'version', 'revision', 'created', 'source', 'licenses']) {
    if (!(labels.get(`org.opencontainers.image.${key}`) ?? '').trim()) problems.push(`final stage: LABEL org.opencontainers.image.${key} missing`)
  }
  const versionArg = all('ARG').flatMap(assignments).find(([name]) => name === 'VERSION')
  if (labels.get('org.opencontainers.image.version') !== '${VERSION}' || versionArg === undefined) problems.push('final stage: org.opencontainers.image.version must come from ARG VERSION')
  else if (versionArg[1] !== packageVersion) problems.push(`final stage: ARG VERSION defaults to ${String(versionArg[1])}, not the package version ${packageVersion}`)
  if (labels.get('org.opencontainers.image.licenses') !== packageLicense) problems.push(`final stage: org.opencontainers.image.licenses is not the package license ${packageLicense}`)
  const entry = all('ENTRYPOINT').at(-1)?.args
  if (entry === undefined || !entry.startsWith('[') || JSON.stringify(JSON.parse(entry)) !== JSON.stringify(['node', 'dist/cli.js'])) {
    problems.push('final stage: ENTRYPOINT ["node", "dist/cli.js"] (exec form) missing')
  }
  return problems
}

/** .dockerignore patterns (no negations) -> does one exclude `path` or one of its parents? */
function ignored (path: string, patterns: string[]): string | undefined {
  const parts = path.replace(/^\.\//, '').split('/')
  for (const p of patterns) {
    const re = new RegExp(`^${p.replace(/^\//, '').replace(/\/$/, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '.*')}$`)
    for (let i = 1; i <= parts.length; i++) if (re.test(parts.slice(0, i).join('/'))) return p
  }
  return undefined
}

const ignorePatterns = dockerignore.split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#') && !l.startsWith('!'))

t.test('the Dockerfile passes every structural rule', async t => {
  t.same(lintDockerfile(dockerfile), [])
  const stages = parseStages(dockerfile)
  t.ok(stages.length >= 2, `${stages.length} stages`)
  t.equal(stages.at(-1)?.base, 'node:22-bookworm-slim', 'runtime on the current LTS, slim')
  const final = stages.at(-1) as Stage
  const cmd = final.instructions.filter(i => i.cmd === 'CMD').at(-1)?.args
  t.same(JSON.parse(cmd ?? 'null'), ['serve'], 'CMD ["serve"]')
  t.match(final.instructions.find(i => i.cmd === 'HEALTHCHECK')?.args, /127\.0\.0\.1:9090\/healthz/, 'health check on the admin port')
  t.match(final.instructions.filter(i => i.cmd === 'LABEL').map(i => i.args).join(' '), /org\.opencontainers\.image\.title="sessiongate"/, 'OCI labels on the runtime image')
})

t.test('files copied from the build context exist and are not excluded by .dockerignore', async t => {
  for (const stage of parseStages(dockerfile)) {
    for (const ins of stage.instructions.filter(i => i.cmd === 'COPY' || i.cmd === 'ADD')) {
      const { from, sources } = copyArgs(ins)
      if (from !== undefined) continue
      for (const src of sources) {
        t.ok(existsSync(join(root, src)), `${src} exists (line ${ins.line})`)
        t.equal(ignored(src, ignorePatterns), undefined, `${src} is sent to the builder`)
      }
    }
  }
})

t.test('.dockerignore keeps local artefacts out of the build context', async t => {
  for (const path of ['node_modules', 'dist', '.git', '.tap', 'coverage', 'bench/results/latest.json', 'helm/sessiongate/values.yaml', 'test/unit/config.test.ts']) {
    t.not(ignored(path, ignorePatterns), undefined, `${path} excluded`)
  }
})

t.test('the lint catches what it is meant to catch', async t => {
  const good = dockerfile
  const bad = (label: string, text: string, expect: RegExp): void => {
    const problems = lintDockerfile(text)
    t.ok(problems.some(p => expect.test(p)), `${label}: ${problems.join('; ') || 'no problem reported'}`)
  }
  bad('single stage', 'FROM node:22-bookworm-slim\nCOPY . .\nRUN npm ci\nCMD ["node", "dist/cli.js"]\n', /multi-stage/)
  bad('no USER', good.replace(/^USER .*$/m, ''), /no USER/)
  bad('named USER', good.replace(/^USER .*$/m, 'USER node'), /not numeric/)
  bad('root USER', good.replace(/^USER .*$/m, 'USER 0:0'), /root/)
  bad('no HEALTHCHECK', good.replace(/^HEALTHCHECK[^\n]*\\\n[^\n]*\n/m, ''), /no HEALTHCHECK/)
  bad('curl health check', good.replace(/CMD \["node".*\]$/m, 'CMD curl -f http://127.0.0.1:9090/healthz'), /use node/)
  bad('secret build arg', good.replace(/^FROM (.*) AS build$/m, 'FROM $1 AS build\nARG NPM_TOKEN'), /ARG NPM_TOKEN/)
  bad('secret in ENV', good.replace(/^ENV NODE_ENV=production/m, 'ENV SG_ADMIN_TOKEN=abcdefabcdefabcdef NODE_ENV=production'), /ENV SG_ADMIN_TOKEN/)
  bad('src in the image', good.replace(/^COPY package\.json \.\/$/m, 'COPY package.json ./\nCOPY src ./src'), /src/)
  bad('dev node_modules', good.replace(/--from=deps \/app\/node_modules/, '--from=build /app/node_modules'), /does not omit dev/)
  bad('old Node', good.replaceAll('node:22-bookworm-slim', 'node:18-bookworm-slim'), /not a Node LTS/)
  bad('no OCI labels', good.replace(/^LABEL [^\n]*(\\\n[^\n]*)*\n/m, ''), /LABEL org\.opencontainers\.image\.version missing/)
  bad('a stale version label', good.replace(/^ARG VERSION=.*$/m, 'ARG VERSION=0.0.1'), /ARG VERSION defaults to 0\.0\.1/)
  bad('a hard-coded version label', good.replace('org.opencontainers.image.version="${VERSION}"', 'org.opencontainers.image.version="0.1.0"'), /must come from ARG VERSION/)
  bad('no npm ci in build', good.replace(/^RUN npm ci --ignore-scripts --no-audit --no-fund$/m, 'RUN npm install'), /does not run npm ci/)
  t.same(parseInstructions('FROM a AS b\n# c\nRUN x \\\n  # inside\n  && y\n').map(i => `${i.cmd} ${i.args}`), ['FROM a AS b', 'RUN x && y'], 'continuations and comments')
})
