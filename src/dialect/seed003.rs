//! Seed 003's encoder (`/api/ws/stream/…`): every message is
//! `{"type","timestamp","data"}`, which is a neutral event's canonical JSON
//! itself, so a backtest run's events, and the live-trading and
//! market-data streams', go out as the room encoded them, byte for byte,
//! live and in replays. The session and endpoints are in
//! `src/seeds/seed003/`.

use bytes::Bytes;

use super::Published;
use crate::catalog::RoomKind;
use crate::protocol::Event;

/// Frames a seed 003 stream's event as its canonical frame.
pub fn encode(published: &Published<'_>) -> Option<Bytes> {
    match (published.event, published.room.kind()) {
        (
            Event::Neutral(_),
            RoomKind::Backtest | RoomKind::S003Live | RoomKind::S003Account | RoomKind::S003Market,
        ) => Some(published.canonical_frame.clone()),
        _ => None,
    }
}
