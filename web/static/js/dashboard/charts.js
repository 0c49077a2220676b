// Charts: a tiny canvas sparkline for price rows, and uPlot (vendored,
// /static/vendor/uplot, loaded as the global `uPlot`) for the time-series
// panels, sized to their container and styled for the dark theme.

const AXIS = { stroke: '#8b949e', grid: { stroke: 'rgba(139,148,158,0.12)', width: 1 }, ticks: { stroke: 'rgba(139,148,158,0.25)', width: 1 } };

/** A palette for several series. */
export const PALETTE = ['#58a6ff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#39c5cf', '#ff7b72', '#e3b341'];

/** Whether the uPlot library is there (the page still works without charts). */
export const haveUplot = () => typeof globalThis.uPlot === 'function';

/** Draws `values` as a line in `canvas`, green when it ends at or above its start. */
export function sparkline(canvas, values) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 120;
  const height = canvas.clientHeight || 28;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const points = values.filter((v) => Number.isFinite(v));
  if (points.length < 2) return;
  const min = Math.min(...points);
  const max = Math.max(...points);
  const span = max - min || 1;
  const up = points[points.length - 1] >= points[0];
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = up ? '#3fb950' : '#f85149';
  ctx.beginPath();
  points.forEach((v, i) => {
    const x = (i / (points.length - 1)) * (width - 2) + 1;
    const y = height - 2 - ((v - min) / span) * (height - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

/**
 * A uPlot time chart in `container` for `series` ([{label, color}]); returns
 * `{ setData(data), destroy() }` or null without uPlot. `data` is uPlot's
 * aligned form: [xs (epoch seconds), ys1, ys2, …].
 */
export function timeChart(container, series, { height = 220, yLabel = '', money = true } = {}) {
  if (!haveUplot()) {
    container.textContent = 'Charts unavailable (uPlot did not load).';
    return null;
  }
  const width = () => Math.max(200, container.clientWidth || 400);
  const format = (v) => (v === null || v === undefined ? '—'
    : money ? v.toLocaleString('en-US', { maximumFractionDigits: 2 }) : String(v));
  const opts = {
    width: width(),
    height,
    legend: { show: series.length > 1 },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true } },
    axes: [
      { ...AXIS },
      { ...AXIS, label: yLabel, size: 70, values: (u, splits) => splits.map((v) => format(v)) },
    ],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color ?? PALETTE[i % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        fill: series.length === 1 ? 'rgba(88,166,255,0.08)' : undefined,
        value: (u, v) => format(v),
      })),
    ],
  };
  const empty = [[], ...series.map(() => [])];
  const plot = new globalThis.uPlot(opts, empty, container);
  const observer = new ResizeObserver(() => plot.setSize({ width: width(), height }));
  observer.observe(container);
  return {
    setData(data) { plot.setData(data); },
    destroy() { observer.disconnect(); plot.destroy(); },
  };
}

/** Aligns several [xs, ys] tables on one x axis (uPlot.join), nulls where a series has no point. */
export function align(tables) {
  if (!tables.length) return [[]];
  if (haveUplot() && typeof globalThis.uPlot.join === 'function') return globalThis.uPlot.join(tables);
  return tables[0];
}
