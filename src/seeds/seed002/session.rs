//! A `/ws` connection: seed 002's QuantMindX topics and seed 004's trading
//! stream, both unchanged, on the one path both seeds fix (spec §5). One
//! session reads both message families: `{"action":…}` is seed 002,
//! `{"type":…}` seed 004 (its channels are
//! [`crate::seeds::seed004::channels`]).
//!
//! Seed 004 clients may send nothing and still get all four streams, so a
//! connection is auto-subscribed to them after a hold window
//! (`ROOMCAST_WS_AUTO_SUBSCRIBE_DELAY`, 0.5 s), at once with `?client_id=`
//! or `ROOMCAST_WS_PROTOCOL=seed004`, never with `seed002` or
//! `WEBSOCKET_ENABLED=false`. A seed 004 message ends the window early
//! (auto-subscription, then the message). The first seed 002 `action`
//! cancels auto-subscription for good, undoing it if it was made, so a seed
//! 002 client, which subscribes at once, never sees a seed 004 frame. Both
//! families stay valid on the connection afterwards.
//!
//! Seed 002 client messages: `subscribe` / `unsubscribe` with a `topic`
//! (1–64 of `[A-Za-z0-9_.:-]`), `ping`. Server messages:
//! `subscription_confirmed` (every subscribe, repeats included),
//! `unsubscription_confirmed`, `pong` (bare), `error` (`{type,error,timestamp}`)
//! and the topic's events, live only. Bad input gets an `error`; the
//! connection stays open.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use simd_json::prelude::*;

use crate::catalog::{MAX_TOPIC_LEN, RoomName};
use crate::dialect::{DialectKind, DialectSession, JoinError, Joined, Link, MessageKind};
use crate::frame;
use crate::protocol::time;
use crate::seeds::seed004::channels::Channels;
use crate::sources::trading::Trading;
use crate::telemetry::metrics;

/// When a connection is auto-subscribed to seed 004's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoStart {
    /// At open (`?client_id=`, `ROOMCAST_WS_PROTOCOL=seed004`, no delay).
    Now,
    /// After this hold window, unless a seed 002 `action` comes first.
    After(Duration),
    /// Never (`ROOMCAST_WS_PROTOCOL=seed002`, `WEBSOCKET_ENABLED=false`).
    Never,
}

/// Where auto-subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auto {
    /// The hold window runs.
    Pending,
    /// Made.
    Done,
    /// Cancelled by a seed 002 `action`, or never to be made.
    Off,
}

/// One `/ws` connection's protocol state.
#[derive(Debug)]
pub struct WsRootSession {
    /// When to auto-subscribe.
    start: AutoStart,
    /// Where auto-subscription stands.
    auto: Auto,
    /// Whether seed 004's streams are served (`WEBSOCKET_ENABLED`).
    enabled: bool,
    /// Seed 004 channels.
    channels: Channels,
}

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
    /// A session auto-subscribing as `start` says.
    pub fn new(trading: Arc<Trading>, start: AutoStart) -> Self {
        let enabled = trading.settings.enabled;
        WsRootSession {
            start: if enabled { start } else { AutoStart::Never },
            auto: Auto::Off,
            enabled,
            channels: Channels::new(trading),
        }
    }

    /// Auto-subscribes now.
    fn auto_subscribe(&mut self, link: &mut impl Link) {
        link.set_timer(None);
        self.auto = Auto::Done;
        if let Err(e) = self.channels.auto_subscribe(link) {
            link.send(error_frame(&e.to_string()));
        }
    }

    /// A seed 002 `action` arrived: no auto-subscription, ever.
    fn cancel_auto(&mut self, link: &mut impl Link) {
        match self.auto {
            Auto::Pending => link.set_timer(None),
            Auto::Done => self.channels.cancel_auto(link),
            Auto::Off => {}
        }
        self.auto = Auto::Off;
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
            Err(e @ (JoinError::TooManyRooms | JoinError::Forbidden(_))) => {
                link.send(error_frame(&format!("Cannot subscribe: {e}")))
            }
        }
    }

    /// A seed 004 message (`{"type":…}`): `ping`, `subscribe`, `unsubscribe`.
    fn handle_type(
        &mut self,
        link: &mut impl Link,
        kind: &str,
        message: &simd_json::BorrowedValue<'_>,
    ) {
        if self.auto == Auto::Pending {
            self.auto_subscribe(link);
        }
        match kind {
            "ping" => link.send(frame::text(PONG)),
            "subscribe" | "unsubscribe" if !self.enabled => {
                link.send(error_frame("WebSocket streaming is disabled"))
            }
            "subscribe" | "unsubscribe" => {
                if let Err(e) = self.channels.handle(link, kind == "subscribe", message) {
                    link.send(error_frame(&e.to_string()));
                }
            }
            other => link.send(error_frame(&format!(
                "Unknown message type: {}",
                shown(other)
            ))),
        }
    }
}

impl DialectSession for WsRootSession {
    const KIND: DialectKind = DialectKind::Ws;

    fn on_open(&mut self, link: &mut impl Link) {
        match self.start {
            AutoStart::Now => self.auto_subscribe(link),
            AutoStart::After(window) => {
                self.auto = Auto::Pending;
                link.set_timer(Some(window));
            }
            AutoStart::Never => {}
        }
    }

    fn on_timer(&mut self, link: &mut impl Link) {
        if self.auto == Auto::Pending {
            self.auto_subscribe(link);
        }
    }

    fn on_message(&mut self, link: &mut impl Link, _kind: MessageKind, payload: &mut [u8]) {
        let Ok(message) = simd_json::to_borrowed_value(payload) else {
            return link.send(error_frame("Invalid message format"));
        };
        if let Some(action) = message.get("action").and_then(|a| a.as_str()) {
            let action = action.to_string();
            self.cancel_auto(link);
            return self.handle_action(link, &action, &message);
        }
        match message.get("type").and_then(|t| t.as_str()) {
            Some(kind) => {
                let kind = kind.to_string();
                self.handle_type(link, &kind, &message)
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
