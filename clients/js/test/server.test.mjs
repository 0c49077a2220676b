// server.test.mjs — the client against one real roomcast server (started by tests/js_client.rs
// with a history of ROOMCAST_TEST_HISTORY messages per room): prices in seq order, resume after a
// dropped connection, a gap past the retained history, heartbeats noticing a frozen connection,
// staleness, unsubscribe, and close() that never reconnects.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { canonicalRoom } from '../src/roomcast-client.js';
import { DEADLINE_MS, Proxy, Recorder, env, nextEvent, publishPrice, testClient, uniqueTicker } from './helpers.mjs';

const wsUrl = env('ROOMCAST_WS_URL'); // ws://127.0.0.1:PORT/v1/ws
const httpUrl = env('ROOMCAST_HTTP_URL'); // http://127.0.0.1:PORT
const history = Number(env('ROOMCAST_TEST_HISTORY'));
const serverAddr = new URL(wsUrl).host;

/** A client through a fresh proxy to the server, connected and greeted. */
async function proxiedClient(options = {}) {
  const proxy = new Proxy(serverAddr);
  const addr = await proxy.listen();
  const client = testClient({ url: `ws://${addr}/v1/ws`, ...options });
  const welcomed = nextEvent(client, 'welcome');
  client.connect();
  await welcomed;
  return { proxy, client };
}

/** Subscribes `room` with a new recorder; resolves once the server confirmed it. */
async function subscribed(client, room, options) {
  const recorder = new Recorder();
  const confirmed = nextEvent(client, 'subscribed', (m) => m.room === canonicalRoom(room));
  client.subscribe(room, recorder.handler, options);
  return { recorder, confirmation: await confirmed };
}

async function publishAll(ticker, prices) {
  const answers = [];
  for (const price of prices) answers.push(await publishPrice(httpUrl, ticker, price));
  return answers;
}

test('a subscriber receives published prices in seq order', async () => {
  const ticker = uniqueTicker('ord');
  const client = testClient({ url: wsUrl });
  const welcome = nextEvent(client, 'welcome');
  client.connect();
  assert.equal((await welcome).protocol, 'roomcast.v1');
  assert.equal(client.state, 'open');
  // Lower case in, the server's name out.
  const { recorder, confirmation } = await subscribed(client, `ticker:${ticker.toLowerCase()}`);
  const room = `ticker:${ticker}`;
  assert.equal(confirmation.room, room);

  await publishAll(ticker, [101, 102, 103, 104, 105]);
  await recorder.count(5);
  const first = recorder.seqs[0];
  assert.deepEqual(recorder.seqs, [first, first + 1, first + 2, first + 3, first + 4]);
  assert.deepEqual(recorder.messages.map((m) => m.data.price), [101, 102, 103, 104, 105]);
  for (const { data, meta } of recorder.messages) {
    assert.equal(data.type, 'price_update');
    assert.equal(data.ticker, ticker);
    assert.equal(meta.room, room);
    assert.equal(meta.epoch, confirmation.epoch);
    assert.equal(meta.replayed, false);
  }
  assert.deepEqual(client.position(room), { seq: first + 4, epoch: confirmation.epoch });
  const stats = client.stats();
  assert.equal(stats.messagesReceived, 5);
  assert.equal(stats.rooms[room].seq, first + 4);
  assert.equal(stats.state, 'open');
  client.close();
});

