/**
 * Debian's Chromium driven through playwright-core, for the dashboard tests:
 * one browser per test file, one fresh context (its own sessionStorage) per
 * test, closed at teardown. `CHROMIUM_PATH` overrides /usr/bin/chromium;
 * `.ci/run` installs the package when it is missing. No browser is ever
 * downloaded.
 */
import type { ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`no Chromium at ${CHROMIUM_PATH}: apt-get install chromium, or set CHROMIUM_PATH`);
  // --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
}

/**
 * A page in a fresh context at a laptop's size; page errors and console
 * errors fail the test at teardown, except those matching `allowErrors` (a
 * sign-in test expects the browser to report its 401s).
 */
export async function openPage(t: ExecutionContext, browser: Browser, allowErrors?: RegExp): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !allowErrors?.test(message.text())) errors.push(message.text());
  });
  t.teardown(async () => {
    await context.close();
    if (errors.length > 0) throw new Error(`the page reported errors: ${errors.join('; ')}`);
  });
  return page;
}

/** Opens the dashboard at `hash` signed in the way `npm start`'s link does it: the token in the fragment. */
export async function signedIn(page: Page, baseUrl: string, token: string, hash = '#/'): Promise<void> {
  await page.goto(`${baseUrl}/#token=${encodeURIComponent(token)}`);
  await page.locator('.status-live').waitFor();
  if (hash !== '#/') await page.goto(`${baseUrl}/${hash}`);
}
