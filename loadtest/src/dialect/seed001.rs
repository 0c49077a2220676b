//! Seed 001 (`/api/ws`), the protocol roomcast speaks today. A subscriber
//! sends `{"type":"subscribe","channel":"ticker","ticker":"LT0"}` and waits
//! for the `subscription` confirmation and the `history` replay; events are
//! `price_update`s published with `POST /api/ws/broadcast/price`, whose
//! `volume` the server echoes as a JSON integer — so the scheduled send time
//! rides in `volume`. The `patterns` variant uses the ordered `patterns`
//! stream instead (`POST /api/ws/broadcast/pattern`, the time in the
//! `message` text), where a slow consumer is closed with 4008 rather than
//! conflated.

use std::io::Write;

use super::{Classified, Dialect};
use crate::scan::FieldScanner;

/// Which seed 001 stream the load runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// `ticker:<T>` rooms: one per ticker, conflating delivery.
    Ticker,
    /// The single `patterns` room: ordered delivery, 4008 on overflow.
    Patterns,
}

/// The seed 001 dialect.
pub struct Seed001 {
    /// Ticker (conflating, one room per ticker) or patterns (ordered, one room).
    stream: Stream,
    /// Finds the scheduled time in an event: `"volume":` for prices,
    /// `"message":"lt-ts=` for pattern alerts.
    scanner: FieldScanner,
}

/// Prefix of every event frame of the ticker stream (canonical serde JSON puts `type` first).
const PRICE_UPDATE: &[u8] = br#"{"type":"price_update""#;
/// Prefix of every event frame of the patterns stream.
const PATTERN_ALERT: &[u8] = br#"{"type":"pattern_alert""#;
const SUBSCRIPTION: &[u8] = br#"{"type":"subscription""#;
const HISTORY: &[u8] = br#"{"type":"history""#;
const ERROR: &[u8] = br#"{"type":"error""#;
/// Length of a patterns-stream `message` (under the seed's 1,024 cap).
const PATTERN_MESSAGE_LEN: usize = 1000;

impl Seed001 {
    /// Price updates on `ticker:<room>` rooms.
    pub fn ticker() -> Self {
        Seed001 {
            stream: Stream::Ticker,
            scanner: FieldScanner::new(br#""volume":"#),
        }
    }

    /// Pattern alerts on the one ordered `patterns` room.
    pub fn patterns() -> Self {
        Seed001 {
            stream: Stream::Patterns,
            scanner: FieldScanner::new(br#""message":"lt-ts="#),
        }
    }
}

/// The seed's price body, `{"ticker","price","change","change_percent","volume","high","low","open_price"}`,
/// with the scheduled time as `volume`; the price moves with `seq` so
/// consecutive events differ. Shared with the nchan dialect (same body).
pub fn write_price_body(ticker: &str, seq: u64, scheduled_us: u64, out: &mut Vec<u8>) {
    let cents = seq % 10_000;
    let price = 100.0 + cents as f64 / 100.0;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"ticker":"{ticker}","price":{price:.2},"change":0.25,"change_percent":0.25,"volume":{scheduled_us},"high":{high:.2},"low":99.0,"open_price":100.0}}"#,
        high = price + 1.0,
    );
}

