//! The encoder of `/ws`, the path seeds 002 and 004 share: rooms call it
//! once per publish for their `/ws` members. A seed 002 topic's events go
//! out as `{"type","data"}` (the timestamp inside `data`, none at the top);
//! seed 004's trading events flat, `{"type",…members…,"timestamp"}`. Both
//! are sliced from the event's canonical JSON without re-encoding. The
//! session is in `src/seeds/seed002/`, seed 004's channels in
//! `src/seeds/seed004/`.

use bytes::Bytes;

use super::Published;
use crate::catalog::RoomKind;
use crate::protocol::{Envelope, Event};

/// Frames a topic event in seed 002's envelope and a trading event in seed
/// 004's; nothing else reaches `/ws`.
pub fn encode(published: &Published<'_>) -> Option<Bytes> {
    let Event::Neutral(event) = published.event else {
        return None;
    };
    match published.room.kind() {
        RoomKind::Topic => Some(event.frame(Envelope::Data)),
        RoomKind::S004Prices
        | RoomKind::S004Signals
        | RoomKind::S004Trades
        | RoomKind::S004Portfolio => Some(event.frame(Envelope::Flat)),
        RoomKind::Ticker
        | RoomKind::Patterns
        | RoomKind::Alerts
        | RoomKind::MarketStatus
        | RoomKind::ModelData
        | RoomKind::Backtest
        | RoomKind::S003Live
        | RoomKind::S003Account
        | RoomKind::S003Market => None,
    }
}
