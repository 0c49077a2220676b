//! Seed 000's wire shapes: resampled `modeldata` series grouped by
//! `display_name`, as `initial_modeldata` / `modeldata_update` messages, plus
//! roomcast's `modeldata_status` (database degraded / recovered).
//!
//! A snapshot is encoded once per interval per option set: each group's JSON
//! is written once into one buffer, and the two messages a room needs (the
//! update with every group, and the `initial_modeldata` a new member gets,
//! with the first five) are assembled from those fragments by copying bytes,
//! never by serialising a group twice.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::catalog::RoomName;
use crate::frame;
use crate::protocol::{Event, ModelDataFrame};

/// Groups in the `initial_modeldata` message sent on connect (seed 000).
pub const INITIAL_GROUPS: usize = 5;

/// One row of the `modeldata` table as sent on the wire. Numeric columns are
/// nullable in users' tables, so every value may be `null`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The row's `id`.
    pub id: i64,
    pub account_value: Option<f64>,
    pub return_value: Option<f64>,
    pub total_pnl: Option<f64>,
    pub fees: Option<f64>,
    pub trades: Option<i64>,
    /// `created_at` in microseconds since the Unix epoch (UTC).
    pub created_at: i64,
}

/// One group's resampled series.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSeries {
    /// The group's `display_name`.
    pub display_name: Arc<str>,
    /// The sampled rows, ordered by `created_at`; the last is the group's latest row.
    pub points: Vec<Point>,
}

/// Formats epoch microseconds as a wire timestamp (`2025-10-24T10:00:00.000Z`).
pub fn format_micros(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Serialize)]
struct WirePoint<'a> {
    id: i64,
    display_name: &'a str,
    account_value: Option<f64>,
    return_value: Option<f64>,
    total_pnl: Option<f64>,
    fees: Option<f64>,
    trades: Option<i64>,
    created_at: String,
}

/// Both messages of one snapshot, as WebSocket text frames.
#[derive(Debug, Clone)]
pub struct EncodedSnapshot {
    /// `modeldata_update` with every group.
    pub update: Bytes,
    /// `initial_modeldata` with the first [`INITIAL_GROUPS`] groups.
    pub initial: Bytes,
    /// Groups in the snapshot.
    pub total_groups: usize,
}

/// Encodes a snapshot (groups ordered by `display_name`) taken at `timestamp`.
pub fn encode_snapshot(groups: &[GroupSeries], timestamp: &str) -> EncodedSnapshot {
    // Each group's `"name":{…}` member, written once into one buffer.
    let mut body = Vec::with_capacity(groups.iter().map(|g| g.points.len() * 230 + 128).sum());
    let mut spans: Vec<Range<usize>> = Vec::with_capacity(groups.len());
    for group in groups {
        let start = body.len();
        write_group(&mut body, group);
        spans.push(start..body.len());
    }
    let update = assemble("modeldata_update", timestamp, &body, &spans);
    let initial = assemble(
        "initial_modeldata",
        timestamp,
        &body,
        &spans[..spans.len().min(INITIAL_GROUPS)],
    );
    EncodedSnapshot {
        update,
        initial,
        total_groups: groups.len(),
    }
}

