// helpers.mjs — what the client's Node tests share: the servers' addresses (from environment
// variables set by tests/js_client.rs, which starts real roomcast processes), HTTP publishing,
// bounded waits for events, and a TCP proxy that can cut or freeze connections.
// Every wait has a deadline; none is a sleep.

import net from 'node:net';

import { RoomcastClient } from '../src/roomcast-client.js';

/**
 * The WebSocket class the tests use: Node's own (Node >= 22, or Node 20 with
 * --experimental-websocket), else the `ws` package (`npm ci` in clients/js installs it as a
 * development dependency, for a Node without one).
 */
export const WebSocketClass = globalThis.WebSocket ?? (await import('ws')).default;

/** Bound on any single wait: a failure, never a synchronisation. */
export const DEADLINE_MS = 15000;

/**
 * The environment variable `name`; the tests only run under `cargo test --test js_client`.
 * @param {string} name
 */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through \`cargo test --test js_client\`, which starts the servers`);
  }
  return value;
}

/** Fast reconnects for tests; heartbeats off unless a test turns them on. */
export function testClient(options) {
  return new RoomcastClient({
    WebSocket: WebSocketClass,
    minReconnectDelay: 20,
    maxReconnectDelay: 200,
    heartbeatInterval: 60000,
    heartbeatTimeout: 60000,
    staleAfter: 0,
    ...options,
  });
}

/**
 * Resolves with the first payload of `event` that satisfies `accept`; rejects after the deadline.
 * @param {RoomcastClient} client
 * @param {string} event
 * @param {(payload: any) => boolean} [accept]
 * @param {string} [what]
 */
export function nextEvent(client, event, accept = () => true, what = event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what}`));
    }, DEADLINE_MS);
    const off = client.on(event, (payload) => {
      if (!accept(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/**
 * A handler that records every delivery, and waits for the records to satisfy a condition.
 */
export class Recorder {
  constructor() {
    /** @type {{data: any, meta: import('../src/roomcast-client.js').MessageMeta}[]} */
    this.messages = [];
    this._waiters = [];
    this.handler = (data, meta) => {
      this.messages.push({ data, meta });
      this._waiters = this._waiters.filter((w) => !w.check());
    };
  }

  /** The seqs delivered, in order. */
  get seqs() {
    return this.messages.map((m) => m.meta.seq);
  }

  /**
   * Resolves once `condition(messages)` holds; rejects after the deadline.
   * @param {(messages: any[]) => boolean} condition
   * @param {string} what
   */
  until(condition, what) {
    return new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          if (!condition(this.messages)) return false;
          clearTimeout(waiter.timer);
          resolve(this.messages);
          return true;
        },
        timer: setTimeout(() => {
          this._waiters = this._waiters.filter((w) => w !== waiter);
          reject(new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what}; got seqs ${this.seqs.join(',')}`));
        }, DEADLINE_MS),
      };
      if (!waiter.check()) this._waiters.push(waiter);
    });
  }

  /** Resolves once `count` messages have been delivered. */
  count(count) {
    return this.until((m) => m.length >= count, `${count} messages`);
  }
}

/**
 * Publishes a price through `POST /api/ws/broadcast/price` on `httpBase`; resolves with the answer.
 * @param {string} httpBase e.g. http://127.0.0.1:8000
 * @param {string} ticker
 * @param {number} price
 */
export async function publishPrice(httpBase, ticker, price) {
  const response = await fetch(`${httpBase}/api/ws/broadcast/price`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ticker, price }),
    signal: AbortSignal.timeout(DEADLINE_MS),
  });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`publish ${ticker} → ${response.status} ${JSON.stringify(body)}`);
  return body;
}

/** A unique room per test, so tests never see each other's messages. */
let rooms = 0;
export function uniqueTicker(prefix) {
  rooms += 1;
  return `${prefix}${process.pid % 1000}${rooms}`.toUpperCase().slice(0, 16);
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target` (host:port) that the test can cut (every
 * connection reset: the client sees 1006), refuse (new connections closed at once) or freeze
 * (on the connections open now, bytes stop flowing both ways while the sockets stay open, like a
 * stopped process; later connections flow normally).
 */
export class Proxy {
  /** @param {string} target host:port */
  constructor(target) {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    this.refusing = false;
    this.connections = new Set();
    this.accepted = 0;
    this._server = net.createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      this.accepted += 1;
      const upstream = net.connect(port, host);
      const pair = { client, upstream, frozen: false };
      this.connections.add(pair);
      const forward = (from, to) =>
        from.on('data', (chunk) => {
          if (!pair.frozen) to.write(chunk);
        });
      forward(client, upstream);
      forward(upstream, client);
      const end = () => {
        this.connections.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
  }

  /** Starts listening; resolves with `host:port`. */
  listen() {
    return new Promise((resolve) => {
      this._server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${this._server.address().port}`));
    });
  }

  /** Stops forwarding on every connection open now. */
  freeze() {
    for (const pair of this.connections) pair.frozen = true;
  }

  /** Resets every open connection. */
  cut() {
    for (const { client, upstream } of this.connections) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.connections.clear();
  }

  close() {
    this.cut();
    return new Promise((resolve) => this._server.close(() => resolve()));
  }
}
