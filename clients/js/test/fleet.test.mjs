// fleet.test.mjs — the client against a fleet of three real roomcast processes on one Redis
// (started by tests/js_client.rs): the node the client is on is killed (SIGKILL), and then another
// drains (SIGTERM: close code 1001), each while prices are published at a steady pace through a
// surviving node; the client fails over to its next URL, resumes, and its handler sees every
// published seq exactly once, in order.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Recorder, env, nextEvent, publishPrice, testClient, uniqueTicker } from './helpers.mjs';

const wsUrls = env('ROOMCAST_FLEET_WS_URLS').split(',');
const httpUrls = env('ROOMCAST_FLEET_HTTP_URLS').split(',');
const pids = env('ROOMCAST_FLEET_PIDS').split(',').map(Number);
const nodeIds = env('ROOMCAST_FLEET_NODE_IDS').split(',');

/** Pause between two publishes: a steady stream, not a burst. */
const PUBLISH_EVERY_MS = 10;

/**
 * Publishes prices through `httpBase` one after another until stopped; `seqs` collects the seq
 * of each (from the HTTP answer), in publishing order.
 */
function steadyPublisher(httpBase, ticker) {
  const seqs = [];
  let running = true;
  const done = (async () => {
    let price = 1;
    while (running) {
      const answer = await publishPrice(httpBase, ticker, price++);
      seqs.push(answer.seq);
      await new Promise((resolve) => setTimeout(resolve, PUBLISH_EVERY_MS));
    }
  })();
  return {
    seqs,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/**
 * A client on `urls[0]` subscribed to a fresh room while prices go through `publishVia`; its
 * node gets `signal`; it must come back on `urls[1]` (node `nodes[1]`), resume, and have seen
 * every published seq exactly once, in order.
 */
async function failover(t, { urls, nodes: [fromNode, toNode], publishVia, victim, signal, closeCode }) {
  const ticker = uniqueTicker('flt');
  const room = `ticker:${ticker}`;
  const client = testClient({ urls });
  const welcomes = [];
  client.on('welcome', ({ node }) => welcomes.push(node));
  const firstWelcome = nextEvent(client, 'welcome');
  client.connect();
  assert.equal((await firstWelcome).node, fromNode);

  const recorder = new Recorder();
  const joined = nextEvent(client, 'subscribed', (m) => m.room === room);
  client.subscribe(room, recorder.handler);
  await joined;

  const publisher = steadyPublisher(publishVia, ticker);
  try {
    await recorder.count(20);
    const dropped = nextEvent(client, 'state', (s) => s.state === 'reconnecting', 'the dropped connection');
    const onOtherNode = nextEvent(client, 'welcome', (w) => w.node === toNode, 'a welcome from the other node');
    const resumed = nextEvent(client, 'subscribed', (m) => m.room === room && m.recovered !== undefined, 'the resumed subscription');
    const atSignal = recorder.messages.length;
    process.kill(victim, signal);
    assert.equal((await dropped).code, closeCode);
    await onOtherNode;
    const resumption = await resumed;
    assert.equal(resumption.recovered, true, JSON.stringify(resumption));
    // The stream goes on through the new connection.
    await recorder.count(atSignal + 20);
  } finally {
    await publisher.stop();
  }
  const published = publisher.seqs;
  const last = published.at(-1);
  await recorder.until((m) => m.length > 0 && m.at(-1).meta.seq >= last, `seq ${last}`);

  assert.deepEqual(recorder.seqs, published, 'every published seq exactly once, in order');
  assert.deepEqual(published, Array.from({ length: published.length }, (_, i) => published[0] + i));
  assert.deepEqual(recorder.messages.map((m) => m.data.price), published.map((_, i) => i + 1));
  assert.deepEqual(welcomes, [fromNode, toNode]);
  const replayed = recorder.messages.filter((m) => m.meta.replayed).length;
  t.diagnostic(`${published.length} prices published, ${replayed} of them replayed by ${toNode}`);
  const stats = client.stats();
  assert.equal(stats.reconnects, 1);
  assert.equal(stats.gaps, 0);
  assert.equal(stats.node, toNode);
  assert.equal(stats.url, urls[1]);
  client.close();
}

test('a client whose node is killed mid-stream resumes on another node and misses nothing', (t) =>
  failover(t, {
    urls: [wsUrls[0], wsUrls[1]],
    nodes: [nodeIds[0], nodeIds[1]],
    publishVia: httpUrls[2],
    victim: pids[0],
    signal: 'SIGKILL',
    closeCode: 1006,
  }));

test('a client whose node drains (1001) resumes on another node and misses nothing', (t) =>
  failover(t, {
    urls: [wsUrls[1], wsUrls[2]],
    nodes: [nodeIds[1], nodeIds[2]],
    publishVia: httpUrls[2],
    victim: pids[1],
    signal: 'SIGTERM',
    closeCode: 1001,
  }));
