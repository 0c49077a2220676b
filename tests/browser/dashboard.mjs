// Scenario: seed 001's /dashboard in a real browser (run by tests/browser.rs).
//
//  (a) the page goes "Live" and shows a price published with
//      POST /api/ws/broadcast/price, a pattern alert, an alert trigger and
//      the market status;
//  (b) realtimeDashboard.ws.getStats() has exactly the seed's keys and its
//      subscriptions include the watchlist; the add/remove form changes the
//      subscriptions; the watchlist and the sound toggle survive a reload
//      (localStorage);
//  (c) a server restart on the same port takes the indicator off "Live" and
//      back, re-subscribed: a price published to the new server appears.
//
// Steps for the Rust test: "@@ stop-server" (reply once the server is down),
// "@@ start-server" (reply once a new one listens on the same port).
// No console errors are allowed, except the browser's own report of
// WebSocket attempts refused while the server is down.

import { check, log, openPage, run, screenshot, step, waitInPage } from './lib.mjs';

/** The keys of the seed's "Frontend Statistics" example, in its order. */
const SEED_STATS_KEYS = [
  'connected',
  'reconnecting',
  'reconnectAttempts',
  'messagesReceived',
  'messagesSent',
  'updatesApplied',
  'reconnects',
  'errors',
  'lastMessageTime',
  'subscriptions',
  'queueSize',
  'pendingUpdates',
  'cacheSize',
];

const WATCHLIST = ['AAPL', 'MSFT', 'TSLA', 'NVDA'];

