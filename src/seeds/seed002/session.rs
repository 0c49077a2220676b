//! A `/ws` connection: seed 002's QuantMindX topics, unchanged. The path
//! is shared with seed 004's trading stream (spec §5): one session reads
//! both message families, `{"action":…}` (seed 002) and `{"type":…}`
//! (seed 004); today the seed 004 family answers `ping` only, and its
//! channels and hold window arrive with the seed 004 work.
//!
//! Seed 002 client messages: `subscribe` / `unsubscribe` with a `topic`
//! (1–64 of `[A-Za-z0-9_.:-]`), `ping`. Server messages:
//! `subscription_confirmed` (every subscribe, repeats included),
//! `unsubscription_confirmed`, `pong` (bare), `error` (`{type,error,timestamp}`)
//! and the topic's events, live only. Bad input gets an `error`; the
//! connection stays open.

use bytes::Bytes;
use serde::Serialize;
use simd_json::prelude::*;

use crate::catalog::{MAX_TOPIC_LEN, RoomName};
use crate::dialect::{DialectKind, DialectSession, JoinError, Joined, Link, MessageKind};
use crate::frame;
use crate::protocol::time;
use crate::telemetry::metrics;

/// One `/ws` connection's protocol state.
#[derive(Debug, Default)]
pub struct WsRootSession;

#[derive(Serialize)]
struct ErrorMessage<'a> {
    r#type: &'static str,
    error: &'a str,
    timestamp: String,
}

#[derive(Serialize)]
struct TopicMessage<'a> {
    r#type: &'static str,
    topic: &'a str,
}

/// `{"type":"error","error":…,"timestamp":…}`; counts one error.
pub fn error_frame(error: &str) -> Bytes {
    metrics().error();
    frame::json(&ErrorMessage {
        r#type: "error",
        error,
        timestamp: time::now(),
    })
}

fn topic_frame(kind: &'static str, topic: &str) -> Bytes {
    frame::json(&TopicMessage {
        r#type: kind,
        topic,
    })
}

/// The bare pong both families expect.
const PONG: &[u8] = br#"{"type":"pong"}"#;

/// Client text echoed in errors, shortened.
fn shown(text: &str) -> String {
    text.chars().take(MAX_TOPIC_LEN).collect()
}

impl WsRootSession {
    /// A session in its initial state.
    pub fn new() -> Self {
        WsRootSession
    }

    /// A seed 002 message (`{"action":…}`).
    fn handle_action(
        &mut self,
        link: &mut impl Link,
        action: &str,
        message: &simd_json::BorrowedValue<'_>,
    ) {
        match action {
            "ping" => link.send(frame::text(PONG)),
            "subscribe" | "unsubscribe" => {
                let topic = match message.get("topic").map(|t| t.as_str()) {
                    None | Some(Some("")) => return link.send(error_frame("Missing 'topic'")),
                    Some(None) => {
                        return link.send(error_frame("Invalid topic: 'topic' must be a string"));
                    }
                    Some(Some(topic)) => topic,
                };
                let Ok(room) = RoomName::topic(topic) else {
                    return link.send(error_frame(&format!("Invalid topic: {}", shown(topic))));
                };
                if action == "subscribe" {
                    self.subscribe(link, room, topic);
                } else {
                    link.leave(&room);
                    link.send(topic_frame("unsubscription_confirmed", topic));
                }
            }
            other => link.send(error_frame(&format!("Unknown action: {}", shown(other)))),
        }
    }

    fn subscribe(&mut self, link: &mut impl Link, room: RoomName, topic: &str) {
        let confirmation = topic_frame("subscription_confirmed", topic);
        // No replay: the topic keeps nothing, so the greeting is the confirmation alone.
        let greeting = confirmation.clone();
        match link.join(room, Box::new(move |_| vec![greeting])) {
            Ok(Joined::New) => {}
            Ok(Joined::Already) => link.send(confirmation),
            Err(JoinError::TooManySubscriptions(_)) => {
                link.send(error_frame("Subscription limit reached"))
            }
            Err(e @ JoinError::TooManyRooms) => {
                link.send(error_frame(&format!("Cannot subscribe: {e}")))
            }
        }
    }

    /// A seed 004 message (`{"type":…}`): `ping` for now.
    fn handle_type(&mut self, link: &mut impl Link, kind: &str) {
        match kind {
            "ping" => link.send(frame::text(PONG)),
            other => link.send(error_frame(&format!(
                "Unknown message type: {}",
                shown(other)
            ))),
        }
    }
}

impl DialectSession for WsRootSession {
    const KIND: DialectKind = DialectKind::Ws;

    fn on_open(&mut self, _link: &mut impl Link) {}

    fn on_message(&mut self, link: &mut impl Link, _kind: MessageKind, payload: &mut [u8]) {
        let Ok(message) = simd_json::to_borrowed_value(payload) else {
            return link.send(error_frame("Invalid message format"));
        };
        if let Some(action) = message.get("action").and_then(|a| a.as_str()) {
            let action = action.to_string();
            return self.handle_action(link, &action, &message);
        }
        match message.get("type").and_then(|t| t.as_str()) {
            Some(kind) => {
                let kind = kind.to_string();
                self.handle_type(link, &kind)
            }
            None => link.send(error_frame("Invalid message format")),
        }
    }

    fn rate_limited(&mut self, limit_per_sec: u32) -> Bytes {
        error_frame(&format!(
            "Rate limit exceeded: at most {limit_per_sec} messages per second; message ignored"
        ))
    }
}