impl Dialect for Seed001 {
    fn name(&self) -> &'static str {
        match self.stream {
            Stream::Ticker => "seed001",
            Stream::Patterns => "seed001-patterns",
        }
    }

    fn ws_path(&self, _rooms: &[String]) -> String {
        "/api/ws".to_string()
    }

    fn subscribe_messages(&self, rooms: &[String]) -> Vec<String> {
        match self.stream {
            Stream::Ticker => rooms
                .iter()
                .map(|r| format!(r#"{{"type":"subscribe","channel":"ticker","ticker":"{r}"}}"#))
                .collect(),
            Stream::Patterns => vec![r#"{"type":"subscribe","channel":"patterns"}"#.to_string()],
        }
    }

    fn confirmations(&self, rooms: usize) -> usize {
        match self.stream {
            // `subscription`, then `history`, per ticker.
            Stream::Ticker => 2 * rooms,
            Stream::Patterns => 1,
        }
    }

    fn classify(&self, payload: &[u8]) -> Classified {
        let event = match self.stream {
            Stream::Ticker => PRICE_UPDATE,
            Stream::Patterns => PATTERN_ALERT,
        };
        if payload.starts_with(event) {
            return match self.scanner.scan(payload) {
                Some(ts) => Classified::Event(ts),
                None => Classified::Other,
            };
        }
        if payload.starts_with(SUBSCRIPTION) || payload.starts_with(HISTORY) {
            Classified::Confirm
        } else if payload.starts_with(ERROR) {
            Classified::Error
        } else {
            Classified::Other
        }
    }

    fn delivery_room(&self, room: usize) -> usize {
        match self.stream {
            Stream::Ticker => room,
            Stream::Patterns => 0,
        }
    }

    fn publish_path(&self, _room: &str) -> String {
        match self.stream {
            Stream::Ticker => "/api/ws/broadcast/price".to_string(),
            Stream::Patterns => "/api/ws/broadcast/pattern".to_string(),
        }
    }

    fn write_publish_body(&self, room: &str, seq: u64, scheduled_us: u64, out: &mut Vec<u8>) {
        match self.stream {
            Stream::Ticker => write_price_body(room, seq, scheduled_us, out),
            Stream::Patterns => {
                let _ = write!(
                    out,
                    r#"{{"ticker":"{room}","pattern_type":"LOADTEST","score":1.0,"entry_price":100.0,"stop_price":99.0,"target_price":102.0,"message":"lt-ts={scheduled_us} seq={seq} "#
                );
                // Pad the message to PATTERN_MESSAGE_LEN characters (the seed's
                // cap is 1,024): big frames fill a stalled socket's buffers in
                // a few thousand publishes, so the ordered stream's overflow
                // (4008) is reached in seconds rather than minutes.
                let start = out.iter().rposition(|&b| b == b'"').map_or(0, |i| i + 1);
                let written = out.len() - start;
                out.resize(
                    out.len() + PATTERN_MESSAGE_LEN.saturating_sub(written),
                    b'x',
                );
                out.extend_from_slice(br#""}"#);
            }
        }
    }

    fn has_roomcast_metrics(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_seed_001_frames() {
        let d = Seed001::ticker();
        assert_eq!(
            d.classify(
                br#"{"type":"price_update","ticker":"LT0","price":1.0,"volume":123,"high":1.0}"#
            ),
            Classified::Event(123)
        );
        assert_eq!(
            d.classify(br#"{"type":"subscription","action":"subscribed","channel":"ticker","ticker":"LT0","timestamp":"t"}"#),
            Classified::Confirm
        );
        // History holds old price updates with volumes: a confirmation, never events.
        assert_eq!(
            d.classify(br#"{"type":"history","ticker":"LT0","messages":[{"type":"price_update","volume":5}],"timestamp":"t"}"#),
            Classified::Confirm
        );
        assert_eq!(
            d.classify(br#"{"type":"error","message":"Rate limit exceeded"}"#),
            Classified::Error
        );
        assert_eq!(
            d.classify(br#"{"type":"connection","status":"connected"}"#),
            Classified::Other
        );
        assert_eq!(d.confirmations(3), 6);
    }

    #[test]
    fn price_body_is_the_seed_shape_with_the_time_as_volume() {
        let mut out = Vec::new();
        write_price_body("LT3", 7, 1_763_781_234_567_890, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["ticker"], "LT3");
        assert_eq!(v["volume"].as_u64(), Some(1_763_781_234_567_890));
        for key in [
            "price",
            "change",
            "change_percent",
            "high",
            "low",
            "open_price",
        ] {
            assert!(v[key].is_number(), "{key}");
        }
        assert!(v["low"].as_f64() <= v["high"].as_f64());
    }

    #[test]
    fn patterns_stream_carries_the_time_in_the_message() {
        let d = Seed001::patterns();
        let mut out = Vec::new();
        d.write_publish_body("LT0", 1, 42, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        // What roomcast would send: the canonical event with the same message.
        let frame = format!(
            r#"{{"type":"pattern_alert","ticker":"LT0","pattern_type":"LOADTEST","score":1.0,"message":{},"timestamp":"t"}}"#,
            v["message"]
        );
        assert_eq!(d.classify(frame.as_bytes()), Classified::Event(42));
        assert_eq!(v["message"].as_str().unwrap().len(), PATTERN_MESSAGE_LEN);
        assert_eq!(d.delivery_room(5), 0);
        assert_eq!(d.confirmations(1), 1);
    }
}
