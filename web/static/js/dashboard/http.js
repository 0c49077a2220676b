// HTTP for the dashboard: JSON requests to this node, with the admin API key
// (kept in sessionStorage, this tab only) sent as `X-API-Key` when set, and
// refusals turned into errors that say what the node answered.

const KEY_STORAGE = 'roomcast.apiKey';

/** The API key this tab holds, or ''. */
export function apiKey() {
  try { return sessionStorage.getItem(KEY_STORAGE) ?? ''; } catch { return ''; }
}

/** Keeps `key` for this tab ('' forgets it). */
export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch { /* storage disabled: the key lasts until reload */ }
}

/** A non-2xx answer (or no answer: status 0). */
export class HttpError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.body = body;
  }

  /** 401 or 403: the node refused us, not the request. */
  get refused() { return this.status === 401 || this.status === 403; }

  /** Words for the user, saying what to do about a refusal. */
  explain() {
    if (this.status === 401) return `Refused (401): this node needs an API key — ${this.message}`;
    if (this.status === 403) return `Refused (403): closed to your address, no key can help — ${this.message}`;
    if (this.status === 0) return `No answer from the node: ${this.message}`;
    return `Error ${this.status}: ${this.message}`;
  }
}

/**
 * Sends a request and parses the JSON answer. Throws HttpError on a non-2xx
 * status (with the server's `error` text) or a network failure.
 */
export async function request(method, path, body, { admin = false, accept503 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = admin ? apiKey() : '';
  if (key) headers['X-API-Key'] = key;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new HttpError(0, err?.message ?? String(err), null);
  }
  let parsed = null;
  const text = await response.text().catch(() => '');
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (!response.ok && !(accept503 && response.status === 503)) {
    const message = (parsed && typeof parsed.error === 'string') ? parsed.error
      : (parsed && typeof parsed.detail === 'string') ? parsed.detail
        : response.statusText || 'request failed';
    throw new HttpError(response.status, message, parsed);
  }
  return { status: response.status, body: parsed };
}

export const getJson = (path, options) => request('GET', path, undefined, options);
export const postJson = (path, body, options) => request('POST', path, body, options);
export const deleteJson = (path, options) => request('DELETE', path, undefined, options);
