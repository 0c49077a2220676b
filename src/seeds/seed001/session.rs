//! A seed 001 connection (`/api/ws`): the Legend AI real-time protocol,
//! unchanged.
//!
//! Client messages: `subscribe` / `unsubscribe` with a `channel` of `ticker`
//! (plus `ticker`), `patterns`, `alerts` or `market_status`; `ping`. Server
//! messages: a `connection` ack, `subscription` confirmations, `history` on
//! joining a ticker (its last messages, oldest first), `pong`, `error`, and the
//! published events themselves in their canonical shape, framed by the
//! encoder (`crate::dialect::seed001`). Bad input gets an `error` message;
//! the connection stays open.

use bytes::Bytes;
use serde::Serialize;
use simd_json::prelude::*;

use crate::catalog::{RoomName, normalize_ticker};
use crate::dialect::{DialectKind, DialectSession, Joined, Link, MessageKind, Retained};
use crate::frame;
use crate::protocol::time;
use crate::telemetry::metrics;

/// Longest `user_id` accepted in `?user_id=`.
pub const MAX_USER_ID_LEN: usize = 64;

/// Checks a `user_id` query value: 1–64 characters of letters, digits and `_ - . @`.
pub fn validate_user_id(user_id: &str) -> Result<(), &'static str> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err("user_id must be 1 to 64 characters");
    }
    if !user_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'))
    {
        return Err("user_id may contain only letters, digits and _ - . @");
    }
    Ok(())
}

/// One seed 001 connection's protocol state.
#[derive(Debug)]
pub struct Seed001Session {
    /// Sent in the `connection` ack: `<user_id>_<12 hex>` (or `anonymous_<12 hex>`),
    /// like the seed's `user123_abc123`; lets clients and logs name the connection.
    connection_id: String,
    /// The `?user_id=` the client named, checked against its token's `sub`.
    user_id: Option<String>,
}

impl Seed001Session {
    /// A session for an (already validated) optional `user_id`.
    pub fn new(user_id: Option<&str>) -> Self {
        Seed001Session {
            connection_id: connection_id(user_id),
            user_id: user_id.map(str::to_string),
        }
    }

    /// The id sent in the `connection` ack.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }
}

/// `<user_id>_<12 random hex>`, or `anonymous_…`.
fn connection_id(user_id: Option<&str>) -> String {
    let suffix: u64 = rand::random::<u64>() & 0xffff_ffff_ffff;
    format!("{}_{suffix:012x}", user_id.unwrap_or("anonymous"))
}

#[derive(Serialize)]
struct ConnectionAck<'a> {
    r#type: &'static str,
    status: &'static str,
    connection_id: &'a str,
    timestamp: String,
}

#[derive(Serialize)]
struct Subscription<'a> {
    r#type: &'static str,
    action: &'static str,
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticker: Option<&'a str>,
    timestamp: String,
}

#[derive(Serialize)]
struct Pong {
    r#type: &'static str,
    timestamp: String,
}

#[derive(Serialize)]
struct ErrorMessage<'a> {
    r#type: &'static str,
    message: &'a str,
    timestamp: String,
}

/// An `error` message frame; counts one error (stats `errors`).
pub fn error_frame(message: &str) -> Bytes {
    metrics().error();
    frame::json(&ErrorMessage {
        r#type: "error",
        message,
        timestamp: time::now(),
    })
}

fn subscription_frame(action: &'static str, channel: &str, ticker: Option<&str>) -> Bytes {
    frame::json(&Subscription {
        r#type: "subscription",
        action,
        channel,
        ticker,
        timestamp: time::now(),
    })
}

