import { Redis } from 'ioredis'
import { startRedisSentinel } from './redis-sentinel.js'
const t0 = Date.now()
const ts = () => Date.now() - t0
const s = await startRedisSentinel()
console.log('started', s.sentinels, await s.master(), ts())
const c = new Redis({ sentinels: s.sentinels, name: s.name, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500, failoverDetector: process.env.FD === '1' })
c.on('error', (e) => console.log(ts(), 'err', e.message))
for (const ev of ['ready', 'close', 'reconnecting', '+node', 'end']) c.on(ev, () => console.log(ts(), ev, (c as any).stream?.remotePort))
await new Promise(r => c.once('ready', r))
let i = 0; const acked: number[] = []; let stop = false
const loop = (async () => { while (!stop) { const n = ++i; try { if (c.status !== 'ready') { await new Promise(r => setTimeout(r, 20)); continue }; await c.rpush('L', n); const w = await c.call('WAIT', 1, 200); acked.push(n); if (w !== 1) console.log(ts(), 'wait', w, 'port', (c as any).stream?.remotePort, n) } catch (e: any) { console.log(ts(), 'fail', n, e.message) } await new Promise(r => setTimeout(r, 10)) } })()
await new Promise(r => setTimeout(r, 300))
console.log(ts(), 'failover start')
await s.failover()
console.log(ts(), 'failover done', await s.master())
await new Promise(r => setTimeout(r, 500)); stop = true; await loop
const list = (await c.lrange('L', 0, -1)).map(Number)
const lost = acked.filter(n => !list.includes(n))
console.log('acked', acked.length, 'lost', lost)
c.disconnect(); await s.stop()
