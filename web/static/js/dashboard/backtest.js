// Backtest panel: a launcher for seed 003 runs (POST /api/backtesting/start)
// and the run's live view from room `backtest:<id>` on /v1/ws with `from: 0`
// (the whole run replayed, then live): progress, running metrics, the equity
// curve (uPlot), trades (entry and exit joined by trade_id) and a log built
// from the run's events and its log lines (room `topic:backtest`, live only).
// The last run's id is kept in localStorage, so a reload shows it again.

import { el, fmt, fmtPrice, fmtSigned, fmtTime, epochSeconds, replaceChildren } from './dom.js';
import { timeChart } from './charts.js';
import { StreamStatus } from './status.js';
import { resumeNote, gapNote } from './connection.js';
import { postJson, HttpError } from './http.js';

const LAST_RUN_KEY = 'roomcast.lastBacktest';
const STRATEGIES = ['htf_bias', 'sma_crossover', 'breakout', 'vanilla', 'spiced', 'vanilla_full', 'spiced_full'];
const LOG_LINES = 200;

function field(label, input) {
  return el('label', { class: 'field' }, el('span', {}, label), input);
}

export function mountBacktest(section, client, router) {
  const body = section.querySelector('.panel-body');
  const status = new StreamStatus(section.querySelector('[data-role=state]'), { staleAfter: 30 });
  status.force('idle', 'no run');

  const name = el('input', { type: 'text', name: 'name', value: 'Dashboard run', maxlength: 200, required: true });
  const symbol = el('input', { type: 'text', name: 'symbol', value: 'BTC-USD', maxlength: 16, required: true, spellcheck: 'false' });
  const strategy = el('select', { name: 'strategy' }, ...STRATEGIES.map((s) => el('option', { value: s }, s)));
  const timeframes = el('input', { type: 'text', name: 'timeframes', value: '4H,1H,15M', required: true, spellcheck: 'false' });
  const start = el('input', { type: 'date', name: 'start_date', value: '2024-01-01', required: true });
  const end = el('input', { type: 'date', name: 'end_date', value: '2024-01-31', required: true });
  const capital = el('input', { type: 'number', name: 'initial_capital', value: '10000', min: '1', step: 'any', required: true });
  const launch = el('button', { type: 'submit' }, 'Start backtest');
  const formMessage = el('span', { class: 'form-message', 'data-role': 'backtest-message' });
  const form = el('form', { class: 'launcher', 'data-role': 'backtest-form' },
    field('Name', name), field('Symbol', symbol), field('Strategy', strategy), field('Timeframes', timeframes),
    field('From', start), field('To', end), field('Capital', capital), el('div', { class: 'launch' }, launch, formMessage));

  const runId = el('code', { 'data-role': 'backtest-id' }, '—');
  const runState = el('span', { class: 'tag', 'data-role': 'run-state', 'data-run-state': 'none' }, 'no run');
  const bar = el('div', { class: 'bar-fill' });
  const progressText = el('span', { class: 'muted small' }, '0 %');
  const progress = el('div', { class: 'progress', 'data-role': 'backtest-progress', 'data-progress': '0', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 }, bar);
  const metrics = {
    equity: el('dd', { 'data-metric': 'equity' }, '—'),
    trades: el('dd', { 'data-metric': 'trades' }, '—'),
    winRate: el('dd', { 'data-metric': 'win_rate' }, '—'),
    drawdown: el('dd', { 'data-metric': 'max_drawdown' }, '—'),
    ret: el('dd', { 'data-metric': 'total_return' }, '—'),
    sharpe: el('dd', { 'data-metric': 'sharpe_ratio' }, '—'),
  };
  const chartBox = el('div', { class: 'chart', 'data-role': 'equity-chart' });
  const tradesBody = el('tbody', { 'data-role': 'trade-rows' });
  const log = el('ol', { class: 'log', 'data-role': 'backtest-log' });

  replaceChildren(body,
    form,
    el('div', { class: 'run-head' }, el('span', { class: 'muted' }, 'Run '), runId, runState, progress, progressText),
    el('div', { class: 'backtest-grid' },
      el('div', {},
        el('dl', { class: 'metrics' },
          el('dt', {}, 'Equity'), metrics.equity, el('dt', {}, 'Trades'), metrics.trades, el('dt', {}, 'Win rate'), metrics.winRate,
          el('dt', {}, 'Max DD'), metrics.drawdown, el('dt', {}, 'Return'), metrics.ret, el('dt', {}, 'Sharpe'), metrics.sharpe),
        chartBox),
      el('div', {},
        el('h3', {}, 'Trades'),
        el('div', { class: 'scroll short' }, el('table', { class: 'table' },
          el('thead', {}, el('tr', {}, el('th', {}, 'Trade'), el('th', {}, 'Side'), el('th', { class: 'num' }, 'Entry'), el('th', { class: 'num' }, 'Exit'),
            el('th', { class: 'num' }, 'PnL'), el('th', {}, 'Reason'))),
          tradesBody)),
        el('h3', {}, 'Log'),
        el('div', { class: 'scroll short' }, log))));

  const chart = timeChart(chartBox, [{ label: 'Equity', color: '#58a6ff' }], { height: 180 });
  let current = null;

  function resetView(id) {
    current = { id, room: `backtest:${id}`, xs: [], ys: [], trades: new Map(), ended: false };
    runId.textContent = id;
    setRunState('pending');
    setProgress(0);
    for (const dd of Object.values(metrics)) dd.textContent = '—';
    tradesBody.replaceChildren();
    log.replaceChildren();
    chart?.setData([[], []]);
  }

  function setRunState(state) {
    runState.dataset.runState = state;
    runState.textContent = state;
    runState.className = `tag ${state === 'complete' ? 'ok' : state === 'error' ? 'bad' : ''}`;
  }

  function setProgress(percent) {
    const p = Math.max(0, Math.min(100, Number(percent) || 0));
    bar.style.width = `${p}%`;
    progress.dataset.progress = String(p);
    progress.setAttribute('aria-valuenow', String(p));
    progressText.textContent = `${fmt(p, 1)} %`;
  }

  function addLog(level, text, timestamp) {
    log.append(el('li', { 'data-level': level }, el('time', { class: 'muted' }, fmtTime(timestamp)), el('span', { class: `lvl lvl-${level.toLowerCase()}` }, level), text));
    while (log.children.length > LOG_LINES) log.firstElementChild.remove();
    log.parentElement.scrollTop = log.parentElement.scrollHeight;
  }

  function onTrade(d, timestamp) {
    let row = current.trades.get(d.trade_id);
    if (!row) {
      const cells = {
        side: el('td', {}, d.direction ?? '—'),
        entry: el('td', { class: 'num' }, fmtPrice(d.entry_price)),
        exit: el('td', { class: 'num' }, '—'),
        pnl: el('td', { class: 'num pnl' }, 'open'),
        reason: el('td', { class: 'muted' }, ''),
      };
      const tr = el('tr', { 'data-trade-id': d.trade_id, 'data-dir': 'flat' }, el('td', { class: 'muted' }, d.trade_id), cells.side, cells.entry, cells.exit, cells.pnl, cells.reason);
      tradesBody.prepend(tr);
      row = { tr, cells };
      current.trades.set(d.trade_id, row);
    }
    if (d.event === 'exit') {
      row.cells.exit.textContent = fmtPrice(d.exit_price);
      row.cells.pnl.textContent = fmtSigned(d.pnl);
      row.cells.reason.textContent = d.exit_reason ?? '';
      row.tr.dataset.dir = d.pnl > 0 ? 'up' : d.pnl < 0 ? 'down' : 'flat';
      addLog('TRADE', `${d.trade_id} exit @ ${fmtPrice(d.exit_price)} (${d.exit_reason ?? ''}) PnL ${fmtSigned(d.pnl)}`, timestamp);
    } else {
      addLog('TRADE', `${d.trade_id} ${d.direction ?? ''} entry @ ${fmtPrice(d.entry_price)}${d.reasoning?.rationale ? ` — ${d.reasoning.rationale}` : ''}`, timestamp);
    }
  }

  function onEvent(run, event) {
    if (run !== current || !event || typeof event !== 'object') return;
    status.touch();
    const d = event.data ?? {};
    switch (event.type) {
      case 'progress':
        if (!run.ended) setRunState('running');
        setProgress(d.progress);
        if (d.metrics) {
          metrics.trades.textContent = fmt(d.metrics.total_trades, 0);
          metrics.winRate.textContent = `${fmt((d.metrics.win_rate ?? NaN) * 100, 1)} %`;
          metrics.drawdown.textContent = `${fmt((d.metrics.max_drawdown ?? NaN) * 100, 1)} %`;
        }
        break;
      case 'equity': {
        const x = epochSeconds(d.time);
        if (x !== null && typeof d.equity === 'number') {
          run.xs.push(x);
          run.ys.push(d.equity);
          chart?.setData([run.xs, run.ys]);
        }
        metrics.equity.textContent = fmt(d.equity, 2);
        break;
      }
      case 'trade':
        onTrade(d, event.timestamp);
        break;
      case 'metrics':
        metrics.trades.textContent = fmt(d.total_trades, 0);
        metrics.winRate.textContent = `${fmt((d.win_rate ?? NaN) * 100, 1)} %`;
        metrics.drawdown.textContent = `${fmt((d.max_drawdown ?? NaN) * 100, 1)} %`;
        metrics.sharpe.textContent = fmt(d.sharpe_ratio, 2);
        break;
      case 'complete': {
        run.ended = true;
        setRunState('complete');
        setProgress(100);
        const m = d.metrics ?? {};
        if (typeof m.total_return === 'number') metrics.ret.textContent = `${fmtSigned(m.total_return, 2)} %`;
        if (typeof m.sharpe_ratio === 'number') metrics.sharpe.textContent = fmt(m.sharpe_ratio, 2);
        if (typeof m.total_trades === 'number') metrics.trades.textContent = fmt(m.total_trades, 0);
        addLog('INFO', 'Backtest complete', event.timestamp);
        status.force('idle', 'run complete');
        break;
      }
      case 'error':
        run.ended = true;
        setRunState('error');
        addLog('ERROR', `${d.error ?? 'error'}${d.details ? ` ${JSON.stringify(d.details)}` : ''}`, event.timestamp);
        status.force('idle', 'run ended with an error');
        break;
      default:
        break;
    }
  }

  function watch(id, restored = false) {
    if (current) client.unsubscribe(current.room);
    resetView(id);
    status.clear();
    const run = current;
    run.restored = restored;
    try { localStorage.setItem(LAST_RUN_KEY, id); } catch { /* storage disabled */ }
    client.subscribe(run.room, (event) => onEvent(run, event), { from: 0 });
  }

  router.claim('backtest:', {
    subscribed: (msg) => {
      const note = resumeNote(msg);
      if (note) status.note(note);
      // A run restored from the last visit that the node no longer holds.
      if (current?.restored && msg.room === current.room && msg.seq === 0 && !current.ended) {
        setRunState('expired');
        status.force('idle', 'last run no longer retained');
      }
    },
    gap: (msg) => status.note(gapNote(msg)),
  });
  client.on('state', ({ state, attempt }) => status.setTransport(state, attempt));
  status.setTransport(client.state ?? 'connecting');

  // The runs' log lines (seed 002's topic, live only): those of the run shown.
  client.subscribe('topic:backtest', (event) => {
    if (!current || event?.type !== 'log_entry') return;
    const d = event.data ?? {};
    if (d.backtest_id !== current.id) return;
    addLog(String(d.level ?? 'INFO'), String(d.message ?? ''), d.timestamp ?? event.timestamp);
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    formMessage.textContent = '';
    const frames = timeframes.value.split(',').map((t) => t.trim()).filter(Boolean);
    const request = {
      name: name.value.trim(),
      symbol: symbol.value.trim().toUpperCase(),
      timeframes: frames,
      start_date: start.value,
      end_date: end.value,
      initial_capital: Number(capital.value),
      strategy_ids: [strategy.value],
      risk_per_trade: 0.02,
    };
    launch.disabled = true;
    try {
      const { body: answer } = await postJson('/api/backtesting/start', request, { admin: true });
      if (typeof answer?.backtest_id !== 'string') throw new Error('the node did not name the run');
      formMessage.textContent = `Started ${answer.backtest_id}`;
      watch(answer.backtest_id);
    } catch (err) {
      formMessage.textContent = err instanceof HttpError ? err.explain() : String(err?.message ?? err);
      formMessage.dataset.error = 'true';
    } finally {
      launch.disabled = false;
    }
  });

  let last = null;
  try { last = localStorage.getItem(LAST_RUN_KEY); } catch { last = null; }
  if (last && /^[A-Za-z0-9_.:-]{1,128}$/.test(last)) watch(last, true);
}
