// fleet.test.mjs — the client against a fleet of two real roomcast processes on one Redis (started
// by tests/js_client.rs): the node the client is on is killed (SIGKILL) while prices are published
// at a steady pace through the other; the client fails over to the other URL, resumes, and its
// handler sees every published seq exactly once, in order.

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

test('a client whose node is killed mid-stream resumes on the other node and misses nothing', async (t) => {
  const ticker = uniqueTicker('flt');
  const room = `ticker:${ticker}`;
  const client = testClient({ urls: wsUrls });
  const nodes = [];
  client.on('welcome', ({ node }) => nodes.push(node));
  const firstWelcome = nextEvent(client, 'welcome');
  client.connect();
  assert.equal((await firstWelcome).node, nodeIds[0]);

  const recorder = new Recorder();
  const joined = nextEvent(client, 'subscribed', (m) => m.room === room);
  client.subscribe(room, recorder.handler);
  await joined;

  // Every price goes through the node that survives.
  const publisher = steadyPublisher(httpUrls[1], ticker);
  try {
    await recorder.count(20);
    const onOtherNode = nextEvent(client, 'welcome', (w) => w.node === nodeIds[1], 'a welcome from the other node');
    const resumed = nextEvent(client, 'subscribed', (m) => m.room === room && m.recovered !== undefined, 'the resumed subscription');
    const atKill = recorder.messages.length;
    process.kill(pids[0], 'SIGKILL');
    await onOtherNode;
    const resumption = await resumed;
    assert.equal(resumption.recovered, true, JSON.stringify(resumption));
    // The stream goes on through the new connection.
    await recorder.count(atKill + 20);
  } finally {
    await publisher.stop();
  }
  const published = publisher.seqs;
  const last = published.at(-1);
  await recorder.until((m) => m.length > 0 && m.at(-1).meta.seq >= last, `seq ${last}`);

  assert.deepEqual(recorder.seqs, published, 'every published seq exactly once, in order');
  assert.deepEqual(published, Array.from({ length: published.length }, (_, i) => published[0] + i));
  assert.deepEqual(recorder.messages.map((m) => m.data.price), published.map((_, i) => i + 1));
  assert.deepEqual(nodes, [nodeIds[0], nodeIds[1]]);
  const replayed = recorder.messages.filter((m) => m.meta.replayed).length;
  t.diagnostic(`${published.length} prices published, ${replayed} of them replayed by the other node`);
  const stats = client.stats();
  assert.equal(stats.reconnects, 1);
  assert.equal(stats.gaps, 0);
  assert.equal(stats.node, nodeIds[1]);
  assert.equal(stats.url, wsUrls[1]);
  client.close();
});
