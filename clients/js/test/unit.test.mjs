// unit.test.mjs — the client's bookkeeping without a server: the backoff's bounds, and the
// resume/dedupe/gap rules against a scripted fake WebSocket (a real server never sends a
// duplicate, so this is where dropping one is tested).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RoomcastClient, backoffDelay, canonicalRoom } from '../src/roomcast-client.js';

/** A WebSocket the test drives: it records what the client sends and delivers what the test says. */
class FakeSocket {
  static instances = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.instances.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  /** The server side: open, then greet. */
  accept(node) {
    this.readyState = 1;
    this.onopen?.({});
    this.deliver({ type: 'welcome', protocol: 'roomcast.v1', node, timestamp: 'now' });
  }
  deliver(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

function fakeClient(options = {}) {
  FakeSocket.instances = [];
  return new RoomcastClient({
    urls: ['ws://a/v1/ws', 'ws://b/v1/ws'],
    WebSocket: FakeSocket,
    minReconnectDelay: 1,
    maxReconnectDelay: 2,
    staleAfter: 0,
    ...options,
  });
}

/** Resolves when the client opens its `n`th socket (reconnects wait a backoff timer). */
function socketNumber(n) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 5000;
    const poll = () => {
      if (FakeSocket.instances.length >= n) resolve(FakeSocket.instances[n - 1]);
      else if (Date.now() > deadline) reject(new Error(`socket ${n} never opened`));
      else setImmediate(poll);
    };
    poll();
  });
}

test('the backoff is equal jitter between the minimum and the maximum', () => {
  for (const random of [() => 0, () => 0.5, () => 0.999999]) {
    for (let attempt = 1; attempt <= 40; attempt++) {
      const delay = backoffDelay(attempt, 500, 30000, random);
      assert.ok(delay >= 500 && delay <= 30000, `attempt ${attempt}: ${delay}`);
    }
  }
  assert.equal(backoffDelay(1, 500, 30000, () => 0), 500);
  assert.equal(backoffDelay(1, 500, 30000, () => 1), 1000);
  assert.equal(backoffDelay(3, 500, 30000, () => 0), 2000);
  assert.equal(backoffDelay(3, 500, 30000, () => 1), 4000);
  assert.equal(backoffDelay(30, 500, 30000, () => 0), 15000);
  assert.equal(backoffDelay(30, 500, 30000, () => 1), 30000);
});

test('ticker rooms are named as the server names them', () => {
  assert.equal(canonicalRoom('ticker:aapl'), 'ticker:AAPL');
  assert.equal(canonicalRoom('patterns'), 'patterns');
  assert.equal(canonicalRoom('backtest:bt_a'), 'backtest:bt_a');
});

test('after a reconnect the client resumes from its position on the next URL and drops duplicates', async () => {
  const client = fakeClient();
  const seen = [];
  const states = [];
  client.on('state', (s) => states.push(s.state));
  client.connect();
  client.subscribe('ticker:aapl', (data, meta) => seen.push([meta.seq, data.price, meta.replayed]));
  const first = await socketNumber(1);
  assert.equal(first.url, 'ws://a/v1/ws');
  assert.equal(first.protocols, undefined);
  first.accept('a');
  assert.deepEqual(first.sent, [{ type: 'subscribe', rooms: ['ticker:AAPL'] }]);
  first.deliver({ type: 'subscribed', room: 'ticker:AAPL', epoch: 7, seq: 10, replayed: 0 });
  first.deliver({ type: 'message', room: 'ticker:AAPL', epoch: 7, seq: 11, data: { price: 11 } });
  first.deliver({ type: 'message', room: 'ticker:AAPL', epoch: 7, seq: 12, data: { price: 12 } });
  assert.deepEqual(client.position('ticker:AAPL'), { seq: 12, epoch: 7 });
  first.drop(1001);

  const second = await socketNumber(2);
  assert.equal(second.url, 'ws://b/v1/ws');
  second.accept('b');
  assert.deepEqual(second.sent, [{ type: 'subscribe', rooms: [{ room: 'ticker:AAPL', seq: 12, epoch: 7 }] }]);
  second.deliver({ type: 'subscribed', room: 'ticker:AAPL', epoch: 7, seq: 14, replayed: 3, recovered: true });
  // A server that replays one too many: the duplicate never reaches the handler.
  for (const seq of [12, 13, 14]) {
    second.deliver({ type: 'message', room: 'ticker:AAPL', epoch: 7, seq, data: { price: seq } });
  }
  second.deliver({ type: 'message', room: 'ticker:AAPL', epoch: 7, seq: 14, data: { price: 14 } });
  second.deliver({ type: 'message', room: 'ticker:AAPL', epoch: 7, seq: 15, data: { price: 15 } });
  assert.deepEqual(seen, [
    [11, 11, false],
    [12, 12, false],
    [13, 13, true],
    [14, 14, true],
    [15, 15, false],
  ]);
  const stats = client.stats();
  assert.equal(stats.duplicatesDropped, 2);
  assert.equal(stats.reconnects, 1);
  assert.equal(stats.node, 'b');
  assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'connecting', 'open']);
  client.close();
  assert.equal(client.state, 'closed');
});

