//! The embedded market simulator: the feed `cargo run --release` shows with no
//! backend. Each symbol follows a random walk with consistent daily OHLC,
//! change, change percent and accumulated volume; equities tick every
//! `REALTIME_UPDATE_INTERVAL` seconds while the US market is open and every
//! `REALTIME_AFTER_HOURS_INTERVAL` seconds otherwise, crypto (`*-USD`) always
//! at the market-hours rate. It publishes `market_status` from the real US
//! equity schedule (at start and on every open/close), and runs the pattern
//! detector on each symbol's ticks (one bar per tick) to publish
//! `pattern_alert`s. It is one source among others: switch it off with
//! `ROOMCAST_SIMULATOR=false` and HTTP publishing works the same.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::America::New_York;
use clap::ArgAction;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::patterns::{Bar, PatternConfig, PatternDetector, PatternSignal};
use crate::bus::Producer;
use crate::catalog::normalize_ticker;
use crate::config_error::{ConfigError, check_secs, invalid};
use crate::protocol::json::round;
use crate::protocol::{Event, MarketStatus, PatternAlert, PriceUpdate, time};
use crate::publisher::Publisher;
use crate::seconds::Seconds;
use engine::nyse::{MarketSession, session_at};

/// Standard deviation of one tick's log return for equities and crypto.
const EQUITY_TICK_SIGMA: f64 = 0.0015;
const CRYPTO_TICK_SIGMA: f64 = 0.0025;

/// One simulated symbol's state.
#[derive(Debug)]
struct Symbol {
    /// Normalised ticker.
    ticker: String,
    /// Crypto trades around the clock on a UTC day; equities on the US schedule.
    crypto: bool,
    /// Last price.
    price: f64,
    /// Previous day's last price: the base of `change`.
    prev_close: f64,
    /// Today's first price.
    open: f64,
    /// Today's high.
    high: f64,
    /// Today's low.
    low: f64,
    /// Today's accumulated volume.
    volume: f64,
    /// Typical volume of one tick.
    tick_volume: f64,
    /// The trading day `open`/`high`/`low`/`volume` belong to.
    day: NaiveDate,
    /// When the symbol last ticked (after-hours pacing).
    last_tick: Option<Instant>,
    /// Breakout detector over this symbol's ticks.
    detector: PatternDetector,
}

fn starting_price(ticker: &str) -> f64 {
    match ticker {
        "AAPL" => 190.0,
        "MSFT" => 420.0,
        "TSLA" => 250.0,
        "NVDA" => 130.0,
        "AMZN" => 185.0,
        "GOOGL" => 170.0,
        "META" => 560.0,
        "BTC-USD" => 95_000.0,
        "ETH-USD" => 3_400.0,
        _ => 100.0,
    }
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Default symbols of the embedded market simulator.
pub const DEFAULT_SYMBOLS: &str = "AAPL,MSFT,TSLA,NVDA,AMZN,GOOGL,META,BTC-USD,ETH-USD";

/// The embedded market simulator's settings, a section of [`crate::Config`].
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct MarketSettings {
    /// Run the embedded market simulator (prices, market status, patterns).
    #[arg(long, env = "ROOMCAST_SIMULATOR", default_value_t = true, action = ArgAction::Set)]
    pub simulator: bool,

    /// Symbols the simulator publishes (comma-separated).
    #[arg(long, env = "ROOMCAST_SYMBOLS", value_delimiter = ',', default_value = DEFAULT_SYMBOLS)]
    pub symbols: Vec<String>,

    /// Seed for the simulator's random walk (random when unset).
    #[arg(long, env = "ROOMCAST_SIM_SEED")]
    pub sim_seed: Option<u64>,

    /// Seconds between simulated price updates during US market hours (and
    /// always for crypto symbols).
    #[arg(
        long = "update-interval",
        env = "REALTIME_UPDATE_INTERVAL",
        default_value_t = Seconds::from_secs(5)
    )]
    pub update_interval: Seconds,

    /// Seconds between simulated equity price updates outside market hours.
    #[arg(
        long = "after-hours-interval",
        env = "REALTIME_AFTER_HOURS_INTERVAL",
        default_value_t = Seconds::from_secs(60)
    )]
    pub after_hours_interval: Seconds,
}

