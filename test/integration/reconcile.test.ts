/**
 * Reconciliation after a lost subscription (issue 10), through the whole gateway on a real redis-server:
 * this replica's subscriber connection is dropped and its SUBSCRIBE held unanswered while another replica
 * logs the user out, so the revocation event never reaches it; once it subscribes again, it re-checks
 * the sessions of its open connections and closes the WebSocket (1008) and the event stream (logout).
 */
import t from 'tap'
import WebSocket from 'ws'
import { RedisStore } from '../../src/store/redis.js'
import { redisOf } from '../../src/config/types.js'
import { Browser, login } from '../helpers/browser.js'
import { startRedis } from '../helpers/redis-server.js'
import { startStack } from '../helpers/stack.js'
import { startStallProxy } from '../helpers/stall-proxy.js'
import { captureLogger, sleep } from '../helpers/store-kit.js'

/** Rejects after `ms`, naming what did not happen. */
async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

t.test('a logout on another replica while this one has no subscription closes its connections after the resubscribe', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const proxy = await startStallProxy({ port: redis.port })
  t.teardown(() => proxy.close())
  const s = await startStack(t, { redisUrl: proxy.url })
  const b = new Browser()
  await login(b, s.url, 'alice')
  const { sid } = (await b.fetch(`${s.url}/auth/session`)).json<{ sid: string }>()
  const cookie = b.cookieHeader(s.url)

  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/live`, { headers: { cookie } })
  t.teardown(() => ws.terminate())
  await new Promise<void>((resolve, reject) => { ws.once('message', () => resolve()); ws.once('error', reject) })
  const wsClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))

  const res = await fetch(`${s.url}/auth/events`, { headers: { cookie } })
  t.equal(res.status, 200)
  const reader = res.body!.getReader()
  let text = ''
  const sseDone = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      text += Buffer.from(value).toString()
    }
  })()
  t.teardown(() => reader.cancel().catch(() => {}))
  await sleep(100)
  t.equal(s.gateway.ctx.connections.size, 2, 'both connections registered')

  // Another replica, straight on Redis.
  const other = new RedisStore({ redis: { url: redis.url, keyPrefix: redisOf(s.config.store).keyPrefix, commandTimeoutMs: 1000 }, logger: captureLogger() })
  t.teardown(() => other.close())

  // This replica's subscriber connection drops, and whatever reconnects cannot subscribe for now.
  proxy.hold(/subscribe/i)
  t.equal(proxy.reset(/subscribe/i), 1, 'the subscriber connection dropped')
  await other.revokeSessions('alice', [sid], 300)
  await sleep(300)
  t.equal(ws.readyState, WebSocket.OPEN, 'the event was missed: the WebSocket is still open')
  t.notMatch(text, /event: logout/, 'and so is the event stream')

  proxy.release()
  t.equal(await within(wsClosed, 10_000, 'WebSocket close'), 1008, 'closed with 1008 once subscribed again')
  await within(sseDone, 10_000, 'end of the event stream')
  t.match(text, /event: logout/, 'the event stream said logout')
  t.equal(s.gateway.ctx.connections.size, 0)
  t.ok(s.logs.some((l) => l.includes('closed connections of sessions revoked while not subscribed')), 'logged')
})
