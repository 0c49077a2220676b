//! The encoder of `/ws` (seed 002's topics; seed 004's trading stream
//! shares the path): rooms call it once per publish for their `/ws`
//! members. A seed 002 topic's events go out as `{"type","data"}`, the
//! timestamp inside `data` and none at the top, sliced from the event's
//! canonical JSON without re-encoding. The session is in
//! `src/seeds/seed002/`.

use bytes::Bytes;

use super::Published;
use crate::catalog::RoomKind;
use crate::protocol::{Envelope, Event};

/// Frames a topic event in seed 002's envelope; nothing else reaches `/ws` yet.
pub fn encode(published: &Published<'_>) -> Option<Bytes> {
    match (published.event, published.room.kind()) {
        (Event::Neutral(event), RoomKind::Topic) => Some(event.frame(Envelope::Data)),
        _ => None,
    }
}
