//! The neutral event of the backtest and trading families: a `type`, the
//! wall-clock time it was published, and a `data` object, encoded once by
//! its producer into one canonical JSON, `{"type":T,"timestamp":TS,"data":D}`.
//! That is what a room's history keeps and the fleet bus carries. Each
//! dialect frames it in its seed's [`Envelope`] by copying those three
//! parts, once per publish and dialect, never per member:
//!
//! * [`Envelope::Stamped`], seed 003's `{type,timestamp,data}`: the
//!   canonical bytes themselves (a replay is zero-copy);
//! * [`Envelope::Data`], seed 002's `{type,data}` (its timestamp sits inside `data`);
//! * [`Envelope::Flat`], seed 004's flat messages: `type`, the data's
//!   members, then `timestamp`.
//!
//! A producer that speaks one of these shapes is read with
//! [`Neutral::parse`], the inverse of [`Neutral::frame`]; what it sent is
//! relayed as sent (values are copied, never re-serialised). An event may
//! carry the frames that replace its room's snapshot; on the fleet bus they
//! travel inside its wire JSON ([`Neutral::wire_json`]).

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::Serialize;

use super::json::{self, JsonError, Members};
use crate::catalog::{Family, RoomName};
use crate::frame;

/// Longest `type` name.
pub const MAX_TYPE_LEN: usize = 64;

/// How a dialect frames a neutral event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// `{"type":T,"timestamp":TS,"data":D}` (seed 003).
    Stamped,
    /// `{"type":T,"data":D}` (seed 002).
    Data,
    /// `{"type":T,<D's members>,"timestamp":TS}` (seed 004's flat messages).
    Flat,
}

/// Why a neutral event could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeutralError {
    /// Not a JSON object.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// `type` is missing, not a string, or not a plain name.
    #[error("'type' must be a name of 1-64 letters, digits, '_', '.' or '-'")]
    BadType,
    /// `timestamp` is not an RFC 3339 string.
    #[error("'timestamp' must be an RFC 3339 timestamp string")]
    BadTimestamp,
    /// `data` is missing or not an object.
    #[error("'data' must be an object")]
    BadData,
    /// The room's events are not neutral ones (a market or modeldata room).
    #[error("room '{0}' does not carry backtest or trading events")]
    WrongFamily(String),
}

/// One event of the backtest or trading family, encoded.
#[derive(Clone, PartialEq)]
pub struct Neutral {
    /// Its room (a run, a topic, a symbol's stream): chosen by the producer.
    room: RoomName,
    /// The canonical JSON as a text frame: what seed 003 members get as is.
    frame: Bytes,
    /// Where the parts sit in `frame`: `type` and `timestamp` as JSON
    /// strings (quotes included), `data` as the object. Every envelope is
    /// assembled from these three slices.
    kind: Range<usize>,
    timestamp: Range<usize>,
    data: Range<usize>,
    /// When set, the frames that replace the room's snapshot (what a new
    /// member is greeted with): the state a late joiner needs.
    snapshot: Option<Vec<Bytes>>,
}

impl fmt::Debug for Neutral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Neutral")
            .field("room", &self.room)
            .field("json", &String::from_utf8_lossy(&self.payload()))
            .field("snapshot", &self.snapshot.as_ref().map(Vec::len))
            .finish()
    }
}

impl Neutral {
    /// Encodes an event of `room`: its `type`, a wire timestamp, and `data`
    /// (anything that serialises to a JSON object).
    pub fn new(
        room: RoomName,
        kind: &str,
        timestamp: &str,
        data: &impl Serialize,
    ) -> Result<Self, NeutralError> {
        check_family(&room)?;
        check_type(kind)?;
        let data = serde_json::to_vec(data).map_err(|e| NeutralError::Malformed(e.to_string()))?;
        let kind = serde_json::to_string(kind).expect("a string serialises");
        let timestamp = serde_json::to_string(timestamp).expect("a string serialises");
        Self::from_parts(room, kind.as_bytes(), timestamp.as_bytes(), &data)
    }

    /// Encodes an event whose `data` is already a JSON object (assembled
    /// from parts encoded once, like a price batch's quotes).
    pub fn from_data_json(
        room: RoomName,
        kind: &str,
        timestamp: &str,
        data: &[u8],
    ) -> Result<Self, NeutralError> {
        check_family(&room)?;
        check_type(kind)?;
        let kind = serde_json::to_string(kind).expect("a string serialises");
        let timestamp = serde_json::to_string(timestamp).expect("a string serialises");
        Self::from_parts(room, kind.as_bytes(), timestamp.as_bytes(), data)
    }

