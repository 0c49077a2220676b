//! The health of seed 004's four streams, for `GET /websocket/status`'s
//! `stream_health`: when each producer started, its last event, its failed
//! publishes and restarts. The price batcher and the paper account record
//! into it; so do the producer endpoints, for events an external system
//! publishes. A periodic stream (prices, the portfolio) is healthy while
//! its last event is at most three intervals old; a sporadic one (signals,
//! executions) is never unhealthy just for being quiet.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::protocol::time;

/// Seed 004's streams, as `stream_health` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `price_updates`: the price batcher.
    PriceUpdates,
    /// `signals`.
    Signals,
    /// `trades`: executions.
    Trades,
    /// `portfolio`.
    Portfolio,
}

impl Stream {
    /// Every stream, in `stream_health` order.
    pub const ALL: [Stream; 4] = [
        Stream::PriceUpdates,
        Stream::Signals,
        Stream::Trades,
        Stream::Portfolio,
    ];

    /// The stream's name in `stream_health` (and the seed's channel name).
    pub fn label(self) -> &'static str {
        match self {
            Stream::PriceUpdates => "price_updates",
            Stream::Signals => "signals",
            Stream::Trades => "trades",
            Stream::Portfolio => "portfolio",
        }
    }
}

/// One stream's record.
#[derive(Debug, Default)]
struct Record {
    /// Wall clock of the last event.
    last_update: Option<String>,
    /// When the producer last did its periodic round (sending or, with
    /// nothing to send, not), for the periodic check.
    last_round: Option<Instant>,
    /// Failed publishes.
    error_count: u64,
    /// Producer restarts (a lost and retaken lease, a failed start).
    recovery_attempts: u64,
    /// When the producer started; `None` while it is not running.
    started_at: Option<String>,
}

/// One stream as `stream_health` shows it.
#[derive(Debug, Serialize, PartialEq)]
pub struct StreamReport {
    /// The last event, or `null`.
    pub last_update: Option<String>,
    /// Failed publishes.
    pub error_count: u64,
    /// Producer restarts.
    pub recovery_attempts: u64,
    /// Producer running, bus ready, and (for periodic streams) fresh.
    pub is_healthy: bool,
    /// When the producer started, or `null`.
    pub started_at: Option<String>,
}

/// The four streams' records.
#[derive(Debug)]
pub struct TradingHealth {
    /// By [`Stream`] order.
    records: [Mutex<Record>; 4],
    /// The intervals of the periodic streams.
    price_interval: Duration,
    portfolio_interval: Duration,
}

impl TradingHealth {
    /// Records for streams with these intervals.
    pub fn new(price_interval: Duration, portfolio_interval: Duration) -> Self {
        TradingHealth {
            records: Default::default(),
            price_interval,
            portfolio_interval,
        }
    }

    fn record(&self, stream: Stream) -> parking_lot::MutexGuard<'_, Record> {
        self.records[stream as usize].lock()
    }

    /// The stream's producer started (again: a restart counts as a recovery).
    pub fn started(&self, stream: Stream) {
        let mut record = self.record(stream);
        if record.started_at.is_none() && record.last_update.is_some() {
            record.recovery_attempts += 1;
        }
        record.started_at = Some(time::now());
    }

    /// The stream's producer stopped (its lease went to another node).
    pub fn stopped(&self, stream: Stream) {
        self.record(stream).started_at = None;
    }

    /// The stream's producer has been running since this node started
    /// (the producer endpoints, for an external system).
    pub fn started_if_stopped(&self, stream: Stream) {
        let mut record = self.record(stream);
        if record.started_at.is_none() {
            record.started_at = Some(time::now());
        }
    }

    /// An event of the stream went out.
    pub fn published(&self, stream: Stream) {
        let mut record = self.record(stream);
        record.last_update = Some(time::now());
        record.last_round = Some(Instant::now());
    }

    /// The stream's periodic producer did its round (a price batcher with
    /// nothing quoted sends nothing, and is still alive).
    pub fn ran(&self, stream: Stream) {
        self.record(stream).last_round = Some(Instant::now());
    }

    /// A publish of the stream failed.
    pub fn failed(&self, stream: Stream) {
        self.record(stream).error_count += 1;
    }

    /// The stream's report; `bus_ready`: the bus can deliver; `periodic`:
    /// its producer runs on an interval here (an external system's
    /// portfolio is not held to one).
    pub fn report(&self, stream: Stream, bus_ready: bool, periodic: bool) -> StreamReport {
        let record = self.record(stream);
        let period = match stream {
            Stream::PriceUpdates => Some(self.price_interval),
            Stream::Portfolio => Some(self.portfolio_interval),
            Stream::Signals | Stream::Trades => None,
        };
        let fresh = match period.filter(|_| periodic) {
            None => true,
            Some(period) => record
                .last_round
                .is_some_and(|at| at.elapsed() <= period * 3),
        };
        StreamReport {
            last_update: record.last_update.clone(),
            error_count: record.error_count,
            recovery_attempts: record.recovery_attempts,
            is_healthy: record.started_at.is_some() && bus_ready && fresh,
            started_at: record.started_at.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_healthy_while_running_on_a_ready_bus_and_a_restart_is_counted() {
        let health = TradingHealth::new(Duration::from_secs(3), Duration::from_secs(5));
        assert!(
            !health.report(Stream::Signals, true, true).is_healthy,
            "not running"
        );
        health.started(Stream::Signals);
        assert!(
            health.report(Stream::Signals, true, true).is_healthy,
            "quiet is fine"
        );
        assert!(
            !health.report(Stream::Signals, false, true).is_healthy,
            "bus down"
        );
        health.started(Stream::PriceUpdates);
        assert!(
            !health.report(Stream::PriceUpdates, true, true).is_healthy,
            "no batch yet"
        );
        health.ran(Stream::PriceUpdates);
        let report = health.report(Stream::PriceUpdates, true, true);
        assert!(report.is_healthy, "a round with nothing to send");
        assert_eq!(report.last_update, None);
        health.published(Stream::PriceUpdates);
        health.failed(Stream::PriceUpdates);
        let report = health.report(Stream::PriceUpdates, true, true);
        assert!(report.is_healthy);
        assert_eq!(report.error_count, 1);
        health.stopped(Stream::PriceUpdates);
        health.started(Stream::PriceUpdates);
        assert_eq!(
            health
                .report(Stream::PriceUpdates, true, true)
                .recovery_attempts,
            1
        );
        health.started(Stream::Portfolio);
        assert!(
            health.report(Stream::Portfolio, true, false).is_healthy,
            "an external portfolio has no interval"
        );
    }
}
