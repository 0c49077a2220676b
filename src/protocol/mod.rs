//! The events producers publish, grouped by family (the catalog's
//! [`Family`]: a room's family says how its events are read back):
//!
//! * **market**: seed 001's events, typed ([`MarketEvent`]), because roomcast
//!   reads them (alerts, stats); their canonical JSON is seed 001's message;
//! * **modeldata**: seed 000's messages, encoded by their feed ([`ModelDataFrame`]);
//! * **backtest** and **trading**: [`Neutral`] events, a `type`, a
//!   timestamp and a `data` object, which each dialect frames in its seed's
//!   envelope.
//!
//! Every event has one *canonical* encoding, made once per publish: what
//! room history keeps, what the fleet bus carries and what dialects frame.
//! Seed 001's frames are the market canonical JSON byte for byte. Any event
//! may replace its room's snapshot ([`Event::snapshot`]). Each event names
//! the room it belongs to.

pub mod json;
pub mod market;
pub mod modeldata;
pub mod neutral;
pub mod time;

use bytes::Bytes;

use crate::catalog::{Family, RoomName};
use crate::frame;
pub use market::{AlertTrigger, MarketEvent, MarketStatus, PatternAlert, PriceUpdate};
pub use neutral::{Envelope, Neutral, NeutralError};

/// Everything a producer can publish.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Seed 001's prices, pattern alerts, alert triggers, market status.
    Market(MarketEvent),
    /// A pre-encoded seed 000 message for a modeldata room; never parsed from
    /// clients or producers.
    ModelData(ModelDataFrame),
    /// A backtest or trading event, in the neutral shape.
    Neutral(Neutral),
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
            Event::Market(MarketEvent::PriceUpdate(p)) => RoomName::ticker(&p.ticker),
            Event::Market(MarketEvent::PatternAlert(_)) => RoomName::patterns(),
            Event::Market(MarketEvent::AlertTrigger(_)) => RoomName::alerts(),
            Event::Market(MarketEvent::MarketStatus(_)) => RoomName::market_status(),
            Event::ModelData(m) => m.room.clone(),
            Event::Neutral(n) => n.room().clone(),
        }
    }

    /// The canonical JSON as a WebSocket text frame: serialised once here, or
    /// the frame its producer already encoded.
    pub fn canonical_frame(&self) -> Bytes {
        match self {
            Event::Market(m) => crate::frame::text_with(256, |buf| serde_json::to_writer(buf, m))
                .expect("serialising an event cannot fail"),
            Event::ModelData(m) => m.frame.clone(),
            Event::Neutral(n) => n.canonical_frame().clone(),
        }
    }

    /// The frames that replace the room's snapshot when this event is
    /// published (what a new member is greeted with), if it carries them.
    pub fn snapshot(&self) -> Option<&[Bytes]> {
        match self {
            Event::Market(_) => None,
            Event::ModelData(m) => m.snapshot.as_deref(),
            Event::Neutral(n) => n.snapshot(),
        }
    }

    /// The frame members get instead of the canonical one until the room
    /// has sent every member a first message (a modeldata feed's
    /// `initial_modeldata`).
    pub fn first_frame(&self) -> Option<&Bytes> {
        match self {
            Event::ModelData(m) => m.first.as_ref(),
            Event::Market(_) | Event::Neutral(_) => None,
        }
    }

    /// What the fleet bus carries for this event, given its canonical
    /// frame: the canonical JSON, with the snapshot when a neutral event
    /// carries one (a modeldata snapshot is rebuilt from the message).
    pub fn wire_json(&self, canonical_frame: &Bytes) -> Bytes {
        match self {
            Event::Neutral(n) if n.snapshot().is_some() => n.wire_json(),
            _ => frame::payload(canonical_frame),
        }
    }

    /// Reads an event of `room` from the fleet bus (or a Redis stream) the
    /// way the room's catalog family reads it, with its canonical frame.
    pub fn from_wire(room: &RoomName, json: &[u8]) -> Option<(Event, Bytes)> {
        let event = match room.policy().family {
            Family::Market => Event::Market(serde_json::from_slice(json).ok()?),
            Family::ModelData => modeldata::event_from_wire(room.clone(), json)?,
            Family::Backtest | Family::Trading => {
                let event = Neutral::from_wire(room.clone(), json)?;
                let canonical = event.canonical_frame().clone();
                return Some((Event::Neutral(event), canonical));
            }
        };
        Some((event, frame::text(json)))
    }
}

/// The one room of a batch of events published together (`None` when
/// empty). Every event of a batch goes to the same room.
pub fn batch_room(events: &[Event]) -> Option<RoomName> {
    let room = events.first()?.room();
    debug_assert!(
        events.iter().all(|e| e.room() == room),
        "one room per batch"
    );
    Some(room)
}

impl From<MarketEvent> for Event {
    fn from(event: MarketEvent) -> Self {
        Event::Market(event)
    }
}

impl From<PriceUpdate> for Event {
    fn from(event: PriceUpdate) -> Self {
        Event::Market(MarketEvent::PriceUpdate(event))
    }
}

impl From<PatternAlert> for Event {
    fn from(event: PatternAlert) -> Self {
        Event::Market(MarketEvent::PatternAlert(event))
    }
}

impl From<AlertTrigger> for Event {
    fn from(event: AlertTrigger) -> Self {
        Event::Market(MarketEvent::AlertTrigger(event))
    }
}

impl From<MarketStatus> for Event {
    fn from(event: MarketStatus) -> Self {
        Event::Market(MarketEvent::MarketStatus(event))
    }
}

impl From<Neutral> for Event {
    fn from(event: Neutral) -> Self {
        Event::Neutral(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_update_serialises_to_seed_001_shape() {
        let event = Event::from(PriceUpdate {
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
        let room = RoomName::ticker("A");
        let (event, canonical) = Event::from_wire(&room, wire).unwrap();
        assert_eq!(crate::frame::payload(&canonical), &wire[..]);
        let canonical = crate::frame::payload(&event.canonical_frame());
        let (again, _) = Event::from_wire(&room, &canonical).unwrap();
        assert_eq!(crate::frame::payload(&again.canonical_frame()), canonical);
    }

    #[test]
    fn the_bus_reads_a_rooms_events_by_its_family_not_by_their_type_tag() {
        // Seed 004's `price_update` (a map of symbols) reuses seed 001's tag:
        // in a neutral room it is a neutral event, never a seed 001 price.
        let seed004 = br#"{"type":"price_update","timestamp":"t","data":{"symbols":{}}}"#;
        let run = RoomName::parse("backtest:b").unwrap();
        let (event, canonical) = Event::from_wire(&run, seed004).unwrap();
        assert!(matches!(&event, Event::Neutral(n) if n.kind() == "price_update"));
        assert_eq!(crate::frame::payload(&canonical), &seed004[..]);
        assert_eq!(Event::from_wire(&RoomName::ticker("A"), seed004), None);
        // A seed 001 price is not a neutral event either.
        let price = br#"{"type":"price_update","ticker":"A","price":1}"#;
        assert_eq!(Event::from_wire(&run, price), None);
    }
}
