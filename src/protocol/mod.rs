//! The events producers publish, in one shape shared by every source (HTTP
//! publish endpoints, the built-in market simulator, later Redis ingestion).
//!
//! An [`Event`] serialises (serde, internally tagged by `type`) to exactly the
//! JSON of seed 001's server messages; that *canonical* encoding is what room
//! history keeps and what the seed 001 dialect sends unchanged. Other dialects
//! re-shape the typed event. Each event names the room it belongs to.

pub mod modeldata;
pub mod time;

use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

use crate::catalog::RoomName;

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
}