    /// The same event in another room of its family (a symbol's room
    /// beside the "all" room): the encoded bytes are shared, not copied.
    pub fn in_room(&self, room: RoomName) -> Self {
        debug_assert_eq!(room.policy().family, self.room.policy().family);
        Neutral {
            room,
            ..self.clone()
        }
    }

    /// Reads a producer's message in a seed's `envelope`. A missing
    /// `timestamp` is `now`; a present one must be RFC 3339 and is kept as
    /// sent. Members besides the envelope's are ignored, except in the flat
    /// shape, where every other member is the event's data.
    pub fn parse(
        room: RoomName,
        json: &[u8],
        envelope: Envelope,
        now: &str,
    ) -> Result<Self, NeutralError> {
        check_family(&room)?;
        let members = Members::parse(json).map_err(|JsonError(e)| NeutralError::Malformed(e))?;
        let kind = members.get("type").ok_or(NeutralError::BadType)?;
        plain_type(kind)?;
        let now = serde_json::to_string(now).expect("a string serialises");
        let timestamp = match (envelope, members.get("timestamp")) {
            (Envelope::Data, _) | (_, None) => now.as_bytes(),
            (_, Some(ts)) => {
                let text = string_of(ts).ok_or(NeutralError::BadTimestamp)?;
                chrono::DateTime::parse_from_rfc3339(&text)
                    .map_err(|_| NeutralError::BadTimestamp)?;
                ts
            }
        };
        let flat;
        let data = match envelope {
            Envelope::Stamped | Envelope::Data => {
                let data = members.get("data").ok_or(NeutralError::BadData)?;
                if !data.starts_with(b"{") {
                    return Err(NeutralError::BadData);
                }
                data
            }
            Envelope::Flat => {
                flat = members.object_without(&["type", "timestamp"]);
                &flat[..]
            }
        };
        Self::from_parts(room, kind, timestamp, data)
    }

    /// Reads an event another node published ([`Neutral::wire_json`]).
    pub fn from_wire(room: RoomName, json: &[u8]) -> Option<Self> {
        let members = Members::parse(json).ok()?;
        let kind = members.get("type")?;
        let timestamp = members.get("timestamp")?;
        let data = members.get("data")?;
        let snapshot = match members.get("snapshot") {
            Some(frames) => Some(
                json::elements(frames)?
                    .into_iter()
                    .map(frame::text)
                    .collect(),
            ),
            None => None,
        };
        plain_type(kind).ok()?;
        string_of(timestamp)?;
        if !data.starts_with(b"{") {
            return None;
        }
        let event = Self::from_parts(room, kind, timestamp, data).ok()?;
        Some(match snapshot {
            Some(frames) => event.with_snapshot(frames),
            None => event,
        })
    }

