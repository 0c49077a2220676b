//! The subscriber: one pub/sub connection per node, subscribed to the
//! channels of the rooms with local members (hinted by the room registry)
//! and, while this node holds the ingest lease, to seed 001's channels;
//! reconnecting with backoff, catching every room up after a reconnect.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

use super::{
    COMMAND_TIMEOUT, MAX_BACKOFF, MIN_BACKOFF, PING_INTERVAL, RESUME_WAIT, RedisBus, with_timeout,
};
use crate::bus::Lease;
use crate::catalog::RoomName;
use crate::protocol::json;
use crate::telemetry::metrics;

/// The Redis channels existing producers publish on, read by the ingest
/// lease holder (`crate::sources::ingest`): seed 001's (JSON in the shape of
/// its WebSocket messages), and external backtest engines' (seed 002's and
/// seed 003's messages, with their topic or run id beside them).
pub const INGEST_CHANNELS: [&str; 6] = [
    "price_updates",
    "pattern_alerts",
    "alert_triggers",
    "market_status",
    "backtest_events",
    "backtest_stream_events",
];

/// What travels on a room channel: one event, `seq:epoch:json`, or a batch
/// of consecutive events, `first-last:epoch:[json,…]`.
#[derive(Debug, PartialEq, Eq)]
enum BusMessage<'a> {
    One {
        seq: u64,
        epoch: u64,
        json: &'a [u8],
    },
    Batch {
        first: u64,
        epoch: u64,
        jsons: Vec<&'a [u8]>,
    },
}

fn parse_message(payload: &[u8]) -> Option<BusMessage<'_>> {
    let mut parts = payload.splitn(3, |&b| b == b':');
    let seqs = std::str::from_utf8(parts.next()?).ok()?;
    let epoch = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let json = parts.next()?;
    let Some((first, last)) = seqs.split_once('-') else {
        return Some(BusMessage::One {
            seq: seqs.parse().ok()?,
            epoch,
            json,
        });
    };
    let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
    let jsons = json::elements(json)?;
    (first >= 1 && last.checked_sub(first)? + 1 == jsons.len() as u64).then_some(
        BusMessage::Batch {
            first,
            epoch,
            jsons,
        },
    )
}

/// The node's pub/sub loop over the bus (see the module docs).
pub struct Subscriber {
    /// The bus it delivers into: its rooms, its catch-up from the streams.
    bus: Arc<RedisBus>,
    /// Held while this node feeds seed 001's Redis channels in.
    ingest: Arc<Lease>,
    /// Where messages on seed 001's channels go (the ingest source).
    ingest_tx: mpsc::Sender<(String, Bytes)>,
}

impl Subscriber {
    /// The subscriber of `bus`: seed 001's channels are subscribed while
    /// `ingest` is held, and what arrives on them goes to `ingest_tx`.
    pub fn new(
        bus: Arc<RedisBus>,
        ingest: Arc<Lease>,
        ingest_tx: mpsc::Sender<(String, Bytes)>,
    ) -> Self {
        Subscriber {
            bus,
            ingest,
            ingest_tx,
        }
    }

