//! Seed 001's encoder (`/api/ws`): rooms call it once per publish for their
//! seed 001 members. Seed 001 sends every market event as its canonical JSON
//! (`price_update`, `pattern_alert`, `alert_trigger`, `market_status`), byte
//! for byte as the room encoded it. The session and endpoints are in
//! `src/seeds/seed001/`.

use bytes::Bytes;

use super::Published;
use crate::protocol::Event;

/// Seed 001 frames every market event exactly as its canonical JSON; it
/// carries no other family.
pub fn encode(published: &Published<'_>) -> Option<Bytes> {
    match published.event {
        Event::Market(_) => Some(published.canonical_frame.clone()),
        Event::ModelData(_) | Event::Neutral(_) => None,
    }
}
