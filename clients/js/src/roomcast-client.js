// roomcast-client.js — the JavaScript client of roomcast's native protocol
// (`/v1/ws`, docs/protocol-v1.md), for browsers and Node >= 20. One ES module,
// no dependencies. It keeps one WebSocket open (reconnecting with jittered
// exponential backoff, trying each of several fleet URLs in turn), subscribes
// rooms, resumes each room after a reconnect from the last seq/epoch it
// processed, drops duplicates, reports gaps, pings the server to notice a
// dead connection, and reports rooms that went quiet ("stale").
//
// Served by roomcast at /static/js/roomcast-client.js; see clients/js/README.md.

/**
 * @typedef {'connecting'|'open'|'reconnecting'|'closed'} ConnectionState
 *
 * @typedef {object} ClientOptions
 * @property {string} [url] the `/v1/ws` URL; default in a browser: the page's host, ws/wss by the page's protocol
 * @property {string[]} [urls] several URLs (a fleet), tried in turn on reconnect
 * @property {string|(() => string|Promise<string>)} [token] a JWT, or a function called before every
 *   connect that returns a fresh one (then 4001 "token expired" reconnects with a new token)
 * @property {typeof WebSocket} [WebSocket] the WebSocket constructor; default `globalThis.WebSocket`
 * @property {number} [minReconnectDelay=500] ms; the first reconnect waits between this and twice this
 * @property {number} [maxReconnectDelay=30000] ms; no reconnect waits longer
 * @property {number} [heartbeatInterval=15000] ms between app-level pings while open
 * @property {number} [heartbeatTimeout=10000] ms without any answer after a ping before the connection is dropped
 * @property {number} [connectTimeout=10000] ms a connection may take to open before it is abandoned
 * @property {number} [staleAfter=30000] ms without a message before a room is reported stale (0: never)
 *
 * @typedef {object} MessageMeta
 * @property {string} room
 * @property {number} seq
 * @property {number} epoch
 * @property {boolean} replayed true for messages replayed from history right after a (re)subscribe
 *
 * @typedef {(data: any, meta: MessageMeta) => void} MessageHandler
 *
 * @typedef {object} SubscribeOptions
 * @property {number|{seq: number, epoch?: number}} [from] start after this seq (0: the whole retained
 *   history), or resume from a position saved earlier (`client.position(room)`)
 *
 * @typedef {object} Subscription
 * @property {string} room the room's canonical name (`ticker:aapl` → `ticker:AAPL`)
 * @property {() => void} unsubscribe removes this handler (and leaves the room when it was the last)
 *
 * @typedef {object} Position
 * @property {number} seq the last seq processed (0: none yet)
 * @property {number|undefined} epoch the lineage that seq belongs to
 *
 * @typedef {object} StateEvent
 * @property {ConnectionState} state
 * @property {number} attempt reconnect attempts since the last welcome (0 on the first connect)
 * @property {number} [delay] ms until the next attempt (state 'reconnecting')
 * @property {string} [url] the URL being (or about to be) tried
 * @property {number} [code] the close code that ended the previous connection, when there was one
 *
 * @typedef {object} WelcomeEvent
 * @property {string} node the fleet node serving this connection
 * @property {string} protocol `roomcast.v1`
 *
 * @typedef {object} GapEvent
 * @property {string} room
 * @property {number} epoch
 * @property {'lost'|'trimmed'|'epoch'|string} reason lost: live delivery lost events; trimmed: older than the
 *   retained history at resume; epoch: the room's lineage restarted (seqs start again)
 * @property {number} [from] first missing seq (absent for 'epoch')
 * @property {number} [to] last missing seq (absent for 'epoch')
 *
 * @typedef {object} ErrorEvent
 * @property {string} code the server's error code (`forbidden`, `bad_room`, …), or `transport`, `closed`
 * @property {string} message
 * @property {string} [room]
 * @property {number} [closeCode] for `closed`: the close code that ended the client
 *
 * @typedef {object} StaleEvent
 * @property {string} room
 * @property {number} since the time (ms since the epoch) of the room's last message or subscription
 *
 * @typedef {object} RoomStats
 * @property {number} seq
 * @property {number|undefined} epoch
 * @property {number|undefined} lastMessageAt ms since the epoch
 * @property {boolean} stale
 *
 * @typedef {object} ClientStats
 * @property {ConnectionState} state
 * @property {string|undefined} node
 * @property {string|undefined} url
 * @property {number} reconnects connections opened after the first
 * @property {number} messagesReceived messages handed to handlers
 * @property {number} duplicatesDropped messages dropped as already processed
 * @property {number} gaps gap events emitted
 * @property {Object<string, RoomStats>} rooms
 */

