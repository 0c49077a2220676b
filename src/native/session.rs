//! roomcast's native protocol, v1 (`/v1/ws`; `docs/protocol-v1.md`): the
//! session state machine. What our own clients get that the seeds lack:
//! many rooms in one subscribe, every message naming its room, `seq` and
//! `epoch`, and resume after a reconnect (on any node of the fleet) from the
//! last `seq` seen, answered with `recovered: true` and the missed messages
//! in order, or `recovered: false` and an explicit gap.
//!
//! Server messages: `welcome`, `subscribed`, `unsubscribed`, `message` and
//! `gap` (framed by the encoder, `crate::dialect::native`), `pong`, `error`
//! (with a `code`).

use bytes::Bytes;
use serde::Serialize;
use simd_json::prelude::*;

use crate::catalog::{CatalogError, RoomName, name_patterns};
use crate::close_code::CloseCode;
use crate::dialect::native::{GapInfo, message_frame};
use crate::dialect::{
    DialectKind, DialectSession, JoinError, Joined, Link, MessageKind, Resume, Retained,
};
use crate::frame;
use crate::protocol::time;
use crate::telemetry::metrics;

/// Protocol name sent in `welcome`.
pub const PROTOCOL: &str = "roomcast.v1";

/// Most rooms one `subscribe` or `unsubscribe` may name.
pub const MAX_ROOMS_PER_MESSAGE: usize = 100;

#[derive(Serialize)]
struct Subscribed<'a> {
    r#type: &'static str,
    room: &'a str,
    epoch: u64,
    /// The room's latest `seq` when subscribed.
    seq: u64,
    /// Present when the client asked to resume: whether every missed message follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<bool>,
    /// Messages replayed after this one.
    replayed: usize,
    /// What cannot be replayed (not recovered).
    #[serde(skip_serializing_if = "Option::is_none")]
    gap: Option<GapInfo>,
    /// Why not recovered: `trimmed` (older than the history) or `epoch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// Where a client resumes a room from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Since {
    seq: u64,
    epoch: Option<u64>,
}

/// The greeting of one subscription: `subscribed`, then the replay.
fn greeting(room: &RoomName, since: Option<Since>, retained: &Retained<'_>) -> Vec<Bytes> {
    let mut subscribed = Subscribed {
        r#type: "subscribed",
        room: room.as_str(),
        epoch: retained.epoch,
        seq: retained.seq,
        recovered: None,
        replayed: 0,
        gap: None,
        reason: None,
    };
    let Some(since) = since else {
        return vec![frame::json(&subscribed)];
    };
    let same_lineage = since.epoch.is_none_or(|e| e == retained.epoch);
    let replay: Vec<&(u64, Bytes)> = if same_lineage {
        retained
            .entries
            .iter()
            .filter(|(seq, _)| *seq > since.seq)
            .collect()
    } else {
        retained.entries.iter().collect()
    };
    if !same_lineage {
        subscribed.recovered = Some(false);
        subscribed.reason = Some("epoch");
    } else {
        let first_needed = since.seq.saturating_add(1);
        let first_held = replay.first().map_or(retained.seq + 1, |(seq, _)| *seq);
        if first_held > first_needed && retained.seq >= first_needed {
            subscribed.recovered = Some(false);
            subscribed.reason = Some("trimmed");
            subscribed.gap = Some(GapInfo {
                from: first_needed,
                to: first_held - 1,
            });
        } else {
            subscribed.recovered = Some(true);
        }
    }
    subscribed.replayed = replay.len();
    let mut frames = Vec::with_capacity(replay.len() + 1);
    frames.push(frame::json(&subscribed));
    frames.extend(
        replay
            .into_iter()
            .map(|(seq, data)| message_frame(room, *seq, retained.epoch, data)),
    );
    frames
}

#[derive(Serialize)]
struct ErrorMessage<'a> {
    r#type: &'static str,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
}

fn error_frame(code: &'static str, message: &str, room: Option<&str>) -> Bytes {
    metrics().error();
    frame::json(&ErrorMessage {
        r#type: "error",
        code,
        message,
        room,
    })
}

