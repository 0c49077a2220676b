// Stream status of one panel: the badge in its header (`[data-role=state]`,
// with `data-state` = connecting | live | stale | reconnecting | disconnected
// | empty | idle) computed from the transport's state and the time since the
// panel's last message. Every badge is re-rendered once a second, so "stale
// for N s" counts up by itself.

const all = new Set();

/** Seconds since the epoch, now. */
const now = () => Date.now() / 1000;

export class StreamStatus {
  /**
   * @param {HTMLElement} badge the status element of the panel header
   * @param {object} options
   * @param {number|null} options.staleAfter seconds without a message before the stream is stale
   *   (null: the stream is event-driven and never stale while connected)
   */
  constructor(badge, { staleAfter = null } = {}) {
    this.badge = badge;
    this.staleAfter = staleAfter;
    this.transport = 'connecting';
    this.attempt = 0;
    this.openedAt = null;
    this.lastMessageAt = null;
    this.override = null;
    this.detail = '';
    all.add(this);
    this.render();
  }

  /** The transport's state: connecting | open | reconnecting | closed. */
  setTransport(state, attempt = 0) {
    // A new attempt after a drop is still "reconnecting" to the user.
    if (state === 'connecting' && this.openedAt !== null) state = 'reconnecting';
    if (state === 'open' && this.transport !== 'open') this.openedAt = now();
    this.transport = state;
    this.attempt = attempt;
    this.render();
  }

  /** A message of the panel's stream arrived. */
  touch() {
    this.lastMessageAt = now();
    if (this.override?.state === 'stale') this.override = null;
    this.render();
  }

  /** Forces a state (`empty`, `idle`, `stale` with a reason) until cleared. */
  force(state, text) {
    this.override = { state, text };
    this.render();
  }

  /** Back to the computed state. */
  clear() {
    this.override = null;
    this.render();
  }

  /** Extra text shown after the state (`resumed`, `gap 12–15`). */
  note(detail) {
    this.detail = detail;
    this.render();
  }

  /** The state and its words, now. */
  compute() {
    if (this.transport === 'closed') return { state: 'disconnected', text: 'disconnected' };
    if (this.transport === 'reconnecting') {
      return { state: 'reconnecting', text: this.attempt ? `reconnecting (attempt ${this.attempt})` : 'reconnecting' };
    }
    if (this.transport !== 'open') return { state: 'connecting', text: 'connecting' };
    if (this.override) return this.override;
    if (this.staleAfter !== null) {
      const since = this.lastMessageAt ?? this.openedAt ?? now();
      const age = now() - since;
      if (age > this.staleAfter) {
        return { state: 'stale', text: this.lastMessageAt ? `stale for ${Math.round(age)} s` : `no data for ${Math.round(age)} s` };
      }
    }
    return { state: 'live', text: 'live' };
  }

  render() {
    const { state, text } = this.compute();
    if (this.badge.dataset.state !== state) this.badge.dataset.state = state;
    const words = this.detail ? `${text} · ${this.detail}` : text;
    if (this.badge.textContent !== words) this.badge.textContent = words;
  }
}

setInterval(() => { for (const status of all) status.render(); }, 1000);
