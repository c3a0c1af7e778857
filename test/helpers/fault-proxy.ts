/**
 * Fault injection between a gateway and a real redis-server, for tests.
 *
 * `startFaultProxy(port)`: a TCP proxy that understands just enough RESP (2 and 3) to count commands and
 * their replies per connection, and can be told to
 * - drop (destroy) a data connection at the Nth command from now: before forwarding it (it never runs), or
 *   when its reply comes back (it ran; the client never learns it did): `dropAt`;
 * - drop every open connection at once (`dropAll`) and refuse new ones (`refuse`): Redis unreachable;
 * - stall (hold every byte both ways, like a network that stops delivering) and resume (deliver what was
 *   held, late: a command the client gave up on still runs then): `stall` / `resume`.
 * A connection that sent (S|P)SUBSCRIBE is a subscriber: commands are counted on data connections only,
 * so a fault aimed at "the revocation's PUBLISH" never hits the subscriber's PING.
 *
 * Faults on the server itself: `acl(port, ...rules)` takes scripting or one command away from the default
 * user (and `aclRestore` gives everything back); `pause(port)` sends SIGSTOP to the redis-server process
 * and returns the SIGCONT. Never used on the Redis a developer runs on 6379.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { withAdmin } from './redis-process.js'

/** End offset of the RESP element starting at `at`, or -1 when `buf` does not hold all of it yet. */
export function frameEnd (buf: Buffer, at: number): number {
  if (at >= buf.length) return -1
  const nl = buf.indexOf('\r\n', at, 'latin1')
  if (nl < 0) return -1
  const type = String.fromCharCode(buf[at]!)
  const head = buf.toString('latin1', at + 1, nl)
  let pos = nl + 2
  switch (type) {
    case '+': case '-': case ':': case '_': case '#': case ',': case '(':
      return pos
    case '$': case '!': case '=': {
      const n = Number(head)
      if (n < 0) return pos // RESP2 null bulk string
      return buf.length < pos + n + 2 ? -1 : pos + n + 2
    }
    case '*': case '~': case '>': case '%': case '|': {
      const n = Number(head)
      if (n < 0) return pos // RESP2 null array
      const elements = type === '%' || type === '|' ? 2 * n : n
      for (let i = 0; i < elements; i++) {
        pos = frameEnd(buf, pos)
        if (pos < 0) return -1
      }
      // An attribute is followed by the element it annotates: both make one reply.
      return type === '|' ? frameEnd(buf, pos) : pos
    }
    default:
      throw new Error(`fault-proxy: not RESP (type byte ${JSON.stringify(type)})`)
  }
}

/** The command name of a RESP array of bulk strings (what clients send), upper case. */
export function commandName (frame: Buffer): string {
  const first = frame.indexOf('\r\n', 0, 'latin1')
  const len = frame.indexOf('\r\n', first + 2, 'latin1')
  if (frame[0] !== 0x2a || frame[first + 2] !== 0x24 || len < 0) return frame.toString('latin1', 0, first).toUpperCase() // inline command
  const n = Number(frame.toString('latin1', first + 3, len))
  return frame.toString('latin1', len + 2, len + 2 + n).toUpperCase()
}

const SUBSCRIBING = new Set(['SUBSCRIBE', 'SSUBSCRIBE', 'PSUBSCRIBE'])

export type DropWhen = 'request' | 'reply'

export interface FaultProxy {
  port: number
  /** redis://127.0.0.1:<port> */
  url: string
  /** Command names seen on data connections since the last `record()`, in order. */
  readonly seen: string[]
  /** Starts a fresh `seen` list (and the count `dropAt` uses). */
  record (): void
  /**
   * Destroys the data connection that carries the `nth` command (1-based) counted from now: before the
   * command is forwarded ('request': it never runs) or instead of forwarding its reply ('reply': it ran).
   * Restarts `seen`. One armed drop at a time; `fired()` tells which command it hit.
   */
  dropAt (nth: number, when: DropWhen): void
  /** The command the armed drop fired on, or undefined while it has not fired. */
  fired (): string | undefined
  /** Disarms `dropAt`. */
  disarm (): void
  /** Destroys every open connection (data and subscriber). */
  dropAll (): void
  /** While on, new connections are accepted and destroyed at once (Redis unreachable). */
  refuse (on: boolean): void
  /** Holds every byte in both directions until `resume()`. */
  stall (): void
  /** Delivers what was held, in order, and forwards normally again. */
  resume (): void
  /** Open client connections, by kind. */
  connections (): { data: number, subscriber: number }
  close (): Promise<void>
}

interface Conn {
  client: Socket
  server: Socket
  subscriber: boolean
  /** Client bytes not yet parsed into whole commands; server bytes not yet parsed into whole replies. */
  up: Buffer
  down: Buffer
  /** For each forwarded command awaiting its reply: its name and whether the armed drop is aimed at it. */
  pending: Array<{ name: string, target: boolean }>
  /** Bytes held while stalled, per direction. */
  heldUp: Buffer[]
  heldDown: Buffer[]
  /** The client went away while bytes were held: deliver them on resume, then close. */
  endAfterResume: boolean
  dead: boolean
}