impl MarketSettings {
    /// Rejects values the simulator cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs("REALTIME_UPDATE_INTERVAL", self.update_interval.get())?;
        check_secs(
            "REALTIME_AFTER_HOURS_INTERVAL",
            self.after_hours_interval.get(),
        )?;
        if self.simulator && self.symbols.is_empty() {
            return Err(invalid("ROOMCAST_SYMBOLS", "must name at least one symbol"));
        }
        for symbol in &self.symbols {
            normalize_ticker(symbol)
                .map_err(|e| invalid("ROOMCAST_SYMBOLS", format!("{symbol:?}: {e}")))?;
        }
        Ok(())
    }
}

/// The simulator: symbols plus the pacing configuration.
#[derive(Debug)]
pub struct MarketSimulator {
    /// Simulated symbols.
    symbols: Vec<Symbol>,
    /// Random source (seeded by `ROOMCAST_SIM_SEED` when set).
    rng: SmallRng,
    /// Tick period during market hours (and for crypto).
    update_interval: Duration,
    /// Equity tick period outside market hours.
    after_hours_interval: Duration,
    /// Where ticks are published (and whether this node runs the simulator).
    publisher: Publisher,
}

impl MarketSimulator {
    /// A simulator for the configured symbols, publishing through `publisher`.
    pub fn new(settings: &MarketSettings, publisher: Publisher) -> Self {
        let mut rng = match settings.sim_seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        let now = Utc::now();
        let symbols = settings
            .symbols
            .iter()
            .filter_map(|s| normalize_ticker(s).ok())
            .map(|ticker| {
                let crypto = ticker.ends_with("-USD");
                let price = starting_price(&ticker) * (1.0 + 0.02 * (rng.random::<f64>() - 0.5));
                let price = round(price, 2);
                Symbol {
                    day: trading_day(crypto, now),
                    crypto,
                    prev_close: price,
                    open: price,
                    high: price,
                    low: price,
                    volume: 0.0,
                    tick_volume: if crypto { 25.0 } else { 50_000.0 },
                    price,
                    last_tick: None,
                    detector: PatternDetector::new(PatternConfig::default()),
                    ticker,
                }
            })
            .collect();
        MarketSimulator {
            symbols,
            rng,
            update_interval: settings.update_interval.get(),
            after_hours_interval: settings.after_hours_interval.get(),
            publisher,
        }
    }

    /// Publishes until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.update_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_open: Option<bool> = None;
        tracing::info!(symbols = self.symbols.len(), "market simulator started");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            // In a fleet, one node runs the simulator (a Redis lease).
            if !self.publisher.holds(Producer::Simulator) {
                was_open = None;
                continue;
            }
            let now = Utc::now();
            let session = session_at(now);
            let mut events = Vec::new();
            if was_open != Some(session.is_open) {
                was_open = Some(session.is_open);
                events.push(Event::from(market_status(&session, now)));
            }
            for i in 0..self.symbols.len() {
                let symbol = &self.symbols[i];
                let due = symbol.crypto
                    || session.is_open
                    || symbol
                        .last_tick
                        .is_none_or(|t| t.elapsed() >= self.after_hours_interval);
                if due {
                    let (price, pattern) = self.step(i, now, session.is_open);
                    events.push(Event::from(price));
                    events.extend(pattern.map(Event::from));
                }
            }
            for event in events {
                if let Err(e) = self.publisher.publish(event).await {
                    tracing::warn!(error = %e, "simulator publish failed");
                }
            }
        }
    }

    /// Advances one symbol by one tick.
    fn step(
        &mut self,
        i: usize,
        now: DateTime<Utc>,
        market_open: bool,
    ) -> (PriceUpdate, Option<PatternAlert>) {
        let z = normal(&mut self.rng);
        let spike = self.rng.random::<f64>() < 0.05;
        let wiggle = self.rng.random::<f64>();
        let s = &mut self.symbols[i];
        let day = trading_day(s.crypto, now);
        if day != s.day {
            s.day = day;
            s.prev_close = s.price;
            s.open = s.price;
            s.high = s.price;
            s.low = s.price;
            s.volume = 0.0;
        }
        let sigma = if s.crypto {
            CRYPTO_TICK_SIGMA
        } else if market_open {
            EQUITY_TICK_SIGMA
        } else {
            EQUITY_TICK_SIGMA / 3.0
        };
        let before = s.price;
        let after = round((before * (sigma * z).exp()).max(0.01), 2);
        let tick_volume = (s.tick_volume * (0.5 + wiggle) * if spike { 4.0 } else { 1.0 }).round();
        s.price = after;
        s.high = s.high.max(after);
        s.low = s.low.min(after);
        s.volume += tick_volume;
        s.last_tick = Some(Instant::now());
        let change = round(after - s.prev_close, 2);
        let price = PriceUpdate {
            ticker: s.ticker.clone(),
            price: after,
            change,
            change_percent: round(change / s.prev_close * 100.0, 2),
            volume: s.volume,
            high: s.high,
            low: s.low,
            open: s.open,
            timestamp: time::format(now),
        };
        let spread = (after - before).abs().max(after * sigma * 0.2);
        let bar = Bar {
            open: before,
            high: before.max(after) + spread * 0.3,
            low: (before.min(after) - spread * 0.3).max(0.005),
            close: after,
            volume: tick_volume,
        };
        let pattern = s
            .detector
            .on_bar(bar)
            .map(|signal| pattern_alert(&s.ticker, signal, now));
        (price, pattern)
    }
}

