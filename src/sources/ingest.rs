//! The seed 001 Redis ingest, a source (fleet mode): existing producers
//! publish JSON in the shape of seed 001's WebSocket messages on the Redis
//! channels `price_updates`, `pattern_alerts`, `alert_triggers` and
//! `market_status`; the bus's subscriber hands what it receives there (while
//! this node holds the ingest lease, so one node ingests) to this task,
//! which publishes each message into the fleet in order, like any producer.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Event, MarketEvent};
use crate::publisher::Publisher;
use crate::telemetry::metrics;

/// Messages from the ingest channels waiting to be published; beyond it the
/// subscriber drops them (logged), so a slow Redis cannot stall delivery.
pub const INGEST_QUEUE: usize = 4096;

/// One message from an ingest channel: `(channel, payload)`.
pub type Ingested = (String, Bytes);

/// The queue between the bus's subscriber and the ingest task.
pub fn queue() -> (mpsc::Sender<Ingested>, mpsc::Receiver<Ingested>) {
    mpsc::channel(INGEST_QUEUE)
}

/// Publishes what arrives on seed 001's channels.
#[derive(Debug)]
pub struct Ingest {
    /// Where ingested events go.
    publisher: Publisher,
    /// `(channel, payload)` as the subscriber received them, in order.
    queue: mpsc::Receiver<Ingested>,
}

impl Ingest {
    /// An ingest publishing through `publisher` what `queue` delivers.
    pub fn new(publisher: Publisher, queue: mpsc::Receiver<Ingested>) -> Self {
        Ingest { publisher, queue }
    }

    /// Publishes, in order, until `shutdown` (or the subscriber is gone).
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                item = self.queue.recv() => match item {
                    Some((channel, payload)) => self.handle_message(&channel, &payload).await,
                    None => return,
                },
            }
        }
    }

    /// Feeds one message from a seed 001 Redis channel into the fleet: the
    /// JSON of a WebSocket message (its `type` optional: the channel implies it).
    async fn handle_message(&self, channel: &str, payload: &[u8]) {
        let Some(event) = parse(channel, payload) else {
            metrics().error();
            return;
        };
        if let Err(e) = self.publisher.publish(event).await {
            tracing::warn!(channel, error = %e, "could not publish an ingested event");
        }
    }
}

/// The event a message on `channel` carries, or `None` (logged).
fn parse(channel: &str, payload: &[u8]) -> Option<Event> {
    let mut value: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(channel, error = %e, "malformed JSON on an ingest channel; skipped");
            return None;
        }
    };
    if let Some(object) = value.as_object_mut()
        && !object.contains_key("type")
    {
        let kind = match channel {
            "price_updates" => "price_update",
            "pattern_alerts" => "pattern_alert",
            "alert_triggers" => "alert_trigger",
            _ => "market_status",
        };
        object.insert("type".into(), kind.into());
    }
    match serde_json::from_value::<MarketEvent>(value) {
        Ok(event) => Some(event.into()),
        Err(e) => {
            tracing::warn!(channel, error = %e, "unrecognised message on an ingest channel; skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_implies_the_type_and_bad_messages_are_skipped() {
        let Some(Event::Market(MarketEvent::PriceUpdate(p))) = parse(
            "price_updates",
            br#"{"ticker":"AAPL","price":1,"change":0,"change_percent":0,"volume":0,"high":1,"low":1,"open":1,"timestamp":"2025-11-18T10:30:00Z"}"#,
        ) else {
            panic!("not a price");
        };
        assert_eq!(p.timestamp, "2025-11-18T10:30:00Z");
        assert!(parse("price_updates", b"{oops").is_none());
        assert!(parse("pattern_alerts", br#"{"ticker":"AAPL"}"#).is_none());
    }
}
