// What the console's browser scenarios share: launching Debian's Chromium through playwright-core
// with no network chatter, named steps that save a screenshot of the page when they fail,
// screenshots numbered in order, and the run wrapper that fails on any uncaught page error.
//
// Environment: CONSOLE_SCREENSHOTS (directory, default target/console-screenshots), CHROMIUM
// (browser binary, default /usr/bin/chromium).

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const SHOTS = resolve(process.env.CONSOLE_SCREENSHOTS || 'target/console-screenshots');
/** Longest wait for any one thing to appear; the page polls every 2 s. */
export const STEP_TIMEOUT_MS = 20_000;

// No network on the test machine: these flags keep Chromium from dialling out (and flooding the
// log with refused connections) for updates, sync, QUIC probes and the like.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let shot = 0;
/** Saves a full-page screenshot as `<NN>-<name>.png` and prints its path. */
export async function screenshot(page, name) {
  shot += 1;
  const file = join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

/** Runs one named step; on failure prints it and saves the page as `failed-<name>.png`. */
export async function step(page, name, body) {
  const started = Date.now();
  try {
    await body();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    console.error(`FAIL ${name}: ${err.message}`);
    await page.screenshot({ path: join(SHOTS, `failed-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
    throw err;
  }
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Elements by data-testid, narrowed by data-* attributes: byTestId(page, 'row', {topic: 't'}). */
export const byTestId = (page, id, attrs = {}) =>
  page.locator(`[data-testid="${id}"]${Object.entries(attrs).map(([k, v]) => `[data-${k}="${v}"]`).join('')}`);

/**
 * Launches the browser, runs `scenario(page)` in one page and closes it; exits 0 after printing
 * `<name> passed` when every step passed and the page threw nothing, 1 otherwise.
 */
export function runScenario(name, scenario) {
  async function main() {
    mkdirSync(SHOTS, { recursive: true });
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    const pageErrors = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      page.on('pageerror', (err) => pageErrors.push(err.message));
      await scenario(page);
    } finally {
      await browser.close();
    }
    if (pageErrors.length) throw new Error(`uncaught errors in the page: ${pageErrors.join(' | ')}`);
    console.log(`${name} passed; screenshots in ${SHOTS}`);
  }
  main().catch((err) => {
    console.error(err.stack || String(err));
    process.exit(1);
  });
}