/** POSTs `body` to /api/ws/broadcast/<kind> and checks the server took it. */
async function publish(base, kind, body) {
  const response = await fetch(`${base}/api/ws/broadcast/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  check(response.ok, `POST /api/ws/broadcast/${kind} answered ${response.status}: ${text}`);
}

/** Waits until the server counts a subscriber for every ticker in `tickers` (GET /api/ws/stats). */
async function serverSubscribed(base, tickers, what) {
  const deadline = Date.now() + 15_000;
  let last;
  while (Date.now() < deadline) {
    const response = await fetch(`${base}/api/ws/stats`).catch(() => null);
    if (response && response.ok) {
      last = await response.json();
      const subscribed = last.ticker_subscriptions || {};
      if (tickers.every((t) => subscribed[t] >= 1) && last.pattern_subscribers >= 1 && last.alert_subscribers >= 1) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // polling interval, not a synchronisation
  }
  check(false, `the server never counted the subscriptions ${what}: ${JSON.stringify(last)}`);
}

const indicator = () => document.getElementById('connection-status')?.textContent;

const priceText = (ticker) =>
  document.querySelector(`tr[data-ticker="${ticker}"] [data-field="price"]`)?.textContent ?? null;

async function expectPrice(page, ticker, text) {
  await waitInPage(page, `${ticker} to show ${text}`, ({ ticker, text }) => {
    const cell = document.querySelector(`tr[data-ticker="${ticker}"] [data-field="price"]`);
    return cell && cell.textContent === text;
  }, { ticker, text });
}

run(async ({ context, base }) => {
  const { page, errors } = await openPage(context, `${base}/dashboard`);

  // (a) Live, then a published price, pattern, alert and market status appear.
  await waitInPage(page, 'the indicator to say Live', () => document.getElementById('connection-status')?.textContent === 'Live');
  const indicatorId = await page.evaluate(() => document.querySelector('#connection-status') !== null);
  check(indicatorId, 'no #connection-status');
  await serverSubscribed(base, WATCHLIST, 'for the watchlist');
  check((await page.evaluate(priceText, 'AAPL')) !== '$187.42', 'AAPL shows the price before it was published');

  await publish(base, 'price', {
    ticker: 'AAPL', price: 187.42, change: 2.5, change_percent: 1.35,
    volume: 75000000, high: 188.1, low: 184.3, open_price: 185.0,
  });
  await expectPrice(page, 'AAPL', '$187.42');
  const row = await page.evaluate(() => {
    const cell = (field) => document.querySelector(`tr[data-ticker="AAPL"] [data-field="${field}"]`);
    return { change: cell('change').textContent, up: cell('change').classList.contains('up'), volume: cell('volume').textContent, open: cell('open').textContent };
  });
  check(row.change === '+2.50' && row.up, `AAPL change shown as ${JSON.stringify(row)}`);
  check(row.volume === '75.0M' && row.open === '$185.00', `AAPL volume/open shown as ${JSON.stringify(row)}`);
  for (const [ticker, price] of [['MSFT', 415.1], ['TSLA', 242.8], ['NVDA', 131.26]]) {
    await publish(base, 'price', { ticker, price, change: -1.2, change_percent: -0.5, volume: 21000000, high: price + 2, low: price - 3, open_price: price + 1 });
  }
  await expectPrice(page, 'NVDA', '$131.26');

  // Sound on (a click: browsers start audio only after a gesture); alerts then play Web Audio tones.
  await page.click('#sound-toggle');
  const sound = await page.evaluate(() => ({
    pressed: document.getElementById('sound-toggle').getAttribute('aria-pressed'),
    saved: localStorage.getItem('roomcast.sound'),
    audio: window.realtimeDashboard.sound.context ? window.realtimeDashboard.sound.context.constructor.name : null,
  }));
  check(sound.pressed === 'true' && sound.saved === 'on' && sound.audio === 'AudioContext', `sound toggle: ${JSON.stringify(sound)}`);

  await publish(base, 'pattern', {
    ticker: 'NVDA', pattern_type: 'VCP', score: 8.5, entry_price: 131.5, stop_price: 126.0, target_price: 146.0,
    message: 'VCP pattern detected with high score',
  });
  await waitInPage(page, 'the pattern alert in the feed', () =>
    [...document.querySelectorAll('#pattern-feed li')].some((li) => li.textContent.includes('VCP') && li.textContent.includes('NVDA')));
  await publish(base, 'alert', {
    ticker: 'AAPL', alert_type: 'breakout', trigger_price: 187.0, current_price: 187.42,
    message: 'AAPL breaking out at $187.42 (target: $187.00)',
  });
  await waitInPage(page, 'the alert trigger in the feed', () =>
    [...document.querySelectorAll('#alert-feed li')].some((li) => li.textContent.includes('breaking out')));
  await publish(base, 'market_status', { status: 'open', next_open: null, next_close: '2030-01-02T21:00:00Z' });
  await waitInPage(page, 'the market status badge', () => document.getElementById('market-status')?.textContent === 'Market open');
  await waitInPage(page, 'a notification', () => document.querySelectorAll('#notifications .notification').length > 0);
  await screenshot(page, 'dashboard-live');

  // (b) getStats(): the seed's keys exactly; the watchlist among the subscriptions.
  const stats = await page.evaluate(() => window.realtimeDashboard.ws.getStats());
  check(JSON.stringify(Object.keys(stats)) === JSON.stringify(SEED_STATS_KEYS), `getStats() keys: ${Object.keys(stats)}`);
  for (const key of [...WATCHLIST.map((t) => `ticker:${t}`), 'patterns', 'alerts', 'market_status']) {
    check(stats.subscriptions.includes(key), `subscriptions lack ${key}: ${stats.subscriptions}`);
  }
  check(stats.connected === true && stats.reconnecting === false, `stats: ${JSON.stringify(stats)}`);
  check(stats.messagesReceived > 0 && stats.messagesSent >= 7 && stats.updatesApplied > 0, `counters: ${JSON.stringify(stats)}`);
  check(!Number.isNaN(Date.parse(stats.lastMessageTime)), `lastMessageTime: ${stats.lastMessageTime}`);

  await page.evaluate(() => window.realtimeDashboard.toggleStats());
  await waitInPage(page, 'the stats panel', () => {
    const panel = document.getElementById('realtime-stats');
    return panel && !panel.hidden && panel.textContent.includes('messagesReceived');
  });
  await screenshot(page, 'dashboard-stats');
  await page.evaluate(() => window.realtimeDashboard.toggleStats());

  // The form adds a ticker (subscribed, kept across a reload); its × removes it.
  await page.fill('#watchlist-input', 'amzn');
  await page.press('#watchlist-input', 'Enter');
  await waitInPage(page, 'AMZN in the subscriptions', () => window.realtimeDashboard.ws.getStats().subscriptions.includes('ticker:AMZN'));
  await serverSubscribed(base, ['AMZN'], 'for AMZN');
  await page.reload({ waitUntil: 'load' });
  await waitInPage(page, 'Live after the reload', () => document.getElementById('connection-status')?.textContent === 'Live');
  const afterReload = await page.evaluate(() => window.realtimeDashboard.ws.getStats().subscriptions);
  check(afterReload.includes('ticker:AMZN'), `the watchlist was not kept: ${afterReload}`);
  const soundAfterReload = await page.textContent('#sound-toggle');
  check(soundAfterReload === 'Sound on', `the sound setting was not kept: ${soundAfterReload}`);
  await page.click('tr[data-ticker="AMZN"] button');
  await waitInPage(page, 'AMZN gone', () =>
    !document.querySelector('tr[data-ticker="AMZN"]') && !window.realtimeDashboard.ws.getStats().subscriptions.includes('ticker:AMZN'));
  await serverSubscribed(base, WATCHLIST, 'after the reload');

  // (c) A restart on the same port: off "Live", back to "Live", re-subscribed.
  check(errors.length === 0, `console errors before the restart:\n${errors.join('\n')}`);
  await step('stop-server');
  const away = await waitInPage(page, 'the indicator to leave Live', () => {
    const text = document.getElementById('connection-status')?.textContent;
    return text !== 'Live' && text;
  });
  log(`indicator while the server is down: ${away}`);
  check(away === 'Reconnecting…' || away === 'Offline', `indicator says ${away}`);
  await screenshot(page, 'dashboard-reconnecting');
  await step('start-server');
  await waitInPage(page, 'Live again', () => document.getElementById('connection-status')?.textContent === 'Live', undefined, 40_000);
  await serverSubscribed(base, WATCHLIST, 'on the new server');
  await publish(base, 'price', { ticker: 'TSLA', price: 250.05, change: 7.25, change_percent: 2.99, volume: 98000000, high: 251, low: 241.5, open_price: 243 });
  await expectPrice(page, 'TSLA', '$250.05');
  const after = await page.evaluate(() => window.realtimeDashboard.ws.getStats());
  check(after.reconnects >= 1 && after.connected && !after.reconnecting, `stats after the restart: ${JSON.stringify(after)}`);
  for (const ticker of WATCHLIST) check(after.subscriptions.includes(`ticker:${ticker}`), `lost ticker:${ticker} in the restart`);

  const unexpected = errors.filter((e) => !/WebSocket connection to 'ws:\/\/[^']+\/api\/ws' failed/.test(e));
  check(unexpected.length === 0, `console errors:\n${unexpected.join('\n')}`);
  log(`console errors tolerated during the outage: ${errors.length - unexpected.length}`);
});
