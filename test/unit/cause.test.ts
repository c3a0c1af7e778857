/**
 * causeChain (src/core/cause.ts): what a log line keeps of an error's causes (name, code, message,
 * an HTTP status), and what it never keeps (the objects, which can hold response bodies).
 */
import t from 'tap'
import { causeChain } from '../../src/core/cause.js'

t.test('each cause, outermost first, with its code', async (t) => {
  const tls = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
  const fetchFailed = new TypeError('fetch failed', { cause: tls })
  const top = new Error('code exchange failed', { cause: fetchFailed })
  t.same(causeChain(top), [
    { name: 'TypeError', message: 'fetch failed' },
    { name: 'Error', code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' }
  ])
  t.same(causeChain(new Error('no cause')), [])
})

t.test('a Response keeps its status, a plain object its kind only', async (t) => {
  const withResponse = new Error('unexpected status', { cause: new Response('{"access_token":"secret-at"}', { status: 502 }) })
  t.same(causeChain(withResponse), [{ name: 'Response', status: 502 }])
  const withBody = new Error('bad body', { cause: { body: { access_token: 'secret-at' } } })
  t.same(causeChain(withBody), [{ name: 'Object' }])
  t.notMatch(JSON.stringify(causeChain(withBody)), /secret-at/)
})

t.test('a cycle or a long chain ends', async (t) => {
  const a = new Error('a')
  const b = new Error('b', { cause: a })
  ;(a as { cause?: unknown }).cause = b
  t.equal(causeChain(new Error('top', { cause: a })).length, 2)
  let deep: Error = new Error('0')
  for (let i = 1; i < 20; i++) deep = new Error(String(i), { cause: deep })
  t.equal(causeChain(deep).length, 5)
})