const DEFAULTS = {
  minReconnectDelay: 500,
  maxReconnectDelay: 30000,
  heartbeatInterval: 15000,
  heartbeatTimeout: 10000,
  connectTimeout: 10000,
  staleAfter: 30000,
};

/** Close codes after which reconnecting cannot help (docs/close-codes.md): fix the client or its token. */
const FATAL_CLOSE_CODES = new Set([1002, 1003, 1007, 1008, 1009, 4003]);

/** The server takes at most this many rooms per subscribe. */
const ROOMS_PER_SUBSCRIBE = 100;

/**
 * The name the server uses for `room`: ticker symbols are upper-cased.
 * @param {string} room
 * @returns {string}
 */
export function canonicalRoom(room) {
  return room.startsWith('ticker:') ? 'ticker:' + room.slice(7).toUpperCase() : room;
}

/**
 * The wait before reconnect attempt `attempt` (1, 2, …): "equal jitter" — uniformly random in
 * [cap/2, cap] with cap = min(max, min·2^attempt), never below `min`. So the first attempt waits
 * between `min` and `2·min`, and no attempt waits more than `max`.
 * @param {number} attempt
 * @param {number} min
 * @param {number} max
 * @param {() => number} [random]
 * @returns {number}
 */
export function backoffDelay(attempt, min, max, random = Math.random) {
  const cap = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.round(Math.min(max, Math.max(min, cap / 2 + random() * (cap / 2))));
}