    /// Keeps one pub/sub connection, subscribed to the rooms with local
    /// members (and to seed 001's channels while the ingest lease is held),
    /// reconnecting with backoff until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let Subscriber {
            bus,
            ingest,
            ingest_tx,
        } = self;
        let Some(mut hints) = bus.hints.lock().take() else {
            return;
        };
        let mut backoff = MIN_BACKOFF;
        let room_prefix = format!("{}:r:", bus.config.prefix);
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = tokio::time::timeout(COMMAND_TIMEOUT, bus.client.get_async_pubsub()) => c,
            };
            let pubsub = match connected {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "redis pub/sub connect failed");
                    bus.subscribed.store(false, Ordering::Relaxed);
                    backoff = bus.backoff(backoff, &mut hints, &shutdown).await;
                    continue;
                }
                Err(_) => {
                    tracing::debug!("redis pub/sub connect timed out");
                    backoff = bus.backoff(backoff, &mut hints, &shutdown).await;
                    continue;
                }
            };
            let (mut sink, mut stream) = pubsub.split();
            // Everything with members now, plus hints that arrive meanwhile.
            while hints.try_recv().is_ok() {}
            let mut subscribed: HashSet<RoomName> = bus
                .rooms
                .member_counts()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            let channels: Vec<String> = subscribed
                .iter()
                .map(|r| bus.key("r", r.as_str()))
                .collect();
            if !channels.is_empty()
                && let Err(e) = with_timeout(sink.subscribe(&channels)).await
            {
                tracing::warn!(error = %e, "redis subscribe failed");
                backoff = bus.backoff(backoff, &mut hints, &shutdown).await;
                continue;
            }
            let mut ingesting = false;
            // New rooms load their history; the others catch up on what was
            // published while this node was not listening.
            let mut caught_up = true;
            for room in &subscribed {
                bus.preload(room).await;
                if let Some((epoch, last)) = bus.rooms.get(room).and_then(|r| r.resume_point()) {
                    // A new lineage (Redis lost the room) numbers from 1 again:
                    // read its stream from the start.
                    let after = if bus.epoch_of(room).await == Some(epoch) {
                        last
                    } else {
                        0
                    };
                    if let Err(e) = bus.fill_gap(room, after, None).await {
                        tracing::warn!(room = %room, error = %e, "catch-up failed; reconnecting");
                        caught_up = false;
                        break;
                    }
                }
            }
            if !caught_up {
                backoff = bus.backoff(backoff, &mut hints, &shutdown).await;
                continue;
            }
            bus.subscribed.store(true, Ordering::Relaxed);
            tracing::info!(rooms = subscribed.len(), "redis bus subscribed");
            backoff = MIN_BACKOFF;
            let mut ping = tokio::time::interval(PING_INTERVAL);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let reason = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    message = stream.next() => {
                        let Some(message) = message else { break "connection closed" };
                        let channel = message.get_channel_name();
                        if let Some(room) = channel.strip_prefix(room_prefix.as_str()) {
                            let Some(parsed) = parse_message(message.get_payload_bytes()) else {
                                tracing::warn!(channel, "malformed bus message; skipped");
                                metrics().error();
                                continue;
                            };
                            let Some(room) = RoomName::from_wire(room) else {
                                tracing::warn!(channel, "bus message for a room no catalog row names; skipped");
                                continue;
                            };
                            match parsed {
                                BusMessage::One { seq, epoch, json } => {
                                    bus.handle_event(&room, seq, epoch, json).await
                                }
                                BusMessage::Batch { first, epoch, jsons } => {
                                    bus.handle_batch(&room, first, epoch, &jsons).await
                                }
                            }
                        } else if INGEST_CHANNELS.contains(&channel) {
                            // Published by its own task: a slow Redis must not stall delivery.
                            let item = (channel.to_string(), Bytes::copy_from_slice(message.get_payload_bytes()));
                            if ingest_tx.try_send(item).is_err() {
                                tracing::warn!(channel, "ingest queue full; message dropped");
                                metrics().error();
                            }
                        }
                    }
                    Some(first) = hints.recv() => {
                        // Batch every pending hint into one SUBSCRIBE and one UNSUBSCRIBE.
                        let mut changed = HashSet::from([first]);
                        while let Ok(more) = hints.try_recv() {
                            changed.insert(more);
                        }
                        let (mut add, mut remove, mut added) = (Vec::new(), Vec::new(), Vec::new());
                        for room in changed {
                            let wanted = bus.rooms.has_members(&room);
                            if wanted {
                                // Also a room re-created while still subscribed needs its history.
                                if subscribed.insert(room.clone()) {
                                    add.push(bus.key("r", room.as_str()));
                                }
                                added.push(room);
                            } else if !wanted && subscribed.remove(&room) {
                                remove.push(bus.key("r", room.as_str()));
                            }
                        }
                        if !add.is_empty() && let Err(e) = with_timeout(sink.subscribe(&add)).await {
                            break if e.is_timeout() { "subscribe timed out" } else { "subscribe failed" };
                        }
                        for room in &added {
                            bus.preload(room).await;
                        }
                        if !remove.is_empty() && let Err(e) = with_timeout(sink.unsubscribe(&remove)).await {
                            break if e.is_timeout() { "unsubscribe timed out" } else { "unsubscribe failed" };
                        }
                    }
                    _ = ping.tick() => {
                        // Resuming members whose seq the room never reached.
                        bus.rooms.admit_overdue(RESUME_WAIT);
                        if with_timeout(sink.ping::<redis::Value>()).await.is_err() {
                            break "ping failed";
                        }
                        let ingest_now = ingest.is_held();
                        if ingest_now != ingesting {
                            let r = if ingest_now {
                                with_timeout(sink.subscribe(&INGEST_CHANNELS[..])).await
                            } else {
                                with_timeout(sink.unsubscribe(&INGEST_CHANNELS[..])).await
                            };
                            if r.is_err() {
                                break "ingest subscribe failed";
                            }
                            ingesting = ingest_now;
                        }
                    }
                }
            };
            bus.subscribed.store(false, Ordering::Relaxed);
            tracing::warn!(reason, "redis pub/sub connection lost; reconnecting");
            backoff = bus.backoff(backoff, &mut hints, &shutdown).await;
        }
    }
}

impl RedisBus {
    /// Waits `delay` ±20 % (or until shutdown) while the pub/sub connection
    /// is down, and returns the next delay. Rooms created meanwhile still
    /// load their history (or start empty when Redis is unreachable), so their
    /// members are never kept waiting on Redis; on reconnect they are
    /// subscribed and caught up like every other room.
    async fn backoff(
        &self,
        delay: Duration,
        hints: &mut UnboundedReceiver<RoomName>,
        shutdown: &CancellationToken,
    ) -> Duration {
        let jittered = delay.mul_f64(rand::rng().random_range(0.8..1.2));
        let deadline = tokio::time::Instant::now() + jittered;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(deadline) => break,
                Some(room) = hints.recv() => self.preload(&room).await,
            }
        }
        (delay * 2).min(MAX_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_split_into_seq_epoch_and_json() {
        assert_eq!(
            parse_message(b"12:345:{\"a\":\"b:c\"}"),
            Some(BusMessage::One {
                seq: 12,
                epoch: 345,
                json: &b"{\"a\":\"b:c\"}"[..]
            })
        );
        assert_eq!(parse_message(b"x:1:{}"), None);
        assert_eq!(parse_message(b"1:2"), None);
    }

    #[test]
    fn a_batch_splits_into_its_events_and_must_match_its_seq_range() {
        assert_eq!(
            parse_message(b"7-9:5:[{\"a\":\"],\"},{},{\"b\":[1,2]}]"),
            Some(BusMessage::Batch {
                first: 7,
                epoch: 5,
                jsons: vec![&b"{\"a\":\"],\"}"[..], b"{}", b"{\"b\":[1,2]}"],
            })
        );
        assert_eq!(
            parse_message(b"7-8:5:[{},{},{}]"),
            None,
            "three events for two seqs"
        );
        assert_eq!(parse_message(b"9-7:5:[{}]"), None);
        assert_eq!(parse_message(b"0-0:5:[{}]"), None);
        assert_eq!(parse_message(b"1-2:5:[{},"), None, "not JSON");
    }
}