/// Parses a room name a native client may subscribe to, through the room
/// catalog: every kind whose policy is open to native clients (tickers are
/// normalised, `ticker:aapl` is `ticker:AAPL`).
pub fn parse_room(name: &str) -> Result<RoomName, String> {
    let unknown = |name: &str| {
        format!(
            "unknown room '{name}' (expected {})",
            name_patterns(|policy| policy.native)
        )
    };
    match RoomName::parse(name) {
        Ok(room) if room.policy().native => Ok(room),
        Ok(room) => Err(format!(
            "{} (room '{room}' is served to its own protocol only)",
            unknown(room.as_str())
        )),
        Err(CatalogError::Unknown(name)) => Err(unknown(&name)),
        Err(e) => Err(e.to_string()),
    }
}

/// One native connection's state.
#[derive(Debug)]
pub struct NativeSession {
    /// The node's name, sent in `welcome` (useful behind a load balancer).
    node: String,
}

impl NativeSession {
    /// A session on node `node`.
    pub fn new(node: &str) -> Self {
        NativeSession {
            node: node.to_string(),
        }
    }

    fn subscribe(&mut self, link: &mut impl Link, rooms: &[simd_json::BorrowedValue<'_>]) {
        for entry in rooms {
            let (name, since) = match parse_entry(entry) {
                Ok(parsed) => parsed,
                Err(e) => {
                    link.send(error_frame("bad_room", &e, entry.as_str()));
                    continue;
                }
            };
            let room = match parse_room(name) {
                Ok(room) => room,
                Err(e) => {
                    link.send(error_frame("bad_room", &e, Some(name)));
                    continue;
                }
            };
            let greeted = room.clone();
            let greet =
                Box::new(move |retained: &Retained<'_>| greeting(&greeted, since, retained));
            let joined = match since {
                Some(s) => link.join_resuming(
                    room.clone(),
                    Resume {
                        seq: s.seq,
                        epoch: s.epoch,
                    },
                    greet,
                ),
                None => link.join(room.clone(), greet),
            };
            match joined {
                Ok(Joined::New) => {}
                Ok(Joined::Already) => link.send(error_frame(
                    "already_subscribed",
                    "already subscribed; unsubscribe first to resume from a seq",
                    Some(room.as_str()),
                )),
                Err(e) => {
                    let code = match e {
                        JoinError::TooManySubscriptions(_) => "subscription_limit",
                        JoinError::TooManyRooms => "room_limit",
                        JoinError::Forbidden(_) => "forbidden",
                    };
                    link.send(error_frame(code, &e.to_string(), Some(room.as_str())));
                }
            }
        }
    }

    fn unsubscribe(&mut self, link: &mut impl Link, rooms: &[simd_json::BorrowedValue<'_>]) {
        for entry in rooms {
            let Some(name) = entry
                .as_str()
                .or_else(|| entry.get("room").and_then(|r| r.as_str()))
            else {
                link.send(error_frame("bad_room", "a room is a string", None));
                continue;
            };
            match parse_room(name) {
                Ok(room) => {
                    let was = link.leave(&room);
                    link.send(frame::json(&serde_json::json!({
                        "type": "unsubscribed",
                        "room": room.as_str(),
                        "was_subscribed": was,
                    })));
                }
                Err(e) => link.send(error_frame("bad_room", &e, Some(name))),
            }
        }
    }
}

/// The largest `seq` or `epoch` a client may send: 2^53 − 1.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A `rooms` entry: `"name"` or `{"room": "name", "seq": N, "epoch": E}`.
fn parse_entry<'v>(
    entry: &'v simd_json::BorrowedValue<'_>,
) -> Result<(&'v str, Option<Since>), String> {
    if let Some(name) = entry.as_str() {
        return Ok((name, None));
    }
    let Some(name) = entry.get("room").and_then(|r| r.as_str()) else {
        return Err("each room is a name or an object with a string 'room'".into());
    };
    // 53 bits: what every JSON client (JavaScript's numbers) can hold.
    let seq = match entry.get("seq") {
        None => return Ok((name, None)),
        Some(v) => v
            .as_u64()
            .filter(|seq| *seq <= MAX_SAFE_INTEGER)
            .ok_or("'seq' must be an integer from 0 to 2^53-1")?,
    };
    let epoch = match entry.get("epoch") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|epoch| *epoch <= MAX_SAFE_INTEGER)
                .ok_or("'epoch' must be an integer from 0 to 2^53-1")?,
        ),
    };
    Ok((name, Some(Since { seq, epoch })))
}

