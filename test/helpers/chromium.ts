/**
 * Debian's Chromium driven by playwright-core, headless; never downloads a browser. Each browser context
 * is one device.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { chromium, type Browser, type Page } from 'playwright-core'

export const CHROMIUM = process.env.SG_CHROMIUM ?? '/usr/bin/chromium'

/** True when a test may launch Chromium here. */
export const hasChromium = existsSync(CHROMIUM)

export async function launchChromium (): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
  })
}

/** Saves a screenshot under .tap/screenshots when a test fails (called from teardown). */
export async function screenshotOnFailure (t: { passing (): boolean, name: string }, page: Page): Promise<void> {
  if (t.passing()) return
  await mkdir('.tap/screenshots', { recursive: true })
  await page.screenshot({ path: `.tap/screenshots/${t.name.replace(/[^\w-]+/g, '_').slice(0, 80)}.png`, fullPage: true }).catch(() => {})
}

/** Signs in through the IdP's login form in a real page; lands wherever the gateway sends it. */
export async function browserLogin (page: Page, startUrl: string, user: string): Promise<void> {
  await page.goto(startUrl)
  await page.fill('input[name="login"]', user)
  await page.fill('input[name="password"]', 'any-password')
  await page.click('button[type="submit"]')
  // oidc-provider asks for consent when offline_access is requested
  const consent = page.locator('button[type="submit"]')
  await page.waitForLoadState('load')
  if (page.url().includes('/interaction/') && await consent.count() > 0) {
    await consent.first().click()
    await page.waitForLoadState('load')
  }
}
