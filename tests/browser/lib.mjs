// The browser test harness shared by every scenario in tests/browser/: it
// launches Debian's headless Chromium through playwright-core (never a
// browser of playwright's own), opens pages while collecting their console
// errors and uncaught exceptions, saves screenshots to the artifacts folder
// the Rust side names in ROOMCAST_ARTIFACTS, waits for conditions with a
// bounded deadline (never a fixed sleep), and talks to the Rust test that
// started the scenario over a line protocol:
//
//   scenario → test (stdout):  "@@ <step>"      a step that needs the test to act
//   test → scenario (stdin):   "<reply>"        one line, when the test has acted
//
// A scenario is one script (tests/browser/<page>.mjs) run as
// `node tests/browser/<page>.mjs <base-url>`; it exits 0 when every check
// passed, and non-zero with the reason on stderr otherwise (see run()).

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * The flags every scenario's Chromium gets: headless, no sandbox (CI runs
 * as root), no GPU, and nothing that would reach the network on its own
 * (QUIC, background requests, component or sync updates). The last two
 * keep Chromium on loopback whatever it tries: every host name fails to
 * resolve (the pages are opened by IP), and anything that is not loopback
 * goes to a proxy on a closed local port (loopback bypasses proxies).
 */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
  '--proxy-server=http://127.0.0.1:9',
];

/** The longest any single wait may take before the scenario fails. */
export const TIMEOUT_MS = 15_000;

/** The screen size pages are checked at (the brief's 1280×800). */
export const VIEWPORT = { width: 1280, height: 800 };

/** A check that did not hold: the scenario fails with this message. */
export class CheckFailed extends Error {}

/** Throws CheckFailed(message) unless `condition` holds. */
export function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

/** The base URL the Rust test passed (`http://127.0.0.1:PORT`), without a trailing slash. */
export function baseUrl() {
  const url = process.argv[2];
  if (!url || !/^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\/?$/.test(url)) {
    throw new CheckFailed(`usage: node <scenario>.mjs http://127.0.0.1:PORT (loopback only); got ${url}`);
  }
  return url.replace(/\/$/, '');
}

/**
 * Launches Chromium with CHROMIUM_FLAGS and a fresh, empty user-data-dir
 * (so no state from an earlier run: localStorage, cache, cookies) that is
 * removed again by close(). Returns { context, close }: `context` is a
 * playwright BrowserContext at VIEWPORT.
 */
export async function launch() {
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'roomcast-chromium-'));
  // launchPersistentContext is playwright's way to name the user-data-dir
  // (it refuses a --user-data-dir in args); otherwise it is chromium.launch.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: VIEWPORT,
    timeout: 60_000,
  });
  context.setDefaultTimeout(TIMEOUT_MS);
  const close = async () => {
    await context.close().catch(() => {});
    await rm(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}

/**
 * Opens `url` in a new page of `context` and collects what went wrong in it:
 * `errors` lists console.error messages, uncaught exceptions, and failed
 * requests to the page's own origin, as text. `prepare(page)`, when given,
 * runs before the page loads (init scripts, a fake clock). Returns { page, errors }.
 */
export async function openPage(context, url, prepare) {
  const page = await context.newPage();
  if (prepare) await prepare(page);
  const errors = [];
  const origin = new URL(url).origin;
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console.error: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.stack || error.message}`));
  page.on('requestfailed', (request) => {
    // A WebSocket that fails while a test has stopped the server is expected;
    // every other failed request to our own origin is an error.
    if (request.url().startsWith(origin) && request.resourceType() !== 'websocket') {
      errors.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
    }
  });
  page.on('response', (response) => {
    if (response.url().startsWith(origin) && response.status() >= 400) {
      errors.push(`HTTP ${response.status()}: ${response.url()}`);
    }
  });
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors };
}

/** The folder screenshots go to (ROOMCAST_ARTIFACTS), created when missing. */
export async function artifactsDir() {
  const dir = process.env.ROOMCAST_ARTIFACTS || path.join(process.cwd(), 'target', 'browser-artifacts');
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Saves a full-page PNG of `page` as `<name>.png` in the artifacts folder; returns its path. */
export async function screenshot(page, name) {
  const file = path.join(await artifactsDir(), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot: ${file}`);
  return file;
}

/**
 * Waits until `predicate` (a function run in the page, with `arg`) returns
 * a truthy value, and returns that value; fails with `what` after TIMEOUT_MS.
 */
export async function waitInPage(page, what, predicate, arg, timeout = TIMEOUT_MS) {
  try {
    const handle = await page.waitForFunction(predicate, arg, { timeout, polling: 50 });
    return await handle.jsonValue();
  } catch (error) {
    throw new CheckFailed(`timed out after ${timeout} ms waiting for ${what}: ${error.message.split('\n')[0]}`);
  }
}

/** A progress line on stderr (the Rust test shows it when the scenario fails). */
export function log(message) {
  process.stderr.write(`[${path.basename(process.argv[1] || 'scenario')}] ${message}\n`);
}

/** Lines the Rust test writes to our stdin, in order. */
const replies = (() => {
  const queue = [];
  const waiting = [];
  let closed = false;
  const reader = createInterface({ input: process.stdin });
  reader.on('line', (line) => (waiting.length ? waiting.shift().resolve(line) : queue.push(line)));
  reader.on('close', () => {
    closed = true;
    while (waiting.length) waiting.shift().reject(new CheckFailed('the test closed stdin'));
  });
  return {
    next() {
      if (queue.length) return Promise.resolve(queue.shift());
      if (closed) return Promise.reject(new CheckFailed('the test closed stdin'));
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    stop() {
      reader.close();
    },
  };
})();

/**
 * Asks the Rust test to act (`@@ <name>` on stdout) and waits for its
 * one-line reply, which it returns. The test answers every step it knows.
 */
export async function step(name, timeout = 60_000) {
  process.stdout.write(`@@ ${name}\n`);
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`no reply to step ${name} in ${timeout} ms`)), timeout);
  });
  try {
    return await Promise.race([replies.next(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a scenario: launches the browser, calls `body({ context, base })`,
 * always closes the browser, and exits 0 on success or 1 with the failure
 * on stderr.
 */
export async function run(body) {
  let browser;
  let status = 0;
  try {
    const base = baseUrl();
    browser = await launch();
    await body({ context: browser.context, base });
    log('all checks passed');
  } catch (error) {
    status = 1;
    const reason = error instanceof CheckFailed ? error.message : error.stack || String(error);
    process.stderr.write(`FAILED: ${reason}\n`);
  } finally {
    if (browser) await browser.close();
    replies.stop();
  }
  process.exit(status);
}
