//! Newtype identifiers used along the data path: a [`SessionId`] names one
//! WebSocket session (the key of room membership and of the session registry),
//! a [`RoomId`] names one room instance inside this process (the conflation key
//! an outbox uses to keep only the latest frame per room).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// One WebSocket session on this node; process-unique, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    /// Allocates the next process-unique session id.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SessionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One room instance in this process. A room that is retired and re-created
/// under the same name gets a new id, so stale conflation slots never alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoomId(pub u64);

impl RoomId {
    /// Not a room: the conflation key of server heartbeat pings, so a session
    /// has at most one ping pending however far behind it is.
    pub const HEARTBEAT: RoomId = RoomId(0);

    /// Allocates the next process-unique room id (never [`RoomId::HEARTBEAT`]).
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        RoomId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}
