// Node and fleet panel: this node's readiness (/ready, with its reason — a
// node that is not ready also raises the page banner), its connection and
// message counters (/api/ws/stats), the modeldata feeds (/ws/status), the
// fleet's members when clustered, and the /v1/ws client's own view (node
// from `welcome`, reconnects, gaps). Polled every few seconds.

import { el, fmt, fmtDuration, replaceChildren } from './dom.js';
import { StreamStatus } from './status.js';
import { getJson, HttpError } from './http.js';

const POLL_MS = 5000;

function stat(label, value, key) {
  return [el('dt', {}, label), el('dd', { 'data-stat': key }, value)];
}

export function mountFleet(section, client, banner, nodeChip) {
  const body = section.querySelector('.panel-body');
  // Polled: "live" while polls answer, stale once they have not for 3 polls.
  const status = new StreamStatus(section.querySelector('[data-role=state]'), { staleAfter: (POLL_MS * 3) / 1000 });
  const readiness = el('span', { class: 'tag', 'data-role': 'ready', 'data-ready': 'unknown' }, 'ready?');
  const nodeStats = el('dl', { class: 'stats', 'data-role': 'node-stats' });
  const clientStats = el('dl', { class: 'stats', 'data-role': 'client-stats' });
  const members = el('tbody', { 'data-role': 'fleet-members' });
  const fleetNote = el('p', { class: 'muted small', 'data-role': 'fleet-note' }, 'Embedded node (no fleet).');
  replaceChildren(body,
    el('div', { class: 'summary' }, el('span', { class: 'muted' }, 'Readiness '), readiness),
    el('h3', {}, 'This node'), nodeStats,
    el('h3', {}, 'This page\u2019s stream'), clientStats,
    el('h3', {}, 'Fleet'), fleetNote,
    el('div', { class: 'scroll tiny' }, el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Node'), el('th', { class: 'num' }, 'Connections'), el('th', { class: 'num' }, 'Subscriptions'))),
      members)));

  let failures = 0;
  status.setTransport('connecting');

  function showReady(ready) {
    const ok = ready?.ready === true;
    readiness.dataset.ready = ok ? 'true' : 'false';
    readiness.textContent = ok ? 'ready' : 'not ready';
    readiness.className = `tag ${ok ? 'ok' : 'bad'}`;
    if (ok) {
      banner.hidden = true;
      banner.textContent = '';
      delete banner.dataset.reason;
    } else {
      banner.hidden = false;
      const reason = ready?.reason ?? 'no reason given';
      banner.dataset.reason = reason;
      banner.textContent = `Node not ready: ${reason}. Streams may be stale until it recovers.`;
    }
  }

  function showStats(stats, wsStatus) {
    const tickers = stats?.ticker_subscriptions ? Object.keys(stats.ticker_subscriptions).length : 0;
    replaceChildren(nodeStats,
      ...stat('Connections', fmt(stats?.active_connections, 0), 'active_connections'),
      ...stat('Rooms', fmt(stats?.rooms, 0), 'rooms'),
      ...stat('Tickers watched', fmt(tickers, 0), 'tickers'),
      ...stat('Messages sent', fmt(stats?.messages_sent, 0), 'messages_sent'),
      ...stat('Messages received', fmt(stats?.messages_received, 0), 'messages_received'),
      ...stat('Errors', fmt(stats?.errors, 0), 'errors'),
      ...stat('Uptime', fmtDuration(stats?.uptime), 'uptime'),
      ...stat('Modeldata clients', fmt(wsStatus?.modeldata_stream_connections, 0), 'modeldata_connections'));
    const cluster = stats?.cluster;
    if (cluster && Array.isArray(cluster.members)) {
      fleetNote.textContent = `${cluster.nodes} node${cluster.nodes === 1 ? '' : 's'} · ${fmt(cluster.active_connections, 0)} connections · ${fmt(cluster.subscriptions, 0)} subscriptions`;
      replaceChildren(members, ...cluster.members.map((m) => el('tr', { 'data-node': m.node ?? m.id ?? '' },
        el('td', {}, m.node ?? m.id ?? '—'), el('td', { class: 'num' }, fmt(m.connections, 0)), el('td', { class: 'num' }, fmt(m.subscriptions, 0)))));
    } else if (cluster?.error) {
      fleetNote.textContent = `Fleet unreachable: ${cluster.error}`;
      members.replaceChildren();
    } else {
      fleetNote.textContent = 'Embedded node (no fleet).';
      members.replaceChildren();
    }
  }

  function showClient() {
    const s = client.stats();
    replaceChildren(clientStats,
      ...stat('State', s.state ?? '—', 'client_state'),
      ...stat('Node', s.node ?? client.node ?? '—', 'client_node'),
      ...stat('Reconnects', fmt(s.reconnects, 0), 'reconnects'),
      ...stat('Messages', fmt(s.messagesReceived, 0), 'client_messages'),
      ...stat('Gaps', fmt(s.gaps, 0), 'gaps'),
      ...stat('Rooms', fmt(Object.keys(s.rooms ?? {}).length, 0), 'client_rooms'));
  }

  async function poll() {
    showClient();
    try {
      const [ready, stats, wsStatus] = await Promise.all([
        getJson('/ready', { accept503: true }),
        getJson('/api/ws/stats'),
        getJson('/ws/status').catch(() => ({ body: null })),
      ]);
      showReady(ready.body);
      showStats(stats.body, wsStatus.body);
      failures = 0;
      status.setTransport('open');
      status.touch();
    } catch (err) {
      failures += 1;
      status.setTransport(failures > 1 ? 'reconnecting' : 'open', failures);
      if (err instanceof HttpError && err.status === 0) {
        banner.hidden = false;
        banner.dataset.reason = 'unreachable';
        banner.textContent = 'The node does not answer: every stream below may be stale.';
      }
    }
  }

  client.on('welcome', ({ node }) => {
    nodeChip.textContent = `node ${node ?? '—'}`;
    nodeChip.dataset.node = node ?? '';
    showClient();
  });
  poll();
  setInterval(poll, POLL_MS);
}