/// The day a symbol's OHLC belongs to: New York date for equities, UTC date for crypto.
fn trading_day(crypto: bool, now: DateTime<Utc>) -> NaiveDate {
    if crypto {
        now.date_naive()
    } else {
        now.with_timezone(&New_York).date_naive()
    }
}

fn pattern_alert(ticker: &str, s: PatternSignal, now: DateTime<Utc>) -> PatternAlert {
    PatternAlert {
        ticker: ticker.to_string(),
        pattern_type: s.pattern_type.to_string(),
        score: s.score,
        entry_price: round(s.entry_price, 2),
        stop_price: round(s.stop_price, 2),
        target_price: round(s.target_price, 2),
        risk_reward_ratio: s.risk_reward_ratio,
        message: s.message,
        timestamp: time::format(now),
    }
}

/// The seed 001 `market_status` event for a session state.
pub fn market_status(session: &MarketSession, now: DateTime<Utc>) -> MarketStatus {
    MarketStatus {
        status: if session.is_open { "open" } else { "closed" }.to_string(),
        next_open: session.next_open.map(time::format),
        next_close: session.next_close.map(time::format),
        timestamp: time::format(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulator(seed: u64) -> MarketSimulator {
        let settings = MarketSettings {
            simulator: true,
            symbols: DEFAULT_SYMBOLS.split(',').map(str::to_string).collect(),
            sim_seed: Some(seed),
            update_interval: Seconds::from_secs(5),
            after_hours_interval: Seconds::from_secs(60),
        };
        MarketSimulator::new(&settings, Publisher::local(100))
    }

    #[test]
    fn ohlc_stays_consistent_over_many_ticks() {
        let mut sim = simulator(7);
        let now = Utc::now();
        let mut last_volume = 0.0;
        for _ in 0..2_000 {
            let (p, _) = sim.step(0, now, true);
            assert!(p.low <= p.price && p.price <= p.high, "{p:?}");
            assert!(p.low <= p.open && p.open <= p.high, "{p:?}");
            assert!(p.volume >= last_volume);
            last_volume = p.volume;
            let prev_close = p.price - p.change;
            assert!((p.change_percent - round(p.change / prev_close * 100.0, 2)).abs() < 0.02);
        }
    }

    #[test]
    fn random_walk_eventually_emits_patterns() {
        let mut sim = simulator(42);
        let now = Utc::now();
        let patterns = (0..20_000)
            .filter_map(|i| sim.step(i % sim.symbols.len(), now, true).1)
            .collect::<Vec<_>>();
        assert!(!patterns.is_empty());
        for p in patterns {
            assert!(
                p.stop_price < p.entry_price && p.entry_price < p.target_price,
                "{p:?}"
            );
        }
    }

    #[test]
    fn market_status_names_next_change() {
        let open = MarketSession {
            is_open: true,
            next_open: None,
            next_close: Some(Utc::now()),
        };
        let status = market_status(&open, Utc::now());
        assert_eq!(status.status, "open");
        assert!(status.next_open.is_none() && status.next_close.is_some());
    }
}
