/**
 * The "your devices" page in a real headless Chromium: it lists the signed-in devices, marks this one,
 * and signing out another device from it works (that device is out on its next request).
 */
import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { browserLogin, hasChromium, launchChromium, screenshotOnFailure } from '../helpers/chromium.js'

t.test('devices page signs out another device', { skip: hasChromium ? false : 'chromium not installed' }, async (t) => {
  const s = await startStack(t)
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const laptop = await browser.newContext()
  const phone = await browser.newContext({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1' })
  const page = await laptop.newPage()
  const phonePage = await phone.newPage()
  t.teardown(() => screenshotOnFailure(t, page))

  await browserLogin(page, `${s.url}/auth/login?remember=1&returnTo=/auth/devices`, 'alice')
  await browserLogin(phonePage, `${s.url}/hello`, 'alice')
  t.match(await phonePage.content(), /"x-forwarded-user":"alice"/, 'the phone reached the upstream as alice')

  await page.goto(`${s.url}/auth/devices`)
  t.equal(await page.title(), 'Your devices')
  const rows = page.locator('tr[data-device]')
  t.equal(await rows.count(), 2, 'two devices listed')
  t.equal(await page.locator('tr[data-device]:has(.tag)').count(), 1, 'this device marked')
  t.match(await page.locator('tbody').innerText(), /iOS/, 'the phone is described by its browser')

  // Sign out the phone (the row without the "this device" tag), with a plain form post
  await page.locator('tr[data-device]:not(:has(.tag)) button').click()
  await page.waitForLoadState('load')
  t.match(await page.locator('[role=status]').innerText(), /signed out/)
  t.equal(await page.locator('tr[data-device]').count(), 1, 'one device left')

  const after = await phonePage.request.get(`${s.url}/api/data`, { headers: { accept: 'application/json' } })
  t.equal(after.status(), 401, 'the phone is signed out')
  const laptopStill = await page.request.get(`${s.url}/api/data`, { headers: { accept: 'application/json' } })
  t.equal(laptopStill.status(), 200, 'the laptop is not')
})
