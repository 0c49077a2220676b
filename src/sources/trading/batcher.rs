//! The price batcher: every `WEBSOCKET_PRICE_UPDATE_INTERVAL` seconds, one
//! seed 004 `price_update` per distinct symbol set, holding the latest
//! quote of each of its symbols from the [`QuoteBook`] (so prices published
//! over HTTP count as much as the simulator's). The "all symbols" batch
//! goes to `s004:prices`, each narrowed set's to its `s004:prices?…` room;
//! every connection with that set shares the one encode, and a room keeps
//! its latest batch to greet a joiner. A set held for the first time is
//! batched at once.
//!
//! In a fleet one node batches (the `trading` lease): every node registers
//! the sets its connections hold in Redis, and the holder reads the latest
//! price of every ticker room from Redis before each round, so prices
//! published on any node are in its batches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::events;
use super::health::{Stream, TradingHealth};
use super::price_sets::PriceSets;
use super::quotes::{QuoteBook, batch_data};
use crate::bus::{Producer, RedisBus};
use crate::catalog::{RoomKind, RoomName, TICKER_PREFIX};
use crate::protocol::{Event, MarketEvent, time};
use crate::publisher::Publisher;

/// The fleet registry of held price sets.
const SETS_REGISTRY: &str = "s004:prices";

/// The price batcher (see the module docs).
pub struct PriceBatcher {
    /// Where batches go; whether this node holds the `trading` lease.
    pub publisher: Publisher,
    /// The latest quotes.
    pub quotes: Arc<QuoteBook>,
    /// The sets this node's connections hold.
    pub sets: Arc<PriceSets>,
    /// `stream_health.price_updates`.
    pub health: Arc<TradingHealth>,
    /// Between batches.
    pub interval: Duration,
    /// The fleet bus, in fleet mode: the set registry and the fleet's quotes.
    pub fleet: Option<Arc<RedisBus>>,
    /// Whether it batches (`WEBSOCKET_ENABLED`). Off, it still reads the
    /// fleet's quotes back each round, for the account and the charts.
    pub batching: bool,
}

impl PriceBatcher {
    /// Batches every interval (and each new set at once) until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut running = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    running = self.lead(running);
                    self.handle_round().await;
                }
                () = self.sets.fresh() => {
                    let new = self.sets.take_new();
                    if let Some(fleet) = &self.fleet {
                        // The holder may be another node: tell it now.
                        let _ = fleet.want_rooms(SETS_REGISTRY, &new, self.interval * 3).await;
                    }
                    if running && self.publisher.holds(Producer::Trading) {
                        let entries = self.quotes.batch_entries();
                        self.publish_sets(&entries, new).await;
                    }
                }
            }
        }
        self.health.stopped(Stream::PriceUpdates);
    }

    /// Follows the lease: records a start or a stop in the stream's health.
    fn lead(&self, running: bool) -> bool {
        let holds = self.batching && self.publisher.holds(Producer::Trading);
        match (running, holds) {
            (false, true) => self.health.started(Stream::PriceUpdates),
            (true, false) => self.health.stopped(Stream::PriceUpdates),
            _ => {}
        }
        holds
    }

    /// One round: register this node's sets; if batching, publish every set's batch.
    async fn handle_round(&self) {
        let mut sets = self.sets.held();
        if let Some(fleet) = &self.fleet
            && let Err(e) = fleet
                .want_rooms(SETS_REGISTRY, &sets, self.interval * 3)
                .await
        {
            tracing::debug!(error = %e, "price sets not registered in the fleet");
        }
        if !self.publisher.holds(Producer::Trading) {
            return;
        }
        if let Some(fleet) = &self.fleet {
            self.refresh_quotes(fleet).await;
            if !self.batching {
                return;
            }
            match fleet.wanted_rooms(SETS_REGISTRY).await {
                Ok(wanted) => sets.extend(
                    wanted
                        .into_iter()
                        .filter(|room| room.kind() == RoomKind::S004Prices),
                ),
                Err(e) => tracing::debug!(error = %e, "the fleet's price sets not read"),
            }
            sets.sort_unstable();
            sets.dedup();
        }
        let entries = self.quotes.batch_entries();
        sets.push(RoomName::s004_prices(None).expect("the all room"));
        self.publish_sets(&entries, sets).await;
        self.health.ran(Stream::PriceUpdates);
    }

    /// Reads the latest price of every ticker room of the fleet.
    async fn refresh_quotes(&self, fleet: &RedisBus) {
        match fleet.latest_events(TICKER_PREFIX).await {
            Ok(latest) => {
                for (room, json) in latest {
                    if let Some((Event::Market(MarketEvent::PriceUpdate(price)), _)) =
                        Event::from_wire(&room, &json)
                    {
                        self.quotes.record_if_new(price);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "the fleet's quotes not read"),
        }
    }

    /// Publishes one batch per set (nothing for a set with no quote yet).
    async fn publish_sets(&self, entries: &BTreeMap<String, Vec<u8>>, sets: Vec<RoomName>) {
        if sets.is_empty() {
            return;
        }
        let now = time::now();
        for room in sets {
            let symbols = room.symbols();
            let narrowed = (!symbols.is_empty()).then_some(&symbols[..]);
            let Some(data) = batch_data(entries, narrowed) else {
                continue;
            };
            let event = events::price_update(room, &now, &data);
            match self.publisher.publish(Event::Neutral(event)).await {
                Ok(_) => self.health.published(Stream::PriceUpdates),
                Err(e) => {
                    self.health.failed(Stream::PriceUpdates);
                    tracing::warn!(error = %e, "price batch not published");
                }
            }
        }
    }
}
