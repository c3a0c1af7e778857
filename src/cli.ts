#!/usr/bin/env node
/**
 * sessiongate serve | demo | keygen | check-config <file>
 */
import cluster from 'node:cluster'
import { pathToFileURL } from 'node:url'
import { readFileSync, realpathSync } from 'node:fs'
import { ConfigError, loadConfig } from './config/loader.js'
import { generateKey } from './config/keygen.js'
import { buildGateway, type Gateway } from './app.js'
import { createLogger } from './log.js'
import type { Config } from './config/types.js'
import { runPrimary } from './cluster/primary.js'
import { runWorker } from './cluster/worker.js'

const USAGE = `usage: sessiongate [serve [FILE] | demo | keygen | check-config FILE | --version]
  serve [FILE]       run the gateway with the config FILE, else the one named by SG_CONFIG (default)
  demo               run the self-contained demo (embedded IdP, demo app, in-memory store)
  keygen             print a new base64url 32-byte session key
  check-config FILE  validate a config file, print every problem, exit (0 valid, 1 invalid)
  --version          print the version`

/** The package version, read from package.json next to dist/ (or src/ when run with tsx). */
function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** Stops gracefully on SIGTERM/SIGINT: not ready, drain, close; a second signal exits at once. */
function onSignals (close: () => Promise<void>): void {
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) process.exit(1)
    stopping = true
    process.stderr.write(`sessiongate: ${signal}, shutting down\n`)
    close().then(() => process.exit(0), (err: Error) => {
      process.stderr.write(`sessiongate: shutdown failed: ${err.message}\n`)
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

/** A config error as one line, or a count followed by one `key: message` line per problem. */
function describe (err: unknown): string {
  if (!(err instanceof ConfigError)) return (err as Error).message
  const at = `invalid config${err.source !== undefined ? ` (${err.source})` : ''}`
  if (err.problems.length <= 1) return `${at}: ${err.message}`
  return [`${at}: ${err.problems.length} problems`, ...err.problems.map(p => p.message)].join('\n')
}

/** Runs one CLI command; resolves when a one-shot command is done or a server is up. */
export async function run (argv: string[]): Promise<void> {
  const [cmd = 'serve', ...args] = argv
  switch (cmd) {
    case 'keygen':
      process.stdout.write(`${generateKey()}\n`)
      return
    case 'check-config': {
      if (args[0] === undefined) throw new Error(USAGE)
      try {
        const c = loadConfig(args[0])
        process.stdout.write(`${args[0]}: valid (${c.routes.length} route${c.routes.length === 1 ? '' : 's'}, store ${c.store.kind})\n`)
      } catch (err) {
        process.stderr.write(`${describe(err)}\n`)
        process.exitCode = 1
      }
      return
    }
    case 'serve': {
      const path = args[0] ?? process.env.SG_CONFIG
      if (path === undefined || path === '') throw new Error('SG_CONFIG is not set and no FILE was given: run `sessiongate serve FILE` (or `sessiongate demo`)')
      let gateway: Gateway
      let config: Config
      try {
        config = loadConfig(path)
      } catch (err) {
        throw new Error(describe(err))
      }
      const logger = createLogger(config.logLevel)
      // Several workers (README section "Workers"): this process is either their primary or one of them.
      if (cluster.isWorker) return await runWorker(config, logger.child({ worker: Number(process.env.SG_WORKER) }))
      if (config.workers > 1) {
        const primary = await runPrimary(config, logger.child({ role: 'primary' }))
        onSignals(async () => await primary.close())
        return
      }
      try {
        gateway = await buildGateway(config, { logger })
      } catch (err) {
        throw new Error(describe(err))
      }
      const at = await gateway.listen()
      gateway.ctx.log.info({ public: at.public, admin: at.admin }, 'sessiongate listening')
      onSignals(() => gateway.close())
      return
    }
    case 'demo': {
      const { startDemo, demoBanner } = await import('./demo/demo.js').catch((err: Error) => {
        throw new Error(`the demo needs the dev dependencies (npm ci): ${err.message}`)
      })
      const demo = await startDemo({ logger: createLogger('warn') })
      process.stdout.write(demoBanner(demo))
      onSignals(() => demo.close())
      return
    }
    case '-v': case '--version': case 'version':
      process.stdout.write(`sessiongate ${version()}\n`)
      return
    case '-h': case '--help': case 'help':
      process.stdout.write(`${USAGE}\n`)
      return
    default:
      throw new Error(`unknown command "${cmd}"\n${USAGE}`)
  }
}

// Run when executed directly (bin), not when imported by main.ts or tests.
const self = process.argv[1] !== undefined ? pathToFileURL(realpathSync(process.argv[1])).href : ''
if (import.meta.url === self) {
  run(process.argv.slice(2)).catch((err: Error) => {
    process.stderr.write(`sessiongate: ${err.message}\n`)
    process.exit(1)
  })
}
