//! Wire dialects: how one endpoint parses client messages and frames server
//! messages. The session machinery, rooms, outboxes and the bus are shared;
//! a dialect is a thin adapter over them with two halves:
//!
//! * [`encode`]: turns one published event into the frame its clients expect.
//!   Rooms call it once per dialect present among their members, never per member.
//! * a [`DialectSession`]: the per-connection state machine that reads client
//!   messages and acts through a [`Link`] (send to this session, join or leave
//!   rooms, close) without knowing anything about sockets.
//!
//! Adding a seed protocol means adding a [`DialectKind`] variant, a file here,
//! and a route; nothing in rooms, outbox or session changes.

pub mod echo;
pub mod native;
pub mod seed000;
pub mod seed001;
pub mod seed003;
pub mod ws_root;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::auth::{AuthError, Family};
use crate::catalog::RoomName;
use crate::close_code::CloseCode;
use crate::protocol::Event;

/// The wire protocols roomcast speaks; rooms keep one member set per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialectKind {
    /// Seed 000: `/ws/modeldata-stream` (resampled modeldata series).
    Seed000,
    /// Seed 001: `/api/ws` (tickers, patterns, alerts, market status).
    Seed001,
    /// roomcast's native protocol v1: `/v1/ws` (rooms, seq, resume).
    Native,
    /// The conformance echo endpoint `/v1/echo` (`ROOMCAST_ECHO`); joins no room.
    Echo,
    /// `/ws`: seed 002's topics (and, sharing the path, seed 004's stream).
    Ws,
    /// Seed 003: `/api/ws/stream/…` (backtest runs).
    Seed003,
}

impl DialectKind {
    /// The authentication family of this kind's endpoint ([`crate::auth`]).
    pub fn auth_family(self) -> Family {
        match self {
            DialectKind::Native => Family::Native,
            DialectKind::Seed000 => Family::Seed000,
            DialectKind::Seed001 => Family::Seed001,
            DialectKind::Ws => Family::Ws,
            DialectKind::Seed003 => Family::Seed003,
            DialectKind::Echo => Family::Other,
        }
    }

    /// Number of kinds: the size of a room's per-dialect member table.
    pub const COUNT: usize = 6;

    /// Every kind, indexable by [`DialectKind::index`].
    pub const ALL: [DialectKind; Self::COUNT] = [
        DialectKind::Seed000,
        DialectKind::Seed001,
        DialectKind::Native,
        DialectKind::Echo,
        DialectKind::Ws,
        DialectKind::Seed003,
    ];

    /// Position in a room's per-dialect member table.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            DialectKind::Seed000 => "seed000",
            DialectKind::Seed001 => "seed001",
            DialectKind::Native => "native",
            DialectKind::Echo => "echo",
            DialectKind::Ws => "ws",
            DialectKind::Seed003 => "seed003",
        }
    }
}

/// Whether a complete client message is text or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Opcode 0x1: valid UTF-8.
    Text,
    /// Opcode 0x2: arbitrary bytes.
    Binary,
}

/// One event as a room publishes it: everything a dialect may put on the wire.
#[derive(Debug)]
pub struct Published<'a> {
    /// The room the event was published to.
    pub room: &'a RoomName,
    /// The room's sequence number of this event (1, 2, …).
    pub seq: u64,
    /// The room's epoch: changes when its history is lost.
    pub epoch: u64,
    /// The typed event.
    pub event: &'a Event,
    /// The canonical JSON (seed 001 shape) already framed as a text frame.
    pub canonical_frame: &'a Bytes,
}

/// Encodes a published event for one dialect, or `None` when the dialect does
/// not carry this event. Called once per dialect per publish.
pub fn encode(kind: DialectKind, published: &Published<'_>) -> Option<Bytes> {
    match kind {
        DialectKind::Seed000 => seed000::encode(published),
        DialectKind::Seed001 => seed001::encode(published),
        DialectKind::Native => native::encode(published),
        DialectKind::Ws => ws_root::encode(published),
        DialectKind::Seed003 => seed003::encode(published),
        DialectKind::Echo => None,
    }
}

/// The notice a dialect sends ahead of a live message when the room's
/// members missed events for good (`missed`) or the room's history was lost
/// (`missed` = `None`, new epoch); `None` when the dialect has no such notice.
pub fn encode_gap(
    kind: DialectKind,
    room: &RoomName,
    epoch: u64,
    missed: Option<native::GapInfo>,
) -> Option<Bytes> {
    match kind {
        DialectKind::Native => Some(native::gap_frame(room, epoch, missed)),
        DialectKind::Seed000
        | DialectKind::Seed001
        | DialectKind::Ws
        | DialectKind::Seed003
        | DialectKind::Echo => None,
    }
}

/// Whether a session was already in a room it asked to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// Newly joined; the greeting frames were queued ahead of any live message.
    New,
    /// Already a member; nothing was queued.
    Already,
}

