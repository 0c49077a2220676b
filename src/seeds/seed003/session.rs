//! A seed 003 stream connection (`/api/ws/stream/backtest/{id}`): the
//! backtest stream, unchanged. On open: `connected`, then the run's whole
//! retained history in publish order, then live events, with no gap and no
//! duplicate (the join and its replay are one step in the room). An
//! unknown or expired id is answered with the seed's `error` and closed
//! with 4004 (never an HTTP 404 a browser could not read).
//!
//! Client messages: `ping` (→ `pong`); and the seed's future enhancements:
//! `pause` / `resume` (→ `pause_ack` / `resume_ack`; they suspend the run's
//! pacing for every watcher, and a connection that paused the run resumes
//! it when it closes) and `stop` (→ `stop_ack`, then close 1000 for
//! this connection only). Anything else gets `error` "Invalid message"; the
//! connection stays open.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;
use simd_json::prelude::*;

use crate::catalog::RoomName;
use crate::close_code::CloseCode;
use crate::dialect::{DialectKind, DialectSession, Joined, Link, MessageKind};
use crate::frame;
use crate::protocol::time;
use crate::sources::backtest::Backtests;
use crate::telemetry::metrics;

/// One seed 003 connection's protocol state.
#[derive(Debug)]
pub struct Seed003Session {
    /// The run watched.
    id: String,
    /// Whether the run was known when the connection opened.
    known: bool,
    /// The run registry, for pause and resume.
    runs: Arc<Backtests>,
    /// Whether this connection paused the run: it resumes it when it goes,
    /// so a vanished viewer cannot hold a run (and its slot) forever.
    paused: bool,
}

/// Every seed 003 message: `{"type","timestamp","data"}`.
#[derive(Serialize)]
struct Message<'a, T: Serialize> {
    r#type: &'a str,
    timestamp: String,
    data: T,
}

/// A seed 003 message frame.
pub fn message_frame(kind: &str, data: impl Serialize) -> Bytes {
    frame::json(&Message {
        r#type: kind,
        timestamp: time::now(),
        data,
    })
}

/// `error` with `{error, details}`; counts one error.
pub fn error_frame(error: &str, details: serde_json::Value) -> Bytes {
    metrics().error();
    message_frame("error", json!({ "error": error, "details": details }))
}

impl Seed003Session {
    /// A session watching run `id`, `known` to the registry or not.
    pub fn backtest(id: String, known: bool, runs: Arc<Backtests>) -> Self {
        Seed003Session {
            id,
            known,
            runs,
            paused: false,
        }
    }

    fn control(&mut self, link: &mut impl Link, paused: bool, ack: &str) {
        match self.runs.pause(&self.id, paused) {
            Ok(()) => {
                self.paused = paused;
                link.send(message_frame(ack, json!({ "backtest_id": self.id })))
            }
            Err(e) => link.send(error_frame(
                &format!("Cannot {}: {e}", if paused { "pause" } else { "resume" }),
                json!({ "backtest_id": self.id }),
            )),
        }
    }
}

impl Drop for Seed003Session {
    fn drop(&mut self) {
        if self.paused {
            let _ = self.runs.pause(&self.id, false);
        }
    }
}

impl DialectSession for Seed003Session {
    const KIND: DialectKind = DialectKind::Seed003;

    fn on_open(&mut self, link: &mut impl Link) {
        link.send(message_frame(
            "connected",
            json!({ "backtest_id": self.id, "message": "Connected to backtest stream" }),
        ));
        let room = match RoomName::backtest(&self.id) {
            Ok(room) if self.known => room,
            _ => {
                link.send(error_frame(
                    "Backtest not found",
                    json!({ "backtest_id": self.id }),
                ));
                link.close(CloseCode::UnknownStream);
                return;
            }
        };
        // The whole run so far, in order: each event's canonical JSON is its frame.
        let replay = Box::new(|retained: &crate::dialect::Retained<'_>| {
            retained.payloads().map(|p| frame::text(p)).collect()
        });
        match link.join(room, replay) {
            Ok(Joined::New | Joined::Already) => {}
            Err(e) => {
                link.send(error_frame(&format!("Cannot stream: {e}"), json!({})));
                link.close(CloseCode::Normal);
            }
        }
    }

    fn on_message(&mut self, link: &mut impl Link, _kind: MessageKind, payload: &mut [u8]) {
        let kind = simd_json::to_borrowed_value(payload)
            .ok()
            .and_then(|m| m.get("type").and_then(|t| t.as_str()).map(str::to_string));
        match kind.as_deref() {
            Some("ping") => link.send(message_frame("pong", json!({}))),
            Some("pause") => self.control(link, true, "pause_ack"),
            Some("resume") => self.control(link, false, "resume_ack"),
            Some("stop") => {
                link.send(message_frame("stop_ack", json!({ "backtest_id": self.id })));
                link.close(CloseCode::Normal);
            }
            _ => link.send(error_frame(
                "Invalid message",
                json!({ "expected": ["ping", "pause", "resume", "stop"] }),
            )),
        }
    }

    fn rate_limited(&mut self, limit_per_sec: u32) -> Bytes {
        error_frame(
            "Rate limit exceeded",
            json!({ "limit_per_second": limit_per_sec, "message": "message ignored" }),
        )
    }
}
