//! A seed 003 stream connection, one of three flavours, each sending
//! `connected` first:
//!
//! * **backtest** (`/api/ws/stream/backtest/{id}`): the run's whole
//!   retained history in publish order, then live events, with no gap and
//!   no duplicate (the join and its replay are one step in the room). An
//!   unknown or expired id is answered with the seed's `error` and closed
//!   with 4004 (never an HTTP 404 a browser could not read).
//! * **live trading** (`/api/ws/stream/live-trading[?symbols=A,B]`): the
//!   paper account's open positions (in the filter), `pnl` and `risk` at
//!   once, then `position` and `order` as they happen (filtered by symbol:
//!   one `s003:live:<SYM>` room each, or `s003:live`) and `pnl` and `risk`
//!   every interval (`s003:account`).
//! * **market data** (`/api/ws/stream/market-data/{symbol}`): the symbol's
//!   forming candles, structure and confluence at once, then every tick's
//!   messages (`s003:market:<SYM>`). A symbol nobody publishes gets
//!   `error` "Unknown symbol" and close 4004.
//!
//! Client messages: `ping` (→ `pong`) and `stop` (→ `stop_ack`, then close
//! 1000 for this connection only) on every stream; on a backtest stream,
//! also `pause` / `resume` (→ `pause_ack` / `resume_ack`; they suspend the
//! run's pacing for every watcher, and a connection that paused the run
//! resumes it when it closes). Anything else gets `error` "Invalid
//! message"; the connection stays open.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;
use simd_json::prelude::*;

use crate::catalog::RoomName;
use crate::close_code::CloseCode;
use crate::dialect::{DialectKind, DialectSession, Greeting, JoinError, Joined, Link, MessageKind};
use crate::frame;
use crate::protocol::time;
use crate::sources::backtest::Backtests;
use crate::sources::trading::viewers::Viewer;
use crate::telemetry::metrics;

/// One seed 003 connection's protocol state.
#[derive(Debug)]
pub struct Seed003Session {
    /// Which stream it watches.
    stream: Stream,
}

/// The three streams.
#[derive(Debug)]
enum Stream {
    /// One backtest run.
    Backtest {
        /// The run watched.
        id: String,
        /// Whether the run was known when the connection opened.
        known: bool,
        /// The run registry, for pause and resume.
        runs: Arc<Backtests>,
        /// Whether this connection paused the run: it resumes it when it
        /// goes, so a vanished viewer cannot hold a run (and its slot) forever.
        paused: bool,
    },
    /// The paper account's positions, orders, pnl and risk.
    Live {
        /// The symbol filter (normalised, sorted); empty: every symbol.
        symbols: Vec<String>,
        /// Counts this connection in the status while it is open.
        _viewer: Viewer,
    },
    /// One symbol's market data.
    Market {
        /// The symbol (normalised).
        symbol: String,
        /// Whether anybody publishes it.
        known: bool,
    },
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

/// A snapshot room's greeting: its state frames, as seed 003 frames them.
fn snapshot_greeting() -> Greeting {
    Box::new(|retained| retained.snapshot.to_vec())
}

impl Seed003Session {
    /// A session watching run `id`, `known` to the registry or not.
    pub fn backtest(id: String, known: bool, runs: Arc<Backtests>) -> Self {
        Seed003Session {
            stream: Stream::Backtest {
                id,
                known,
                runs,
                paused: false,
            },
        }
    }

    /// A session on the live-trading stream for `symbols` (normalised,
    /// sorted; empty: all), counted by `viewer`.
    pub fn live(symbols: Vec<String>, viewer: Viewer) -> Self {
        Seed003Session {
            stream: Stream::Live {
                symbols,
                _viewer: viewer,
            },
        }
    }

    /// A session on `symbol`'s market data, `known` (published) or not.
    pub fn market(symbol: String, known: bool) -> Self {
        Seed003Session {
            stream: Stream::Market { symbol, known },
        }
    }

    fn control(&mut self, link: &mut impl Link, pause: bool, ack: &str) {
        let Stream::Backtest {
            id, runs, paused, ..
        } = &mut self.stream
        else {
            return invalid_message(link, &["ping", "stop"]);
        };
        match runs.pause(id, pause) {
            Ok(()) => {
                *paused = pause;
                link.send(message_frame(ack, json!({ "backtest_id": id })))
            }
            Err(e) => link.send(error_frame(
                &format!("Cannot {}: {e}", if pause { "pause" } else { "resume" }),
                json!({ "backtest_id": id }),
            )),
        }
    }

