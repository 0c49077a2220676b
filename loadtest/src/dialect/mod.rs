//! A *dialect* is everything the generator must know about one server's wire
//! protocol, and nothing more: which WebSocket path a subscriber opens, what
//! it sends to join its rooms, which replies confirm the subscription, how a
//! delivered event is recognised (and where its scheduled time is), and how
//! an event is published over HTTP. The connection, ramp, publisher and
//! statistics machinery is shared; adding a protocol (a later seed, roomcast's
//! native protocol) is one small file implementing [`Dialect`].
//!
//! Every published event carries its scheduled send time as an integer of
//! microseconds since the Unix epoch, in a field the server passes through
//! unchanged; [`Dialect::classify`] finds it with a
//! [`FieldScanner`](crate::scan::FieldScanner), never a JSON parser.

pub mod nchan;
pub mod seed001;
pub mod seed004;

use clap::ValueEnum;

/// What one received text frame is, as far as the load test cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// A delivered event; the value is its scheduled send time (µs since the epoch).
    Event(u64),
    /// A confirmation the subscriber waits for before publishing starts
    /// (seed 001: `subscription`, then `history`).
    Confirm,
    /// An error reply (a refused subscribe, throttling): counted and reported.
    Error,
    /// Anything else (connection ack, pong …): ignored.
    Other,
}

/// One server protocol, as seen by a load generator.
pub trait Dialect: Send + Sync {
    /// Short name for the report (`seed001`, `seed001-patterns`, `nchan`).
    fn name(&self) -> &'static str;

    /// Path (with any query) of the WebSocket a subscriber to `rooms` opens,
    /// after the target's prefix.
    fn ws_path(&self, rooms: &[String]) -> String;

    /// The same for connection number `id` (seed 004 names each client
    /// with `?client_id=`); by default [`Dialect::ws_path`].
    fn ws_path_for(&self, _id: usize, rooms: &[String]) -> String {
        self.ws_path(rooms)
    }

    /// The names of `count` rooms for a scenario (`<prefix>0`, `<prefix>1`, …
    /// by default; seed 004's rooms are symbol sets).
    fn room_names(&self, prefix: &str, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("{prefix}{i}")).collect()
    }

    /// Text messages to send right after the handshake to join `rooms`.
    fn subscribe_messages(&self, rooms: &[String]) -> Vec<String>;

    /// How many [`Classified::Confirm`] frames mean that all of `rooms` are joined.
    fn confirmations(&self, rooms: usize) -> usize;

    /// Recognises a received text frame's payload. Called for every frame:
    /// must not allocate or parse JSON.
    fn classify(&self, payload: &[u8]) -> Classified;

    /// The room a published event to `room` is actually delivered in, when the
    /// protocol folds several into one (seed 001's `patterns` stream has a
    /// single room whatever the ticker); the expected-delivery count follows it.
    fn delivery_room(&self, room: usize) -> usize {
        room
    }

    /// Path of the HTTP endpoint that publishes into `room`.
    fn publish_path(&self, room: &str) -> String;

    /// Writes the body of publish number `seq` into `room`, scheduled at
    /// `scheduled_us`, into `out` (cleared by the caller, reused across calls).
    fn write_publish_body(&self, room: &str, seq: u64, scheduled_us: u64, out: &mut Vec<u8>);

    /// Whether the server exposes roomcast's Prometheus `/metrics` (conflation
    /// and slow-consumer counters are read from it when it does).
    fn has_roomcast_metrics(&self) -> bool {
        false
    }
}

/// The `--dialect` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectKind {
    /// roomcast (and the Python service it replaces), seed 001: `/api/ws`,
    /// ticker subscriptions, `POST /api/ws/broadcast/price`.
    Seed001,
    /// nchan (nginx): WebSocket subscribers on `/sub/<room>`, publisher on
    /// `POST /pub/<room>`; subscribers receive the raw published body.
    Nchan,
    /// roomcast, seed 004: `/ws?client_id=lt-<i>`, server-timed
    /// `price_update` batches per symbol set (the `trading` scenario; `idle`
    /// holds such clients; the publishing scenarios do not apply).
    Seed004,
}

/// Builds the dialect for `kind`; `ordered` selects seed 001's ordered
/// `patterns` stream instead of the conflating ticker stream.
pub fn build(kind: DialectKind, ordered: bool) -> anyhow::Result<Box<dyn Dialect>> {
    Ok(match (kind, ordered) {
        (DialectKind::Seed001, false) => Box::new(seed001::Seed001::ticker()),
        (DialectKind::Seed001, true) => Box::new(seed001::Seed001::patterns()),
        (DialectKind::Nchan, false) => Box::new(nchan::Nchan::new()),
        (DialectKind::Seed004, false) => Box::new(seed004::Seed004::new()),
        (DialectKind::Nchan | DialectKind::Seed004, true) => {
            anyhow::bail!("--ordered applies to seed 001's patterns stream only")
        }
    })
}
