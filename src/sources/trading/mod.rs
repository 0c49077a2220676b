//! Seed 004's producers, on the embedded feed: the price batcher
//! ([`batcher`]: `price_update`, one batch per distinct symbol set, from
//! the [`quotes`] every price publish records) and the paper-trading
//! account ([`trader`]: `signal`, `trade_executed`, `portfolio_update`),
//! with the health `GET /websocket/status` reports ([`health`]). The
//! [`Trading`] handle is what the `/ws` sessions and the status and
//! producer endpoints need of them; `lib::run` spawns the producers.

pub mod batcher;
pub mod events;
pub mod health;
pub mod live;
pub mod market_data;
pub mod price_sets;
pub mod quotes;
pub mod settings;
pub mod trader;
pub mod viewers;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use settings::{TradingSettings, WsProtocol};

use crate::bus::Bus;
use crate::publisher::Publisher;
use health::{Stream, TradingHealth};
use price_sets::PriceSets;
use quotes::QuoteBook;

/// What seed 004's sessions and endpoints share with its producers.
#[derive(Debug)]
pub struct Trading {
    /// The settings (`WEBSOCKET_*`, `ROOMCAST_WS_*`, `ROOMCAST_PAPER_*`).
    pub settings: TradingSettings,
    /// The latest quotes (the symbols an "unsubscribe from all" leaves).
    pub quotes: Arc<QuoteBook>,
    /// The narrowed price sets connections hold.
    pub price_sets: Arc<PriceSets>,
    /// The four streams' health.
    pub health: Arc<TradingHealth>,
    /// Seed 003's live-trading viewers, by filter.
    pub live_viewers: Arc<viewers::Viewers>,
}

impl Trading {
    /// The handle for `settings`, around the quote book the publisher records into.
    pub fn new(settings: TradingSettings, quotes: Arc<QuoteBook>) -> Self {
        Trading {
            price_sets: PriceSets::new(settings.max_price_feeds),
            health: Arc::new(TradingHealth::new(
                settings.price_interval.get(),
                settings.portfolio_interval.get(),
            )),
            live_viewers: Arc::default(),
            quotes,
            settings,
        }
    }

    /// Spawns the price batcher and (unless `ROOMCAST_PAPER_TRADING=false`)
    /// the paper account, when seed 004's streams are enabled. With the
    /// account off, its streams are an external system's, open from now.
    pub fn spawn_producers(
        &self,
        publisher: &Publisher,
        bus: &Bus,
        node: &str,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let fleet = match bus {
            Bus::Fleet(fleet) => Some(Arc::clone(&fleet.redis)),
            Bus::Local(_) => None,
        };
        if self.settings.enabled || fleet.is_some() {
            let batcher = batcher::PriceBatcher {
                publisher: publisher.clone(),
                quotes: Arc::clone(&self.quotes),
                sets: Arc::clone(&self.price_sets),
                health: Arc::clone(&self.health),
                interval: self.settings.price_interval.get(),
                fleet: fleet.clone(),
                batching: self.settings.enabled,
            };
            tracker.spawn(batcher.run(shutdown.clone()));
        }
        if self.settings.market_data {
            let builder = market_data::MarketDataBuilder {
                publisher: publisher.clone(),
                quotes: Arc::clone(&self.quotes),
                timeframes: self.settings.timeframes(),
            };
            tracker.spawn(builder.run(shutdown.clone()));
        }
        if !self.settings.paper_trading {
            if self.settings.enabled {
                for stream in [Stream::Signals, Stream::Trades, Stream::Portfolio] {
                    self.health.started_if_stopped(stream);
                }
            }
            return;
        }
        let trader = trader::PaperTrader {
            publisher: publisher.clone(),
            quotes: Arc::clone(&self.quotes),
            health: Arc::clone(&self.health),
            settings: self.settings.paper(),
            portfolio_interval: self.settings.portfolio_interval.get(),
            seed004: self.settings.enabled,
            store: fleet.map(|redis| trader::AccountStore {
                lease_key: redis.lease_key("trading"),
                key: redis.key("paper", "account"),
                node: node.to_string(),
                redis,
            }),
        };
        tracker.spawn(trader.run(shutdown.clone()));
    }
}
