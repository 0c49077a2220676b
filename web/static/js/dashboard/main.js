// The dashboard at `/`: opens the one /v1/ws client, then mounts every panel
// (prices, alerts, modeldata, backtest, portfolio, node & fleet) into its
// `[data-panel]` section. The connection chip in the top bar follows the
// client's state; a banner says when the client could not be loaded.

import { $ } from './dom.js';
import { openClient, RoomRouter } from './connection.js';
import { mountPrices } from './prices.js';
import { mountAlerts } from './alerts.js';
import { mountModeldata } from './modeldata.js';
import { mountBacktest } from './backtest.js';
import { mountPortfolio } from './portfolio.js';
import { mountFleet } from './fleet.js';

// The client's state → the chip's `data-state` and its word (the same).
const CONNECTION_STATES = { connecting: 'connecting', open: 'live', reconnecting: 'reconnecting', closed: 'disconnected' };

async function main() {
  const { client, error } = await openClient();
  const chip = $('[data-role=connection]');
  let wasOpen = false;
  const showState = (state, attempt) => {
    // A new attempt after a drop is still "reconnecting" to the user.
    if (state === 'open') wasOpen = true;
    if (state === 'connecting' && wasOpen) state = 'reconnecting';
    chip.dataset.state = CONNECTION_STATES[state] ?? state;
    chip.textContent = state === 'reconnecting' && attempt ? `reconnecting (attempt ${attempt})` : (CONNECTION_STATES[state] ?? state);
  };
  client.on('state', ({ state, attempt }) => showState(state, attempt));
  showState(client.state ?? 'connecting');
  if (error) {
    const banner = $('[data-role=client-banner]');
    banner.hidden = false;
    banner.textContent = `The streaming client could not be loaded (${error.message ?? error}): live panels are disconnected.`;
  }
  client.on('error', (err) => {
    // Server error messages about a room are worth a console note, not a crash.
    if (err && err.code) console.warn('roomcast:', err.code, err.message ?? '', err.room ?? '');
  });

  const router = new RoomRouter(client);
  const mounts = [
    ['prices', (s) => mountPrices(s, client, router, $('[data-role=market-status]'))],
    ['alerts', (s) => mountAlerts(s, client, router)],
    ['modeldata', (s) => mountModeldata(s)],
    ['backtest', (s) => mountBacktest(s, client, router)],
    ['portfolio', (s) => mountPortfolio(s, client, router)],
    ['fleet', (s) => mountFleet(s, client, $('[data-role=ready-banner]'), $('[data-role=node]'))],
  ];
  for (const [name, mount] of mounts) {
    const section = $(`[data-panel=${name}]`);
    try {
      mount(section);
      section.dataset.mounted = 'true';
    } catch (err) {
      section.dataset.mounted = 'false';
      console.error(`dashboard: the ${name} panel failed to start`, err);
    }
  }
  // For the browser tests and for curious users: the client, in the console.
  globalThis.roomcastDashboard = { client };
  document.body.dataset.ready = 'true';
}

main();
