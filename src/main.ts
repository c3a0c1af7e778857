#!/usr/bin/env node
/**
 * Process entry for `npm start`: the gateway on SG_CONFIG, or the demo when SG_CONFIG is unset.
 */
import { run } from './cli.js'

run(process.env.SG_CONFIG !== undefined && process.env.SG_CONFIG !== '' ? ['serve'] : ['demo']).catch((err: Error) => {
  process.stderr.write(`sessiongate: ${err.message}\n`)
  process.exit(1)
})