test('after a dropped connection the client resumes with recovered: true and exactly the missed messages', async () => {
  const ticker = uniqueTicker('res');
  const room = `ticker:${ticker}`;
  const { proxy, client } = await proxiedClient();
  const { recorder } = await subscribed(client, room);
  await publishAll(ticker, [1, 2, 3]);
  await recorder.count(3);

  // The connection drops, and the server cannot be reached while four prices go out.
  proxy.refusing = true;
  const reconnecting = nextEvent(client, 'state', (s) => s.state === 'reconnecting');
  proxy.cut();
  assert.equal((await reconnecting).code, 1006);
  const missed = await publishAll(ticker, [4, 5, 6, 7]);
  assert.equal(recorder.messages.length, 3);

  const resumed = nextEvent(client, 'subscribed', (m) => m.room === room);
  proxy.refusing = false;
  const confirmation = await resumed;
  assert.equal(confirmation.recovered, true, JSON.stringify(confirmation));
  assert.equal(confirmation.replayed, missed.length);
  await recorder.count(7);
  await publishAll(ticker, [8]);
  await recorder.count(8);

  const first = recorder.seqs[0];
  assert.deepEqual(recorder.seqs, Array.from({ length: 8 }, (_, i) => first + i));
  assert.deepEqual(recorder.messages.map((m) => m.data.price), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(recorder.messages.map((m) => m.meta.replayed), [false, false, false, true, true, true, true, false]);
  assert.equal(client.stats().reconnects, 1);
  assert.equal(client.stats().gaps, 0);
  client.close();
  await proxy.close();
});

test('resuming from a seq older than the retained history surfaces a gap, then what is retained', async () => {
  const ticker = uniqueTicker('gap');
  const room = `ticker:${ticker}`;
  const { proxy, client } = await proxiedClient();
  const { recorder } = await subscribed(client, room);
  await publishAll(ticker, [1]);
  await recorder.count(1);
  const last = recorder.seqs[0];

  proxy.refusing = true;
  const reconnecting = nextEvent(client, 'state', (s) => s.state === 'reconnecting');
  proxy.cut();
  await reconnecting;
  const missedCount = history + 4;
  await publishAll(ticker, Array.from({ length: missedCount }, (_, i) => 2 + i));
  const head = last + missedCount;

  const gap = nextEvent(client, 'gap', (g) => g.room === room);
  proxy.refusing = false;
  // Everything after `last` up to the first retained seq is gone.
  assert.deepEqual(await gap, { room, epoch: client.position(room).epoch, reason: 'trimmed', from: last + 1, to: head - history });
  await recorder.count(1 + history);
  assert.deepEqual(recorder.seqs, [last, ...Array.from({ length: history }, (_, i) => head - history + 1 + i)]);
  assert.ok(recorder.messages.slice(1).every((m) => m.meta.replayed));
  assert.equal(client.stats().gaps, 1);
  client.close();
  await proxy.close();
});

test('resuming from another epoch surfaces an epoch gap', async () => {
  const ticker = uniqueTicker('epo');
  const room = `ticker:${ticker}`;
  await publishAll(ticker, [1, 2]);
  const client = testClient({ url: wsUrl });
  client.connect();
  const gap = nextEvent(client, 'gap', (g) => g.room === room);
  // A position saved from a lineage the server no longer has.
  const { recorder, confirmation } = await subscribed(client, room, { from: { seq: 2, epoch: 1 } });
  assert.equal(confirmation.recovered, false);
  const event = await gap;
  assert.equal(event.reason, 'epoch');
  assert.equal(event.epoch, confirmation.epoch);
  assert.notEqual(event.epoch, 1);
  // What the room retains of its new lineage follows.
  await recorder.count(2);
  assert.deepEqual(recorder.messages.map((m) => m.data.price), [1, 2]);
  assert.deepEqual(client.position(room), { seq: recorder.seqs[1], epoch: confirmation.epoch });
  client.close();
});

test('a connection that stops answering pings is dropped and the client resumes on a new one', async () => {
  const ticker = uniqueTicker('hb');
  const room = `ticker:${ticker}`;
  const { proxy, client } = await proxiedClient({ heartbeatInterval: 100, heartbeatTimeout: 300 });
  const { recorder } = await subscribed(client, room);
  await publishAll(ticker, [1]);
  await recorder.count(1);

  // The server (as seen through the proxy) freezes: the socket stays open, nothing flows.
  const errors = [];
  client.on('error', (e) => errors.push(e.message));
  const reconnecting = nextEvent(client, 'state', (s) => s.state === 'reconnecting');
  proxy.freeze();
  await reconnecting;
  assert.ok(errors.some((m) => m.includes('no answer to a ping')), errors.join('; '));

  const resumed = nextEvent(client, 'subscribed', (m) => m.room === room);
  await publishAll(ticker, [2]);
  assert.equal((await resumed).recovered, true);
  await recorder.count(2);
  assert.deepEqual(recorder.messages.map((m) => m.data.price), [1, 2]);
  assert.equal(proxy.accepted, 2);
  client.close();
  await proxy.close();
});

test('a room without messages is reported stale, and fresh again at the next message', async () => {
  const ticker = uniqueTicker('st');
  const room = `ticker:${ticker}`;
  const client = testClient({ url: wsUrl, staleAfter: 200 });
  client.connect();
  const stale = nextEvent(client, 'stale', (e) => e.room === room);
  const { recorder } = await subscribed(client, room);
  const event = await stale;
  assert.ok(event.since <= Date.now());
  assert.equal(client.stats().rooms[room].stale, true);
  const fresh = nextEvent(client, 'fresh', (e) => e.room === room);
  await publishAll(ticker, [1]);
  await fresh;
  await recorder.count(1);
  assert.equal(client.stats().rooms[room].stale, false);
  client.close();
});

test('unsubscribe stops delivery of that room only', async () => {
  const [a, b] = [uniqueTicker('ua'), uniqueTicker('ub')];
  const client = testClient({ url: wsUrl });
  client.connect();
  const { recorder: ra } = await subscribed(client, `ticker:${a}`);
  const { recorder: rb } = await subscribed(client, `ticker:${b}`);
  // A second handler on b, removed by its own subscription.
  const extra = new Recorder();
  const extraSub = client.subscribe(`ticker:${b}`, extra.handler);
  await publishAll(a, [1]);
  await publishAll(b, [1]);
  await ra.count(1);
  await rb.count(1);
  await extra.count(1);

  const left = nextEvent(client, 'unsubscribed', (m) => m.room === `ticker:${a}`);
  client.unsubscribe(`ticker:${a}`);
  extraSub.unsubscribe();
  assert.equal((await left).was_subscribed, true);
  await publishAll(a, [2]);
  await publishAll(b, [2]);
  await rb.count(2);
  assert.equal(ra.messages.length, 1);
  assert.equal(extra.messages.length, 1);
  assert.equal(client.position(`ticker:${a}`), undefined);
  assert.deepEqual(Object.keys(client.stats().rooms), [`ticker:${b}`]);
  client.close();
});

test('subscribing from 0 replays the retained history first', async () => {
  const ticker = uniqueTicker('rep');
  await publishAll(ticker, [1, 2, 3]);
  const client = testClient({ url: wsUrl });
  client.connect();
  const { recorder, confirmation } = await subscribed(client, `ticker:${ticker}`, { from: 0 });
  assert.equal(confirmation.replayed, 3);
  await recorder.count(3);
  assert.deepEqual(recorder.messages.map((m) => [m.data.price, m.meta.replayed]), [[1, true], [2, true], [3, true]]);
  client.close();
});

test('a refused room is reported as an error and dropped', async () => {
  const client = testClient({ url: wsUrl });
  client.connect();
  const error = nextEvent(client, 'error', (e) => e.code === 'bad_room');
  client.subscribe('ticker:NOT A TICKER!', () => assert.fail('no message for a bad room'));
  const event = await error;
  assert.ok(event.message.length > 0);
  assert.deepEqual(client.stats().rooms, {});
  assert.equal(client.state, 'open');
  client.close();
});

test('close() ends the session and never reconnects: the process has nothing left to do and exits', async () => {
  // A separate Node process: a client that scheduled a reconnect (a timer, a socket) after close()
  // would keep it alive, and this test would time out.
  const script = fileURLToPath(new URL('./close-child.mjs', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv.filter((a) => a.startsWith('--experimental')), script], {
    env: { ...process.env, ROOMCAST_TICKER: uniqueTicker('cl') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  const code = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the client's process did not exit within ${DEADLINE_MS} ms after close(): ${output}`));
    }, DEADLINE_MS);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.equal(code, 0, output);
  const report = JSON.parse(output);
  assert.deepEqual(report.states, ['connecting', 'open', 'closed']);
  assert.equal(report.prices.length, 1);
  assert.equal(report.stateAfterClose, 'closed');
});
