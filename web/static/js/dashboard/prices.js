// Live prices panel: one row per watchlist symbol (room `ticker:SYM`, from
// its retained history on: `from: 0` fills the sparkline at once), with last
// price, change, volume and a sparkline, plus the US market status badge
// (room `market_status`). The watchlist is the user's, kept in localStorage.

import { el, fmtPrice, fmtSigned, fmtVolume, fmtTime, direction, replaceChildren } from './dom.js';
import { sparkline } from './charts.js';
import { StreamStatus } from './status.js';
import { resumeNote, gapNote } from './connection.js';

const WATCHLIST_KEY = 'roomcast.watchlist';
const DEFAULT_WATCHLIST = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'BTC-USD', 'ETH-USD'];
const TICKER = /^[A-Z0-9.\-^=/]{1,16}$/;
const SPARK_POINTS = 120;

function loadWatchlist() {
  try {
    const stored = JSON.parse(localStorage.getItem(WATCHLIST_KEY) ?? 'null');
    if (Array.isArray(stored)) return stored.filter((s) => typeof s === 'string' && TICKER.test(s));
  } catch { /* unreadable: the default */ }
  return [...DEFAULT_WATCHLIST];
}

function saveWatchlist(symbols) {
  try { localStorage.setItem(WATCHLIST_KEY, JSON.stringify(symbols)); } catch { /* storage disabled */ }
}

export function mountPrices(section, client, router, marketChip) {
  const body = section.querySelector('.panel-body');
  const status = new StreamStatus(section.querySelector('[data-role=state]'), { staleAfter: 30 });
  const rows = new Map();
  let symbols = loadWatchlist();

  const input = el('input', { type: 'text', name: 'symbol', placeholder: 'Add symbol (e.g. AMZN)', maxlength: 16, autocomplete: 'off', spellcheck: 'false', 'aria-label': 'symbol to add' });
  const message = el('span', { class: 'form-message', 'data-role': 'watchlist-message' });
  const form = el('form', { class: 'inline-form', 'data-role': 'watchlist-form' }, input, el('button', { type: 'submit' }, 'Add'), message);
  const tbody = el('tbody', { 'data-role': 'price-rows' });
  const table = el('table', { class: 'table prices' },
    el('thead', {}, el('tr', {},
      el('th', {}, 'Symbol'), el('th', { class: 'num' }, 'Last'), el('th', { class: 'num' }, 'Chg'),
      el('th', { class: 'num' }, 'Chg %'), el('th', { class: 'num' }, 'Volume'), el('th', {}, 'Trend'),
      el('th', { class: 'num' }, 'Time'), el('th', {}, ''))),
    tbody);
  const empty = el('p', { class: 'empty', 'data-role': 'watchlist-empty', hidden: symbols.length > 0 }, 'Your watchlist is empty: add a symbol above.');
  replaceChildren(body, form, el('div', { class: 'scroll' }, table), empty);

  client.on('state', ({ state, attempt }) => status.setTransport(state, attempt));
  status.setTransport(client.state ?? 'connecting');
  router.claim('ticker:', {
    subscribed: (msg) => { const note = resumeNote(msg); if (note) status.note(note); },
    gap: (msg) => status.note(gapNote(msg)),
  });
  router.claim('market_status', {});

  function addRow(symbol) {
    const cells = {
      price: el('td', { class: 'num', 'data-field': 'price' }, '—'),
      change: el('td', { class: 'num', 'data-field': 'change' }, '—'),
      percent: el('td', { class: 'num', 'data-field': 'change_percent' }, '—'),
      volume: el('td', { class: 'num', 'data-field': 'volume' }, '—'),
      time: el('td', { class: 'num muted', 'data-field': 'time' }, '—'),
    };
    const canvas = el('canvas', { class: 'spark', width: 90, height: 24 });
    const remove = el('button', { type: 'button', class: 'icon', title: `Remove ${symbol}`, 'aria-label': `Remove ${symbol}` }, '×');
    const tr = el('tr', { 'data-symbol': symbol, 'data-dir': 'flat' },
      el('td', { class: 'symbol' }, symbol), cells.price, cells.change, cells.percent, cells.volume,
      el('td', { class: 'spark-cell' }, canvas), cells.time, el('td', {}, remove));
    remove.addEventListener('click', () => removeSymbol(symbol));
    tbody.append(tr);
    const row = { tr, cells, canvas, history: [], seqs: 0 };
    rows.set(symbol, row);
    client.subscribe(`ticker:${symbol}`, (data, meta) => onPrice(row, data, meta), { from: 0 });
  }

  function onPrice(row, data, meta) {
    if (!data || data.type !== 'price_update') return;
    row.history.push(data.price);
    if (row.history.length > SPARK_POINTS) row.history.splice(0, row.history.length - SPARK_POINTS);
    row.cells.price.textContent = fmtPrice(data.price);
    row.cells.change.textContent = fmtSigned(data.change);
    row.cells.percent.textContent = `${fmtSigned(data.change_percent)}%`;
    row.cells.volume.textContent = fmtVolume(data.volume);
    row.cells.time.textContent = fmtTime(data.timestamp);
    row.tr.dataset.dir = direction(data.change);
    row.tr.dataset.seq = String(meta?.seq ?? '');
    if (!meta?.replayed) {
      row.tr.classList.remove('flash');
      void row.tr.offsetWidth;
      row.tr.classList.add('flash');
    }
    sparkline(row.canvas, row.history);
    status.touch();
  }

  function removeSymbol(symbol) {
    const row = rows.get(symbol);
    if (!row) return;
    client.unsubscribe(`ticker:${symbol}`);
    row.tr.remove();
    rows.delete(symbol);
    symbols = symbols.filter((s) => s !== symbol);
    saveWatchlist(symbols);
    empty.hidden = symbols.length > 0;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const symbol = input.value.trim().toUpperCase();
    message.textContent = '';
    if (!TICKER.test(symbol)) {
      message.textContent = 'A ticker is 1–16 of A–Z 0–9 . - ^ = /';
      return;
    }
    if (rows.has(symbol)) {
      message.textContent = `${symbol} is already on the list`;
      return;
    }
    symbols.push(symbol);
    saveWatchlist(symbols);
    addRow(symbol);
    empty.hidden = true;
    input.value = '';
  });

  for (const symbol of symbols) addRow(symbol);

  client.subscribe('market_status', (data) => {
    if (!data || data.type !== 'market_status') return;
    const open = String(data.status).toLowerCase() === 'open';
    marketChip.dataset.marketStatus = open ? 'open' : 'closed';
    const next = open ? data.next_close : data.next_open;
    marketChip.textContent = `market ${open ? 'open' : 'closed'}`;
    marketChip.title = next ? `${open ? 'closes' : 'opens'} ${new Date(next).toLocaleString()}` : 'US market status';
  }, { from: 0 });
}
