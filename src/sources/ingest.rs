//! The Redis ingest, a source (fleet mode): existing producers publish on
//! Redis channels, and the bus's subscriber hands what it receives there
//! (while this node holds the ingest lease, so one node ingests) to this
//! task, which publishes each message into the fleet in order, like any
//! producer.
//!
//! * Seed 001: JSON in the shape of its WebSocket messages on
//!   `price_updates`, `pattern_alerts`, `alert_triggers`, `market_status`.
//! * External backtest engines (the Python package's Redis transport):
//!   seed 002 messages on `backtest_events`, each with an optional top-level
//!   `"topic"` (default `backtest`); seed 003 messages on
//!   `backtest_stream_events`, each with a top-level `"backtest_id"`. One
//!   message or an array; consecutive messages of one topic or run go
//!   through the run registry together, exactly as the producer endpoints'
//!   (`crate::sources::backtest::external`). Refusals are logged: Redis
//!   pub/sub has no answer.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::RoomName;
use crate::protocol::{Event, MarketEvent};
use crate::publisher::Publisher;
use crate::sources::backtest::Backtests;
use crate::sources::backtest::external::{self, Target};
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

/// Publishes what arrives on the ingest channels.
#[derive(Debug)]
pub struct Ingest {
    /// Where ingested events go.
    publisher: Publisher,
    /// The run registry external backtest engines' messages go through.
    backtests: Arc<Backtests>,
    /// `(channel, payload)` as the subscriber received them, in order.
    queue: mpsc::Receiver<Ingested>,
}

impl Ingest {
    /// An ingest publishing through `publisher` what `queue` delivers.
    pub fn new(
        publisher: Publisher,
        backtests: Arc<Backtests>,
        queue: mpsc::Receiver<Ingested>,
    ) -> Self {
        Ingest {
            publisher,
            backtests,
            queue,
        }
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

    /// Feeds one message from an ingest channel into the fleet: a backtest
    /// channel's through the run registry; a seed 001 channel's as the
    /// JSON of a WebSocket message (its `type` optional: the channel implies it).
    async fn handle_message(&self, channel: &str, payload: &[u8]) {
        if matches!(channel, "backtest_events" | "backtest_stream_events") {
            return self.handle_backtest(channel, payload).await;
        }
        let Some(event) = parse(channel, payload) else {
            metrics().error();
            return;
        };
        if let Err(e) = self.publisher.publish(event).await {
            tracing::warn!(channel, error = %e, "could not publish an ingested event");
        }
    }
}

impl Ingest {
    /// Feeds an external backtest engine's messages through the run
    /// registry, a group of consecutive messages per topic or run.
    async fn handle_backtest(&self, channel: &str, payload: &[u8]) {
        let messages = match serde_json::from_slice(payload)
            .map_err(|e| e.to_string())
            .and_then(|v| external::messages(v).map_err(|e| e.to_string()))
        {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(channel, error = %e, "malformed message on a backtest ingest channel; skipped");
                metrics().error();
                return;
            }
        };
        for (target, group) in group_by_target(channel, messages) {
            let target = match target {
                Ok(target) => target,
                Err(e) => {
                    tracing::warn!(channel, error = %e, "backtest ingest message without a valid topic or run id; skipped");
                    metrics().error();
                    continue;
                }
            };
            if let Err(e) = self.backtests.publish_external(&target, group).await {
                tracing::warn!(channel, ?target, error = %e, "backtest ingest message refused");
                metrics().error();
            }
        }
    }
}

/// Consecutive messages with the same target, in order: a seed 002
/// message's `topic` (default `backtest`), a seed 003 message's `backtest_id`.
fn group_by_target(
    channel: &str,
    messages: Vec<Value>,
) -> Vec<(Result<Target, String>, Vec<Value>)> {
    let mut groups: Vec<(Result<Target, String>, Vec<Value>)> = Vec::new();
    for message in messages {
        let target = if channel == "backtest_events" {
            let topic = message
                .get("topic")
                .and_then(Value::as_str)
                .unwrap_or("backtest");
            RoomName::topic(topic)
                .map(Target::Topic)
                .map_err(|e| e.to_string())
        } else {
            match message.get("backtest_id").and_then(Value::as_str) {
                Some(id) => RoomName::backtest(id)
                    .map(|_| Target::Run(id.to_string()))
                    .map_err(|e| e.to_string()),
                None => Err("missing top-level \"backtest_id\"".to_string()),
            }
        };
        match groups.last_mut() {
            Some((last, group)) if *last == target => group.push(message),
            _ => groups.push((target, vec![message])),
        }
    }
    groups
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
    fn backtest_messages_group_by_consecutive_topic_or_run() {
        let m = |v: serde_json::Value| v;
        let groups = group_by_target(
            "backtest_events",
            vec![
                m(serde_json::json!({"type":"log_entry"})),
                m(serde_json::json!({"type":"log_entry","topic":"backtest"})),
                m(serde_json::json!({"type":"log_entry","topic":"logs"})),
                m(serde_json::json!({"type":"log_entry","topic":"bad topic"})),
            ],
        );
        let sizes: Vec<usize> = groups.iter().map(|(_, g)| g.len()).collect();
        assert_eq!(sizes, [2, 1, 1]);
        assert!(groups[2].0.is_err());
        let groups = group_by_target(
            "backtest_stream_events",
            vec![
                m(serde_json::json!({"type":"progress","backtest_id":"a"})),
                m(serde_json::json!({"type":"progress"})),
            ],
        );
        assert_eq!(groups[0].0, Ok(Target::Run("a".into())));
        assert!(groups[1].0.is_err());
    }

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