    fn open_backtest(link: &mut impl Link, id: &str, known: bool) {
        link.send(message_frame(
            "connected",
            json!({ "backtest_id": id, "message": "Connected to backtest stream" }),
        ));
        let room = match RoomName::backtest(id) {
            Ok(room) if known => room,
            _ => {
                link.send(error_frame(
                    "Backtest not found",
                    json!({ "backtest_id": id }),
                ));
                link.close(CloseCode::UnknownStream);
                return;
            }
        };
        // The whole run so far, in order: each event's canonical JSON is its frame.
        let replay = Box::new(|retained: &crate::dialect::Retained<'_>| {
            retained.payloads().map(|p| frame::text(p)).collect()
        });
        join_or_close(link, room, replay);
    }

    fn open_live(link: &mut impl Link, symbols: &[String]) {
        link.send(message_frame(
            "connected",
            json!({
                "stream_id": live_filter(symbols),
                "symbols": symbols,
                "message": "Connected to live trading stream",
            }),
        ));
        // Positions first, then the account: the greeting reads in that order.
        let rooms = if symbols.is_empty() {
            vec![RoomName::s003_live(None)]
        } else {
            symbols
                .iter()
                .map(|s| RoomName::s003_live(Some(s)))
                .collect()
        };
        for room in rooms {
            let room = room.expect("normalised symbols");
            if !join_or_close(link, room, snapshot_greeting()) {
                return;
            }
        }
        join_or_close(link, RoomName::s003_account(), snapshot_greeting());
    }

    fn open_market(link: &mut impl Link, symbol: &str, known: bool) {
        link.send(message_frame(
            "connected",
            json!({
                "symbol": symbol,
                "message": format!("Connected to market data stream for {symbol}"),
            }),
        ));
        if !known {
            link.send(error_frame(
                "Unknown symbol",
                json!({ "symbol": symbol, "message": "no prices are published for this symbol" }),
            ));
            link.close(CloseCode::UnknownStream);
            return;
        }
        let room = RoomName::s003_market(symbol).expect("a normalised symbol");
        join_or_close(link, room, snapshot_greeting());
    }
}

/// The live stream's id in the status: the filter, or `all`.
pub fn live_filter(symbols: &[String]) -> String {
    if symbols.is_empty() {
        "all".into()
    } else {
        symbols.join(",")
    }
}

/// Joins `room`; on failure tells the client and closes.
fn join_or_close(link: &mut impl Link, room: RoomName, greet: Greeting) -> bool {
    match link.join(room, greet) {
        Ok(Joined::New | Joined::Already) => true,
        Err(e) => {
            link.send(error_frame(&format!("Cannot stream: {e}"), json!({})));
            link.close(match e {
                JoinError::Forbidden(_) => CloseCode::Forbidden,
                _ => CloseCode::Normal,
            });
            false
        }
    }
}

fn invalid_message(link: &mut impl Link, expected: &[&str]) {
    link.send(error_frame(
        "Invalid message",
        json!({ "expected": expected }),
    ))
}

impl Drop for Seed003Session {
    fn drop(&mut self) {
        if let Stream::Backtest {
            id,
            runs,
            paused: true,
            ..
        } = &self.stream
        {
            let _ = runs.pause(id, false);
        }
    }
}

impl DialectSession for Seed003Session {
    const KIND: DialectKind = DialectKind::Seed003;

    fn on_open(&mut self, link: &mut impl Link) {
        match &self.stream {
            Stream::Backtest { id, known, .. } => Self::open_backtest(link, id, *known),
            Stream::Live { symbols, .. } => Self::open_live(link, symbols),
            Stream::Market { symbol, known } => Self::open_market(link, symbol, *known),
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
                let data = match &self.stream {
                    Stream::Backtest { id, .. } => json!({ "backtest_id": id }),
                    Stream::Live { symbols, .. } => json!({ "stream_id": live_filter(symbols) }),
                    Stream::Market { symbol, .. } => json!({ "symbol": symbol }),
                };
                link.send(message_frame("stop_ack", data));
                link.close(CloseCode::Normal);
            }
            _ => match self.stream {
                Stream::Backtest { .. } => {
                    invalid_message(link, &["ping", "pause", "resume", "stop"])
                }
                Stream::Live { .. } | Stream::Market { .. } => {
                    invalid_message(link, &["ping", "stop"])
                }
            },
        }
    }

    fn rate_limited(&mut self, limit_per_sec: u32) -> Bytes {
        error_frame(
            "Rate limit exceeded",
            json!({ "limit_per_second": limit_per_sec, "message": "message ignored" }),
        )
    }
}
