// close-child.mjs — run by server.test.mjs as its own process: connects, receives one price,
// calls close(), and prints what it saw. The process must then exit by itself: nothing of the
// client (no timer, no socket) may be left running after close().

// (`node --test clients/js/test/` runs every file of a `test` folder: without the parent's
// ROOMCAST_TICKER this one does nothing.)
if (!process.env.ROOMCAST_TICKER) process.exit(0);

const { RoomcastClient } = await import('../src/roomcast-client.js');
const { WebSocketClass, env, nextEvent, publishPrice, Recorder } = await import('./helpers.mjs');

const ticker = env('ROOMCAST_TICKER');
const client = new RoomcastClient({
  url: env('ROOMCAST_WS_URL'),
  WebSocket: WebSocketClass,
  minReconnectDelay: 20,
  maxReconnectDelay: 200,
});
const states = [];
client.on('state', (s) => states.push(s.state));
const recorder = new Recorder();
const subscribed = nextEvent(client, 'subscribed');
client.connect();
client.subscribe(`ticker:${ticker}`, recorder.handler);
await subscribed;
await publishPrice(env('ROOMCAST_HTTP_URL'), ticker, 42);
await recorder.count(1);
client.close();
const stateAfterClose = client.state;
process.on('exit', () => {
  process.stdout.write(JSON.stringify({ states, stateAfterClose, prices: recorder.messages.map((m) => m.data.price) }));
});
