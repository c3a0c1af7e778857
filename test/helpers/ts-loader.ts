/**
 * Node arguments that load TypeScript the way this test process does, for the CLI subprocesses.
 * Under tap that is tap's own loader (ts-node): V8 coverage is merged per file across processes, and
 * one file transpiled two ways (tsx in a child, ts-node here) gives offsets that do not line up, which
 * made the printed coverage wrong both ways. Outside tap (no TypeScript loader in execArgv): tsx.
 */
export const TS_LOADER: readonly string[] = (() => {
  const own = process.execArgv.filter((a) => /@tapjs[\\/]typescript|ts-node/.test(a))
  return own.length > 0 ? [...own, '--enable-source-maps'] : ['--import', 'tsx']
})()
