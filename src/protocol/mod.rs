//! The events producers publish, in one shape shared by every source (HTTP
//! publish endpoints, the built-in market simulator, later Redis ingestion).
//!
//! An [`Event`] serialises (serde, internally tagged by `type`) to exactly the
//! JSON of seed 001's server messages; that *canonical* encoding is what room
//! history keeps and what the seed 001 dialect sends unchanged. Other dialects
//! re-shape the typed event. Each event names the room it belongs to.

pub mod modeldata;
pub mod time;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

/// A named stream whose members all receive the same bytes, e.g. `ticker:AAPL`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Arc<str>);

impl RoomName {
    /// Room of one ticker's price updates (`ticker:AAPL`); the ticker is upper-cased.
    pub fn ticker(ticker: &str) -> Self {
        RoomName(format!("{TICKER_PREFIX}{}", ticker.to_ascii_uppercase()).into())
    }

    /// Room of every pattern alert.
    pub fn patterns() -> Self {
        RoomName(Arc::from(PATTERNS))
    }

    /// Room of every user alert trigger.
    pub fn alerts() -> Self {
        RoomName(Arc::from(ALERTS))
    }

    /// Room of US market open/closed changes.
    pub fn market_status() -> Self {
        RoomName(Arc::from(MARKET_STATUS))
    }

    /// Room of a modeldata feed (seed 000): `modeldata` for the default options,
    /// `modeldata?<canonical query>` for a connection's own options.
    pub fn modeldata(canonical_query: Option<&str>) -> Self {
        match canonical_query {
            None => RoomName(Arc::from(MODELDATA)),
            Some(q) => RoomName(format!("{MODELDATA}?{q}").into()),
        }
    }

    /// Whether this is a modeldata feed's room.
    pub fn is_modeldata(&self) -> bool {
        self.0
            .strip_prefix(MODELDATA)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('?'))
    }

    /// A room named by the wire (a bus channel): any text, taken as is.
    pub fn from_wire(name: &str) -> Self {
        RoomName(Arc::from(name))
    }

    /// The room's name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ticker of a `ticker:` room.
    pub fn ticker_symbol(&self) -> Option<&str> {
        self.0.strip_prefix(TICKER_PREFIX)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const TICKER_PREFIX: &str = "ticker:";
const PATTERNS: &str = "patterns";
const ALERTS: &str = "alerts";
const MARKET_STATUS: &str = "market_status";
const MODELDATA: &str = "modeldata";

/// Longest accepted ticker symbol.
pub const MAX_TICKER_LEN: usize = 16;

/// Normalises a ticker symbol (upper case) or says why it is not one:
/// 1–16 characters of `A-Z 0-9 . - ^ = /`, e.g. `AAPL`, `BRK.B`, `BTC-USD`, `^GSPC`, `ES=F`.
pub fn normalize_ticker(raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("ticker must not be empty");
    }
    if raw.len() > MAX_TICKER_LEN {
        return Err("ticker must be at most 16 characters");
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'^' | b'=' | b'/'))
    {
        return Err("ticker may contain only letters, digits and . - ^ = /");
    }
    Ok(raw.to_ascii_uppercase())
}

/// A seed 001 `price_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceUpdate {
    pub ticker: String,
    pub price: f64,
    pub change: f64,
    pub change_percent: f64,
    #[serde(serialize_with = "number")]
    pub volume: f64,
    pub high: f64,
    pub low: f64,
    pub open: f64,
    pub timestamp: String,
}

/// A seed 001 `pattern_alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternAlert {
    pub ticker: String,
    pub pattern_type: String,
    pub score: f64,
    pub entry_price: f64,
    pub stop_price: f64,
    pub target_price: f64,
    pub risk_reward_ratio: f64,
    pub message: String,
    pub timestamp: String,
}

/// A seed 001 `alert_trigger`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTrigger {
    pub ticker: String,
    pub alert_type: String,
    pub trigger_price: f64,
    pub current_price: f64,
    pub message: String,
    pub timestamp: String,
}

/// A seed 001 `market_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketStatus {
    /// `open` or `closed`.
    pub status: String,
    pub next_open: Option<String>,
    pub next_close: Option<String>,
    pub timestamp: String,
}

/// Everything a producer can publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    PriceUpdate(PriceUpdate),
    PatternAlert(PatternAlert),
    AlertTrigger(AlertTrigger),
    MarketStatus(MarketStatus),
    /// A pre-encoded seed 000 message for a modeldata room; never parsed from
    /// clients or producers.
    #[serde(skip)]
    ModelData(ModelDataFrame),
}

/// A modeldata message, encoded once by its feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDataFrame {
    /// The feed's room.
    pub room: RoomName,
    /// The message as a WebSocket text frame.
    pub frame: Bytes,
    /// Sent instead of `frame` to members that have not had a first message
    /// (`initial_modeldata`) yet: decided by the room, under its lock.
    pub first: Option<Bytes>,
    /// When set, replaces the room's snapshot: the frames a new member gets
    /// on joining (the latest `initial_modeldata`, and the source status
    /// while it is degraded).
    pub snapshot: Option<Vec<Bytes>>,
}

