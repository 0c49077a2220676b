// The dashboard's one connection to /v1/ws: roomcast's JavaScript client
// (/static/js/roomcast-client.js), loaded at run time so the HTTP panels
// still work if it cannot be. Panels subscribe through it and follow its
// state; `subscribed` and `gap` messages are routed to the panel that owns
// the room, so each can say "resumed" or "gap" in its status.

/** Stands in for the client when its module could not be loaded. */
class UnavailableClient {
  constructor(reason) {
    this.state = 'closed';
    this.node = null;
    this.reason = reason;
  }
  connect() {}
  subscribe() { return null; }
  unsubscribe() {}
  on() { return () => {}; }
  stats() { return { state: 'closed', node: null, reconnects: 0, messagesReceived: 0, gaps: 0, rooms: {} }; }
  close() {}
}

/**
 * Opens the client: resolves to `{ client, error }`; `error` is set (and the
 * client a stand-in that never connects) when the module failed to load.
 */
export async function openClient() {
  let module;
  try {
    module = await import('/static/js/roomcast-client.js');
  } catch (err) {
    return { client: new UnavailableClient(String(err?.message ?? err)), error: err };
  }
  const client = new module.RoomcastClient({ staleAfter: 30000 });
  client.connect();
  return { client, error: null };
}

/**
 * Routes per-room server messages (`subscribed`, `gap`) to whoever claims the
 * room: `claim(prefixOrName, { subscribed(msg), gap(msg) })`.
 */
export class RoomRouter {
  constructor(client) {
    this.claims = [];
    // `subscribed` messages seen per room. Only a later one is a resume: a
    // first subscribe with `from: 0` is answered like a resume too, and its
    // `recovered: false` (reason `trimmed`) only says the oldest history is
    // gone, which is normal.
    this.subscriptions = new Map();
    client.on('subscribed', (msg) => {
      const count = (this.subscriptions.get(msg?.room) ?? 0) + 1;
      this.subscriptions.set(msg?.room, count);
      if (count > 1) this.dispatch('subscribed', msg);
    });
    client.on('gap', (msg) => {
      const resumed = (this.subscriptions.get(msg?.room) ?? 0) > 1;
      if (msg?.reason !== 'trimmed' || resumed) this.dispatch('gap', msg);
    });
  }

  /** `match`: a room name, or a prefix ending in ':'. */
  claim(match, handlers) {
    this.claims.push({ match, handlers });
  }

  dispatch(kind, msg) {
    const room = msg?.room;
    if (typeof room !== 'string') return;
    for (const { match, handlers } of this.claims) {
      const hit = match.endsWith(':') ? room.startsWith(match) : room === match;
      if (hit && typeof handlers[kind] === 'function') handlers[kind](msg);
    }
  }
}

/** Words for a `subscribed` that resumed (`recovered` present), or ''. */
export function resumeNote(msg) {
  if (msg.recovered === true) return 'resumed';
  if (msg.recovered === false) {
    if (msg.gap) return `resumed with gap ${msg.gap.from}–${msg.gap.to}`;
    return 'history restarted';
  }
  return '';
}

/** Words for a `gap` event. */
export function gapNote(msg) {
  if (msg.reason === 'epoch') return 'history restarted';
  const range = msg.from !== undefined ? `${msg.from}–${msg.to}` : (msg.missed ? `${msg.missed.from}–${msg.missed.to}` : '');
  return range ? `gap ${range}` : 'gap';
}