test('gaps are reported from a gap message and from a resume that did not recover', async () => {
  const client = fakeClient();
  const gaps = [];
  const seen = [];
  client.on('gap', (g) => gaps.push(g));
  client.connect();
  client.subscribe('alerts', (data, meta) => seen.push([meta.epoch, meta.seq]));
  const first = await socketNumber(1);
  first.accept('a');
  first.deliver({ type: 'subscribed', room: 'alerts', epoch: 1, seq: 0, replayed: 0 });
  first.deliver({ type: 'message', room: 'alerts', epoch: 1, seq: 1, data: {} });
  first.deliver({ type: 'gap', room: 'alerts', epoch: 1, reason: 'lost', missed: { from: 2, to: 3 } });
  first.deliver({ type: 'message', room: 'alerts', epoch: 1, seq: 4, data: {} });
  first.deliver({ type: 'gap', room: 'alerts', epoch: 9, reason: 'epoch' });
  first.deliver({ type: 'message', room: 'alerts', epoch: 9, seq: 1, data: {} });
  first.drop();
  const second = await socketNumber(2);
  second.accept('b');
  assert.deepEqual(second.sent[0].rooms, [{ room: 'alerts', seq: 1, epoch: 9 }]);
  second.deliver({
    type: 'subscribed', room: 'alerts', epoch: 9, seq: 20, replayed: 2, recovered: false,
    gap: { from: 2, to: 18 }, reason: 'trimmed',
  });
  second.deliver({ type: 'message', room: 'alerts', epoch: 9, seq: 19, data: {} });
  second.deliver({ type: 'message', room: 'alerts', epoch: 9, seq: 20, data: {} });
  assert.deepEqual(gaps, [
    { room: 'alerts', epoch: 1, reason: 'lost', from: 2, to: 3 },
    { room: 'alerts', epoch: 9, reason: 'epoch' },
    { room: 'alerts', epoch: 9, reason: 'trimmed', from: 2, to: 18 },
  ]);
  assert.deepEqual(seen, [[1, 1], [1, 4], [9, 1], [9, 19], [9, 20]]);
  assert.equal(client.stats().gaps, 3);
  client.close();
});

test('a token goes in the subprotocols, and a fatal close code stops reconnecting', async () => {
  const client = fakeClient({ token: 'abc.def.ghi' });
  const errors = [];
  client.on('error', (e) => errors.push(e));
  client.connect();
  const socket = await socketNumber(1);
  assert.deepEqual(socket.protocols, ['roomcast.v1', 'bearer.abc.def.ghi']);
  socket.accept('a');
  socket.drop(4001); // token expired, and no way to get a fresh one
  assert.equal(client.state, 'closed');
  assert.equal(errors.at(-1).closeCode, 4001);
  assert.equal(FakeSocket.instances.length, 1);
});

test('messages of a room before its subscribed (an earlier subscription\'s tail) are not delivered', async () => {
  const client = fakeClient();
  const seen = [];
  client.connect();
  const socket = await socketNumber(1);
  socket.accept('a');
  client.subscribe('patterns', (_d, meta) => seen.push(meta.seq));
  socket.deliver({ type: 'message', room: 'patterns', epoch: 1, seq: 5, data: {} });
  socket.deliver({ type: 'subscribed', room: 'patterns', epoch: 1, seq: 5, replayed: 0 });
  socket.deliver({ type: 'message', room: 'patterns', epoch: 1, seq: 6, data: {} });
  client.unsubscribe('patterns');
  assert.deepEqual(socket.sent.at(-1), { type: 'unsubscribe', rooms: ['patterns'] });
  socket.deliver({ type: 'message', room: 'patterns', epoch: 1, seq: 7, data: {} });
  assert.deepEqual(seen, [6]);
  assert.equal(client.position('patterns'), undefined);
  client.close();
  assert.deepEqual(socket.sent.at(-1), { type: 'close' });
});