impl Event {
    /// The room this event is delivered to.
    pub fn room(&self) -> RoomName {
        match self {
            Event::PriceUpdate(p) => RoomName::ticker(&p.ticker),
            Event::PatternAlert(_) => RoomName::patterns(),
            Event::AlertTrigger(_) => RoomName::alerts(),
            Event::MarketStatus(_) => RoomName::market_status(),
            Event::ModelData(m) => m.room.clone(),
        }
    }

    /// The canonical JSON as a WebSocket text frame: serialised once here, or
    /// the frame a modeldata feed already encoded.
    pub fn canonical_frame(&self) -> Bytes {
        match self {
            Event::ModelData(m) => m.frame.clone(),
            _ => crate::frame::text_with(256, |buf| serde_json::to_writer(buf, self))
                .expect("serialising an event cannot fail"),
        }
    }
}

/// Writes a float that holds a whole number as a JSON integer (volumes read
/// `75000000`, as in the seeds, not `75000000.0`).
fn number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_update_serialises_to_seed_001_shape() {
        let event = Event::PriceUpdate(PriceUpdate {
            ticker: "AAPL".into(),
            price: 150.25,
            change: 2.5,
            change_percent: 1.69,
            volume: 75_000_000.0,
            high: 151.0,
            low: 148.5,
            open: 149.0,
            timestamp: "2025-11-18T10:30:00Z".into(),
        });
        let canonical = crate::frame::payload(&event.canonical_frame());
        let json: serde_json::Value = serde_json::from_slice(&canonical).unwrap();
        assert_eq!(json["type"], "price_update");
        assert_eq!(json["open"], 149.0);
        assert_eq!(json["volume"].as_u64(), Some(75_000_000));
        assert!(canonical.starts_with(br#"{"type":"price_update""#));
        assert_eq!(event.room().as_str(), "ticker:AAPL");
    }

    #[test]
    fn an_event_survives_a_trip_through_its_canonical_json_byte_for_byte() {
        // What a fleet node does with an event from the bus: parse the
        // canonical JSON, then encode it again for its own members.
        let wire = br#"{"type":"price_update","ticker":"A","price":1,"change":0,"change_percent":1.33333333333333333333333333333369,"volume":0,"high":1,"low":1,"open":1,"timestamp":"2026-01-01T00:00:00Z"}"#;
        let event: Event = serde_json::from_slice(wire).unwrap();
        let canonical = crate::frame::payload(&event.canonical_frame());
        let again: Event = serde_json::from_slice(&canonical).unwrap();
        assert_eq!(crate::frame::payload(&again.canonical_frame()), canonical);
    }

    #[test]
    fn tickers_are_normalised_or_rejected() {
        assert_eq!(normalize_ticker(" aapl ").unwrap(), "AAPL");
        assert_eq!(normalize_ticker("btc-usd").unwrap(), "BTC-USD");
        assert!(normalize_ticker("").is_err());
        assert!(normalize_ticker("A B").is_err());
        assert!(normalize_ticker("ABCDEFGHIJKLMNOPQ").is_err());
    }
}

#[cfg(test)]
mod proptests {
    //! Ticker symbols and room names against their definitions, over
    //! arbitrary text (mostly near-valid symbols, so both sides are covered).
    use proptest::prelude::*;

    use super::*;

    /// Text that is often, but not always, a valid ticker.
    fn ticker_like() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ \t]{0,2}[A-Za-z0-9.^=/-]{0,18}[ \t]{0,2}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn normalize_ticker_accepts_exactly_the_documented_symbols_and_is_idempotent(
            raw in ticker_like(),
        ) {
            let trimmed = raw.trim();
            let valid = (1..=MAX_TICKER_LEN).contains(&trimmed.len())
                && trimmed
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-^=/".contains(&b));
            match normalize_ticker(&raw) {
                Ok(ticker) => {
                    prop_assert!(valid, "accepted {:?}", raw);
                    prop_assert_eq!(&ticker, &trimmed.to_ascii_uppercase());
                    prop_assert_eq!(normalize_ticker(&ticker), Ok(ticker.clone()));
                    let room = RoomName::ticker(&ticker);
                    prop_assert_eq!(room.ticker_symbol(), Some(ticker.as_str()));
                    prop_assert!(!room.is_modeldata());
                }
                Err(_) => prop_assert!(!valid, "refused {:?}", raw),
            }
        }

        #[test]
        fn only_modeldata_feed_rooms_are_modeldata_rooms(name in "(modeldata)?[a-z?=&:]{0,12}") {
            let room = RoomName::from_wire(&name);
            let is_feed = name == "modeldata" || name.starts_with("modeldata?");
            prop_assert_eq!(room.is_modeldata(), is_feed);
            if let Some(query) = name.strip_prefix("modeldata?") {
                prop_assert_eq!(RoomName::modeldata(Some(query)), room);
            }
        }
    }
}
