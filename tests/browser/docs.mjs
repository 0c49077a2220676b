// Scenario: the API docs in a real browser (run by tests/browser.rs).
//
//  (a) /docs (Swagger UI) renders every operation of /openapi.json, the
//      "websocket" tag (seed 001's README points to it) among its sections;
//  (b) /redoc (ReDoc) renders the document: its tags and operation summaries;
//  (c) neither page sends a request anywhere but the node (no CDN, no
//      telemetry, no online validator), and neither logs an error, except the
//      browser's report that the page's Content-Security-Policy blocked
//      ReDoc's built-in logo from its CDN (which is that very guarantee).
//
// No steps for the Rust test.

import { check, log, openPage, run, screenshot, waitInPage } from './lib.mjs';

/**
 * Every request a page tries to send outside `origin`, aborted so nothing
 * leaves the machine. (A request the page's Content-Security-Policy blocks
 * never gets this far: it fails in the browser with "csp".)
 */
async function watchForeignRequests(page, origin) {
  const foreign = [];
  await page.route(
    (url) => url.origin !== origin && url.protocol.startsWith('http'),
    (route) => {
      foreign.push(route.request().url());
      return route.abort();
    },
  );
  return foreign;
}

/** The errors worth failing for: all but CSP's refusal of a foreign resource. */
function realErrors(errors, origin) {
  return errors.filter(
    (e) => !(e.includes('Content Security Policy') && !e.includes(origin)),
  );
}

/** The operations of the document, as `METHOD path`, and its tag names. */
async function documented(base) {
  const response = await fetch(`${base}/openapi.json`);
  check(response.ok, `GET /openapi.json answered ${response.status}`);
  const doc = await response.json();
  const operations = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) operations.push(`${method.toUpperCase()} ${path}`);
  }
  return { operations, tags: doc.tags.map((t) => t.name), doc };
}

run(async ({ context, base }) => {
  const origin = new URL(base).origin;
  const { operations, tags, doc } = await documented(base);
  check(operations.length > 30, `only ${operations.length} operations documented`);
  check(tags.includes('websocket'), `no "websocket" tag in ${tags}`);

  // (a) Swagger UI: one .opblock per operation, each with its method and path.
  {
    let foreign = [];
    const opened = await openPage(context, `${base}/docs`, async (page) => {
      foreign = await watchForeignRequests(page, origin);
    });
    const shown = await waitInPage(
      opened.page,
      'Swagger UI to render every operation',
      (count) => {
        const blocks = [...document.querySelectorAll('.opblock')];
        if (blocks.length < count) return false;
        return blocks.map((b) => {
          const method = b.querySelector('.opblock-summary-method')?.textContent.trim();
          const path = b.querySelector('.opblock-summary-path')?.getAttribute('data-path');
          return `${method} ${path}`;
        });
      },
      operations.length,
    );
    for (const operation of operations) {
      check(shown.includes(operation), `/docs does not show ${operation}; it shows ${shown.join(', ')}`);
    }
    const sections = await opened.page.$$eval('.opblock-tag', (nodes) =>
      nodes.map((n) => n.getAttribute('data-tag')),
    );
    for (const tag of tags) check(sections.includes(tag), `/docs has no section for tag ${tag}`);
    await screenshot(opened.page, 'docs-swagger-ui');
    check(foreign.length === 0, `/docs sent requests elsewhere: ${foreign.join(', ')}`);
    const errors = realErrors(opened.errors, origin);
    check(errors.length === 0, `/docs logged errors:\n${errors.join('\n')}`);
    log(`/docs shows ${shown.length} operations in ${sections.length} sections`);
  }

  // (b) ReDoc: every tag in the menu and every operation's summary on the page.
  {
    let foreign = [];
    const opened = await openPage(context, `${base}/redoc`, async (page) => {
      foreign = await watchForeignRequests(page, origin);
    });
    await waitInPage(
      opened.page,
      'ReDoc to render the document',
      (words) => words.every((w) => document.body.innerText.includes(w)),
      ['roomcast (0.1.0)', ...tags],
    );
    // ReDoc's menu shows one tag's operations at a time: open each tag and
    // wait for the summaries of its operations.
    for (const tag of tags) {
      const summaries = Object.values(doc.paths).flatMap((item) =>
        Object.values(item)
          .filter((operation) => operation.tags.includes(tag))
          .map((operation) => operation.summary),
      );
      await opened.page.getByText(tag, { exact: true }).first().click();
      await waitInPage(
        opened.page,
        `ReDoc's menu to list the operations of tag ${tag}: ${summaries.join('; ')}`,
        (names) => names.every((name) => document.body.innerText.includes(name)),
        summaries,
      );
    }
    await screenshot(opened.page, 'docs-redoc');
    check(foreign.length === 0, `/redoc sent requests elsewhere: ${foreign.join(', ')}`);
    const errors = realErrors(opened.errors, origin);
    check(errors.length === 0, `/redoc logged errors:\n${errors.join('\n')}`);
    log(`/redoc lists the operations of all ${tags.length} tags`);
  }
});
