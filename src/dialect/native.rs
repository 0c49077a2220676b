//! The native protocol's encoder (`/v1/ws`, `docs/protocol-v1.md`): rooms
//! call it once per publish for their native members. A `message` is
//! `{"type":"message","room","seq","epoch","data":<event>}`, the event's
//! canonical JSON spliced in; a `gap` tells members what they missed. The
//! session (subscribe, resume, replay) is in `crate::native`.

use bytes::Bytes;
use serde::Serialize;

use super::Published;
use crate::catalog::RoomName;
use crate::frame;

/// Frames a published event as a v1 `message`: the room, `seq` and `epoch`
/// around the event's canonical JSON (spliced in, not re-serialised).
pub fn encode(published: &Published<'_>) -> Option<Bytes> {
    if !published.room.policy().native {
        return None;
    }
    Some(message_frame(
        published.room,
        published.seq,
        published.epoch,
        &frame::payload(published.canonical_frame),
    ))
}

/// A v1 `message` frame around `data` (canonical JSON): live, or replayed
/// from a room's history by the session.
pub fn message_frame(room: &RoomName, seq: u64, epoch: u64, data: &[u8]) -> Bytes {
    frame::text_with(data.len() + 96, |buf| -> Result<(), serde_json::Error> {
        buf.extend_from_slice(br#"{"type":"message","room":"#);
        serde_json::to_writer(&mut *buf, room.as_str())?;
        buf.extend_from_slice(br#","seq":"#);
        serde_json::to_writer(&mut *buf, &seq)?;
        buf.extend_from_slice(br#","epoch":"#);
        serde_json::to_writer(&mut *buf, &epoch)?;
        buf.extend_from_slice(br#","data":"#);
        buf.extend_from_slice(data);
        buf.push(b'}');
        Ok(())
    })
    .expect("writing JSON into a Vec cannot fail")
}

/// Events a room's members did not get and never will.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GapInfo {
    /// First missing `seq`.
    pub from: u64,
    /// Last missing `seq`.
    pub to: u64,
}

#[derive(Serialize)]
struct GapMessage<'a> {
    r#type: &'static str,
    room: &'a str,
    epoch: u64,
    /// The missing range; absent when the room's history was lost (new epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    missed: Option<GapInfo>,
    /// `lost` (trimmed from the bus) or `epoch` (the lineage restarted).
    reason: &'static str,
}

/// The `gap` frame sent ahead of a live message when events were lost
/// (`missed`), or when the room's lineage restarted (`missed` = `None`).
pub fn gap_frame(room: &RoomName, epoch: u64, missed: Option<GapInfo>) -> Bytes {
    frame::json(&GapMessage {
        r#type: "gap",
        room: room.as_str(),
        epoch,
        missed,
        reason: if missed.is_some() { "lost" } else { "epoch" },
    })
}
