// Alerts panel: the live `alerts` (alert_trigger) and `patterns`
// (pattern_alert) feeds, newest first, from their retained history on; the
// armed alerts (GET /api/alerts) with a delete button each; a form that arms
// one (POST /api/alerts). Those are admin endpoints: the API-key field keeps a
// key for this tab (sessionStorage), and a 401/403 is shown as a refusal.

import { el, fmt, fmtPrice, fmtTime, replaceChildren } from './dom.js';
import { StreamStatus } from './status.js';
import { resumeNote, gapNote } from './connection.js';
import { apiKey, setApiKey, getJson, postJson, deleteJson, HttpError } from './http.js';

const FEED_ROWS = 50;
const REFRESH_MS = 10000;

export function mountAlerts(section, client, router) {
  const body = section.querySelector('.panel-body');
  const status = new StreamStatus(section.querySelector('[data-role=state]'), { staleAfter: null });
  client.on('state', ({ state, attempt }) => status.setTransport(state, attempt));
  status.setTransport(client.state ?? 'connecting');
  for (const room of ['alerts', 'patterns']) {
    router.claim(room, {
      subscribed: (msg) => { const note = resumeNote(msg); if (note) status.note(note); },
      gap: (msg) => status.note(gapNote(msg)),
    });
  }

  // Feeds.
  const triggers = el('ul', { class: 'feed', 'data-role': 'alert-feed' });
  const patterns = el('ul', { class: 'feed', 'data-role': 'pattern-feed' });
  const triggersEmpty = el('li', { class: 'empty' }, 'No alert has fired yet.');
  const patternsEmpty = el('li', { class: 'empty' }, 'No pattern detected yet.');
  triggers.append(triggersEmpty);
  patterns.append(patternsEmpty);

  function prepend(list, placeholder, item) {
    placeholder.remove();
    list.prepend(item);
    while (list.children.length > FEED_ROWS) list.lastElementChild.remove();
  }

  client.subscribe('alerts', (data, meta) => {
    if (!data || data.type !== 'alert_trigger') return;
    prepend(triggers, triggersEmpty, el('li', { 'data-room': 'alerts', 'data-seq': meta?.seq, 'data-ticker': data.ticker },
      el('span', { class: 'tag warn' }, data.alert_type),
      el('strong', {}, data.ticker),
      el('span', {}, `${fmtPrice(data.current_price)} vs ${fmtPrice(data.trigger_price)}`),
      el('span', { class: 'muted grow' }, data.message),
      el('time', { class: 'muted' }, fmtTime(data.timestamp))));
    status.touch();
    if (!meta?.replayed) refresh();
  }, { from: 0 });

  client.subscribe('patterns', (data, meta) => {
    if (!data || data.type !== 'pattern_alert') return;
    prepend(patterns, patternsEmpty, el('li', { 'data-room': 'patterns', 'data-seq': meta?.seq, 'data-ticker': data.ticker },
      el('span', { class: 'tag' }, data.pattern_type),
      el('strong', {}, data.ticker),
      el('span', { title: 'entry / stop / target' }, `${fmtPrice(data.entry_price)} · ${fmtPrice(data.stop_price)} · ${fmtPrice(data.target_price)}`),
      el('span', { class: 'muted', title: 'score · risk/reward' }, `score ${fmt(data.score, 2)} · R ${fmt(data.risk_reward_ratio, 2)}`),
      el('time', { class: 'muted' }, fmtTime(data.timestamp))));
    status.touch();
  }, { from: 0 });

  // Armed alerts.
  const armedBody = el('tbody', { 'data-role': 'armed-rows' });
  const armedNote = el('p', { class: 'muted small', 'data-role': 'armed-note' }, 'Loading armed alerts…');
  const refusal = el('p', { class: 'refusal', 'data-role': 'refusal', hidden: true });

  const ticker = el('input', { type: 'text', name: 'ticker', placeholder: 'Ticker', maxlength: 16, required: true, autocomplete: 'off', spellcheck: 'false', 'aria-label': 'ticker' });
  const kind = el('select', { name: 'alert_type', 'aria-label': 'condition' },
    el('option', { value: 'above' }, 'above'), el('option', { value: 'below' }, 'below'), el('option', { value: 'breakout' }, 'breakout'));
  const price = el('input', { type: 'number', name: 'trigger_price', step: 'any', placeholder: 'Trigger price', required: true, 'aria-label': 'trigger price' });
  const formMessage = el('span', { class: 'form-message', 'data-role': 'arm-message' });
  const form = el('form', { class: 'inline-form', 'data-role': 'arm-form' }, ticker, kind, price, el('button', { type: 'submit' }, 'Arm alert'), formMessage);

  const keyInput = el('input', { type: 'password', name: 'api_key', placeholder: 'API key (this tab only)', autocomplete: 'off', 'aria-label': 'API key', value: apiKey() });
  const keyState = el('span', { class: 'muted small', 'data-role': 'key-state' }, apiKey() ? 'key set' : 'no key (loopback is trusted by default)');
  const keyForm = el('form', { class: 'inline-form key-form', 'data-role': 'key-form' }, keyInput, el('button', { type: 'submit' }, 'Use key'), keyState);

  replaceChildren(body,
    el('div', { class: 'two-col' },
      el('div', {}, el('h3', {}, 'Alert triggers'), el('div', { class: 'scroll short' }, triggers)),
      el('div', {}, el('h3', {}, 'Patterns'), el('div', { class: 'scroll short' }, patterns))),
    el('h3', {}, 'Armed alerts'),
    form,
    refusal,
    el('div', { class: 'scroll short' }, el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Id'), el('th', {}, 'Ticker'), el('th', {}, 'When'), el('th', { class: 'num' }, 'Price'), el('th', {}, 'User'), el('th', {}, ''))),
      armedBody)),
    armedNote,
    keyForm);

  // After a refusal the periodic refresh pauses (each refused request is a
  // console line in the browser) until the user sends a key or acts.
  let refused = false;

  function showRefusal(err) {
    if (err instanceof HttpError && err.refused) {
      refused = true;
      refusal.hidden = false;
      refusal.dataset.status = String(err.status);
      refusal.textContent = err.explain();
      return true;
    }
    return false;
  }

  function clearRefusal() {
    refused = false;
    refusal.hidden = true;
    delete refusal.dataset.status;
    refusal.textContent = '';
  }

  async function refresh() {
    try {
      const { body: page } = await getJson('/api/alerts?limit=200', { admin: true });
      clearRefusal();
      const alerts = Array.isArray(page?.alerts) ? page.alerts : [];
      replaceChildren(armedBody, ...alerts.map((alert) => {
        const remove = el('button', { type: 'button', class: 'icon', title: `Delete alert ${alert.id}`, 'aria-label': `Delete alert ${alert.id}` }, '×');
        remove.addEventListener('click', () => removeAlert(alert.id));
        return el('tr', { 'data-alert-id': alert.id, 'data-ticker': alert.ticker },
          el('td', { class: 'muted' }, alert.id), el('td', { class: 'symbol' }, alert.ticker), el('td', {}, alert.alert_type),
          el('td', { class: 'num' }, fmtPrice(alert.trigger_price)), el('td', { class: 'muted' }, alert.user_id ?? ''), el('td', {}, remove));
      }));
      armedNote.textContent = page?.total > alerts.length ? `${alerts.length} of ${page.total} armed alerts shown`
        : alerts.length ? `${alerts.length} armed` : 'No alert armed.';
    } catch (err) {
      if (!showRefusal(err)) armedNote.textContent = err instanceof HttpError ? err.explain() : String(err);
    }
  }

  async function removeAlert(id) {
    try {
      await deleteJson(`/api/alerts/${encodeURIComponent(id)}`, { admin: true });
      formMessage.textContent = `Alert ${id} deleted`;
    } catch (err) {
      if (!showRefusal(err)) formMessage.textContent = err instanceof HttpError ? err.explain() : String(err);
    }
    refresh();
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    formMessage.textContent = '';
    const value = Number(price.value);
    if (!ticker.value.trim() || !Number.isFinite(value)) {
      formMessage.textContent = 'A ticker and a trigger price are needed';
      return;
    }
    try {
      const { body: answer } = await postJson('/api/alerts', { ticker: ticker.value.trim(), alert_type: kind.value, trigger_price: value }, { admin: true });
      clearRefusal();
      formMessage.textContent = `Armed alert ${answer?.alert?.id ?? ''}`;
      ticker.value = '';
      price.value = '';
    } catch (err) {
      if (!showRefusal(err)) formMessage.textContent = err instanceof HttpError ? err.explain() : String(err);
    }
    refresh();
  });

  keyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    setApiKey(keyInput.value.trim());
    keyState.textContent = apiKey() ? 'key set' : 'no key (loopback is trusted by default)';
    refresh();
  });

  refresh();
  setInterval(() => { if (!refused) refresh(); }, REFRESH_MS);
}