export class RoomcastClient {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    this._options = { ...DEFAULTS, ...options };
    /** @type {string[]} */
    this._urls = options.urls ? [...options.urls] : options.url ? [options.url] : defaultUrls();
    if (this._urls.length === 0) {
      throw new Error('RoomcastClient: give `url` or `urls` (no page location to default to)');
    }
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') {
      throw new Error('RoomcastClient: no WebSocket (Node 20: run with --experimental-websocket, or pass `WebSocket`)');
    }
    /** @type {ConnectionState} */
    this._state = 'closed';
    this._urlIndex = 0;
    this._attempt = 0;
    this._wanted = false; // connect() called and close() not since
    this._ws = null;
    this._timers = { reconnect: null, connect: null, ping: null, pong: null, stale: null };
    this._node = undefined;
    this._url = undefined;
    this._counters = { reconnects: 0, opened: 0, messagesReceived: 0, duplicatesDropped: 0, gaps: 0 };
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** Per room: handlers, position and delivery state. @type {Map<string, any>} */
    this._rooms = new Map();
  }

  /** @returns {ConnectionState} */
  get state() {
    return this._state;
  }

  /** @returns {string|undefined} the node serving the current connection (from its welcome) */
  get node() {
    return this._node;
  }

  /** Opens the connection (and keeps it open until close()). */
  connect() {
    if (this._wanted) return;
    this._wanted = true;
    this._attempt = 0;
    this._open();
    this._armStaleCheck();
  }

  /**
   * Subscribes `handler` to `room`. Several handlers may share a room.
   * @param {string} room
   * @param {MessageHandler} handler
   * @param {SubscribeOptions} [options]
   * @returns {Subscription}
   */
  subscribe(room, handler, options = {}) {
    const name = canonicalRoom(room);
    let entry = this._rooms.get(name);
    if (!entry) {
      entry = {
        handlers: new Set(),
        seq: 0,
        epoch: undefined,
        from: options.from,
        confirmed: false, // its `subscribed` arrived on the current connection
        replayRemaining: 0,
        lastMessageAt: undefined,
        since: Date.now(),
        stale: false,
      };
      if (options.from !== undefined && typeof options.from === 'object') {
        entry.seq = options.from.seq;
        entry.epoch = options.from.epoch;
        entry.from = undefined;
      }
      this._rooms.set(name, entry);
      this._sendSubscribe([name]);
    }
    entry.handlers.add(handler);
    return {
      room: name,
      unsubscribe: () => {
        const current = this._rooms.get(name);
        if (current !== entry) return;
        entry.handlers.delete(handler);
        if (entry.handlers.size === 0) this.unsubscribe(name);
      },
    };
  }

  /**
   * Leaves `room`: no handler of it is called again.
   * @param {string} room
   */
  unsubscribe(room) {
    const name = canonicalRoom(room);
    if (!this._rooms.delete(name)) return;
    this._send({ type: 'unsubscribe', rooms: [name] });
  }

  /**
   * Listens to an event: 'state', 'welcome', 'subscribed', 'unsubscribed', 'gap', 'error', 'stale',
   * 'fresh', 'auth_ok'. Returns the function that removes the listener.
   * @param {string} event
   * @param {(payload: any) => void} listener
   * @returns {() => void}
   */
  on(event, listener) {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * The last message processed in `room`.
   * @param {string} room
   * @returns {Position|undefined}
   */
  position(room) {
    const entry = this._rooms.get(canonicalRoom(room));
    return entry ? { seq: entry.seq, epoch: entry.epoch } : undefined;
  }

  /** @returns {ClientStats} */
  stats() {
    /** @type {Object<string, RoomStats>} */
    const rooms = {};
    for (const [name, entry] of this._rooms) {
      rooms[name] = { seq: entry.seq, epoch: entry.epoch, lastMessageAt: entry.lastMessageAt, stale: entry.stale };
    }
    const { reconnects, messagesReceived, duplicatesDropped, gaps } = this._counters;
    return {
      state: this._state,
      node: this._node,
      url: this._url,
      reconnects,
      messagesReceived,
      duplicatesDropped,
      gaps,
      rooms,
    };
  }

  /**
   * Replaces the connection's token in-band before it expires (answered by 'auth_ok' or an
   * 'error' with code `invalid_token`). Also used for the next connects when `token` was a string.
   * @param {string} token
   */
  authenticate(token) {
    if (typeof this._options.token !== 'function') this._options.token = token;
    this._send({ type: 'auth', token });
  }

  /** Ends the session: sends {"type":"close"} and never reconnects (until connect() again). */
  close() {
    this._wanted = false;
    this._clearTimers(true);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      if (ws.readyState === 1) {
        try {
          ws.send(JSON.stringify({ type: 'close' }));
        } catch {
          // the socket is going anyway
        }
      }
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    this._node = undefined;
    this._setState({ state: 'closed', attempt: this._attempt });
  }

  // -- connection --------------------------------------------------------------------------------

  async _open() {
    const url = this._urls[this._urlIndex % this._urls.length];
    this._url = url;
    this._setState({ state: 'connecting', attempt: this._attempt, url });
    let token = this._options.token;
    if (typeof token === 'function') {
      try {
        token = await token();
      } catch (err) {
        this._emit('error', { code: 'token', message: `token provider failed: ${err && err.message}` });
        this._dropped(undefined);
        return;
      }
      if (!this._wanted || this._ws) return;
    }
    let ws;
    try {
      ws = token ? new this._WebSocket(url, ['roomcast.v1', 'bearer.' + token]) : new this._WebSocket(url);
    } catch (err) {
      this._emit('error', { code: 'transport', message: `cannot open ${url}: ${err && err.message}` });
      this._dropped(undefined);
      return;
    }
    this._ws = ws;
    ws.binaryType = 'arraybuffer';
    this._timers.connect = setTimeout(() => {
      if (this._ws !== ws) return;
      this._emit('error', { code: 'transport', message: `no connection to ${url} within ${this._options.connectTimeout} ms` });
      this._abandon(ws);
    }, this._options.connectTimeout);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      clearTimeout(this._timers.connect);
      if (this._counters.opened++ > 0) this._counters.reconnects++;
      for (const entry of this._rooms.values()) entry.confirmed = false;
      this._setState({ state: 'open', attempt: this._attempt, url });
      this._sendSubscribe([...this._rooms.keys()]);
      this._armPing();
    };
    ws.onmessage = (event) => {
      if (this._ws !== ws) return;
      this._received(event.data);
    };
    ws.onerror = () => {
      if (this._ws !== ws) return;
      this._emit('error', { code: 'transport', message: `WebSocket error on ${url}` });
      // A handshake that failed: some implementations (Node 20's) never follow with 'close'.
      if (ws.readyState !== 1) this._abandon(ws);
    };
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._dropped(event.code, event.reason);
    };
  }

  /** Gives up on `ws` at once (a frozen server never completes a close handshake). */
  _abandon(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(4000, 'abandoned');
    } catch {
      // closing already
    }
    if (this._ws === ws) {
      this._ws = null;
      this._dropped(1006);
    }
  }

  /** The connection ended (or never opened): reconnect after a backoff unless that cannot help. */
  _dropped(code, reason) {
    this._clearTimers(false);
    this._node = undefined;
    if (!this._wanted) return;
    const fatal = FATAL_CLOSE_CODES.has(code) || (code === 4001 && typeof this._options.token !== 'function');
    if (fatal) {
      this._wanted = false;
      this._clearTimers(true);
      this._emit('error', {
        code: 'closed',
        closeCode: code,
        message: `the server closed the connection with ${code}${reason ? ` (${reason})` : ''}; not reconnecting`,
      });
      this._setState({ state: 'closed', attempt: this._attempt, code });
      return;
    }
    this._attempt++;
    this._urlIndex = (this._urlIndex + 1) % this._urls.length;
    const delay = backoffDelay(this._attempt, this._options.minReconnectDelay, this._options.maxReconnectDelay);
    const url = this._urls[this._urlIndex];
    this._setState({ state: 'reconnecting', attempt: this._attempt, delay, url, code });
    this._timers.reconnect = setTimeout(() => {
      this._timers.reconnect = null;
      if (this._wanted && !this._ws) this._open();
    }, delay);
  }

  _armPing() {
    clearTimeout(this._timers.ping);
    this._timers.ping = setTimeout(() => {
      const ws = this._ws;
      if (!ws || ws.readyState !== 1) return;
      this._send({ type: 'ping' });
      this._timers.pong = setTimeout(() => {
        if (this._ws !== ws) return;
        this._emit('error', { code: 'transport', message: `no answer to a ping within ${this._options.heartbeatTimeout} ms` });
        this._abandon(ws);
      }, this._options.heartbeatTimeout);
    }, this._options.heartbeatInterval);
  }

  _armStaleCheck() {
    const after = this._options.staleAfter;
    if (!after || !Number.isFinite(after)) return;
    const every = Math.max(50, Math.min(1000, after / 4));
    const check = () => {
      const now = Date.now();
      for (const [room, entry] of this._rooms) {
        const since = entry.lastMessageAt ?? entry.since;
        if (!entry.stale && now - since >= after) {
          entry.stale = true;
          this._emit('stale', { room, since });
        }
      }
      this._timers.stale = setTimeout(check, every);
    };
    this._timers.stale = setTimeout(check, every);
  }

  _clearTimers(all) {
    for (const name of ['reconnect', 'connect', 'ping', 'pong']) {
      clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
    if (all) {
      clearTimeout(this._timers.stale);
      this._timers.stale = null;
    }
  }

  _send(message) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  /** Subscribes `names` on the open connection, each resumed from its position when it has one. */
  _sendSubscribe(names) {
    if (!this._ws || this._ws.readyState !== 1) return;
    const rooms = names.map((name) => {
      const entry = this._rooms.get(name);
      entry.confirmed = false;
      if (entry.epoch !== undefined) return { room: name, seq: entry.seq, epoch: entry.epoch };
      if (entry.seq > 0) return { room: name, seq: entry.seq };
      if (entry.from !== undefined) return { room: name, seq: entry.from };
      return name;
    });
    for (let i = 0; i < rooms.length; i += ROOMS_PER_SUBSCRIBE) {
      this._send({ type: 'subscribe', rooms: rooms.slice(i, i + ROOMS_PER_SUBSCRIBE) });
    }
  }

  // -- server messages -----------------------------------------------------------------------------

  _received(raw) {
    let msg;
    try {
      msg = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw));
    } catch {
      this._emit('error', { code: 'transport', message: 'the server sent a message that is not JSON' });
      return;
    }
    // Any message proves the connection alive: the pong may be queued behind it.
    if (this._timers.pong) {
      clearTimeout(this._timers.pong);
      this._timers.pong = null;
      this._armPing();
    }
    switch (msg.type) {
      case 'message':
        this._message(msg);
        break;
      case 'subscribed':
        this._subscribed(msg);
        break;
      case 'gap':
        this._gap(msg);
        break;
      case 'welcome':
        this._node = msg.node;
        this._attempt = 0;
        this._emit('welcome', { node: msg.node, protocol: msg.protocol });
        break;
      case 'pong':
        break;
      case 'unsubscribed':
        this._emit('unsubscribed', msg);
        break;
      case 'auth_ok':
        this._emit('auth_ok', msg);
        break;
      case 'error':
        this._serverError(msg);
        break;
      default:
        break; // newer servers may add types
    }
  }

  _message(msg) {
    const entry = this._rooms.get(msg.room);
    // Unsubscribed meanwhile, or the tail of an earlier subscription of the room.
    if (!entry || !entry.confirmed) return;
    const replayed = entry.replayRemaining > 0;
    if (replayed) entry.replayRemaining--;
    if (entry.epoch === msg.epoch && msg.seq <= entry.seq) {
      this._counters.duplicatesDropped++;
      return;
    }
    entry.seq = msg.seq;
    entry.epoch = msg.epoch;
    entry.from = undefined;
    entry.lastMessageAt = Date.now();
    if (entry.stale) {
      entry.stale = false;
      this._emit('fresh', { room: msg.room });
    }
    this._counters.messagesReceived++;
    const meta = { room: msg.room, seq: msg.seq, epoch: msg.epoch, replayed };
    for (const handler of [...entry.handlers]) {
      if (this._rooms.get(msg.room) !== entry) break; // a handler unsubscribed the room
      guard(() => handler(msg.data, meta));
    }
  }

  _subscribed(msg) {
    const entry = this._rooms.get(msg.room);
    if (entry) {
      entry.confirmed = true;
      entry.replayRemaining = msg.replayed || 0;
      entry.since = Date.now();
      if (entry.epoch !== msg.epoch) {
        // A new lineage (or the first subscription): its seqs start afresh.
        entry.epoch = msg.epoch;
        entry.seq = 0;
      }
      if (!msg.replayed && msg.seq > entry.seq) {
        // Nothing follows from history: live messages come after the room's latest.
        entry.seq = msg.seq;
      }
    }
    this._emit('subscribed', msg);
    if (msg.recovered === false) {
      const gap = { room: msg.room, epoch: msg.epoch, reason: msg.reason || 'unknown' };
      if (msg.gap) Object.assign(gap, { from: msg.gap.from, to: msg.gap.to });
      this._counters.gaps++;
      this._emit('gap', gap);
    }
  }

  _gap(msg) {
    const gap = { room: msg.room, epoch: msg.epoch, reason: msg.reason };
    if (msg.missed) Object.assign(gap, { from: msg.missed.from, to: msg.missed.to });
    const entry = this._rooms.get(msg.room);
    if (entry && msg.reason === 'epoch' && entry.epoch !== msg.epoch) {
      entry.epoch = msg.epoch;
      entry.seq = 0;
    }
    this._counters.gaps++;
    this._emit('gap', gap);
  }

  _serverError(msg) {
    const event = { code: msg.code, message: msg.message };
    if (msg.room !== undefined) {
      event.room = msg.room;
      // A refused subscribe (forbidden, bad_room, limits): the room is not joined; drop it so it
      // is not retried on every reconnect. Subscribe again to retry.
      const entry = this._rooms.get(msg.room);
      if (entry && !entry.confirmed && msg.code !== 'already_subscribed' && msg.code !== 'rate_limited') {
        this._rooms.delete(msg.room);
      }
    }
    this._emit('error', event);
  }

  _setState(event) {
    this._state = event.state;
    this._emit('state', event);
  }

  _emit(event, payload) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) guard(() => listener(payload));
  }
}

/** Runs `fn`; an exception in application code is reported, never breaks the client. */
function guard(fn) {
  try {
    fn();
  } catch (err) {
    if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
    else setTimeout(() => { throw err; });
  }
}

/** In a browser: this page's host at /v1/ws, ws: or wss: as the page. */
function defaultUrls() {
  const location = globalThis.location;
  if (!location || !location.host) return [];
  return [`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/v1/ws`];
}