    /// Writes the canonical JSON from its three parts (each valid JSON).
    fn from_parts(
        room: RoomName,
        kind: &[u8],
        timestamp: &[u8],
        data: &[u8],
    ) -> Result<Self, NeutralError> {
        if data.first() != Some(&b'{') {
            return Err(NeutralError::BadData);
        }
        // Offsets in the payload, while it is written behind the header room.
        let mut ranges = [0..0, 0..0, 0..0];
        let mut payload_len = 0;
        let frame = frame::text_with(kind.len() + timestamp.len() + data.len() + 32, |buf| {
            let base = buf.len();
            let part = |buf: &mut Vec<u8>, label: &[u8], value: &[u8]| {
                buf.extend_from_slice(label);
                let start = buf.len() - base;
                buf.extend_from_slice(value);
                start..buf.len() - base
            };
            ranges[0] = part(buf, br#"{"type":"#, kind);
            ranges[1] = part(buf, br#","timestamp":"#, timestamp);
            ranges[2] = part(buf, br#","data":"#, data);
            buf.push(b'}');
            payload_len = buf.len() - base;
            Ok::<_, std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        let header = frame.len() - payload_len;
        let [kind, timestamp, data] = ranges.map(|r| r.start + header..r.end + header);
        Ok(Neutral {
            room,
            frame,
            kind,
            timestamp,
            data,
            snapshot: None,
        })
    }

    /// The same event, replacing its room's snapshot with `frames` (JSON
    /// text frames) when published.
    pub fn with_snapshot(mut self, frames: Vec<Bytes>) -> Self {
        self.snapshot = Some(frames);
        self
    }

    /// Its room.
    pub fn room(&self) -> &RoomName {
        &self.room
    }

    /// Its `type`.
    pub fn kind(&self) -> &str {
        let raw = &self.frame[self.kind.clone()];
        // A checked plain name: no escapes between the quotes.
        std::str::from_utf8(&raw[1..raw.len() - 1]).unwrap_or_default()
    }

    /// Its `data` object, as JSON.
    pub fn data(&self) -> Bytes {
        self.frame.slice(self.data.clone())
    }

    /// Its `timestamp`, as a JSON string (quotes included).
    pub fn timestamp_json(&self) -> Bytes {
        self.frame.slice(self.timestamp.clone())
    }

    /// The frames replacing its room's snapshot, if it carries them.
    pub fn snapshot(&self) -> Option<&[Bytes]> {
        self.snapshot.as_deref()
    }

    /// The canonical JSON as a text frame (shared, no copy).
    pub fn canonical_frame(&self) -> &Bytes {
        &self.frame
    }

    fn payload(&self) -> Bytes {
        frame::payload(&self.frame)
    }

    /// The event framed in `envelope`: the canonical frame itself for
    /// [`Envelope::Stamped`], otherwise one copy of its parts.
    pub fn frame(&self, envelope: Envelope) -> Bytes {
        let kind = &self.frame[self.kind.clone()];
        let timestamp = &self.frame[self.timestamp.clone()];
        let data = &self.frame[self.data.clone()];
        let assembled = match envelope {
            Envelope::Stamped => return self.frame.clone(),
            Envelope::Data => frame::text_with(kind.len() + data.len() + 20, |buf| {
                buf.extend_from_slice(br#"{"type":"#);
                buf.extend_from_slice(kind);
                buf.extend_from_slice(br#","data":"#);
                buf.extend_from_slice(data);
                buf.push(b'}');
                Ok::<_, std::convert::Infallible>(())
            }),
            Envelope::Flat => frame::text_with(self.frame.len(), |buf| {
                buf.extend_from_slice(br#"{"type":"#);
                buf.extend_from_slice(kind);
                push_members_except_envelope(buf, data);
                buf.extend_from_slice(br#","timestamp":"#);
                buf.extend_from_slice(timestamp);
                buf.push(b'}');
                Ok(())
            }),
        };
        assembled.unwrap_or_else(|never| match never {})
    }

    /// What the fleet bus carries: the canonical JSON, plus a `snapshot`
    /// member (the snapshot frames' JSON) when the event carries one.
    pub fn wire_json(&self) -> Bytes {
        let payload = self.payload();
        let Some(snapshot) = &self.snapshot else {
            return payload;
        };
        let mut json = Vec::with_capacity(payload.len() + 16);
        json.extend_from_slice(&payload[..payload.len() - 1]);
        json.extend_from_slice(br#","snapshot":["#);
        for (i, frame) in snapshot.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(&frame::payload(frame));
        }
        json.extend_from_slice(b"]}");
        json.into()
    }
}

/// Appends `data`'s members (each after a comma) to a flat message: all of
/// them, copied at once, unless `data` has its own `type` or `timestamp`
/// (a seed 003 `order` has `type: "market"`), which would shadow the
/// envelope's; those are left out.
fn push_members_except_envelope(buf: &mut Vec<u8>, data: &[u8]) {
    let members = data[1..data.len() - 1].trim_ascii();
    if members.is_empty() {
        return;
    }
    // Cheap test first: most data never spells these keys.
    let spells = |quoted: &[u8]| data.windows(quoted.len()).any(|w| w == quoted);
    if !spells(br#""type""#) && !spells(br#""timestamp""#) {
        buf.push(b',');
        buf.extend_from_slice(members);
        return;
    }
    let Ok(parsed) = Members::parse(data) else {
        return;
    };
    for (key, value) in parsed
        .0
        .iter()
        .filter(|(k, _)| k != "type" && k != "timestamp")
    {
        buf.push(b',');
        serde_json::to_writer(&mut *buf, key).expect("a string serialises");
        buf.push(b':');
        buf.extend_from_slice(value);
    }
}

fn check_family(room: &RoomName) -> Result<(), NeutralError> {
    match room.policy().family {
        Family::Backtest | Family::Trading => Ok(()),
        Family::Market | Family::ModelData => {
            Err(NeutralError::WrongFamily(room.as_str().to_string()))
        }
    }
}

fn check_type(kind: &str) -> Result<(), NeutralError> {
    let plain = (1..=MAX_TYPE_LEN).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if plain {
        Ok(())
    } else {
        Err(NeutralError::BadType)
    }
}

/// Checks that a raw JSON value is a string holding a plain type name (so
/// its text is its raw bytes between the quotes: nothing escaped).
fn plain_type(raw: &[u8]) -> Result<(), NeutralError> {
    let inner = raw
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .and_then(|t| std::str::from_utf8(t).ok())
        .ok_or(NeutralError::BadType)?;
    check_type(inner)
}

/// The text of a raw JSON string, or `None` when it is not a string.
fn string_of(raw: &[u8]) -> Option<String> {
    if !raw.starts_with(b"\"") {
        return None;
    }
    serde_json::from_slice(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RoomName {
        RoomName::parse("backtest:bt-1").unwrap()
    }

    fn text(frame: &Bytes) -> String {
        String::from_utf8(frame::payload(frame).to_vec()).unwrap()
    }

    #[test]
    fn one_event_is_framed_in_each_seeds_envelope() {
        let data = serde_json::json!({"backtest_id": "bt-1", "progress": 45.2});
        let event = Neutral::new(run(), "progress", "2026-01-01T00:00:00.000Z", &data).unwrap();
        assert_eq!(
            text(&event.frame(Envelope::Stamped)),
            r#"{"type":"progress","timestamp":"2026-01-01T00:00:00.000Z","data":{"backtest_id":"bt-1","progress":45.2}}"#
        );
        assert_eq!(
            text(&event.frame(Envelope::Data)),
            r#"{"type":"progress","data":{"backtest_id":"bt-1","progress":45.2}}"#
        );
        assert_eq!(
            text(&event.frame(Envelope::Flat)),
            r#"{"type":"progress","backtest_id":"bt-1","progress":45.2,"timestamp":"2026-01-01T00:00:00.000Z"}"#
        );
        assert_eq!(event.kind(), "progress");
        // Seed 003's frame is the canonical one: shared, not copied.
        assert_eq!(
            event.frame(Envelope::Stamped).as_ptr(),
            event.canonical_frame().as_ptr()
        );
        let empty = Neutral::new(run(), "pong", "t", &serde_json::json!({})).unwrap();
        assert_eq!(
            text(&empty.frame(Envelope::Flat)),
            r#"{"type":"pong","timestamp":"t"}"#
        );
    }

    #[test]
    fn a_producers_message_is_read_in_its_envelope_and_framed_back_as_sent() {
        let now = "2026-01-01T00:00:00.000Z";
        let cases: [(Envelope, &str); 3] = [
            (
                Envelope::Stamped,
                r#"{"type":"equity","timestamp":"2024-01-15T08:00:00Z","data":{"equity":1.50,"time":"x"}}"#,
            ),
            (
                Envelope::Data,
                r#"{"type":"log_entry","data":{"level":"INFO","line":245}}"#,
            ),
            (
                Envelope::Flat,
                r#"{"type":"signal","signal_type":"BUY","price":150.10,"timestamp":"2024-01-15T10:30:00Z"}"#,
            ),
        ];
        for (envelope, message) in cases {
            let event = Neutral::parse(run(), message.as_bytes(), envelope, now).unwrap();
            assert_eq!(text(&event.frame(envelope)), message, "{envelope:?}");
        }
        // Seed 002's shape has no top-level timestamp: the canonical one is now.
        let event = Neutral::parse(run(), cases[1].1.as_bytes(), Envelope::Data, now).unwrap();
        assert_eq!(
            &event.timestamp_json()[..],
            br#""2026-01-01T00:00:00.000Z""#
        );
    }

    #[test]
    fn a_flat_frame_never_lets_data_shadow_the_envelopes_type_or_timestamp() {
        let data =
            serde_json::json!({"order_id": "o1", "type": "market", "timestamp": "x", "qty": 1});
        let event = Neutral::new(run(), "order", "2026-01-01T00:00:00.000Z", &data).unwrap();
        let flat: serde_json::Value =
            serde_json::from_slice(&frame::payload(&event.frame(Envelope::Flat))).unwrap();
        assert_eq!(flat["type"], "order");
        assert_eq!(flat["timestamp"], "2026-01-01T00:00:00.000Z");
        assert_eq!(
            (flat["order_id"].as_str(), flat["qty"].as_i64()),
            (Some("o1"), Some(1))
        );
        // The seed 003 frame keeps data whole.
        let stamped: serde_json::Value =
            serde_json::from_slice(&frame::payload(&event.frame(Envelope::Stamped))).unwrap();
        assert_eq!(stamped["data"]["type"], "market");
    }

    #[test]
    fn bad_messages_say_what_is_wrong() {
        let parse = |json: &str, envelope| Neutral::parse(run(), json.as_bytes(), envelope, "t");
        assert!(matches!(
            parse("{oops", Envelope::Flat),
            Err(NeutralError::Malformed(_))
        ));
        assert!(matches!(
            parse("[1]", Envelope::Flat),
            Err(NeutralError::Malformed(_))
        ));
        assert_eq!(
            parse(r#"{"data":{}}"#, Envelope::Data),
            Err(NeutralError::BadType)
        );
        assert_eq!(
            parse(r#"{"type":7,"data":{}}"#, Envelope::Data),
            Err(NeutralError::BadType)
        );
        assert_eq!(
            parse(r#"{"type":"a b","data":{}}"#, Envelope::Data),
            Err(NeutralError::BadType)
        );
        assert_eq!(
            parse(r#"{"type":"x"}"#, Envelope::Stamped),
            Err(NeutralError::BadData)
        );
        assert_eq!(
            parse(r#"{"type":"x","data":[1]}"#, Envelope::Stamped),
            Err(NeutralError::BadData)
        );
        assert_eq!(
            parse(
                r#"{"type":"x","timestamp":"yesterday","data":{}}"#,
                Envelope::Stamped
            ),
            Err(NeutralError::BadTimestamp)
        );
        let market = Neutral::parse(
            RoomName::alerts(),
            br#"{"type":"x","data":{}}"#,
            Envelope::Data,
            "t",
        );
        assert!(matches!(market, Err(NeutralError::WrongFamily(_))));
    }

    #[test]
    fn an_event_and_its_snapshot_survive_the_wire() {
        let state = Neutral::new(run(), "pnl", "t", &serde_json::json!({"equity": 1})).unwrap();
        let event = Neutral::new(run(), "risk", "t", &serde_json::json!({"exposure": 2}))
            .unwrap()
            .with_snapshot(vec![state.canonical_frame().clone()]);
        let back = Neutral::from_wire(run(), &event.wire_json()).unwrap();
        assert_eq!(back, event);
        let plain = Neutral::new(run(), "risk", "t", &serde_json::json!({})).unwrap();
        assert_eq!(
            &plain.wire_json()[..],
            &frame::payload(plain.canonical_frame())[..]
        );
        assert_eq!(Neutral::from_wire(run(), &plain.wire_json()), Some(plain));
        assert_eq!(
            Neutral::from_wire(run(), br#"{"type":"x","data":{}}"#),
            None
        );
    }
}

#[cfg(test)]
mod proptests {
    //! Producers' messages against the envelopes: whatever arrives, parsing
    //! either refuses it or gives an event whose frame in the same envelope
    //! parses back to the same event (so relaying is stable), and every
    //! frame is JSON with the parts where the seed puts them.
    use proptest::prelude::*;

    use super::*;

    fn envelope() -> impl Strategy<Value = Envelope> {
        prop_oneof![
            Just(Envelope::Stamped),
            Just(Envelope::Data),
            Just(Envelope::Flat)
        ]
    }

    /// JSON objects that are often, but not always, a seed's message.
    fn message() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("type".to_string()),
            Just("timestamp".to_string()),
            Just("data".to_string()),
            "[a-z\\\\\"é]{1,6}",
        ];
        let value = prop_oneof![
            Just(r#""progress""#.to_string()),
            Just(r#""2024-01-15T08:00:00Z""#.to_string()),
            Just(r#"{"a":1,"b":[true,null]}"#.to_string()),
            Just("{ }".to_string()),
            "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
            "\"[a-z .:\\\\-]{0,8}\"",
        ];
        prop_oneof![
            prop::collection::vec((key, value), 0..6).prop_map(|members| {
                let body: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn parsing_refuses_or_round_trips_through_its_own_envelope(
            json in message(),
            envelope in envelope(),
        ) {
            let room = RoomName::parse("topic:t").unwrap();
            let Ok(event) = Neutral::parse(room.clone(), json.as_bytes(), envelope, "2026-01-01T00:00:00.000Z") else {
                return Ok(());
            };
            let framed = event.frame(envelope);
            let payload = frame::payload(&framed);
            let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            prop_assert_eq!(value["type"].as_str(), Some(event.kind()));
            let again = Neutral::parse(room.clone(), &payload, envelope, "2026-01-02T00:00:00.000Z").unwrap();
            prop_assert_eq!(again.frame(envelope), framed);
            prop_assert_eq!(again.data(), event.data());
            let wire = Neutral::from_wire(room, &event.wire_json()).unwrap();
            prop_assert_eq!(wire, event);
        }
    }
}
