// Scenario: WebSocketClient (web/static/js/websocket-client.js) on its own,
// in the browser, deterministic: the page's WebSocket is a scripted fake
// and its clock is playwright's fake clock, so backoff, heartbeat, throttle
// and batching are checked by advancing time, never by waiting for it.
// The page is a stub served at the real origin (so the URL auto-detection
// sees roomcast's host) that loads only the client script from roomcast.

import { check, openPage, run } from './lib.mjs';

/** Replaces window.WebSocket with a fake the scenario opens, feeds and closes by hand. */
function installFakeWebSocket() {
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      window.fakeSockets.push(this);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close(code = 1000, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
    // The scenario's controls:
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    receive(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
    }
    fail() {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: '' });
    }
  }
  window.fakeSockets = [];
  window.WebSocket = FakeWebSocket;
}

const STUB = '/__websocket-client-test';

run(async ({ context, base }) => {
  await context.route(`${base}${STUB}`, (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: '<!doctype html><title>client</title><script src="/static/js/websocket-client.js"></script><p id="target">-</p>',
    }));
  const { page, errors } = await openPage(context, `${base}${STUB}`, async (fresh) => {
    await fresh.clock.install({ time: new Date('2025-11-18T10:30:00Z') });
    await fresh.addInitScript(installFakeWebSocket);
  });
  await page.clock.pauseAt(new Date('2025-11-18T11:00:00Z')); // from here on, time moves only when told
  const host = new URL(base).host;

  // The seed's options and defaults, and the URL auto-detection.
  const defaults = await page.evaluate(() => {
    const plain = new WebSocketClient();
    const named = new WebSocketClient({ userId: 'user 123' });
    return { options: plain.options, named: named.options.url, module: typeof WebSocketClient.DEFAULTS };
  });
  check(JSON.stringify(defaults.options) === JSON.stringify({
    url: `ws://${host}/api/ws`, userId: null, reconnectDelay: 1000, maxReconnectDelay: 30000,
    reconnectBackoffMultiplier: 1.5, heartbeatInterval: 30000, maxMessagesPerSecond: 10,
    batchUpdateDelay: 100, maxQueueSize: 1000,
  }), `defaults: ${JSON.stringify(defaults.options)}`);
  check(defaults.named === `ws://${host}/api/ws?user_id=user%20123`, `url with userId: ${defaults.named}`);

  // Subscriptions are sent once open and again after a reconnect; the backoff grows ×1.5 to 30 s.
  const backoff = await page.evaluate(async () => {
    const ws = (window.client = new WebSocketClient({ userId: 'user123' }));
    const delays = [];
    ws.on('reconnecting', (event) => delays.push(event.delay));
    ws.subscribe('ticker', 'aapl');
    ws.subscribe('patterns');
    ws.connect();
    const first = fakeSockets.at(-1);
    first.open();
    const sentOnOpen = first.sent.map((m) => JSON.stringify(m));
    first.fail();
    return { delays, sentOnOpen, sockets: fakeSockets.length, stats: ws.getStats() };
  });
  check(JSON.stringify(backoff.sentOnOpen) === JSON.stringify([
    '{"type":"subscribe","channel":"ticker","ticker":"AAPL"}', '{"type":"subscribe","channel":"patterns"}',
  ]), `sent on open: ${backoff.sentOnOpen}`);
  check(JSON.stringify(backoff.delays) === '[1000]', `first delay: ${backoff.delays}`);
  check(backoff.stats.reconnecting && !backoff.stats.connected && backoff.stats.reconnectAttempts === 1, `after a drop: ${JSON.stringify(backoff.stats)}`);
  const expected = [1000, 1500, 2250, 3375, 5063, 7594, 11391, 17086, 25629, 30000, 30000];
  for (let attempt = 1; attempt < expected.length; attempt += 1) {
    const before = await page.evaluate(() => fakeSockets.length);
    await page.clock.runFor(expected[attempt - 1] - 1);
    check((await page.evaluate(() => fakeSockets.length)) === before, `attempt ${attempt} came before ${expected[attempt - 1]} ms`);
    await page.clock.runFor(1);
    check((await page.evaluate(() => fakeSockets.length)) === before + 1, `attempt ${attempt} did not come at ${expected[attempt - 1]} ms`);
    await page.evaluate(() => fakeSockets.at(-1).fail());
  }
  await page.clock.runFor(30000);
  const resumed = await page.evaluate(() => {
    const socket = (window.mainSocket = fakeSockets.at(-1));
    socket.open();
    return { sent: socket.sent.map((m) => JSON.stringify(m)), stats: client.getStats() };
  });
  check(resumed.sent.includes('{"type":"subscribe","channel":"ticker","ticker":"AAPL"}') && resumed.sent.includes('{"type":"subscribe","channel":"patterns"}'),
    `not re-subscribed after the reconnect: ${resumed.sent}`);
  check(resumed.stats.reconnects === 1 && resumed.stats.reconnectAttempts === 0 && resumed.stats.connected, `after the reconnect: ${JSON.stringify(resumed.stats)}`);
  check(JSON.stringify(resumed.stats.subscriptions) === '["ticker:AAPL","patterns"]', `subscriptions: ${resumed.stats.subscriptions}`);

  // A ping every heartbeatInterval.
  await page.clock.runFor(30000);
  const pings = await page.evaluate(() => mainSocket.sent.filter((m) => m.type === 'ping').length);
  check(pings === 1, `pings after 30 s: ${pings}`);

  // Throttle: a burst of maxMessagesPerSecond, then the rest as time passes; prices conflate.
  const throttle = await page.evaluate(() => {
    const socket = mainSocket;
    window.seen = [];
    client.on('pattern_alert', (m) => seen.push(`pattern ${m.n}`));
    client.on('price_update', (m) => seen.push(`price ${m.ticker} ${m.price}`));
    for (let n = 0; n < 10; n += 1) socket.receive({ type: 'pattern_alert', n });
    for (let n = 10; n < 15; n += 1) socket.receive({ type: 'pattern_alert', n });
    for (const price of [1, 2, 3, 4]) socket.receive({ type: 'price_update', ticker: 'AAPL', price });
    socket.receive({ type: 'price_update', ticker: 'MSFT', price: 9 });
    return { now: seen.length, queued: client.getStats().queueSize };
  });
  check(throttle.now === 10 && throttle.queued === 7, `a burst: ${JSON.stringify(throttle)}`);
  await page.clock.runFor(1000);
  const drained = await page.evaluate(() => ({ seen, stats: client.getStats() }));
  check(JSON.stringify(drained.seen.slice(10)) === JSON.stringify([
    'pattern 10', 'pattern 11', 'pattern 12', 'pattern 13', 'pattern 14', 'price AAPL 4', 'price MSFT 9',
  ]), `after a second: ${drained.seen.slice(10)}`);
  check(drained.stats.queueSize === 0, `queue: ${drained.stats.queueSize}`);

  // The queue is bounded: the oldest are dropped and counted.
  const bounded = await page.evaluate(() => {
    const small = new WebSocketClient({ maxQueueSize: 3, maxMessagesPerSecond: 1 });
    const got = [];
    small.on('alert_trigger', (m) => got.push(m.n));
    small.connect();
    const socket = fakeSockets.at(-1);
    socket.open();
    for (let n = 0; n < 8; n += 1) socket.receive({ type: 'alert_trigger', n });
    const result = { got: [...got], queue: small.getStats().queueSize, dropped: small.droppedMessages };
    small.disconnect();
    return result;
  });
  check(JSON.stringify(bounded) === JSON.stringify({ got: [0], queue: 3, dropped: 4 }), `bounded queue: ${JSON.stringify(bounded)}`);

  // Change detection and batching: one write per change, none for the same value.
  const dom = await page.evaluate(() => {
    const target = document.getElementById('target');
    return [
      client.updateElementIfChanged(target, 150.25, (v) => `$${v.toFixed(2)}`),
      client.updateElementIfChanged(target, 150.5, (v) => `$${v.toFixed(2)}`),
      target.textContent,
      client.getStats().pendingUpdates,
    ];
  });
  check(JSON.stringify(dom) === '[true,true,"-",1]', `before the batch: ${JSON.stringify(dom)}`);
  await page.clock.runFor(200);
  const applied = await page.evaluate(() => {
    const target = document.getElementById('target');
    const before = client.getStats().updatesApplied;
    return {
      text: target.textContent,
      again: client.updateElementIfChanged(target, 150.5, (v) => `$${v.toFixed(2)}`),
      stats: client.getStats(),
      before,
    };
  });
  check(applied.text === '$150.50' && applied.again === false, `after the batch: ${JSON.stringify(applied)}`);
  check(applied.stats.pendingUpdates === 0 && applied.stats.cacheSize === 1, `stats: ${JSON.stringify(applied.stats)}`);
  const cleared = await page.evaluate(() => {
    client.clearCache();
    return client.getStats().cacheSize;
  });
  check(cleared === 0, `cacheSize after clearCache(): ${cleared}`);

  // off() and the remover stop a handler; disconnect() stops every timer for good.
  const quiet = await page.evaluate(() => {
    let calls = 0;
    const remove = client.on('market_status', () => (calls += 1));
    const socket = mainSocket;
    socket.receive({ type: 'market_status', status: 'open' });
    remove();
    socket.receive({ type: 'market_status', status: 'closed' });
    client.disconnect();
    return { calls, sockets: fakeSockets.length, stats: client.getStats() };
  });
  await page.clock.runFor(120000);
  const after = await page.evaluate(() => ({ sockets: fakeSockets.length, pings: mainSocket.sent.filter((m) => m.type === 'ping').length }));
  check(quiet.calls === 1, `handler calls after removal: ${quiet.calls}`);
  check(after.sockets === quiet.sockets && after.pings === 1, `activity after disconnect(): ${JSON.stringify(after)}`);
  check(!quiet.stats.connected && !quiet.stats.reconnecting, `after disconnect(): ${JSON.stringify(quiet.stats)}`);
  check(errors.length === 0, `page errors:\n${errors.join('\n')}`);
});
