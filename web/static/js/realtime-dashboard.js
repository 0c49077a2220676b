/*
 * realtime-dashboard.js — seed 001's dashboard behaviour on top of
 * WebSocketClient (websocket-client.js, loaded first). On page load it
 * creates `window.realtimeDashboard`, connects, and subscribes to the
 * watchlist (every element with `data-ticker` on the page, plus the
 * watchlist kept in localStorage and edited with the add/remove form),
 * patterns, alerts and market_status. It shows prices (flashing up or down
 * on change), pattern alerts, alert triggers, the market status badge, the
 * connection indicator (`#connection-status`: "Live", "Reconnecting…",
 * "Offline") and notifications; plays a short Web Audio tone on alerts when
 * sound is on (a toggle kept in localStorage); and toggleStats() shows the
 * client's getStats() in a panel.
 *
 * Every part is optional: a page without a feed or a form simply lacks it.
 * Values from the network reach the page only through textContent.
 */
(function () {
  'use strict';

  const STORAGE_WATCHLIST = 'roomcast.watchlist';
  const STORAGE_SOUND = 'roomcast.sound';
  const TICKER = /^[A-Z0-9.\-^=/]{1,16}$/;
  const FEED_LIMIT = 50;
  const NOTIFICATION_LIMIT = 4;
  const NOTIFICATION_MS = 6000;
  const STATS_REFRESH_MS = 1000;

  const $ = (id) => document.getElementById(id);

  /** localStorage that tolerates being unavailable (private modes, file: pages). */
  const storage = {
    get(key) {
      try {
        return window.localStorage.getItem(key);
      } catch (_) {
        return null;
      }
    },
    set(key, value) {
      try {
        window.localStorage.setItem(key, value);
      } catch (_) {
        /* not persisted */
      }
    },
  };

  // ── formatting ─────────────────────────────────────────────────────────

  const isNumber = (value) => typeof value === 'number' && Number.isFinite(value);

  function money(value) {
    if (!isNumber(value)) return '—';
    const digits = Math.abs(value) < 1 && value !== 0 ? 4 : 2;
    const text = Math.abs(value).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
    return `${value < 0 ? '-' : ''}$${text}`;
  }

  function signed(value, digits = 2, suffix = '') {
    if (!isNumber(value)) return '—';
    const sign = value > 0 ? '+' : value < 0 ? '-' : '';
    return `${sign}${Math.abs(value).toFixed(digits)}${suffix}`;
  }

  function compact(value) {
    if (!isNumber(value)) return '—';
    const units = [
      [1e12, 'T'],
      [1e9, 'B'],
      [1e6, 'M'],
      [1e3, 'K'],
    ];
    for (const [size, unit] of units) {
      if (Math.abs(value) >= size) return `${(value / size).toFixed(value / size >= 100 ? 0 : 1)}${unit}`;
    }
    return String(Math.round(value));
  }

  function clock(timestamp) {
    const date = timestamp ? new Date(timestamp) : new Date();
    if (Number.isNaN(date.getTime())) return '';
    return date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function dateTime(timestamp) {
    const date = new Date(timestamp);
    if (Number.isNaN(date.getTime())) return '';
    return date.toLocaleString('en-GB', { weekday: 'short', hour: '2-digit', minute: '2-digit' });
  }

  /** A new element with a class and text (never HTML). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  // ── sound ──────────────────────────────────────────────────────────────

  /**
   * Short tones made with the Web Audio API (no audio files). The
   * AudioContext is created on the first click or key press, as browsers
   * allow audio only after a gesture; before that, alerts are silent.
   */
  class Sound {
    constructor() {
      this.enabled = storage.get(STORAGE_SOUND) === 'on';
      this.context = null;
      const unlock = () => this.unlock();
      document.addEventListener('pointerdown', unlock, { once: true, capture: true });
      document.addEventListener('keydown', unlock, { once: true, capture: true });
    }

    unlock() {
      const AudioContext = window.AudioContext || window.webkitAudioContext;
      if (!AudioContext) return;
      if (!this.context) this.context = new AudioContext();
      if (this.context.state === 'suspended') this.context.resume().catch(() => {});
    }

    setEnabled(enabled) {
      this.enabled = enabled;
      storage.set(STORAGE_SOUND, enabled ? 'on' : 'off');
      if (enabled) this.unlock();
    }

    /** Plays `notes` ([frequency Hz, start s, length s]) as soft sine blips. */
    play(notes) {
      const context = this.context;
      if (!this.enabled || !context || context.state !== 'running') return;
      const start = context.currentTime + 0.01;
      for (const [frequency, offset, length] of notes) {
        const oscillator = context.createOscillator();
        const gain = context.createGain();
        oscillator.type = 'sine';
        oscillator.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, start + offset);
        gain.gain.exponentialRampToValueAtTime(0.18, start + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + length);
        oscillator.connect(gain).connect(context.destination);
        oscillator.start(start + offset);
        oscillator.stop(start + offset + length + 0.02);
      }
    }

    /** A rising two-note chime: a pattern was detected. */
    pattern() {
      this.play([
        [660, 0, 0.14],
        [990, 0.12, 0.22],
      ]);
    }

    /** Three quick high notes: an alert fired. */
    alert() {
      this.play([
        [1046, 0, 0.09],
        [1046, 0.12, 0.09],
        [1318, 0.24, 0.18],
      ]);
    }
  }

  // ── the dashboard ──────────────────────────────────────────────────────

  class RealtimeDashboard {
    constructor(options = {}) {
      const userId = options.userId || document.body.dataset.userId || undefined;
      this.ws = new window.WebSocketClient({ userId, ...(options.client || {}) });
      this.sound = new Sound();
      this.watchlist = this._loadWatchlist();
      this.lastPrice = new Map(); // ticker → last price shown (for the flash direction)
      this.counts = { patterns: 0, alerts: 0 };
      this.statsTimer = null;
      this.removers = [];
    }

    /** Connects, subscribes and wires the page. */
    start() {
      const ws = this.ws;
      this.removers.push(
        ws.on('open', (event) => this._onOpen(event)),
        ws.on('close', (event) => this._onClose(event)),
        ws.on('reconnecting', (event) => this._showConnection('reconnecting', event)),
        ws.on('price_update', (message) => this._onPrice(message)),
        ws.on('history', (message) => this._onHistory(message)),
        ws.on('pattern_alert', (message) => this._onPattern(message)),
        ws.on('alert_trigger', (message) => this._onAlert(message)),
        ws.on('market_status', (message) => this._onMarketStatus(message)),
        ws.on('error', (message) => console.warn('[dashboard] server says:', message.message)),
      );
      this._renderWatchlist();
      for (const ticker of this._pageTickers()) ws.subscribe('ticker', ticker);
      ws.subscribe('patterns');
      ws.subscribe('alerts');
      ws.subscribe('market_status');
      this._wireControls();
      this._showConnection('connecting');
      ws.connect();
      window.addEventListener('pagehide', () => ws.disconnect());
      // The network is back: try at once instead of waiting out the backoff.
      window.addEventListener('online', () => {
        if (!ws.connected && ws.wanted) ws.connect();
      });
      window.addEventListener('offline', () => {
        if (!ws.connected) this._showConnection('offline');
      });
      return this;
    }

    /** Adds `ticker` to the watchlist (saved) and subscribes to it. */
    subscribeTicker(ticker) {
      const normal = String(ticker || '').trim().toUpperCase();
      if (!TICKER.test(normal)) throw new Error(`not a ticker: ${ticker}`);
      if (!this.watchlist.includes(normal)) {
        this.watchlist.push(normal);
        this._saveWatchlist();
      }
      this._renderWatchlist();
      this.ws.subscribe('ticker', normal);
      return normal;
    }

    /** Removes `ticker` from the watchlist (saved) and unsubscribes. */
    unsubscribeTicker(ticker) {
      const normal = String(ticker || '').trim().toUpperCase();
      this.watchlist = this.watchlist.filter((t) => t !== normal);
      this._saveWatchlist();
      this._renderWatchlist();
      if (!this._pageTickers().includes(normal)) {
        this.ws.unsubscribe('ticker', normal);
        this.lastPrice.delete(normal);
      }
    }

    /** Shows or hides the statistics panel (getStats(), refreshed every second while shown). */
    toggleStats(show) {
      const panel = $('realtime-stats');
      if (!panel) return false;
      const visible = show === undefined ? panel.hidden : Boolean(show);
      panel.hidden = !visible;
      const button = $('stats-toggle');
      if (button) button.setAttribute('aria-expanded', String(visible));
      clearInterval(this.statsTimer);
      this.statsTimer = null;
      if (visible) {
        this._renderStats();
        this.statsTimer = setInterval(() => this._renderStats(), STATS_REFRESH_MS);
      }
      return visible;
    }

    // ── watchlist ───────────────────────────────────────────────────────

    _loadWatchlist() {
      const saved = storage.get(STORAGE_WATCHLIST);
      if (saved) {
        try {
          const list = JSON.parse(saved);
          if (Array.isArray(list)) return [...new Set(list.map((t) => String(t).toUpperCase()).filter((t) => TICKER.test(t)))];
        } catch (_) {
          /* a damaged entry: fall back to the page's defaults */
        }
      }
      const body = $('watchlist-body');
      return body ? [...body.querySelectorAll('[data-ticker]')].map((row) => row.dataset.ticker.toUpperCase()) : [];
    }

    _saveWatchlist() {
      storage.set(STORAGE_WATCHLIST, JSON.stringify(this.watchlist));
    }

    /** Every ticker shown on the page: the watchlist and any other `data-ticker` element. */
    _pageTickers() {
      const tickers = new Set(this.watchlist);
      for (const node of document.querySelectorAll('[data-ticker]')) {
        const ticker = node.dataset.ticker.trim().toUpperCase();
        if (TICKER.test(ticker)) tickers.add(ticker);
      }
      return [...tickers];
    }

    /** Makes the watchlist table's rows match this.watchlist, in order. */
    _renderWatchlist() {
      const body = $('watchlist-body');
      if (!body) return;
      const rows = new Map([...body.querySelectorAll('tr[data-ticker]')].map((row) => [row.dataset.ticker.toUpperCase(), row]));
      for (const [ticker, row] of rows) {
        if (!this.watchlist.includes(ticker)) row.remove();
      }
      for (const ticker of this.watchlist) {
        const row = rows.get(ticker) || this._newRow(ticker);
        this._addRemoveButton(row, ticker);
        body.appendChild(row); // appending an existing row moves it: the list's order
      }
      const empty = $('watchlist-empty');
      if (empty) empty.hidden = this.watchlist.length > 0;
    }

    _newRow(ticker) {
      const row = el('tr', 'watch-row');
      row.dataset.ticker = ticker;
      row.appendChild(el('th', 'symbol', ticker)).setAttribute('scope', 'row');
      for (const field of ['price', 'change', 'change_percent', 'open', 'high', 'low', 'volume', 'timestamp']) {
        const cell = el('td', field === 'timestamp' ? 'num rt-muted' : 'num');
        cell.dataset.field = field;
        if (field === 'price') cell.appendChild(el('span', 'skeleton'));
        row.appendChild(cell);
      }
      row.appendChild(el('td', 'actions'));
      return row;
    }

    _addRemoveButton(row, ticker) {
      const cell = row.querySelector('.actions');
      if (!cell || cell.querySelector('button')) return;
      const button = el('button', 'rt-icon-button', '×');
      button.type = 'button';
      button.title = `Remove ${ticker} from the watchlist`;
      button.setAttribute('aria-label', `Remove ${ticker}`);
      button.addEventListener('click', () => this.unsubscribeTicker(ticker));
      cell.appendChild(button);
    }

    // ── controls ────────────────────────────────────────────────────────

    _wireControls() {
      const form = $('watchlist-form');
      const input = $('watchlist-input');
      const error = $('watchlist-error');
      if (form && input) {
        form.addEventListener('submit', (event) => {
          event.preventDefault();
          const ticker = input.value.trim().toUpperCase();
          if (!TICKER.test(ticker)) {
            if (error) {
              error.textContent = 'A ticker is 1–16 letters, digits or . - ^ = / (e.g. AMZN, BRK.B, BTC-USD).';
              error.hidden = false;
            }
            return;
          }
          if (error) error.hidden = true;
          this.subscribeTicker(ticker);
          input.value = '';
        });
      }
      const soundButton = $('sound-toggle');
      if (soundButton) {
        const show = () => {
          soundButton.textContent = this.sound.enabled ? 'Sound on' : 'Sound off';
          soundButton.setAttribute('aria-pressed', String(this.sound.enabled));
          soundButton.classList.toggle('is-on', this.sound.enabled);
        };
        soundButton.addEventListener('click', () => {
          this.sound.setEnabled(!this.sound.enabled);
          show();
          if (this.sound.enabled) this.sound.pattern();
        });
        show();
      }
      const statsButton = $('stats-toggle');
      if (statsButton) statsButton.addEventListener('click', () => this.toggleStats());
      const statsClose = $('stats-close');
      if (statsClose) statsClose.addEventListener('click', () => this.toggleStats(false));
    }

    // ── connection indicator ────────────────────────────────────────────

    _onOpen(event) {
      this._showConnection('live');
      if (event.reconnected) this.notify('info', 'Reconnected', 'Live data restored; subscriptions renewed.');
    }

    _onClose(event) {
      if (event.willReconnect) {
        this._showConnection('reconnecting');
      } else {
        this._showConnection('offline');
      }
    }

    /** Sets #connection-status: exactly "Live" when connected. */
    _showConnection(state, detail) {
      const indicator = $('connection-status');
      if (!indicator) return;
      const previous = indicator.dataset.state;
      const text = {
        connecting: 'Connecting…',
        live: 'Live',
        reconnecting: 'Reconnecting…',
        offline: 'Offline',
      }[state];
      indicator.textContent = text;
      indicator.dataset.state = state;
      indicator.className = `connection-status status-${state}`;
      indicator.title =
        state === 'reconnecting' && detail && detail.delay
          ? `Connection lost; attempt ${detail.attempt} in ${(detail.delay / 1000).toFixed(1)} s`
          : state === 'live'
            ? 'Connected: updates arrive as they happen'
            : text;
      if (previous === 'live' && state !== 'live') {
        this.notify('warning', 'Connection lost', 'Reconnecting automatically; prices may be stale.');
      }
    }

    // ── prices ──────────────────────────────────────────────────────────

    _onHistory(message) {
      const last = Array.isArray(message.messages)
        ? message.messages.filter((m) => m && m.type === 'price_update').pop()
        : null;
      if (last) this._onPrice(last, { quiet: true });
    }

    _onPrice(message, { quiet = false } = {}) {
      const ticker = String(message.ticker || '').toUpperCase();
      if (!ticker) return;
      const nodes = document.querySelectorAll(`[data-ticker="${CSS.escape(ticker)}"]`);
      if (!nodes.length) return;
      const previous = this.lastPrice.get(ticker);
      this.lastPrice.set(ticker, message.price);
      const direction = !isNumber(previous) || previous === message.price ? null : message.price > previous ? 'up' : 'down';
      const trend = isNumber(message.change) ? (message.change > 0 ? 'up' : message.change < 0 ? 'down' : 'flat') : 'flat';
      const ws = this.ws;
      const fields = {
        price: () => money(message.price),
        change: () => signed(message.change),
        change_percent: () => signed(message.change_percent, 2, '%'),
        open: () => money(message.open ?? message.open_price),
        high: () => money(message.high),
        low: () => money(message.low),
        volume: () => compact(message.volume),
        timestamp: () => clock(message.timestamp),
      };
      for (const node of nodes) {
        const targets = node.dataset.field ? [node] : node.querySelectorAll('[data-field]');
        for (const target of targets) {
          const format = fields[target.dataset.field];
          if (!format) continue;
          ws.updateElementIfChanged(target, message, format);
          if (target.dataset.field === 'change' || target.dataset.field === 'change_percent') {
            target.classList.toggle('up', trend === 'up');
            target.classList.toggle('down', trend === 'down');
          }
        }
        if (direction && !quiet) this._flash(node, direction);
      }
    }

    /** Restarts the row's up/down flash animation. */
    _flash(node, direction) {
      requestAnimationFrame(() => {
        node.classList.remove('flash-up', 'flash-down');
        void node.offsetWidth; // restart the animation
        node.classList.add(`flash-${direction}`);
      });
    }

    // ── pattern alerts and alert triggers ───────────────────────────────

    _onPattern(message) {
      const feed = $('pattern-feed');
      const ticker = String(message.ticker || '');
      if (feed) {
        const item = el('li', 'feed-item pattern-item pattern-new');
        const head = el('div', 'feed-head');
        head.append(el('span', 'ticker-badge', ticker), el('span', 'pattern-type', message.pattern_type), el('span', 'score', `Score ${isNumber(message.score) ? message.score.toFixed(1) : '—'}`), el('time', 'feed-time', clock(message.timestamp)));
        const levels = el('div', 'levels');
        levels.append(
          this._level('Entry', money(message.entry_price)),
          this._level('Stop', money(message.stop_price)),
          this._level('Target', money(message.target_price)),
          this._level('R:R', isNumber(message.risk_reward_ratio) ? message.risk_reward_ratio.toFixed(2) : '—'),
        );
        item.append(head, levels);
        if (message.message) item.appendChild(el('p', 'feed-message', message.message));
        this._prepend(feed, item);
        this.counts.patterns += 1;
        this._count('patterns-count', this.counts.patterns);
      }
      this.notify('pattern', `${message.pattern_type || 'Pattern'} · ${ticker}`, message.message || `Score ${message.score}`);
      this.sound.pattern();
    }

    _onAlert(message) {
      const feed = $('alert-feed');
      const ticker = String(message.ticker || '');
      if (feed) {
        const item = el('li', 'feed-item alert-item alert-triggered');
        const head = el('div', 'feed-head');
        head.append(el('span', 'ticker-badge', ticker), el('span', 'alert-type', String(message.alert_type || 'alert').replace(/_/g, ' ')), el('time', 'feed-time', clock(message.timestamp)));
        const levels = el('div', 'levels');
        levels.append(this._level('Trigger', money(message.trigger_price)), this._level('Price', money(message.current_price)));
        item.append(head, levels);
        if (message.message) item.appendChild(el('p', 'feed-message', message.message));
        this._prepend(feed, item);
        this.counts.alerts += 1;
        this._count('alerts-count', this.counts.alerts);
      }
      this.notify('alert', `Alert · ${ticker}`, message.message || `${message.alert_type} at ${money(message.current_price)}`);
      this.sound.alert();
    }

    _level(label, value) {
      const node = el('span', 'level');
      node.append(el('span', 'level-label', label), el('span', 'level-value', value));
      return node;
    }

    _prepend(feed, item) {
      feed.prepend(item);
      while (feed.children.length > FEED_LIMIT) feed.lastElementChild.remove();
      const empty = document.querySelector(`[data-empty-for="${feed.id}"]`);
      if (empty) empty.hidden = true;
      item.addEventListener('animationend', () => item.classList.remove('pattern-new', 'alert-triggered'), { once: true });
    }

    _count(id, value) {
      const node = $(id);
      if (node) this.ws.updateElementIfChanged(node, value);
    }

    // ── market status ───────────────────────────────────────────────────

    _onMarketStatus(message) {
      const badge = $('market-status');
      const status = String(message.status || 'unknown').toLowerCase();
      if (badge) {
        const label = { open: 'Market open', closed: 'Market closed', pre_market: 'Pre-market', premarket: 'Pre-market', after_hours: 'After hours', afterhours: 'After hours' }[status] || `Market ${status.replace(/_/g, ' ')}`;
        badge.textContent = label;
        badge.className = `market-status market-${status.replace(/[^a-z_]/g, '')}`;
      }
      const next = $('market-next');
      if (next) {
        const when = message.next_close ? `Closes ${dateTime(message.next_close)}` : message.next_open ? `Opens ${dateTime(message.next_open)}` : '';
        next.textContent = when;
      }
    }

    // ── notifications ───────────────────────────────────────────────────

    /** Shows a toast (kind: info, warning, pattern, alert) that leaves by itself. */
    notify(kind, title, body) {
      const area = $('notifications');
      if (!area) return;
      const toast = el('div', `notification notification-${kind}`);
      toast.setAttribute('role', kind === 'alert' ? 'alert' : 'status');
      const text = el('div', 'notification-text');
      text.append(el('strong', 'notification-title', title), el('span', 'notification-body', body));
      const close = el('button', 'notification-close', '×');
      close.type = 'button';
      close.setAttribute('aria-label', 'Dismiss');
      toast.append(text, close);
      const dismiss = () => {
        clearTimeout(timer);
        toast.classList.add('leaving');
        setTimeout(() => toast.remove(), 250);
      };
      const timer = setTimeout(dismiss, NOTIFICATION_MS);
      close.addEventListener('click', dismiss);
      area.prepend(toast);
      while (area.children.length > NOTIFICATION_LIMIT) area.lastElementChild.remove();
    }

    // ── statistics panel ────────────────────────────────────────────────

    _renderStats() {
      const list = $('stats-list');
      if (!list) return;
      const stats = this.ws.getStats();
      const rows = [];
      for (const [key, value] of Object.entries(stats)) {
        const shown = Array.isArray(value) ? value.join(', ') || '—' : value === null ? '—' : String(value);
        rows.push(el('dt', null, key), el('dd', typeof value === 'boolean' ? `flag-${value}` : null, shown));
      }
      list.replaceChildren(...rows);
    }
  }

  function init() {
    if (window.realtimeDashboard || typeof window.WebSocketClient !== 'function') return;
    window.realtimeDashboard = new RealtimeDashboard().start();
  }

  window.RealtimeDashboard = RealtimeDashboard;
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init, { once: true });
  } else {
    init();
  }
})();