/// `{"type":"history","ticker":…,"messages":[…],"timestamp":…}` with the
/// retained canonical payloads spliced in as they are (no re-encoding).
fn history_frame<'a>(ticker: &str, messages: impl Iterator<Item = &'a Bytes>) -> Bytes {
    frame::text_with(4096, |buf| -> Result<(), serde_json::Error> {
        buf.extend_from_slice(br#"{"type":"history","ticker":"#);
        serde_json::to_writer(&mut *buf, ticker)?;
        buf.extend_from_slice(br#","messages":["#);
        for (i, message) in messages.enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(message);
        }
        buf.extend_from_slice(br#"],"timestamp":"#);
        serde_json::to_writer(&mut *buf, &time::now())?;
        buf.push(b'}');
        Ok(())
    })
    .expect("writing strings into a Vec cannot fail")
}

/// A channel a client can subscribe to.
enum Channel {
    Ticker(String),
    Patterns,
    Alerts,
    MarketStatus,
}

impl Channel {
    fn room(&self) -> RoomName {
        match self {
            Channel::Ticker(t) => RoomName::ticker(t),
            Channel::Patterns => RoomName::patterns(),
            Channel::Alerts => RoomName::alerts(),
            Channel::MarketStatus => RoomName::market_status(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Channel::Ticker(_) => "ticker",
            Channel::Patterns => "patterns",
            Channel::Alerts => "alerts",
            Channel::MarketStatus => "market_status",
        }
    }

    fn ticker(&self) -> Option<&str> {
        match self {
            Channel::Ticker(t) => Some(t),
            _ => None,
        }
    }
}

/// Reads `channel` (and `ticker`) of a subscribe/unsubscribe message.
fn parse_channel(message: &simd_json::BorrowedValue<'_>) -> Result<Channel, String> {
    let Some(channel) = message.get("channel") else {
        return Err("Missing 'channel' (one of: ticker, patterns, alerts, market_status)".into());
    };
    let Some(channel) = channel.as_str() else {
        return Err("'channel' must be a string".into());
    };
    match channel {
        "ticker" => {
            let ticker = match message.get("ticker") {
                None => return Err("Missing 'ticker' for channel 'ticker'".into()),
                Some(t) => t.as_str().ok_or("'ticker' must be a string")?,
            };
            let ticker = normalize_ticker(ticker).map_err(|e| format!("Invalid ticker: {e}"))?;
            Ok(Channel::Ticker(ticker))
        }
        "patterns" => Ok(Channel::Patterns),
        "alerts" => Ok(Channel::Alerts),
        "market_status" => Ok(Channel::MarketStatus),
        other => Err(format!(
            "Unknown channel: {} (expected ticker, patterns, alerts or market_status)",
            truncate(other, 64)
        )),
    }
}

/// Shortens client-supplied text echoed in error messages.
fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Seed001Session {
    fn subscribe(&mut self, link: &mut impl Link, channel: Channel) {
        let room = channel.room();
        let name = channel.name();
        let ticker = channel.ticker().map(str::to_string);
        let confirmation = subscription_frame("subscribed", name, ticker.as_deref());
        let greet = Box::new(move |retained: &Retained<'_>| {
            let history = retained.payloads();
            let mut frames = vec![confirmation];
            match &channel {
                Channel::Ticker(t) => frames.push(history_frame(t, history)),
                // The current market status, so a dashboard need not wait for the next change.
                Channel::MarketStatus => {
                    if let Some(latest) = history.last() {
                        frames.push(frame::text(latest));
                    }
                }
                Channel::Patterns | Channel::Alerts => {}
            }
            frames
        });
        match link.join(room, greet) {
            Ok(Joined::New) => {}
            Ok(Joined::Already) => {
                link.send(subscription_frame("subscribed", name, ticker.as_deref()))
            }
            Err(e) => link.send(error_frame(&format!("Cannot subscribe: {e}"))),
        }
    }

    fn unsubscribe(&mut self, link: &mut impl Link, channel: Channel) {
        link.leave(&channel.room());
        link.send(subscription_frame(
            "unsubscribed",
            channel.name(),
            channel.ticker(),
        ));
    }
}

impl DialectSession for Seed001Session {
    const KIND: DialectKind = DialectKind::Seed001;

    /// The token's `sub` is the connection's `user_id`: a `?user_id=` naming
    /// someone else is refused, and a token user must meet the seed's rules.
    fn authenticated(&mut self, user: Option<&str>) -> Result<(), &'static str> {
        let Some(sub) = user else {
            return Ok(());
        };
        if validate_user_id(sub).is_err() {
            return Err("the token's sub is not a valid user_id (1-64 letters, digits, _ - . @)");
        }
        if self.user_id.as_deref().is_some_and(|named| named != sub) {
            return Err("user_id does not match the token's sub");
        }
        if self.user_id.is_none() {
            self.connection_id = connection_id(Some(sub));
            self.user_id = Some(sub.to_string());
        }
        Ok(())
    }

    fn on_open(&mut self, link: &mut impl Link) {
        link.send(frame::json(&ConnectionAck {
            r#type: "connection",
            status: "connected",
            connection_id: &self.connection_id,
            timestamp: time::now(),
        }));
    }

    fn on_message(&mut self, link: &mut impl Link, _kind: MessageKind, payload: &mut [u8]) {
        let message = match simd_json::to_borrowed_value(payload) {
            Ok(m) => m,
            Err(e) => {
                link.send(error_frame(&format!("Invalid JSON: {e}")));
                return;
            }
        };
        if !message.is_object() {
            link.send(error_frame("Invalid message: expected a JSON object"));
            return;
        }
        let kind = match message.get("type") {
            None => {
                link.send(error_frame("Missing message type"));
                return;
            }
            Some(kind) => match kind.as_str() {
                Some(kind) => kind,
                None => {
                    link.send(error_frame("Message type must be a string"));
                    return;
                }
            },
        };
        match kind {
            "ping" => link.send(frame::json(&Pong {
                r#type: "pong",
                timestamp: time::now(),
            })),
            "subscribe" | "unsubscribe" => match parse_channel(&message) {
                Ok(channel) if kind == "subscribe" => self.subscribe(link, channel),
                Ok(channel) => self.unsubscribe(link, channel),
                Err(e) => link.send(error_frame(&e)),
            },
            other => link.send(error_frame(&format!(
                "Unknown message type: {}",
                truncate(other, 64)
            ))),
        }
    }

    fn rate_limited(&mut self, limit_per_sec: u32) -> Bytes {
        error_frame(&format!(
            "Rate limit exceeded: at most {limit_per_sec} messages per second; message ignored"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close_code::CloseCode;
    use crate::dialect::JoinError;

    /// A link that records what the dialect did.
    #[derive(Default)]
    struct Recorder {
        sent: Vec<serde_json::Value>,
        joined: Vec<String>,
        left: Vec<String>,
        history: Vec<Bytes>,
    }

    fn payload(frame: &Bytes) -> serde_json::Value {
        let start = if frame[1] & 0x7f == 126 { 4 } else { 2 };
        serde_json::from_slice(&frame[start..]).unwrap()
    }

    impl Link for Recorder {
        fn send(&mut self, frame: Bytes) {
            self.sent.push(payload(&frame));
        }
        fn join(
            &mut self,
            room: RoomName,
            greet: crate::dialect::Greeting,
        ) -> Result<Joined, JoinError> {
            if self.joined.contains(&room.to_string()) {
                return Ok(Joined::Already);
            }
            self.joined.push(room.to_string());
            let entries: std::collections::VecDeque<(u64, Bytes)> = self
                .history
                .iter()
                .enumerate()
                .map(|(i, b)| (i as u64 + 1, b.clone()))
                .collect();
            let retained = crate::dialect::Retained {
                epoch: 1,
                seq: entries.len() as u64,
                entries: &entries,
                snapshot: &[],
            };
            for f in greet(&retained) {
                self.send(f);
            }
            Ok(Joined::New)
        }
        fn leave(&mut self, room: &RoomName) -> bool {
            self.left.push(room.to_string());
            true
        }
        fn close(&mut self, _code: CloseCode) {}
        fn set_timer(&mut self, _after: Option<std::time::Duration>) {}
    }

    fn message(session: &mut Seed001Session, link: &mut Recorder, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        session.on_message(link, MessageKind::Text, &mut bytes);
    }

    #[test]
    fn connection_ack_carries_user_prefixed_id() {
        let mut s = Seed001Session::new(Some("user123"));
        let mut link = Recorder::default();
        s.on_open(&mut link);
        assert_eq!(link.sent[0]["type"], "connection");
        assert_eq!(link.sent[0]["status"], "connected");
        assert!(
            link.sent[0]["connection_id"]
                .as_str()
                .unwrap()
                .starts_with("user123_")
        );
    }

    #[test]
    fn ticker_subscribe_confirms_then_sends_history() {
        let mut s = Seed001Session::new(None);
        let mut link = Recorder {
            history: vec![Bytes::from_static(br#"{"type":"price_update","price":1}"#)],
            ..Default::default()
        };
        message(
            &mut s,
            &mut link,
            r#"{"type":"subscribe","channel":"ticker","ticker":"aapl"}"#,
        );
        assert_eq!(link.joined, vec!["ticker:AAPL"]);
        assert_eq!(link.sent[0]["type"], "subscription");
        assert_eq!(link.sent[0]["action"], "subscribed");
        assert_eq!(link.sent[0]["ticker"], "AAPL");
        assert_eq!(link.sent[1]["type"], "history");
        assert_eq!(link.sent[1]["messages"][0]["price"], 1);
    }

    #[test]
    fn bad_messages_get_error_replies() {
        let mut s = Seed001Session::new(None);
        let mut link = Recorder::default();
        for (input, expect) in [
            ("{not json", "Invalid JSON"),
            ("[1,2]", "expected a JSON object"),
            (r#"{"channel":"patterns"}"#, "Missing message type"),
            (r#"{"type":7}"#, "must be a string"),
            (r#"{"type":"invalid"}"#, "Unknown message type: invalid"),
            (r#"{"type":"subscribe"}"#, "Missing 'channel'"),
            (
                r#"{"type":"subscribe","channel":"news"}"#,
                "Unknown channel: news",
            ),
            (
                r#"{"type":"subscribe","channel":"ticker"}"#,
                "Missing 'ticker'",
            ),
            (
                r#"{"type":"subscribe","channel":"ticker","ticker":"A B"}"#,
                "Invalid ticker",
            ),
        ] {
            link.sent.clear();
            message(&mut s, &mut link, input);
            assert_eq!(link.sent.len(), 1, "{input}");
            assert_eq!(link.sent[0]["type"], "error", "{input}");
            let text = link.sent[0]["message"].as_str().unwrap();
            assert!(text.contains(expect), "{input}: {text}");
        }
        assert!(link.joined.is_empty());
    }

    #[test]
    fn ping_gets_pong() {
        let mut s = Seed001Session::new(None);
        let mut link = Recorder::default();
        message(&mut s, &mut link, r#"{"type":"ping"}"#);
        assert_eq!(link.sent[0]["type"], "pong");
        assert!(link.sent[0]["timestamp"].is_string());
    }

    #[test]
    fn an_integer_beyond_64_bits_is_still_json() {
        let mut s = Seed001Session::new(None);
        let mut link = Recorder::default();
        message(
            &mut s,
            &mut link,
            r#"{"type":"ping","n":123456789012345678901234567890}"#,
        );
        assert_eq!(link.sent[0]["type"], "pong", "{:?}", link.sent);
    }

    #[test]
    fn unsubscribe_leaves_and_confirms() {
        let mut s = Seed001Session::new(None);
        let mut link = Recorder::default();
        message(
            &mut s,
            &mut link,
            r#"{"type":"unsubscribe","channel":"patterns"}"#,
        );
        assert_eq!(link.left, vec!["patterns"]);
        assert_eq!(link.sent[0]["action"], "unsubscribed");
        assert_eq!(link.sent[0]["channel"], "patterns");
    }

    #[test]
    fn user_ids_are_validated() {
        assert!(validate_user_id("user123").is_ok());
        assert!(validate_user_id("a@b.c-d_e").is_ok());
        assert!(validate_user_id("").is_err());
        assert!(validate_user_id("a b").is_err());
        assert!(validate_user_id(&"x".repeat(65)).is_err());
    }
}
