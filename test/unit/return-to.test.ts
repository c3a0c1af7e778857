import t from 'tap'
import { MAX_RETURN_TO_LENGTH, safeReturnTo } from '../../src/core/return-to.js'

const accepted = [
  '/',
  '/ok',
  '/ok?x=1#y',
  '/a/b/c.html',
  '/search?q=hello+world&page=2',
  '/caf%C3%A9',
  '/a//b',
  '/ok?next=//elsewhere',
  '/ok#//fragment',
  '/%252F%252Fevil.com', // decodes once to `/%2F%2Fevil.com`: a path on this site
  '/:colon',
  '/javascript:alert(1)',
  '/' + 'a'.repeat(MAX_RETURN_TO_LENGTH - 1)
]

const rejected: Array<[string, unknown]> = [
  ['protocol-relative', '//evil.com'],
  ['protocol-relative, three slashes', '///evil.com'],
  ['backslash after slash', '/\\evil.com'],
  ['backslash anywhere', '/ok\\evil'],
  ['absolute https', 'https://evil.com'],
  ['absolute http, same-looking host', 'http://x.invalid/'],
  ['scheme', 'javascript:alert(1)'],
  ['data scheme', 'data:text/html,hi'],
  ['no leading slash', 'evil.com'],
  ['relative path', 'ok/page'],
  ['query only', '?x=1'],
  ['fragment only', '#x'],
  ['encoded slashes', '/%2F%2Fevil.com'],
  ['encoded slash, lower case', '/%2f/evil.com'],
  ['encoded backslash', '/%5Cevil'],
  ['encoded backslash later', '/ok%5Cx'],
  ['tab', '/\tevil'],
  ['encoded tab', '/%09/evil.com'],
  ['newline', '/ok\nLocation: x'],
  ['encoded CRLF', '/ok%0D%0ASet-Cookie:x'],
  ['space', '/ok page'],
  ['encoded space (use + in queries)', '/x/%20'],
  ['leading space', ' /ok'],
  ['NUL', '/ok\u0000'],
  ['encoded NUL', '/ok%00'],
  ['DEL', '/ok\u007f'],
  ['encoded C1 control', '/ok%C2%85'],
  ['encoded no-break space', '/ok%C2%A0'],
  ['raw non-ASCII', '/café'],
  ['raw line separator', '/ok\u2028'],
  ['malformed percent-encoding', '/100%'],
  ['truncated UTF-8', '/%E0%A4%A'],
  ['dot segments to //', '/..//evil.com'],
  ['encoded dot segments to //', '/%2e%2e//evil.com'],
  ['too long', '/' + 'a'.repeat(MAX_RETURN_TO_LENGTH)],
  ['empty', ''],
  ['undefined', undefined],
  ['null', null],
  ['number', 42],
  ['array', ['/ok']],
  ['object', { toString: () => '/ok' }]
]

t.test('accepted paths come back unchanged', async (t) => {
  for (const input of accepted) t.equal(safeReturnTo(input), input, JSON.stringify(input).slice(0, 60))
})

t.test('rejected inputs fall back', async (t) => {
  for (const [name, input] of rejected) t.equal(safeReturnTo(input), '/', name)
})

t.test('custom fallback', async (t) => {
  t.equal(safeReturnTo('//evil.com', '/home'), '/home')
  t.equal(safeReturnTo(undefined, '/home'), '/home')
  t.equal(safeReturnTo('/ok', '/home'), '/ok')
})
