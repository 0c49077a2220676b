//! Seed 000's encoder (`/ws/modeldata-stream`): rooms call it once per
//! publish for their seed 000 members. A feed encodes its messages itself
//! (`initial_modeldata`, `modeldata_update`, `modeldata_status`), so the
//! encoder passes them on byte for byte and carries nothing else. The
//! session and endpoints are in `src/seeds/seed000/`.

use bytes::Bytes;

use super::Published;
use crate::protocol::Event;

/// Seed 000 carries only modeldata messages, exactly as the feed encoded them.
pub fn encode(published: &Published<'_>) -> Option<Bytes> {
    match published.event {
        Event::ModelData(_) => Some(published.canonical_frame.clone()),
        Event::Market(_) | Event::Neutral(_) => None,
    }
}
