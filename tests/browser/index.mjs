// Browser scenarios of the dashboard at `/` (tests/browser.rs runs them on
// the shared harness, lib.mjs): `node tests/browser/index.mjs <base-url>`.
// The script first asks the test which scenario to play (step `scenario`):
//
// `live`: opens `/` at 1280×800, publishes prices, an alert trigger, a pattern,
//   a seed 004 portfolio and execution over HTTP, arms and deletes an alert in
//   the page, starts a backtest from the launcher, waits until every panel
//   shows its data, and saves `dashboard-index.png`.
// `restart`: with the page live, asks the test to kill the node (step
//   `kill-node`, answered with another node of the fleet), publishes an alert
//   there while the page's client is reconnecting, asks for the node to be
//   started again on its port (`start-node`), then publishes a price and an
//   alert: what the page resumed (`recovered`) and which alert rows it shows.
// `refusal`: on a node with API keys (step `api-key` gives it), the alerts
//   panel shows the 401; once the key is entered it lists and arms alerts.
// `not-ready`: with the page live, asks the test to stop Redis (`stop-redis`),
//   then waits for the not-ready banner and its reason.
//
// Each ends with step `result <json>`: the facts the Rust test asserts.

import { run, openPage, screenshot, step as ask, log } from './lib.mjs';

let base;
const STEP_TIMEOUT = 60_000;

