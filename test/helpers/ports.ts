import { createServer } from 'node:net'

/*
 * Ports for test servers come from below the kernel's ephemeral range (32768-60999 on Linux), which is
 * where `listen(0)` picks and where every outgoing connection (Redis clients, fetches) takes its local
 * port: a port picked by `listen(0)` and bound a moment later can meanwhile be taken by a connection.
 * Each test process draws from its own slice (by pid) so two tap jobs rarely draw the same port; a port
 * is handed out once per process and checked free before it is returned.
 */
const LOW = 20_000
const SLICES = 8
const SLICE = 1_500
const slice = LOW + (process.pid % SLICES) * SLICE
const handedOut = new Set<number>()

async function canBind (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/** A TCP port on 127.0.0.1 that was free a moment ago and that no other caller in this process got. */
export async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = slice + Math.floor(Math.random() * SLICE)
    if (handedOut.has(port)) continue
    handedOut.add(port)
    if (await canBind(port)) return port
  }
  throw new Error(`no free port in ${slice}-${slice + SLICE - 1}`)
}