impl DialectSession for NativeSession {
    const KIND: DialectKind = DialectKind::Native;

    fn on_open(&mut self, link: &mut impl Link) {
        link.send(frame::json(&serde_json::json!({
            "type": "welcome",
            "protocol": PROTOCOL,
            "node": self.node,
            "timestamp": time::now(),
        })));
    }

    fn on_message(&mut self, link: &mut impl Link, _kind: MessageKind, payload: &mut [u8]) {
        let message = match simd_json::to_borrowed_value(payload) {
            Ok(m) => m,
            Err(e) => {
                link.send(error_frame(
                    "invalid_json",
                    &format!("invalid JSON: {e}"),
                    None,
                ));
                return;
            }
        };
        let Some(kind) = message.get("type").and_then(|t| t.as_str()) else {
            link.send(error_frame(
                "bad_message",
                "a message is a JSON object with a string 'type'",
                None,
            ));
            return;
        };
        match kind {
            "subscribe" | "unsubscribe" => {
                let Some(rooms) = message.get("rooms").and_then(|r| r.as_array()) else {
                    link.send(error_frame("bad_message", "'rooms' must be an array", None));
                    return;
                };
                if rooms.len() > MAX_ROOMS_PER_MESSAGE {
                    link.send(error_frame(
                        "bad_message",
                        &format!("at most {MAX_ROOMS_PER_MESSAGE} rooms per message"),
                        None,
                    ));
                    return;
                }
                if kind == "subscribe" {
                    self.subscribe(link, rooms);
                } else {
                    self.unsubscribe(link, rooms);
                }
            }
            "ping" => link.send(frame::json(&serde_json::json!({
                "type": "pong",
                "timestamp": time::now(),
            }))),
            "close" => link.close(CloseCode::Normal),
            "auth" => {
                let Some(token) = message.get("token").and_then(|t| t.as_str()) else {
                    link.send(error_frame("bad_message", "'token' must be a string", None));
                    return;
                };
                match link.refresh_token(token) {
                    Ok(expires_at) => link.send(frame::json(&serde_json::json!({
                        "type": "auth_ok",
                        "expires_at": expires_at.map(|at| time::format(at.into())),
                    }))),
                    // The old token stays in force until it expires.
                    Err(e) => link.send(error_frame("invalid_token", &e.to_string(), None)),
                }
            }
            other => link.send(error_frame(
                "unknown_type",
                &format!(
                    "unknown message type '{}' (expected subscribe, unsubscribe, ping, auth)",
                    other.chars().take(64).collect::<String>()
                ),
                None,
            )),
        }
    }

