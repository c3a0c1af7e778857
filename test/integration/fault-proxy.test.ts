/**
 * The fault-injection tools themselves, against a real redis-server: the proxy counts commands and drops
 * at the right one (before it runs, or after it ran with its reply lost), stalls and delivers late,
 * refuses connections; ACL rules and SIGSTOP take effect. The logout fault tests rely on all of it.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { startRedis } from '../helpers/redis-server.js'
import { withAdmin } from '../helpers/redis-process.js'
import { acl, aclRestore, commandName, frameEnd, pause, startFaultProxy } from '../helpers/fault-proxy.js'

const client = (url: string): Redis => {
  const r = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: 500 })
  r.on('error', () => {})
  return r
}

t.test('RESP framing: whole frames only, RESP2 and RESP3 types', async (t) => {
  const b = (s: string): Buffer => Buffer.from(s, 'latin1')
  t.equal(frameEnd(b('+OK\r\n'), 0), 5)
  t.equal(frameEnd(b('$5\r\nhel'), 0), -1, 'partial bulk')
  t.equal(frameEnd(b('$-1\r\n'), 0), 5, 'null bulk')
  t.equal(frameEnd(b('*2\r\n$1\r\na\r\n:1\r\n+x'), 0), 15, 'array, trailing bytes ignored')
  t.equal(frameEnd(b('%1\r\n+k\r\n*1\r\n_\r\n'), 0), 15, 'map of arrays with a RESP3 null')
  t.equal(frameEnd(b('|1\r\n+a\r\n+b\r\n:7\r\n'), 0), 16, 'an attribute and the reply it annotates')
  t.equal(commandName(b('*2\r\n$7\r\nevalsha\r\n$1\r\nx\r\n')), 'EVALSHA')
})

t.test('proxy faults on a real redis-server', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const proxy = await startFaultProxy(redis.port)
  t.teardown(() => proxy.close())
  const direct = async (fn: (r: Redis) => Promise<unknown>): Promise<unknown> => await withAdmin(redis.port, fn)

  t.test('drop before the Nth command: it never runs', async (t) => {
    const c = client(proxy.url)
    await c.connect()
    proxy.dropAt(2, 'request')
    await c.set('a', '1')
    await t.rejects(c.set('b', '1'), 'the client sees the connection go')
    t.equal(proxy.fired(), 'SET')
    t.equal(await direct(async (r) => await r.get('a')), '1', 'the first ran')
    t.equal(await direct(async (r) => await r.get('b')), null, 'the dropped one did not')
    c.disconnect()
  })

  t.test('drop at the reply of the Nth command: it ran, the reply is lost', async (t) => {
    const c = client(proxy.url)
    await c.connect()
    proxy.dropAt(1, 'reply')
    await t.rejects(c.set('c', '1'))
    t.equal(await direct(async (r) => await r.get('c')), '1', 'it ran')
    c.disconnect()
  })

  t.test('subscriber connections are not counted', async (t) => {
    const sub = client(proxy.url)
    const pub = client(proxy.url)
    await Promise.all([sub.connect(), pub.connect()])
    await sub.subscribe('ch')
    t.same(proxy.connections(), { data: 1, subscriber: 1 })
    proxy.dropAt(1, 'request')
    const got = new Promise<string>((resolve) => sub.once('message', (_c: string, m: string) => resolve(m)))
    await t.rejects(pub.publish('ch', 'x'))
    t.equal(proxy.fired(), 'PUBLISH', 'the data connection carried it')
    await direct(async (r) => await r.publish('ch', 'y'))
    t.equal(await got, 'y', 'the subscriber is untouched')
    sub.disconnect()
    pub.disconnect()
  })

  t.test('stall: the client times out; on resume the held command still runs (late)', async (t) => {
    const c = client(proxy.url)
    await c.connect()
    proxy.stall()
    await t.rejects(c.set('late', '1'), /timed out/)
    t.equal(await direct(async (r) => await r.get('late')), null, 'not yet')
    proxy.resume()
    let v: unknown = null
    for (let i = 0; i < 40 && v === null; i++) {
      v = await direct(async (r) => await r.get('late'))
      if (v === null) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    t.equal(v, '1', 'delivered late')
    c.disconnect()
  })

  t.test('refuse: no new connection; dropAll ends the open ones', async (t) => {
    const c = client(proxy.url)
    await c.connect()
    proxy.refuse(true)
    proxy.dropAll()
    await t.rejects(c.ping())
    await t.rejects(client(proxy.url).connect())
    proxy.refuse(false)
    const d = client(proxy.url)
    await d.connect()
    t.equal(await d.ping(), 'PONG')
    d.disconnect()
  })

  t.test('ACL takes scripting or one command away, and gives it back', async (t) => {
    const c = client(redis.url)
    await c.connect()
    await acl(redis.port, '-@scripting')
    await t.rejects(c.eval('return 1', 0), /NOPERM/)
    t.equal(await c.set('x', '1'), 'OK', 'the rest still works')
    await acl(redis.port, '+@all', '-del')
    await t.rejects(c.eval('return redis.call("DEL", KEYS[1])', 1, 'x'), /can't run this command/, 'inside a script too')
    await aclRestore(redis.port)
    t.equal(await c.eval('return redis.call("DEL", KEYS[1])', 1, 'x'), 1)
    c.disconnect()
  })

  t.test('SIGSTOP: no answer until SIGCONT', async (t) => {
    const c = client(redis.url)
    await c.connect()
    const resume = await pause(redis.port)
    t.teardown(resume)
    await t.rejects(c.ping(), /timed out/)
    resume()
    const d = client(redis.url)
    await d.connect()
    t.equal(await d.ping(), 'PONG')
    c.disconnect()
    d.disconnect()
  })
})
