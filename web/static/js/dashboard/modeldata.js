// Modeldata panel (seed 000): the AI models' account values over time from
// /ws/modeldata-stream, its own protocol (initial_modeldata, then
// modeldata_update every interval; modeldata_status when the source degrades
// or recovers). Modeldata rooms are served to seed 000 clients only, so this
// is a plain WebSocket with its own reconnect. /ws/status says whether the
// node has a source at all; without one the panel says so.

import { el, fmt, fmtSigned, fmtTime, epochSeconds, direction, replaceChildren } from './dom.js';
import { timeChart, align, PALETTE } from './charts.js';
import { StreamStatus } from './status.js';
import { getJson } from './http.js';

const POINTS = 200;
const MIN_DELAY = 1000;
const MAX_DELAY = 30000;

export function mountModeldata(section) {
  const body = section.querySelector('.panel-body');
  const status = new StreamStatus(section.querySelector('[data-role=state]'), { staleAfter: 60 });
  const chartBox = el('div', { class: 'chart', 'data-role': 'modeldata-chart' });
  const legendBody = el('tbody', { 'data-role': 'modeldata-rows' });
  const notice = el('p', { class: 'empty', 'data-role': 'modeldata-empty', hidden: true });
  const source = el('p', { class: 'muted small', 'data-role': 'modeldata-source' }, 'Source: —');
  replaceChildren(body,
    notice,
    chartBox,
    el('div', { class: 'scroll short' }, el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Model'), el('th', { class: 'num' }, 'Account value'), el('th', { class: 'num' }, 'Return'),
        el('th', { class: 'num' }, 'PnL'), el('th', { class: 'num' }, 'Trades'), el('th', { class: 'num' }, 'Points'), el('th', { class: 'num' }, 'Latest'))),
      legendBody)),
    source);

  let chart = null;
  let chartNames = '';
  let groups = new Map();
  let socket = null;
  let attempt = 0;
  let everOpened = false;

  function showEmpty(text) {
    notice.hidden = false;
    notice.textContent = text;
    chartBox.hidden = true;
    status.force('empty', 'no modeldata source');
  }

  function hideEmpty() {
    notice.hidden = true;
    chartBox.hidden = false;
  }

  function render() {
    const names = [...groups.keys()].sort();
    if (!names.length) {
      showEmpty('No modeldata source: the node streams no model groups.');
      return;
    }
    hideEmpty();
    if (status.override?.state === 'empty') status.clear();
    const key = names.join('\u0000');
    if (!chart || key !== chartNames) {
      chart?.destroy();
      chartBox.replaceChildren();
      chart = timeChart(chartBox, names.map((name, i) => ({ label: name, color: PALETTE[i % PALETTE.length] })), { height: 240 });
      chartNames = key;
    }
    const tables = names.map((name) => {
      const points = groups.get(name).data_points ?? [];
      const xs = [];
      const ys = [];
      for (const p of points) {
        const x = epochSeconds(p.created_at);
        if (x === null) continue;
        xs.push(x);
        ys.push(typeof p.account_value === 'number' ? p.account_value : null);
      }
      return [xs, ys];
    });
    chart?.setData(align(tables));
    replaceChildren(legendBody, ...names.map((name, i) => {
      const group = groups.get(name);
      const points = group.data_points ?? [];
      const last = points[points.length - 1] ?? {};
      return el('tr', { 'data-model': name, 'data-dir': direction(last.total_pnl) },
        el('td', {}, el('span', { class: 'swatch', style: `background:${PALETTE[i % PALETTE.length]}` }), name),
        el('td', { class: 'num' }, fmt(last.account_value, 2)),
        el('td', { class: 'num' }, typeof last.return_value === 'number' ? `${fmtSigned(last.return_value * 100, 2)}%` : '—'),
        el('td', { class: 'num pnl' }, fmtSigned(last.total_pnl, 2)),
        el('td', { class: 'num' }, last.trades ?? '—'),
        el('td', { class: 'num muted' }, group.total_points ?? points.length),
        el('td', { class: 'num muted' }, group.latest_timestamp ? fmtTime(group.latest_timestamp) : '—'));
    }));
  }

  function onMessage(text) {
    let message;
    try { message = JSON.parse(text); } catch { return; }
    switch (message?.type) {
      case 'initial_modeldata':
      case 'modeldata_update': {
        const data = message.data && typeof message.data === 'object' ? message.data : {};
        // An update carries every group; the initial message the first few.
        if (message.type === 'modeldata_update') groups = new Map();
        for (const [name, group] of Object.entries(data)) groups.set(name, group);
        status.touch();
        render();
        break;
      }
      case 'modeldata_status':
        if (message.status === 'degraded') {
          status.force('stale', `source degraded: ${message.error ?? 'unknown error'}`);
        } else {
          status.clear();
        }
        break;
      default:
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/ws/modeldata-stream?points=${POINTS}`);
    status.setTransport(attempt ? 'reconnecting' : 'connecting', attempt);
    socket.addEventListener('open', () => {
      everOpened = true;
      attempt = 0;
      status.setTransport('open');
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data === 'string') onMessage(event.data);
    });
    socket.addEventListener('close', () => {
      socket = null;
      attempt += 1;
      const delay = Math.min(MAX_DELAY, MIN_DELAY * 2 ** Math.min(attempt - 1, 5)) * (0.8 + Math.random() * 0.4);
      status.setTransport(everOpened ? 'reconnecting' : 'closed', attempt);
      setTimeout(connect, delay);
    });
  }

  async function checkSource() {
    try {
      const { body: report } = await getJson('/ws/status');
      const src = report?.modeldata?.source;
      if (!src || !src.source) {
        source.textContent = 'Source: none';
        return false;
      }
      const interval = report?.broadcast_intervals?.modeldata_updates ?? '';
      const seconds = parseInt(interval, 10);
      if (Number.isFinite(seconds) && seconds > 0) status.staleAfter = seconds * 3;
      source.textContent = `Source: ${src.source}${src.healthy ? '' : ' (unhealthy)'} · ${src.groups} groups · ${src.rows} rows`
        + `${interval ? ` · updates every ${interval}` : ''}${src.last_error ? ` · ${src.last_error}` : ''}`;
      return true;
    } catch {
      source.textContent = 'Source: unknown (/ws/status unavailable)';
      return true;
    }
  }

  checkSource().then((present) => {
    if (!present) {
      status.setTransport('open');
      showEmpty('No modeldata source on this node.');
      return;
    }
    connect();
  });
  setInterval(checkSource, 30000);
}
