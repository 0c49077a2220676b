// Dashboard DOM helpers: build elements with text content only (never HTML
// from data), and format numbers, prices and times the same way everywhere.

/** Creates `<tag>` with attributes (`class`, `data-*`, …) and children (nodes or text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces every child of `node` with `children`. */
export function replaceChildren(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== undefined && c !== null));
}

/** The element matching `selector` inside `root`; throws when the page lacks it. */
export function $(selector, root = document) {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`dashboard: missing element ${selector}`);
  return found;
}

const numberFormats = new Map();

/** A number with `digits` decimals and thousands separators; '—' when not a finite number. */
export function fmt(value, digits = 2) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  let format = numberFormats.get(digits);
  if (!format) {
    format = new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
    numberFormats.set(digits, format);
  }
  return format.format(value);
}

/** A price: more decimals for small values (crypto pennies, FX). */
export function fmtPrice(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  const magnitude = Math.abs(value);
  return fmt(value, magnitude >= 1000 ? 2 : magnitude >= 1 ? 2 : 4);
}

/** A signed number (`+1.25`, `-0.40`). */
export function fmtSigned(value, digits = 2) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  return (value > 0 ? '+' : '') + fmt(value, digits);
}

/** A volume in K/M/B. */
export function fmtVolume(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  const units = [[1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [size, unit] of units) {
    if (Math.abs(value) >= size) return fmt(value / size, 1) + unit;
  }
  return fmt(value, 0);
}

/** `up`, `down` or `flat`, for colouring a change. */
export function direction(value) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value === 0) return 'flat';
  return value > 0 ? 'up' : 'down';
}

/** The local wall-clock time (HH:MM:SS) of an RFC 3339 timestamp, or of now. */
export function fmtTime(timestamp) {
  const date = timestamp ? new Date(timestamp) : new Date();
  if (Number.isNaN(date.getTime())) return String(timestamp ?? '—');
  return date.toLocaleTimeString('en-GB', { hour12: false });
}

/** A duration in seconds as `42 s`, `3 min`, `2 h 5 min`. */
export function fmtDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Seconds since the epoch of an RFC 3339 timestamp (uPlot's x unit), or null. */
export function epochSeconds(timestamp) {
  const ms = Date.parse(timestamp);
  return Number.isNaN(ms) ? null : ms / 1000;
}
