// Portfolio panel (seed 004's trading stream, over /v1/ws): the account's
// positions and total PnL (room `s004:portfolio`: its latest update greets a
// new subscriber), and the executions and signals as they happen (rooms
// `s004:trades`, `s004:signals`: live only). Empty until something is published.

import { el, fmt, fmtPrice, fmtSigned, fmtTime, direction, replaceChildren } from './dom.js';
import { StreamStatus } from './status.js';
import { resumeNote, gapNote } from './connection.js';

const FEED_ROWS = 40;

/** A neutral trading event's members: `data` (flat seed 004 members), or its nested `data`. */
const members = (event) => (event && typeof event.data === 'object' && event.data !== null ? event.data : {});

export function mountPortfolio(section, client, router) {
  const body = section.querySelector('.panel-body');
  // The account publishes its portfolio every 5 s while it runs; an external
  // system may publish rarely, so a quiet portfolio is "stale", not an error.
  const status = new StreamStatus(section.querySelector('[data-role=state]'), { staleAfter: 30 });
  client.on('state', ({ state, attempt }) => status.setTransport(state, attempt));
  status.setTransport(client.state ?? 'connecting');
  router.claim('s004:', {
    subscribed: (msg) => { const note = resumeNote(msg); if (note) status.note(note); },
    gap: (msg) => status.note(gapNote(msg)),
  });

  const total = el('strong', { 'data-role': 'total-pnl', 'data-dir': 'flat' }, '—');
  const count = el('span', { class: 'muted', 'data-role': 'position-count' }, '');
  const updated = el('span', { class: 'muted small', 'data-role': 'portfolio-time' }, '');
  const positions = el('tbody', { 'data-role': 'position-rows' });
  const emptyPortfolio = el('p', { class: 'empty', 'data-role': 'portfolio-empty' }, 'No portfolio published yet.');
  const executions = el('tbody', { 'data-role': 'execution-rows' });
  const emptyExecutions = el('tr', { class: 'empty-row' }, el('td', { colspan: 5, class: 'empty' }, 'No execution yet.'));
  executions.append(emptyExecutions);
  const signals = el('ul', { class: 'feed compact', 'data-role': 'signal-feed' });
  const noSignal = el('li', { class: 'empty' }, 'No signal yet.');
  signals.append(noSignal);

  replaceChildren(body,
    el('div', { class: 'summary' }, el('span', { class: 'muted' }, 'Total PnL '), total, count, updated),
    emptyPortfolio,
    el('div', { class: 'scroll short' }, el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Symbol'), el('th', { class: 'num' }, 'Qty'), el('th', { class: 'num' }, 'Avg'),
        el('th', { class: 'num' }, 'Mark'), el('th', { class: 'num' }, 'Unrl. PnL'), el('th', { class: 'num' }, '%'))),
      positions)),
    el('h3', {}, 'Executions'),
    el('div', { class: 'scroll short' }, el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Side'), el('th', {}, 'Symbol'), el('th', { class: 'num' }, 'Qty'), el('th', { class: 'num' }, 'Price'))),
      executions)),
    el('h3', {}, 'Signals'),
    el('div', { class: 'scroll tiny' }, signals));

  client.subscribe('s004:portfolio', (event) => {
    if (event?.type !== 'portfolio_update') return;
    const outer = members(event);
    const data = typeof outer.data === 'object' && outer.data !== null ? outer.data : outer;
    const held = data.positions && typeof data.positions === 'object' ? Object.entries(data.positions) : [];
    total.textContent = fmtSigned(data.total_pnl);
    total.dataset.dir = direction(data.total_pnl);
    count.textContent = ` · ${held.length} position${held.length === 1 ? '' : 's'}`;
    updated.textContent = ` · ${fmtTime(event.timestamp)}`;
    emptyPortfolio.hidden = true;
    section.dataset.portfolio = 'published';
    replaceChildren(positions, ...held.map(([symbol, p]) => el('tr', { 'data-symbol': symbol, 'data-dir': direction(p?.unrealized_pnl) },
      el('td', { class: 'symbol' }, symbol),
      el('td', { class: 'num' }, fmt(p?.quantity, 4).replace(/\.?0+$/, '')),
      el('td', { class: 'num' }, fmtPrice(p?.average_price)),
      el('td', { class: 'num' }, fmtPrice(p?.market_price)),
      el('td', { class: 'num pnl' }, fmtSigned(p?.unrealized_pnl)),
      el('td', { class: 'num pnl' }, typeof p?.unrealized_pnl_pct === 'number' ? `${fmtSigned(p.unrealized_pnl_pct)}%` : '—'))));
    if (!held.length) positions.append(el('tr', { class: 'empty-row' }, el('td', { colspan: 6, class: 'empty' }, 'No open position.')));
    status.touch();
  }, { from: 0 });

  client.subscribe('s004:trades', (event, meta) => {
    if (event?.type !== 'trade_executed') return;
    const d = members(event);
    emptyExecutions.remove();
    executions.prepend(el('tr', { 'data-seq': meta?.seq, 'data-symbol': d.symbol, 'data-side': d.side },
      el('td', { class: 'muted' }, fmtTime(event.timestamp ?? d.timestamp)),
      el('td', { class: d.side === 'BUY' ? 'up' : 'down' }, d.side),
      el('td', { class: 'symbol' }, d.symbol),
      el('td', { class: 'num' }, String(d.quantity ?? '—')),
      el('td', { class: 'num' }, fmtPrice(d.price))));
    while (executions.children.length > FEED_ROWS) executions.lastElementChild.remove();
    status.touch();
  });

  client.subscribe('s004:signals', (event, meta) => {
    if (event?.type !== 'signal') return;
    const d = members(event);
    noSignal.remove();
    signals.prepend(el('li', { 'data-seq': meta?.seq, 'data-symbol': d.symbol },
      el('span', { class: `tag ${d.signal_type === 'BUY' ? 'ok' : 'bad'}` }, d.signal_type),
      el('strong', {}, d.symbol),
      el('span', {}, `@ ${fmtPrice(d.price)}`),
      el('span', { class: 'muted grow' }, typeof d.confidence === 'number' ? `confidence ${fmt(d.confidence, 2)}` : ''),
      el('time', { class: 'muted' }, fmtTime(event.timestamp ?? d.timestamp))));
    while (signals.children.length > FEED_ROWS) signals.lastElementChild.remove();
  });
}
