// k6 fan-out test for roomcast (seed 001 dialect) or nchan: SUBSCRIBERS
// WebSocket clients on one room, spread over one or more nodes (BASE_URLS),
// and an open-model HTTP publisher at RATE publishes/s for DURATION.
//
// Latency needs no JSON parsing: each publish carries its send time
// (µs since the Unix epoch) in `volume`, which roomcast echoes as an integer
// and nchan passes through verbatim; subscribers read the digits after
// `"volume":`. Delivery: each publish carries a sequence number in `change`;
// every subscriber counts the numbers it saw between the first and the last,
// and the gaps are missed deliveries.
//
//   k6 run loadtest/k6/fanout.js
//   k6 run -e BASE_URLS=http://edge-1:8000,http://edge-2:8000 -e SUBSCRIBERS=15000 \
//          -e RATE=200 -e DURATION=120s loadtest/k6/fanout.js
//
// Environment (defaults in brackets):
//   BASE_URLS    comma-separated node base URLs, subscribers round-robin [http://127.0.0.1:8000]
//   PUBLISH_URL  where to publish [first of BASE_URLS]
//   PUBLISH_TO   `one` (PUBLISH_URL; fleet mode fans out across nodes) or `all`
//                (every node gets every publish: nodes that do not share a bus) [one]
//   DIALECT      `seed001` (roomcast /api/ws) or `nchan` (/sub/<room>, /pub/<room>) [seed001]
//   ROOM         ticker (seed 001) or channel id (nchan) [LT0]
//   SUBSCRIBERS  WebSocket connections [1000]
//   RAMP_RATE    new connections per second [500]
//   RATE         publishes per second [100]
//   DURATION     publishing time [60s]
//   DRAIN_S      seconds subscribers stay after publishing ends [5]
//
// Uses k6/experimental/websockets, which k6 1.x and 2.x both ship.

import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { WebSocket } from 'k6/experimental/websockets';

const BASE_URLS = (__ENV.BASE_URLS || 'http://127.0.0.1:8000')
  .split(',')
  .map((u) => u.trim().replace(/\/+$/, ''))
  .filter((u) => u.length > 0);
const PUBLISH_URL = (__ENV.PUBLISH_URL || BASE_URLS[0]).replace(/\/+$/, '');
const PUBLISH_TO = __ENV.PUBLISH_TO || 'one';
const DIALECT = __ENV.DIALECT || 'seed001';
const ROOM = __ENV.ROOM || 'LT0';
const SUBSCRIBERS = parseInt(__ENV.SUBSCRIBERS || '1000', 10);
const RAMP_RATE = parseFloat(__ENV.RAMP_RATE || '500');
const RATE = parseInt(__ENV.RATE || '100', 10);
const DURATION = __ENV.DURATION || '60s';
const DRAIN_S = parseFloat(__ENV.DRAIN_S || '5');

/** Seconds in a k6 duration string such as `90s`, `2m` or `1m30s`. */
function seconds(d) {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m;
  while ((m = re.exec(d)) !== null) {
    const v = parseFloat(m[1]);
    total += m[2] === 'ms' ? v / 1000 : m[2] === 's' ? v : m[2] === 'm' ? v * 60 : v * 3600;
  }
  return total;
}

const RAMP_S = SUBSCRIBERS / RAMP_RATE;
// Publishing starts once every subscriber has had time to connect and join.
const PUBLISH_START_S = Math.ceil(RAMP_S + 5);
const PUBLISH_S = seconds(DURATION);
// Every subscriber leaves at the same moment: after publishing and the drain.
const LEAVE_AT_S = PUBLISH_START_S + PUBLISH_S + DRAIN_S;

const connectTime = new Trend('connect_time', true);
const subscribed = new Rate('subscribed');
const latency = new Trend('delivery_latency', true);
const delivered = new Rate('delivered');
const events = new Counter('events_received');
const published = new Counter('published');

