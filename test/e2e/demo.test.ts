/**
 * The whole story in a real browser (Debian's Chromium via playwright-core), through the demo itself:
 * the embedded IdP, the demo app and the gateway. Each browser context is one device.
 * With SG_SCREENSHOTS=1 it also refreshes the README's screenshots in docs/screenshots/.
 */
import t from 'tap'
import type { BrowserContext, Page } from 'playwright-core'
import { startDemo, type Demo } from '../../src/demo/demo.js'
import { createLogger } from '../../src/log.js'
import { freePort } from '../helpers/ports.js'
import { browserLogin, hasChromium, launchChromium, screenshotOnFailure } from '../helpers/chromium.js'

const shots = process.env.SG_SCREENSHOTS === '1'
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function shot (page: Page, name: string): Promise<void> {
  if (shots) await page.screenshot({ path: `docs/screenshots/${name}.png` })
}

t.test('the demo, end to end in Chromium', { skip: hasChromium ? false : 'chromium not installed' }, async (t) => {
  const ports = { gateway: await freePort(), idp: await freePort(), upstream: await freePort(), admin: await freePort() }
  const demo: Demo = await startDemo({
    ports,
    logger: createLogger('silent'),
    // a 3 s session cookie, so the remember-me device has to renew within the test
    adjust: (c) => { c.session.ttl = 3; c.session.absoluteTtl = 120 }
  })
  t.teardown(() => demo.close())
  const app = `http://localhost:${ports.gateway}`
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const pages: Page[] = []
  const device = async (ua?: string): Promise<{ ctx: BrowserContext, page: Page }> => {
    const ctx = await browser.newContext(ua !== undefined ? { userAgent: ua } : {})
    const page = await ctx.newPage()
    pages.push(page)
    return { ctx, page }
  }
  t.teardown(async () => { for (const p of pages) await screenshotOnFailure(t, p) })

  const A = await device()
  const B = await device('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1')

  t.test('1. a protected page sends the person to the IdP and back, remembered, with their identity', async (t) => {
    await A.page.goto(`${app}/reports/q3`)
    t.equal(new URL(A.page.url()).pathname, '/auth/login', 'the gateway asks first')
    await shot(A.page, 'sign-in')
    await A.page.click('#signin-remember')
    await A.page.waitForLoadState('load')
    t.ok(A.page.url().startsWith(`http://localhost:${ports.idp}/`), 'at the IdP')
    await shot(A.page, 'idp-login')
    await A.page.fill('input[name="login"]', 'alice')
    await A.page.fill('input[name="password"]', 'any-password')
    await A.page.click('button[type="submit"]')
    await A.page.waitForLoadState('load')
    if (A.page.url().includes('/interaction/')) {
      await A.page.locator('button[type="submit"]').first().click()
      await A.page.waitForLoadState('load')
    }
    t.equal(new URL(A.page.url()).pathname, '/reports/q3', 'landed on the page asked for')
    const device = (await A.ctx.cookies()).find((c) => c.name === 'sg-device')
    t.ok(device !== undefined && device.expires > Date.now() / 1000 + 86400, 'the device is remembered (persistent credential)')
    await A.page.waitForSelector('#user')
    t.equal(await A.page.textContent('#user'), 'alice')
    t.match(await A.page.textContent('table') ?? '', /alice@example\.com/)
    await A.page.locator('#clock', { hasText: 'connected as alice' }).waitFor()
    await shot(A.page, 'demo-app')
  })

  t.test('2+3. IdP logout of device A spares device B; log out everywhere ends both, cuts the clock, says so', async (t) => {
    await browserLogin(B.page, `${app}/auth/login?remember=1`, 'alice')
    await B.page.locator('#clock', { hasText: 'connected as alice' }).waitFor()

    // Device A ends its IdP session: the IdP calls the gateway back-channel with A's sid
    await A.page.goto(`${app}/`)
    await A.page.click('#end-idp')
    await A.page.waitForLoadState('load')
    await A.page.locator('button[autofocus], button[type=submit], button').first().click()
    await A.page.waitForLoadState('load')
    const aAfter = await A.page.request.get(`${app}/api/me`, { headers: { accept: 'application/json' } })
    t.equal(aAfter.status(), 401, 'device A is out')
    const bStill = await B.page.request.get(`${app}/api/me`, { headers: { accept: 'application/json' } })
    t.equal(bStill.status(), 200, 'device B is still in (the token carried A\'s sid)')

    // B has the app open in one tab; "log out everywhere" from a second tab
    const other = await B.ctx.newPage()
    pages.push(other)
    await other.goto(`${app}/`)
    const before = Date.now()
    await other.click('#logout-everywhere')
    await B.page.locator('#clock', { hasText: 'clock stopped' }).waitFor({ timeout: 1500 })
    t.ok(Date.now() - before < 1500, 'the WebSocket clock stopped right after the logout')
    t.match(await B.page.textContent('#clock') ?? '', /1008/, 'closed with 1008')
    await B.page.waitForSelector('#signedout:not([hidden])', { timeout: 1500 })
    t.ok(await B.page.isVisible('#signedout'), 'the page says "you were signed out"')
    await shot(B.page, 'signed-out')
    const bOut = await B.page.request.get(`${app}/api/me`, { headers: { accept: 'application/json' } })
    t.equal(bOut.status(), 401, 'device B is out too')
  })

  t.test('4. a remember-me device survives a browser restart after its cookie expired, not a revocation', async (t) => {
    const first = await device()
    await browserLogin(first.page, `${app}/auth/login?remember=1`, 'bob')
    const saved = await first.ctx.storageState()
    await first.ctx.close()
    await sleep(3500) // the 3 s session cookie is gone; the device credential is not
    const restarted = await browser.newContext({ storageState: saved })
    const page = await restarted.newPage()
    pages.push(page)
    await page.goto(`${app}/`)
    t.equal(await page.textContent('#user'), 'bob', 'signed in again silently after the restart')
    const state2 = await restarted.storageState()
    await restarted.close()

    const del = await fetch(`http://127.0.0.1:${ports.admin}/admin/users/bob/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${demo.adminToken}` } })
    t.equal(del.status, 204)
    const again = await browser.newContext({ storageState: state2 })
    const p2 = await again.newPage()
    pages.push(p2)
    await p2.goto(`${app}/`)
    t.equal(new URL(p2.url()).pathname, '/auth/login', 'after the revocation the device must sign in again')
    await again.close()
  })

  t.test('5. the devices page signs out the other device', async (t) => {
    const laptop = await device()
    const phone = await device('Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile Safari/537.36')
    await browserLogin(laptop.page, `${app}/auth/login?remember=1`, 'carol')
    await browserLogin(phone.page, `${app}/auth/login?remember=0`, 'carol')
    await laptop.page.goto(`${app}/auth/devices`)
    t.equal(await laptop.page.locator('tr[data-device]').count(), 2)
    await shot(laptop.page, 'devices')
    await laptop.page.locator('tr[data-device]:not(:has(.tag)) button').click()
    await laptop.page.waitForLoadState('load')
    t.equal(await laptop.page.locator('tr[data-device]').count(), 1)
    const res = await phone.page.request.get(`${app}/api/me`, { headers: { accept: 'application/json' } })
    t.equal(res.status(), 401, 'the phone is signed out')
  })
})