/** Starts a proxy on a free port in front of 127.0.0.1:`targetPort`. */
export async function startFaultProxy (targetPort: number): Promise<FaultProxy> {
  const conns = new Set<Conn>()
  let refusing = false
  let stalled = false
  let seen: string[] = []
  let arm: { nth: number, when: DropWhen } | undefined
  let firedOn: string | undefined

  const kill = (c: Conn): void => {
    if (c.dead) return
    c.dead = true
    conns.delete(c)
    c.client.destroy()
    c.server.destroy()
  }

  const send = (c: Conn, dir: 'up' | 'down', bytes: Buffer): void => {
    if (stalled) {
      (dir === 'up' ? c.heldUp : c.heldDown).push(bytes)
      return
    }
    if (dir === 'up') c.server.write(bytes)
    else c.client.write(bytes)
  }

  const fire = (c: Conn, name: string): void => {
    firedOn = name
    arm = undefined
    kill(c)
  }

  const fromClient = (c: Conn, chunk: Buffer): void => {
    c.up = c.up.length === 0 ? chunk : Buffer.concat([c.up, chunk])
    let at = 0
    for (;;) {
      const end = frameEnd(c.up, at)
      if (end < 0) break
      const frame = c.up.subarray(at, end)
      at = end
      const name = commandName(frame)
      if (SUBSCRIBING.has(name)) c.subscriber = true
      let target = false
      if (!c.subscriber) {
        seen.push(name)
        if (arm !== undefined && seen.length === arm.nth) {
          if (arm.when === 'request') {
            fire(c, name)
            return
          }
          target = true
        }
        c.pending.push({ name, target })
      }
      send(c, 'up', Buffer.from(frame))
    }
    c.up = c.up.subarray(at)
  }

  const fromServer = (c: Conn, chunk: Buffer): void => {
    c.down = c.down.length === 0 ? chunk : Buffer.concat([c.down, chunk])
    let at = 0
    for (;;) {
      const end = frameEnd(c.down, at)
      if (end < 0) break
      const frame = c.down.subarray(at, end)
      at = end
      // Pushes (RESP3 '>') answer no command; on a subscriber connection nothing is matched.
      if (!c.subscriber && frame[0] !== 0x3e) {
        const p = c.pending.shift()
        if (p?.target === true) {
          fire(c, p.name)
          return
        }
      }
      send(c, 'down', Buffer.from(frame))
    }
    c.down = c.down.subarray(at)
  }

  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = connect(targetPort, '127.0.0.1')
    const c: Conn = { client, server: upstream, subscriber: false, up: Buffer.alloc(0), down: Buffer.alloc(0), pending: [], heldUp: [], heldDown: [], endAfterResume: false, dead: false }
    conns.add(c)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    client.on('data', (d: Buffer) => { if (!c.dead) fromClient(c, d) })
    upstream.on('data', (d: Buffer) => { if (!c.dead) fromServer(c, d) })
    client.on('error', () => kill(c))
    upstream.on('error', () => kill(c))
    client.on('close', () => {
      // A client that gave up while bytes were held: they still reach Redis on resume (a late delivery).
      if (stalled && c.heldUp.length > 0 && !c.dead) c.endAfterResume = true
      else kill(c)
    })
    upstream.on('close', () => kill(c))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as { port: number }).port

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get seen () { return seen },
    record () { seen = [] },
    dropAt (nth, when) {
      if (!Number.isInteger(nth) || nth < 1) throw new Error('dropAt: nth is 1-based')
      seen = []
      firedOn = undefined
      arm = { nth, when }
    },
    fired: () => firedOn,
    disarm () { arm = undefined },
    dropAll () { for (const c of [...conns]) kill(c) },
    refuse (on) { refusing = on },
    stall () { stalled = true },
    resume () {
      stalled = false
      for (const c of [...conns]) {
        if (c.dead) continue
        for (const b of c.heldUp.splice(0)) c.server.write(b)
        for (const b of c.heldDown.splice(0)) if (!c.client.destroyed) c.client.write(b)
        if (c.endAfterResume) c.server.end(() => kill(c))
      }
    },
    connections () {
      let data = 0
      let subscriber = 0
      for (const c of conns) if (c.subscriber) subscriber++; else data++
      return { data, subscriber }
    },
    async close () {
      refusing = true
      for (const c of [...conns]) kill(c)
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** `ACL SETUSER default <rules>` (e.g. `-@scripting`, `-publish`): applies at once to every connection. */
export async function acl (port: number, ...rules: string[]): Promise<void> {
  await withAdmin(port, async (r) => await r.call('ACL', 'SETUSER', 'default', ...rules))
}

/** Gives the default user every command again. */
export async function aclRestore (port: number): Promise<void> {
  await acl(port, '+@all')
}

/** SIGSTOP to the redis-server on `port`; returns the SIGCONT (idempotent). Commands sent meanwhile wait in the kernel. */
export async function pause (port: number): Promise<() => void> {
  const info = await withAdmin(port, async (r) => await r.info('server'))
  const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1])
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('pause: no process_id in INFO')
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  return () => {
    if (resumed) return
    resumed = true
    process.kill(pid, 'SIGCONT')
  }
}