/// Why a session could not join a room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The per-connection subscription cap was reached.
    #[error("subscription limit reached ({0} per connection)")]
    TooManySubscriptions(usize),
    /// The node's room cap was reached.
    #[error("room limit reached on this server")]
    TooManyRooms,
    /// The room is outside the rooms the connection's token grants.
    #[error("not permitted: {0} is outside the token's rooms")]
    Forbidden(String),
}

/// What a joining member is greeted from: the room's lineage, its last
/// `seq`, its retained events `(seq, canonical JSON)`, oldest first, and its
/// snapshot. Each dialect frames what its clients expect: seed 001 its
/// `history`, the native protocol its replay, seed 000 the snapshot (the
/// latest `initial_modeldata`). Snapshot frames are the owning seed's own
/// messages, so other dialects leave them out.
#[derive(Debug, Clone, Copy)]
pub struct Retained<'a> {
    /// The room's epoch.
    pub epoch: u64,
    /// The room's last `seq` (0 before any event).
    pub seq: u64,
    /// Retained events, oldest first.
    pub entries: &'a VecDeque<(u64, Bytes)>,
    /// The room's snapshot frames (set by the events that carry one).
    pub snapshot: &'a [Bytes],
}

impl<'a> Retained<'a> {
    /// The retained payloads, oldest first.
    pub fn payloads(&self) -> impl DoubleEndedIterator<Item = &'a Bytes> + 'a {
        self.entries.iter().map(|(_, payload)| payload)
    }
}

/// Where a resuming client's copy of a room ends: its last `seq` (and the
/// epoch it belongs to, if the client sent one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The last `seq` the client processed.
    pub seq: u64,
    /// Its epoch.
    pub epoch: Option<u64>,
}

/// Builds the frames queued to a session when it joins a room, ahead of any
/// live message. Owned, because a fleet room still loading its history from
/// Redis runs it later, when the history has arrived.
pub type Greeting = Box<dyn FnOnce(&Retained<'_>) -> Vec<Bytes> + Send>;

/// What a dialect may do to its session.
pub trait Link {
    /// Queues a frame to this session only.
    fn send(&mut self, frame: Bytes);
    /// Joins `room`. On a new join, `greet`'s frames are queued atomically with
    /// the membership, so no live message can slip in before them.
    fn join(&mut self, room: RoomName, greet: Greeting) -> Result<Joined, JoinError>;
    /// Joins `room` resuming after `resume` (see [`Link::join`]); the room may
    /// hold the greeting until its copy has caught up with the client.
    fn join_resuming(
        &mut self,
        room: RoomName,
        resume: Resume,
        greet: Greeting,
    ) -> Result<Joined, JoinError> {
        let _ = resume;
        self.join(room, greet)
    }
    /// Leaves `room`; false when the session was not a member.
    fn leave(&mut self, room: &RoomName) -> bool;
    /// How many more rooms the session may join (`ROOMCAST_MAX_SUBSCRIPTIONS`
    /// less those it is in), so a dialect can check a change whole before
    /// making it. Unbounded unless the link caps subscriptions.
    fn free_subscriptions(&self) -> usize {
        usize::MAX
    }
    /// Closes the session after what is queued.
    fn close(&mut self, code: CloseCode);
    /// Replaces the connection's token with `token` before the old one
    /// expires (in-band refresh): the new token must verify and name the same
    /// user; its rooms apply to later joins and its expiry replaces the old.
    /// Returns the new expiry. Unsupported links refuse.
    fn refresh_token(&mut self, token: &str) -> Result<Option<std::time::SystemTime>, AuthError> {
        let _ = token;
        Err(AuthError::Missing)
    }
    /// Arms the session's one-shot timer: [`DialectSession::on_timer`] runs
    /// once, `after` from now, unless the session ends first. Arming again
    /// replaces a pending timer; `None` disarms it. (E.g. a hold window:
    /// close a stream nobody claimed in time.)
    fn set_timer(&mut self, after: Option<Duration>);
}

/// The per-connection half of a dialect.
pub trait DialectSession: Send + 'static {
    /// Which member table of a room this session's frames come from.
    const KIND: DialectKind;

    /// Called once, before any client message: greet the client, auto-join rooms.
    fn on_open(&mut self, link: &mut impl Link);

    /// Handles one complete client message of `kind` (text is valid UTF-8).
    /// `payload` may be parsed in place (simd-json).
    fn on_message(&mut self, link: &mut impl Link, kind: MessageKind, payload: &mut [u8]);

    /// The error frame sent when a message is dropped by the rate limiter.
    fn rate_limited(&mut self, limit_per_sec: u32) -> Bytes;

    /// Before the upgrade: the connection's authenticated user (`None` when
    /// anonymous). A dialect whose clients name a user (seed 001's
    /// `?user_id=`) takes it or refuses a different one (403 with the reason).
    fn authenticated(&mut self, user: Option<&str>) -> Result<(), &'static str> {
        let _ = user;
        Ok(())
    }

    /// The timer armed with [`Link::set_timer`] ran out. Sessions that never
    /// arm one need not implement it.
    fn on_timer(&mut self, link: &mut impl Link) {
        let _ = link;
    }
}