export const options = {
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations',
      exec: 'subscriber',
      vus: SUBSCRIBERS,
      iterations: 1,
      maxDuration: `${Math.ceil(LEAVE_AT_S + 30)}s`,
    },
    publisher: {
      executor: 'constant-arrival-rate',
      exec: 'publish',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      startTime: `${PUBLISH_START_S}s`,
      preAllocatedVUs: Math.min(200, Math.max(10, Math.ceil(RATE / 20))),
      maxVUs: 500,
    },
  },
  thresholds: {
    connect_time: ['p(99)<1000'],
    subscribed: ['rate>0.99'],
    delivery_latency: ['p(50)<20', 'p(99)<100'],
    delivered: ['rate>0.999'],
    http_req_failed: ['rate<0.001'],
    dropped_iterations: ['count<1'],
  },
};

export function setup() {
  // The test's time origin, shared by every VU, so all leave together.
  return { t0: Date.now() };
}

function wsUrl(base) {
  const ws = base.replace(/^http/, 'ws');
  return DIALECT === 'nchan' ? `${ws}/sub/${ROOM}` : `${ws}/api/ws`;
}

/** The integer after `key` in `text` (no JSON parsing), or NaN. */
function digitsAfter(text, key) {
  const i = text.indexOf(key);
  return i < 0 ? NaN : parseInt(text.substring(i + key.length), 10);
}

export function subscriber(data) {
  const id = exec.vu.idInTest - 1;
  sleep(id / RAMP_RATE);
  const url = wsUrl(BASE_URLS[id % BASE_URLS.length]);
  const started = Date.now();
  const ws = new WebSocket(url);
  let first = -1;
  let last = -1;
  let seen = 0;
  let joined = DIALECT === 'nchan';

  ws.onopen = () => {
    connectTime.add(Date.now() - started);
    if (DIALECT === 'nchan') {
      subscribed.add(true);
    } else {
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'ticker', ticker: ROOM }));
    }
  };
  ws.onmessage = (e) => {
    const text = String(e.data);
    const isEvent = DIALECT === 'nchan' || text.startsWith('{"type":"price_update"');
    if (isEvent) {
      const sent = digitsAfter(text, '"volume":');
      const seq = digitsAfter(text, '"change":');
      if (Number.isNaN(sent) || Number.isNaN(seq)) {
        return;
      }
      latency.add(Date.now() - sent / 1000);
      events.add(1);
      delivered.add(true);
      seen += 1;
      if (first < 0 || seq < first) first = seq;
      if (seq > last) last = seq;
    } else if (!joined && text.startsWith('{"type":"subscription"')) {
      joined = true;
      subscribed.add(true);
    }
  };
  ws.onerror = (e) => {
    if (!joined) {
      joined = true;
      subscribed.add(false);
    }
    console.warn(`subscriber ${id}: ${e.error}`);
  };
  ws.onclose = () => {
    // Missed deliveries between the first and last event this subscriber saw.
    if (last >= 0) {
      const missing = last - first + 1 - seen;
      for (let i = 0; i < missing; i += 1) delivered.add(false);
    }
  };
  const leaveIn = Math.max(0, data.t0 + LEAVE_AT_S * 1000 - Date.now());
  setTimeout(() => {
    if (!joined) subscribed.add(false);
    ws.close();
  }, leaveIn);
}

function body(seq, sentUs) {
  // The seed's price body; the send time rides in `volume`, the sequence in `change`.
  return JSON.stringify({
    ticker: ROOM,
    price: 100.5,
    change: seq,
    change_percent: 0.25,
    volume: sentUs,
    high: 101.5,
    low: 99.0,
    open_price: 100.0,
  });
}

export function publish() {
  const seq = exec.scenario.iterationInTest;
  // Date.now() is in ms; µs keep the field's unit the same as the Rust generator's.
  const payload = body(seq, Date.now() * 1000);
  const targets = PUBLISH_TO === 'all' ? BASE_URLS : [PUBLISH_URL];
  for (const base of targets) {
    const path = DIALECT === 'nchan' ? `/pub/${ROOM}` : '/api/ws/broadcast/price';
    const res = http.post(`${base}${path}`, payload, {
      headers: { 'Content-Type': 'application/json' },
    });
    check(res, { 'publish accepted (2xx)': (r) => r.status >= 200 && r.status < 300 });
  }
  published.add(1);
}