async function post(path, body, to = base) {
  const response = await fetch(new URL(path, to), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${path} → ${response.status} ${text}`);
  return JSON.parse(text);
}

const publishPrice = (ticker, price) => post('/api/ws/broadcast/price', {
  ticker, price, change: 1.25, change_percent: 0.83, volume: 1200000, high: price + 1, low: price - 2, open_price: price - 1,
});
const publishAlert = (ticker, message, to = base) => post('/api/ws/broadcast/alert', {
  ticker, alert_type: 'breakout', trigger_price: 150, current_price: 150.25, message,
}, to);

/** Runs `fn`, naming `what` if it throws. */
async function step(what, fn) {
  log(what);
  try {
    return await fn();
  } catch (err) {
    throw new Error(`"${what}" failed: ${err?.message ?? err}`);
  }
}

const statesOf = (page) => page.$$eval('[data-panel]', (panels) => Object.fromEntries(panels.map((p) => [
  p.dataset.panel, p.querySelector('[data-role=state]')?.dataset.state ?? null,
])));

/**
 * Opens `/` and waits until the page is mounted and its client is live.
 * `errors` collects what lib.mjs reports (console errors, failed requests,
 * HTTP errors of our origin); each scenario says which it expects.
 */
async function open(context) {
  const { page, errors } = await openPage(context, new URL('/', base).href);
  page.setDefaultTimeout(STEP_TIMEOUT);
  await step('page loads', async () => {
    await page.waitForSelector('body[data-ready=true]');
    await page.waitForSelector('[data-role=connection][data-state=live]');
  });
  return { page, errors };
}

/** What `live` waits for in each panel's state badge before its result. */
const EXPECTED_STATES = { prices: 'live', alerts: 'live', modeldata: 'live', portfolio: 'live', fleet: 'live', backtest: 'idle' };

/** The seed 004 portfolio `live` publishes. */
const portfolio = {
  positions: { AAPL: { symbol: 'AAPL', quantity: 10, average_price: 151.25, market_price: 152.5, unrealized_pnl: 12.5, unrealized_pnl_pct: 0.83 } },
  total_pnl: 12.5,
  position_count: 1,
};

async function live(context) {
  const { page, errors } = await open(context);
  const hostile = '<img src=x onerror="window.__pwned=1"> breakout';

  await step('prices', async () => {
    await publishPrice('AAPL', 150.5);
    await publishPrice('AAPL', 151.25);
    await page.waitForSelector('[data-panel=prices] tr[data-symbol=AAPL] [data-field=price]:text-is("151.25")');
  });
  await step('watchlist edit', async () => {
    await page.fill('[data-role=watchlist-form] input', 'amzn');
    await page.click('[data-role=watchlist-form] button');
    await page.waitForSelector('[data-panel=prices] tr[data-symbol=AMZN]');
    await publishPrice('AMZN', 201);
    await page.waitForSelector('tr[data-symbol=AMZN] [data-field=price]:text-is("201.00")');
  });
  await step('alert feed', async () => {
    await publishAlert('TSLA', hostile);
    await page.waitForSelector('[data-role=alert-feed] li[data-ticker=TSLA]');
  });
  await step('pattern feed', async () => {
    await post('/api/ws/broadcast/pattern', {
      ticker: 'NVDA', pattern_type: 'VCP', score: 8.5, entry_price: 150.5, stop_price: 145, target_price: 165, message: 'VCP on NVDA',
    });
    await page.waitForSelector('[data-role=pattern-feed] li[data-ticker=NVDA]');
  });
  await step('arm and delete an alert', async () => {
    await page.fill('[data-role=arm-form] input[name=ticker]', 'MSFT');
    await page.selectOption('[data-role=arm-form] select', 'below');
    await page.fill('[data-role=arm-form] input[name=trigger_price]', '1');
    await page.click('[data-role=arm-form] button');
    const row = await page.waitForSelector('[data-role=armed-rows] tr[data-ticker=MSFT]');
    const id = await row.getAttribute('data-alert-id');
    await row.$eval('button', (b) => b.click());
    await page.waitForSelector(`[data-role=armed-rows] tr[data-alert-id="${id}"]`, { state: 'detached' });
    await page.fill('[data-role=arm-form] input[name=ticker]', 'AAPL');
    await page.selectOption('[data-role=arm-form] select', 'above');
    await page.fill('[data-role=arm-form] input[name=trigger_price]', '500');
    await page.click('[data-role=arm-form] button');
    await page.waitForSelector('[data-role=armed-rows] tr[data-ticker=AAPL]');
  });
  await step('portfolio empty state', async () => {
    await page.waitForSelector('[data-role=portfolio-empty]:visible');
  });
  await step('portfolio and executions', async () => {
    await post('/websocket/broadcast/trade_executed', { symbol: 'AAPL', side: 'BUY', quantity: 10, price: 151.25 });
    await post('/websocket/broadcast/portfolio_update', { channel: 'portfolio', data: portfolio });
    await page.waitForSelector('[data-role=execution-rows] tr[data-symbol=AAPL][data-side=BUY]');
    await page.waitForSelector('[data-role=position-rows] tr[data-symbol=AAPL]');
    await page.waitForSelector('[data-role=total-pnl]:text-is("+12.50")');
  });
  await step('backtest', async () => {
    await page.click('[data-role=backtest-form] button[type=submit]');
    await page.waitForSelector('[data-role=run-state][data-run-state=complete]');
    await page.waitForSelector('[data-role=backtest-progress][data-progress="100"]');
  });
  await step('modeldata', async () => {
    await page.waitForSelector('[data-panel=modeldata] tr[data-model]');
  });
  await step('fleet', async () => {
    await page.waitForSelector('[data-role=ready][data-ready=true]');
    await page.waitForSelector('[data-stat=client_node]:not(:text-is("—"))');
  });
  await step('every panel live', async () => {
    // Fresh data for the panels that go stale when quiet (a slow machine
    // may have taken long over the steps above).
    await publishPrice('AAPL', 151.25);
    await post('/websocket/broadcast/portfolio_update', { channel: 'portfolio', data: portfolio });
    for (const [panel, state] of Object.entries(EXPECTED_STATES)) {
      await page.waitForSelector(`[data-panel=${panel}] > header [data-role=state][data-state=${state}]`);
    }
  });
  await step('screenshot', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'dashboard-index');
  });

  const result = await page.evaluate(() => {
    const count = (selector) => document.querySelectorAll(selector).length;
    const alert = document.querySelector('[data-role=alert-feed] li[data-ticker=TSLA]');
    return {
      price_rows: count('[data-panel=prices] tr[data-symbol]'),
      aapl_price: document.querySelector('tr[data-symbol=AAPL] [data-field=price]')?.textContent,
      alert_text: alert?.textContent ?? '',
      alert_images: alert ? alert.querySelectorAll('img').length : -1,
      pwned: window.__pwned === 1,
      patterns: count('[data-role=pattern-feed] li[data-room]'),
      armed_tickers: [...document.querySelectorAll('[data-role=armed-rows] tr')].map((tr) => tr.dataset.ticker),
      positions: count('[data-role=position-rows] tr[data-symbol]'),
      executions: count('[data-role=execution-rows] tr[data-symbol]'),
      backtest_trades: count('[data-trade-id]'),
      backtest_equity_points: document.querySelector('[data-role=equity-chart] canvas') ? 1 : 0,
      backtest_log: count('[data-role=backtest-log] li'),
      models: count('[data-panel=modeldata] tr[data-model]'),
      banner_hidden: document.querySelector('[data-role=ready-banner]').hidden,
      watchlist: JSON.parse(localStorage.getItem('roomcast.watchlist') ?? '[]'),
    };
  });
  result.states = await statesOf(page);
  result.console_errors = errors;
  return result;
}

async function restart(context) {
  const { page, errors } = await open(context);
  // This run's alerts, told apart from any the room already holds.
  const tag = `run-${Date.now()}`;
  await page.evaluate(() => {
    window.taggedRows = (t) => [...document.querySelectorAll('[data-role=alert-feed] li[data-room]')]
      .filter((li) => li.textContent.includes(t));
    const client = window.roomcastDashboard.client;
    window.__states = [];
    window.__subscribed = [];
    client.on('state', ({ state }) => window.__states.push(state));
    client.on('subscribed', (msg) => window.__subscribed.push({ room: msg.room, recovered: msg.recovered, replayed: msg.replayed }));
  });
  await step('before the restart', async () => {
    await publishPrice('AAPL', 100);
    await publishAlert('AAPL', `before restart 1 ${tag}`);
    await publishAlert('AAPL', `before restart 2 ${tag}`);
    await page.waitForSelector('tr[data-symbol=AAPL] [data-field=price]:text-is("100.00")');
    await page.waitForFunction((t) => taggedRows(t).length === 2, tag);
  });
  const nodeBefore = await page.evaluate(() => window.roomcastDashboard.client.node);

  // The test kills the node; the page's own client tells when it noticed.
  await page.evaluate(() => { window.__restartMark = window.__subscribed.length; });
  const otherNode = await ask('kill-node');
  await step('the page notices the node is gone', async () => {
    await page.waitForFunction(() => window.__states.includes('reconnecting'));
  });
  await step('a publish on another node while this one is down', async () => {
    await publishAlert('AAPL', `during restart ${tag}`, otherNode);
  });
  await ask('start-node');
  await step('the page reconnects', async () => {
    await page.waitForFunction(() => window.roomcastDashboard.client.state === 'open');
    await page.waitForSelector('[data-role=connection][data-state=live]');
    await page.waitForSelector('[data-panel=modeldata] [data-role=state][data-state=live]');
  });
  await step('after the restart', async () => {
    await publishAlert('AAPL', `after restart ${tag}`);
    await publishPrice('AAPL', 101.5);
    await page.waitForSelector('tr[data-symbol=AAPL] [data-field=price]:text-is("101.50")');
    await page.waitForFunction((t) => taggedRows(t).some((li) => li.textContent.includes(`after restart ${t}`)), tag);
  });
  const result = await page.evaluate((t) => {
    const rows = taggedRows(t);
    const after = window.__subscribed.slice(window.__restartMark);
    return {
      states: window.__states,
      alert_seqs: rows.map((li) => li.dataset.seq),
      alert_messages: rows.map((li) => li.querySelector('.grow').textContent.replace(` ${t}`, '')),
      resumed: after,
      reconnects: window.roomcastDashboard.client.stats().reconnects,
      prices_note: document.querySelector('[data-panel=prices] [data-role=state]').textContent,
    };
  }, tag);
  result.node_before = nodeBefore;
  result.node_after = await page.evaluate(() => window.roomcastDashboard.client.node);
  result.panel_states = await statesOf(page);
  // While the node was down, the page's polls and sockets failed: expected.
  result.console_errors = errors.filter((e) => !/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|WebSocket connection to|^request failed: /.test(e));
  return result;
}

async function refusal(context) {
  const key = await ask('api-key');
  const { page, errors } = await open(context);
  const refusedWith = await step('the refusal is shown', async () => {
    const notice = await page.waitForSelector('[data-panel=alerts] [data-role=refusal]:visible');
    return { status: await notice.getAttribute('data-status'), text: await notice.textContent() };
  });
  await step('a key in the page opens the admin endpoints', async () => {
    await page.fill('[data-role=key-form] input', key);
    await page.click('[data-role=key-form] button');
    await page.waitForSelector('[data-panel=alerts] [data-role=refusal]', { state: 'hidden' });
    await page.fill('[data-role=arm-form] input[name=ticker]', 'AAPL');
    await page.fill('[data-role=arm-form] input[name=trigger_price]', '10');
    await page.click('[data-role=arm-form] button');
    await page.waitForSelector('[data-role=armed-rows] tr[data-ticker=AAPL]');
  });
  return {
    refused_status: refusedWith.status,
    refused_text: refusedWith.text,
    // The key is this tab's only: in sessionStorage, never in localStorage.
    key_in_session: await page.evaluate((k) => sessionStorage.getItem('roomcast.apiKey') === k, key),
    key_in_local: await page.evaluate((k) => Object.values(localStorage).some((v) => v.includes(k)), key),
    armed: await page.$$eval('[data-role=armed-rows] tr', (rows) => rows.map((r) => r.dataset.ticker)),
    // Refused requests show as failed loads; nothing else may.
    console_errors: errors.filter((e) => !/status of 401|^HTTP 401: /.test(e)),
  };
}

async function notReady(context) {
  const { page, errors } = await open(context);
  const before = await page.$eval('[data-role=ready-banner]', (b) => b.hidden);
  await ask('stop-redis');
  const banner = await step('the not-ready banner', async () => {
    const node = await page.waitForSelector('[data-role=ready-banner]:visible');
    return { text: await node.textContent(), reason: await node.getAttribute('data-reason') };
  });
  return {
    banner_hidden_before: before,
    banner_text: banner.text,
    banner_reason: banner.reason,
    readiness: await page.$eval('[data-role=ready]', (r) => r.dataset.ready),
    // /ready answers 503 while not ready: the browser logs that load itself.
    console_errors: errors.filter((e) => !/status of 503|^HTTP 503: .*\/ready$/.test(e)),
  };
}

run(async ({ context, base: url }) => {
  base = url;
  const scenarios = { live, restart, refusal, 'not-ready': notReady };
  const name = await ask('scenario');
  if (!scenarios[name]) throw new Error(`unknown scenario ${name}`);
  const result = await scenarios[name](context);
  await ask(`result ${JSON.stringify(result)}`);
});
