/*
 * websocket-client.js — the browser's connection to roomcast's seed 001
 * stream (`/api/ws`): prices, pattern alerts, alert triggers and market
 * status. A classic script: it defines `window.WebSocketClient` (and
 * `module.exports` where a module system is present).
 *
 * What it takes care of, so a page need not:
 *  - reconnecting with exponential backoff (reconnectDelay × multiplier^n,
 *    capped at maxReconnectDelay) and re-subscribing everything afterwards;
 *  - a heartbeat (`{"type":"ping"}` every heartbeatInterval) and a health
 *    check: a connection silent for two heartbeats is closed and reopened;
 *  - a bounded queue of incoming data messages (maxQueueSize; when full the
 *    oldest is dropped and counted in `droppedMessages`), processed at most
 *    maxMessagesPerSecond (a token bucket); queued price updates of one
 *    ticker conflate, as do market statuses: the latest wins;
 *  - DOM updates through updateElementIfChanged(): batched, applied in a
 *    requestAnimationFrame at most every batchUpdateDelay ms, and only for
 *    elements whose text actually changes (a bounded cache of last values);
 *  - no leaks: disconnect() clears every timer, on() returns a remover (and
 *    off() exists), the value cache is bounded and clearCache() empties it.
 */
(function (root) {
  'use strict';

  /** The seed's options and their defaults. */
  const DEFAULTS = Object.freeze({
    url: null, // auto-detected: ws(s)://<page host>/api/ws[?user_id=…]
    userId: null,
    reconnectDelay: 1000,
    maxReconnectDelay: 30000,
    reconnectBackoffMultiplier: 1.5,
    heartbeatInterval: 30000,
    maxMessagesPerSecond: 10,
    batchUpdateDelay: 100,
    maxQueueSize: 1000,
  });

  /** At most this many elements have their last value remembered. */
  const MAX_CACHE_ENTRIES = 2000;

  /** Message types that carry data for the page: queued and throttled. */
  const DATA_TYPES = new Set(['price_update', 'pattern_alert', 'alert_trigger', 'market_status', 'history']);

  /** The stream URL for this page: same host, ws: or wss: as the page is http: or https:. */
  function defaultUrl(userId) {
    const location = root.location || { protocol: 'http:', host: 'localhost:8000' };
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = userId ? `?user_id=${encodeURIComponent(userId)}` : '';
    return `${scheme}//${location.host}/api/ws${query}`;
  }

  /** The key a subscription is known by in getStats(): `ticker:AAPL`, `patterns`. */
  function subscriptionKey(channel, ticker) {
    return ticker ? `${channel}:${ticker}` : channel;
  }

  /** Tickers are upper-cased, as the server does: `aapl` and `AAPL` are one room. */
  function normaliseTicker(ticker) {
    return ticker == null || ticker === '' ? null : String(ticker).trim().toUpperCase();
  }

  const now = () => (root.performance && root.performance.now ? root.performance.now() : Date.now());

  class WebSocketClient {
    constructor(options = {}) {
      const given = {};
      for (const [name, value] of Object.entries(options || {})) {
        if (value !== undefined) given[name] = value;
      }
      this.options = { ...DEFAULTS, ...given };
      if (!this.options.url) this.options.url = defaultUrl(this.options.userId);

      this.socket = null;
      this.connected = false;
      this.reconnecting = false;
      this.reconnectAttempts = 0;
      /** True between connect() and disconnect(): a lost connection is reopened. */
      this.wanted = false;
      /** Set once a connection has been open: the next open is a reconnect. */
      this.everConnected = false;

      this.handlers = new Map(); // type → Set of handlers
      this.subscriptions = new Map(); // key → { channel, ticker }

      this.queue = []; // entries { message }, oldest first
      this.queuedByKey = new Map(); // conflation key → its queue entry
      this.droppedMessages = 0;
      this.tokens = this.options.maxMessagesPerSecond;
      this.tokensAt = now();

      this.pendingUpdates = new Map(); // element → text to show
      this.cache = new Map(); // element → text shown (insertion order = age)

      this.stats = {
        messagesReceived: 0,
        messagesSent: 0,
        updatesApplied: 0,
        reconnects: 0,
        errors: 0,
        lastMessageTime: null,
      };

      this.timers = { reconnect: null, heartbeat: null, pump: null, flush: null, frame: null };
      this.lastHeard = 0;
    }

    // ── connection ────────────────────────────────────────────────────────

    /** Opens the connection (and keeps it open until disconnect()). */
    connect() {
      this.wanted = true;
      if (this.socket && (this.socket.readyState === 0 || this.socket.readyState === 1)) return;
      clearTimeout(this.timers.reconnect);
      this.timers.reconnect = null;
      let socket;
      try {
        socket = new root.WebSocket(this.options.url);
      } catch (error) {
        this.stats.errors += 1;
        console.warn('[ws] cannot open', this.options.url, error);
        this._scheduleReconnect();
        return;
      }
      this.socket = socket;
      socket.onopen = () => this._onOpen(socket);
      socket.onmessage = (event) => this._onMessage(socket, event);
      socket.onerror = () => {
        if (socket === this.socket) this.stats.errors += 1;
      };
      socket.onclose = (event) => this._onClose(socket, event);
    }

    /** Closes the connection for good: no reconnect, every timer cleared. */
    disconnect() {
      this.wanted = false;
      const socket = this.socket;
      this.socket = null;
      this._stopTimers();
      this.queue.length = 0;
      this.queuedByKey.clear();
      this.pendingUpdates.clear();
      const wasConnected = this.connected;
      this.connected = false;
      this.reconnecting = false;
      this.reconnectAttempts = 0;
      if (socket) {
        socket.onmessage = socket.onerror = socket.onclose = null;
        if (socket.readyState === 0) {
          // Closing a socket still connecting makes the browser log an error; close it once open.
          socket.onopen = () => socket.close(1000, 'client disconnect');
        } else {
          socket.onopen = null;
          if (socket.readyState === 1) socket.close(1000, 'client disconnect');
        }
      }
      if (wasConnected) console.info('[ws] disconnected');
      this._emit('close', { code: 1000, reason: 'client disconnect', willReconnect: false });
    }

    _onOpen(socket) {
      if (socket !== this.socket) return;
      const reconnected = this.everConnected;
      this.connected = true;
      this.reconnecting = false;
      this.reconnectAttempts = 0;
      this.everConnected = true;
      if (reconnected) this.stats.reconnects += 1;
      this.lastHeard = now();
      console.info(`[ws] ${reconnected ? 'reconnected' : 'connected'} to ${this.options.url}`);
      for (const { channel, ticker } of this.subscriptions.values()) {
        this._send(ticker ? { type: 'subscribe', channel, ticker } : { type: 'subscribe', channel });
      }
      this._startHeartbeat();
      this._emit('open', { reconnected });
    }

    _onClose(socket, event) {
      if (socket !== this.socket) return;
      this.socket = null;
      const wasConnected = this.connected;
      this.connected = false;
      clearInterval(this.timers.heartbeat);
      this.timers.heartbeat = null;
      if (wasConnected) console.info(`[ws] connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`);
      this._emit('close', { code: event.code, reason: event.reason, willReconnect: this.wanted });
      if (this.wanted) this._scheduleReconnect();
    }

    /** The next attempt, after reconnectDelay × multiplier^attempts (at most maxReconnectDelay), in whole ms. */
    _scheduleReconnect() {
      if (!this.wanted || this.timers.reconnect) return;
      const { reconnectDelay, reconnectBackoffMultiplier, maxReconnectDelay } = this.options;
      const delay = Math.round(
        Math.min(reconnectDelay * Math.pow(reconnectBackoffMultiplier, this.reconnectAttempts), maxReconnectDelay),
      );
      this.reconnectAttempts += 1;
      this.reconnecting = true;
      console.info(`[ws] reconnecting in ${delay} ms (attempt ${this.reconnectAttempts})`);
      this._emit('reconnecting', { attempt: this.reconnectAttempts, delay });
      this.timers.reconnect = setTimeout(() => {
        this.timers.reconnect = null;
        this.connect();
      }, delay);
    }

    /** Pings every heartbeatInterval; a connection silent for two intervals is presumed dead. */
    _startHeartbeat() {
      clearInterval(this.timers.heartbeat);
      const interval = this.options.heartbeatInterval;
      if (!(interval > 0)) return;
      this.timers.heartbeat = setInterval(() => {
        const socket = this.socket;
        if (!socket || !this.connected) return;
        if (now() - this.lastHeard > 2 * interval) {
          console.warn('[ws] no answer to heartbeats; reconnecting');
          socket.close(4000, 'heartbeat timeout');
          return;
        }
        this._send({ type: 'ping' });
      }, interval);
    }

    _send(message) {
      const socket = this.socket;
      if (!socket || socket.readyState !== 1) return false;
      socket.send(JSON.stringify(message));
      this.stats.messagesSent += 1;
      return true;
    }

    // ── subscriptions ─────────────────────────────────────────────────────

    /** Subscribes to `channel` (ticker, patterns, alerts, market_status); kept across reconnects. */
    subscribe(channel, ticker) {
      const normal = normaliseTicker(ticker);
      const key = subscriptionKey(channel, normal);
      this.subscriptions.set(key, { channel, ticker: normal });
      this._send(normal ? { type: 'subscribe', channel, ticker: normal } : { type: 'subscribe', channel });
      return key;
    }

    /** Undoes subscribe(channel, ticker). */
    unsubscribe(channel, ticker) {
      const normal = normaliseTicker(ticker);
      this.subscriptions.delete(subscriptionKey(channel, normal));
      this._send(normal ? { type: 'unsubscribe', channel, ticker: normal } : { type: 'unsubscribe', channel });
    }

    // ── events ────────────────────────────────────────────────────────────

    /**
     * Calls `handler(data)` for every message of `type` (`price_update`,
     * `pattern_alert`, `alert_trigger`, `market_status`, `history`,
     * `subscription`, `connection`, `pong`, `error`), for `*` (every
     * message), or for the lifecycle events `open`, `close`, `reconnecting`.
     * Returns a function that removes the handler.
     */
    on(type, handler) {
      if (!this.handlers.has(type)) this.handlers.set(type, new Set());
      this.handlers.get(type).add(handler);
      return () => this.off(type, handler);
    }

    /** Removes `handler` from `type`, or every handler of `type` when none is given. */
    off(type, handler) {
      const set = this.handlers.get(type);
      if (!set) return;
      if (handler) set.delete(handler);
      if (!handler || set.size === 0) this.handlers.delete(type);
    }

    _emit(type, data) {
      for (const key of [type, '*']) {
        const set = this.handlers.get(key);
        if (!set) continue;
        if (key === '*' && !(data && data.type)) continue; // lifecycle events are not messages
        for (const handler of [...set]) {
          try {
            handler(data);
          } catch (error) {
            this.stats.errors += 1;
            console.error(`[ws] a ${type} handler failed:`, error);
          }
        }
      }
    }

    // ── incoming messages: queue, conflation, throttle ───────────────────

    _onMessage(socket, event) {
      if (socket !== this.socket) return;
      this.stats.messagesReceived += 1;
      this.stats.lastMessageTime = new Date().toISOString();
      this.lastHeard = now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        this.stats.errors += 1;
        console.warn('[ws] a message that is not JSON was ignored');
        return;
      }
      if (!message || typeof message.type !== 'string') return;
      if (message.type === 'error') {
        this.stats.errors += 1;
        console.warn('[ws] server error:', message.message);
      }
      if (DATA_TYPES.has(message.type)) {
        this._enqueue(message);
      } else {
        this._emit(message.type, message);
      }
    }

    /** Queues a data message; a queued price of the same ticker (or market status) is replaced. */
    _enqueue(message) {
      const key =
        message.type === 'price_update' && message.ticker
          ? `price:${message.ticker}`
          : message.type === 'market_status'
            ? 'market_status'
            : null;
      const queued = key && this.queuedByKey.get(key);
      if (queued) {
        queued.message = message; // the latest wins, in the older one's place
      } else {
        while (this.queue.length >= this.options.maxQueueSize) {
          const dropped = this.queue.shift();
          if (dropped.key) this.queuedByKey.delete(dropped.key);
          this.droppedMessages += 1;
        }
        const entry = { key, message };
        this.queue.push(entry);
        if (key) this.queuedByKey.set(key, entry);
      }
      this._pump();
    }

    /** Processes queued messages while the token bucket (maxMessagesPerSecond) allows. */
    _pump() {
      if (this.timers.pump) return;
      const rate = this.options.maxMessagesPerSecond;
      const t = now();
      this.tokens = Math.min(rate, this.tokens + ((t - this.tokensAt) / 1000) * rate);
      this.tokensAt = t;
      while (this.queue.length && this.tokens >= 1) {
        this.tokens -= 1;
        const entry = this.queue.shift();
        if (entry.key) this.queuedByKey.delete(entry.key);
        this._emit(entry.message.type, entry.message);
      }
      if (this.queue.length) {
        const wait = Math.max(1, ((1 - this.tokens) / rate) * 1000);
        this.timers.pump = setTimeout(() => {
          this.timers.pump = null;
          this._pump();
        }, wait);
      }
    }

    // ── DOM updates: change detection and batching ───────────────────────

    /**
     * Shows `value` (through `formatter` when given) as `element`'s text, in
     * the next batch, unless that text is what the element already shows.
     * Returns true when an update was queued.
     */
    updateElementIfChanged(element, value, formatter) {
      if (!element) return false;
      let text;
      try {
        text = formatter ? formatter(value) : value == null ? '' : String(value);
      } catch (error) {
        this.stats.errors += 1;
        console.error('[ws] a formatter failed:', error);
        return false;
      }
      text = String(text);
      if (this.pendingUpdates.has(element)) {
        this.pendingUpdates.set(element, text);
        return true;
      }
      if (this.cache.get(element) === text && element.textContent === text) return false;
      this.pendingUpdates.set(element, text);
      this._scheduleFlush();
      return true;
    }

    _scheduleFlush() {
      if (this.timers.flush || this.timers.frame) return;
      this.timers.flush = setTimeout(() => {
        this.timers.flush = null;
        const raf = root.requestAnimationFrame ? root.requestAnimationFrame.bind(root) : (f) => setTimeout(f, 0);
        this.timers.frame = raf(() => {
          this.timers.frame = null;
          this._flush();
        });
      }, this.options.batchUpdateDelay);
    }

    _flush() {
      for (const [element, text] of this.pendingUpdates) {
        if (element.textContent !== text) {
          element.textContent = text;
          this.stats.updatesApplied += 1;
        }
        this.cache.delete(element); // re-insert: newest last
        this.cache.set(element, text);
      }
      this.pendingUpdates.clear();
      if (this.cache.size > MAX_CACHE_ENTRIES) {
        for (const element of this.cache.keys()) {
          if (element.isConnected === false) this.cache.delete(element);
        }
        for (const element of this.cache.keys()) {
          if (this.cache.size <= MAX_CACHE_ENTRIES) break;
          this.cache.delete(element);
        }
      }
    }

    /** Forgets every remembered element value (the next update of each element is applied). */
    clearCache() {
      this.cache.clear();
    }

    // ── statistics ────────────────────────────────────────────────────────

    /** The seed's statistics, exactly its keys. */
    getStats() {
      return {
        connected: this.connected,
        reconnecting: this.reconnecting,
        reconnectAttempts: this.reconnectAttempts,
        messagesReceived: this.stats.messagesReceived,
        messagesSent: this.stats.messagesSent,
        updatesApplied: this.stats.updatesApplied,
        reconnects: this.stats.reconnects,
        errors: this.stats.errors,
        lastMessageTime: this.stats.lastMessageTime,
        subscriptions: [...this.subscriptions.keys()],
        queueSize: this.queue.length,
        pendingUpdates: this.pendingUpdates.size,
        cacheSize: this.cache.size,
      };
    }

    _stopTimers() {
      clearTimeout(this.timers.reconnect);
      clearInterval(this.timers.heartbeat);
      clearTimeout(this.timers.pump);
      clearTimeout(this.timers.flush);
      if (this.timers.frame && root.cancelAnimationFrame) root.cancelAnimationFrame(this.timers.frame);
      for (const name of Object.keys(this.timers)) this.timers[name] = null;
    }
  }

  WebSocketClient.DEFAULTS = DEFAULTS;
  root.WebSocketClient = WebSocketClient;
  if (typeof module !== 'undefined' && module.exports) module.exports = WebSocketClient;
})(typeof window !== 'undefined' ? window : globalThis);