fn write_group(buf: &mut Vec<u8>, group: &GroupSeries) {
    let name = &*group.display_name;
    write(buf, name);
    buf.extend_from_slice(br#":{"display_name":"#);
    write(buf, name);
    buf.extend_from_slice(br#","data_points":["#);
    for (i, p) in group.points.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let wire = WirePoint {
            id: p.id,
            display_name: name,
            account_value: p.account_value.filter(|v| v.is_finite()),
            return_value: p.return_value.filter(|v| v.is_finite()),
            total_pnl: p.total_pnl.filter(|v| v.is_finite()),
            fees: p.fees.filter(|v| v.is_finite()),
            trades: p.trades,
            created_at: format_micros(p.created_at),
        };
        write(buf, &wire);
    }
    buf.extend_from_slice(br#"],"total_points":"#);
    write(buf, &group.points.len());
    buf.extend_from_slice(br#","latest_timestamp":"#);
    let latest = group.points.last().map(|p| format_micros(p.created_at));
    write(buf, &latest);
    buf.push(b'}');
}

fn assemble(kind: &str, timestamp: &str, body: &[u8], spans: &[Range<usize>]) -> Bytes {
    let len: usize = spans.iter().map(|s| s.len() + 1).sum();
    frame::text_with(len + 128, |buf| -> Result<(), serde_json::Error> {
        buf.extend_from_slice(br#"{"type":"#);
        serde_json::to_writer(&mut *buf, kind)?;
        buf.extend_from_slice(br#","timestamp":"#);
        serde_json::to_writer(&mut *buf, timestamp)?;
        buf.extend_from_slice(br#","total_groups":"#);
        serde_json::to_writer(&mut *buf, &spans.len())?;
        buf.extend_from_slice(br#","data":{"#);
        for (i, span) in spans.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(&body[span.clone()]);
        }
        buf.extend_from_slice(b"}}");
        Ok(())
    })
    .expect("writing JSON into a Vec cannot fail")
}

/// Appends `value` as JSON; our values (strings, numbers, options) cannot fail.
fn write<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(buf, value).expect("writing JSON into a Vec cannot fail");
}

#[derive(serde::Deserialize)]
struct WireMessage {
    r#type: String,
    #[serde(default)]
    timestamp: String,
    #[serde(default)]
    data: std::collections::BTreeMap<String, WireGroup>,
}

#[derive(serde::Deserialize)]
struct WireGroup {
    data_points: Vec<WireIn>,
}

#[derive(serde::Deserialize)]
struct WireIn {
    id: i64,
    account_value: Option<f64>,
    return_value: Option<f64>,
    total_pnl: Option<f64>,
    fees: Option<f64>,
    trades: Option<i64>,
    created_at: String,
}

/// Rebuilds the event of a modeldata message received from another node
/// (fleet mode): a `modeldata_update` also yields the `initial_modeldata`
/// new members need, re-encoded exactly as the sampling node would have.
pub fn event_from_wire(room: RoomName, json: &[u8]) -> Option<Event> {
    let message: WireMessage = serde_json::from_slice(json).ok()?;
    let frame = frame::text(json);
    let (first, snapshot) = match message.r#type.as_str() {
        "modeldata_update" => {
            let groups: Vec<GroupSeries> = message
                .data
                .into_iter()
                .map(|(name, group)| GroupSeries {
                    display_name: name.into(),
                    points: group
                        .data_points
                        .into_iter()
                        .map(|p| Point {
                            id: p.id,
                            account_value: p.account_value,
                            return_value: p.return_value,
                            total_pnl: p.total_pnl,
                            fees: p.fees,
                            trades: p.trades,
                            created_at: DateTime::parse_from_rfc3339(&p.created_at)
                                .map(|t| t.timestamp_micros())
                                .unwrap_or_default(),
                        })
                        .collect(),
                })
                .collect();
            let initial = encode_snapshot(&groups, &message.timestamp).initial;
            (Some(initial.clone()), Some(vec![initial]))
        }
        "initial_modeldata" => (None, Some(vec![frame.clone()])),
        "modeldata_status" => (None, None),
        _ => return None,
    };
    Some(Event::ModelData(ModelDataFrame {
        room,
        frame,
        first,
        snapshot,
    }))
}

/// Health of the modeldata source as told to clients in `modeldata_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Data is current.
    Ok,
    /// The source failed; clients keep the last good data, retries continue.
    Degraded,
}

/// `{"type":"modeldata_status",…}`: sent when the source degrades and when it
/// recovers, so a dashboard can show that its data is stale and why.
#[derive(Debug, Clone, Serialize)]
pub struct StatusMessage<'a> {
    pub r#type: &'static str,
    pub status: SourceStatus,
    /// What failed (absent when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// When the data clients hold was sampled (absent if none yet).
    pub last_update: Option<&'a str>,
    /// Seconds until the next attempt (absent when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_seconds: Option<f64>,
    pub timestamp: String,
}

/// `{"type":"echo","message":…,"timestamp":…}`: the reply to any client message.
#[derive(Debug, Serialize)]
pub struct Echo<'a> {
    pub r#type: &'static str,
    /// The client's message as received (text).
    pub message: &'a str,
    pub timestamp: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn group(name: &str, n: usize) -> GroupSeries {
        GroupSeries {
            display_name: name.into(),
            points: (0..n)
                .map(|i| Point {
                    id: i as i64,
                    account_value: Some(100_000.5 + i as f64),
                    return_value: Some(0.15),
                    total_pnl: None,
                    fees: Some(125.0),
                    trades: Some(45),
                    created_at: 1_761_300_000_000_000 + i as i64 * 1_000,
                })
                .collect(),
        }
    }

    fn parse(frame: &Bytes) -> Value {
        serde_json::from_slice(&frame::payload(frame)).unwrap()
    }

    #[test]
    fn update_has_the_seed_000_shape() {
        let groups: Vec<_> = (0..7).map(|i| group(&format!("M{i}"), 3)).collect();
        let s = encode_snapshot(&groups, "2025-10-24T10:30:00.000Z");
        let v = parse(&s.update);
        assert_eq!(v["type"], "modeldata_update");
        assert_eq!(v["timestamp"], "2025-10-24T10:30:00.000Z");
        assert_eq!(v["total_groups"], 7);
        let g = &v["data"]["M0"];
        assert_eq!(g["display_name"], "M0");
        assert_eq!(g["total_points"], 3);
        assert_eq!(g["latest_timestamp"], "2025-10-24T10:00:00.002Z");
        let p = &g["data_points"][0];
        assert_eq!(p["id"], 0);
        assert_eq!(p["display_name"], "M0");
        assert_eq!(p["account_value"], 100_000.5);
        assert_eq!(p["total_pnl"], Value::Null);
        assert_eq!(p["trades"], 45);
        assert_eq!(p["created_at"], "2025-10-24T10:00:00.000Z");
    }

    #[test]
    fn initial_carries_the_first_five_groups_in_order() {
        let groups: Vec<_> = (0..7).map(|i| group(&format!("M{i}"), 2)).collect();
        let v = parse(&encode_snapshot(&groups, "t").initial);
        assert_eq!(v["type"], "initial_modeldata");
        assert_eq!(v["total_groups"], 5);
        let names: Vec<_> = v["data"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(names, ["M0", "M1", "M2", "M3", "M4"]);
    }

    #[test]
    fn names_needing_escapes_and_empty_snapshots_stay_valid_json() {
        let groups = vec![group("a \"quoted\" \\ name", 1), group("é", 0)];
        let v = parse(&encode_snapshot(&groups, "t").update);
        assert_eq!(v["data"]["a \"quoted\" \\ name"]["total_points"], 1);
        assert_eq!(v["data"]["é"]["latest_timestamp"], Value::Null);
        let empty = parse(&encode_snapshot(&[], "t").update);
        assert_eq!(empty["total_groups"], 0);
        assert!(empty["data"].as_object().unwrap().is_empty());
    }

    #[test]
    fn an_update_from_another_node_yields_the_same_initial_message() {
        let groups: Vec<_> = (0..7).map(|i| group(&format!("M{i}"), 3)).collect();
        let sent = encode_snapshot(&groups, "2025-10-24T10:30:00.000Z");
        let room = RoomName::modeldata(None);
        let Some(Event::ModelData(m)) = event_from_wire(room, &frame::payload(&sent.update)) else {
            panic!("not decoded");
        };
        assert_eq!(m.first.as_ref(), Some(&sent.initial));
        assert_eq!(m.snapshot, Some(vec![sent.initial.clone()]));
        assert_eq!(m.frame, sent.update);
        assert!(event_from_wire(RoomName::modeldata(None), b"{\"type\":\"other\"}").is_none());
    }

    #[test]
    fn non_finite_values_are_sent_as_null() {
        let mut g = group("M", 1);
        g.points[0].account_value = Some(f64::NAN);
        let v = parse(&encode_snapshot(&[g], "t").update);
        assert_eq!(
            v["data"]["M"]["data_points"][0]["account_value"],
            Value::Null
        );
    }
}