    fn rate_limited(&mut self, limit_per_sec: u32) -> Bytes {
        error_frame(
            "rate_limited",
            &format!("rate limit exceeded: at most {limit_per_sec} messages per second"),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn entries(seqs: std::ops::RangeInclusive<u64>) -> VecDeque<(u64, Bytes)> {
        seqs.map(|s| (s, Bytes::from(format!("{{\"n\":{s}}}"))))
            .collect()
    }

    fn json(frame: &Bytes) -> serde_json::Value {
        serde_json::from_slice(&frame::payload(frame)).unwrap()
    }

    #[test]
    fn resume_within_history_replays_in_order() {
        let held = entries(5..=9);
        let r = Retained {
            epoch: 7,
            seq: 9,
            entries: &held,
            snapshot: &[],
        };
        let room = RoomName::patterns();
        let frames = greeting(
            &room,
            Some(Since {
                seq: 6,
                epoch: Some(7),
            }),
            &r,
        );
        let sub = json(&frames[0]);
        assert_eq!(sub["recovered"], true);
        assert_eq!(sub["replayed"], 3);
        let seqs: Vec<u64> = frames[1..]
            .iter()
            .map(|f| json(f)["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [7, 8, 9]);
        assert_eq!(json(&frames[1])["data"]["n"], 7);
        assert_eq!(json(&frames[1])["room"], "patterns");
    }

    #[test]
    fn resume_past_history_reports_the_gap_and_replays_the_rest() {
        let held = entries(5..=9);
        let r = Retained {
            epoch: 7,
            seq: 9,
            entries: &held,
            snapshot: &[],
        };
        let frames = greeting(
            &RoomName::alerts(),
            Some(Since {
                seq: 2,
                epoch: Some(7),
            }),
            &r,
        );
        let sub = json(&frames[0]);
        assert_eq!(sub["recovered"], false);
        assert_eq!(sub["reason"], "trimmed");
        assert_eq!(sub["gap"], serde_json::json!({"from": 3, "to": 4}));
        assert_eq!(frames.len(), 6);
    }

    #[test]
    fn resume_up_to_date_or_in_another_epoch() {
        let held = entries(5..=9);
        let r = Retained {
            epoch: 7,
            seq: 9,
            entries: &held,
            snapshot: &[],
        };
        let frames = greeting(
            &RoomName::alerts(),
            Some(Since {
                seq: 9,
                epoch: Some(7),
            }),
            &r,
        );
        assert_eq!(json(&frames[0])["recovered"], true);
        assert_eq!(frames.len(), 1);
        let frames = greeting(
            &RoomName::alerts(),
            Some(Since {
                seq: 3,
                epoch: Some(6),
            }),
            &r,
        );
        assert_eq!(json(&frames[0])["recovered"], false);
        assert_eq!(json(&frames[0])["reason"], "epoch");
        assert_eq!(frames.len(), 6);
        // A plain subscribe replays nothing.
        let frames = greeting(&RoomName::alerts(), None, &r);
        assert_eq!(frames.len(), 1);
        assert!(json(&frames[0]).get("recovered").is_none());
    }

    #[test]
    fn room_names_are_validated_and_normalised() {
        assert_eq!(parse_room("ticker:aapl").unwrap().as_str(), "ticker:AAPL");
        assert!(parse_room("ticker:").is_err());
        assert!(parse_room("modeldata").is_err());
        assert!(parse_room("whatever").unwrap_err().contains("unknown room"));
    }

    #[test]
    fn seqs_and_epochs_beyond_53_bits_are_refused() {
        let parse = |text: &str| {
            let mut bytes = text.as_bytes().to_vec();
            let value = simd_json::to_borrowed_value(&mut bytes).unwrap();
            parse_entry(&value).map(|(name, since)| (name.to_string(), since))
        };
        let max = MAX_SAFE_INTEGER;
        let (_, since) =
            parse(&format!(r#"{{"room":"alerts","seq":{max},"epoch":{max}}}"#)).unwrap();
        assert_eq!(since.unwrap().seq, max);
        for bad in [
            r#"{"room":"alerts","seq":18446744073709551615}"#,
            r#"{"room":"alerts","seq":9007199254740992}"#,
            r#"{"room":"alerts","seq":1,"epoch":9007199254740992}"#,
            r#"{"room":"alerts","seq":-1}"#,
        ] {
            assert!(parse(bad).unwrap_err().contains("2^53-1"), "{bad}");
        }
    }

    #[test]
    fn resuming_after_the_largest_seq_replays_nothing() {
        let history = entries(5..=9);
        let r = Retained {
            epoch: 7,
            seq: 9,
            entries: &history,
            snapshot: &[],
        };
        let frames = greeting(
            &RoomName::alerts(),
            Some(Since {
                seq: u64::MAX,
                epoch: Some(7),
            }),
            &r,
        );
        assert_eq!(frames.len(), 1);
        assert_eq!(json(&frames[0])["recovered"], true);
    }
}
