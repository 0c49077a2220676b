//! Seed 003's market-data builder: every symbol's chart
//! ([`engine::chart`]), tick by tick from the [`QuoteBook`] (so prices
//! published over HTTP count as much as the simulator's), into its
//! `s003:market:<SYM>` room. Each tick publishes, as one batch, a `candle`
//! per timeframe (a closing bar's `is_closed: true` candle first), the
//! `pattern` the existing detector (`crate::sources::patterns`) finds on
//! the smallest timeframe's closed bars, `structure` when swings, trend or
//! a break change, and `confluence` on each closed bar of the smallest
//! timeframe. The batch's last event carries the room's new snapshot:
//! the forming candles, the latest structure and confluence, so a chart
//! that connects fills at once. In a fleet, the node holding the `trading`
//! lease builds.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::quotes::QuoteBook;
use crate::bus::Producer;
use crate::catalog::RoomName;
use crate::protocol::json::round;
use crate::protocol::market::number;
use crate::protocol::{Event, Neutral, PriceUpdate, time};
use crate::publisher::Publisher;
use crate::sources::patterns::{Bar, PatternConfig, PatternDetector};
use engine::Timeframe;
use engine::chart::{Candle, Chart, ChartUpdate, Confluence, Structure, Swing, count_first_label};

/// `candle`'s data.
#[derive(Debug, Serialize)]
struct CandleData<'a> {
    symbol: &'a str,
    timeframe: String,
    time: String,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    #[serde(serialize_with = "number")]
    volume: f64,
    is_closed: bool,
}

/// `pattern`'s data: the detector's output.
#[derive(Debug, Serialize)]
struct PatternData<'a> {
    symbol: &'a str,
    pattern_type: &'static str,
    score: f64,
    entry_price: f64,
    stop_price: f64,
    target_price: f64,
    risk_reward_ratio: f64,
    message: String,
    timeframe: String,
}

/// A swing point.
#[derive(Debug, Serialize)]
struct SwingData {
    price: f64,
    time: String,
}

/// `structure`'s data.
#[derive(Debug, Serialize)]
struct StructureData<'a> {
    symbol: &'a str,
    timeframe: String,
    trend: &'static str,
    last_swing_high: Option<SwingData>,
    last_swing_low: Option<SwingData>,
    break_of_structure: bool,
}

/// `confluence`'s data.
#[derive(Debug, Serialize)]
struct ConfluenceData<'a> {
    symbol: &'a str,
    score: f64,
    direction: &'static str,
    factors: &'a [String],
}

fn unix(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(time::now, time::format)
}

/// One symbol's chart, detector and latest messages.
struct SymbolChart {
    /// Candles, structure and confluence from the ticks.
    chart: Chart,
    /// Patterns on the smallest timeframe's closed bars.
    detector: PatternDetector,
    /// The latest `structure` and `confluence` frames, for the snapshot.
    structure: Option<Bytes>,
    confluence: Option<Bytes>,
}

/// The market-data builder (see the module docs).
pub struct MarketDataBuilder {
    /// Where charts go; whether this node holds the `trading` lease.
    pub publisher: Publisher,
    /// Prices, heard as ticks.
    pub quotes: Arc<QuoteBook>,
    /// The candle timeframes.
    pub timeframes: Vec<Timeframe>,
}

impl MarketDataBuilder {
    /// Builds charts from every tick until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = self.quotes.ticks();
        let mut charts: HashMap<String, SymbolChart> = HashMap::new();
        loop {
            let tick = tokio::select! {
                _ = shutdown.cancelled() => return,
                tick = ticks.recv() => tick,
            };
            match tick {
                Ok(price) if self.publisher.holds(Producer::Trading) => {
                    self.handle_tick(&mut charts, &price).await
                }
                // Another node builds; a new holder starts its charts afresh.
                Ok(_) => charts.clear(),
                Err(RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "market data fell behind the prices; ticks skipped");
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    async fn handle_tick(&self, charts: &mut HashMap<String, SymbolChart>, price: &PriceUpdate) {
        let Ok(room) = RoomName::s003_market(&price.ticker) else {
            return;
        };
        let at = chrono::DateTime::parse_from_rfc3339(&price.timestamp)
            .map_or_else(|_| chrono::Utc::now().timestamp(), |t| t.timestamp());
        let symbol = charts
            .entry(price.ticker.clone())
            .or_insert_with(|| SymbolChart {
                chart: Chart::new(self.timeframes.clone()),
                detector: PatternDetector::new(PatternConfig::default()),
                structure: None,
                confluence: None,
            });
        let update = symbol.chart.on_tick(price.price, price.volume, at);
        let events = symbol.events(&room, &price.ticker, update, &time::now());
        if let Err(e) = self.publisher.publish_batch(&events).await {
            tracing::debug!(room = %room, error = %e, "market data not published");
        }
    }
}

impl SymbolChart {
    /// The tick's events, the last carrying the room's snapshot.
    fn events(
        &mut self,
        room: &RoomName,
        symbol: &str,
        update: ChartUpdate,
        timestamp: &str,
    ) -> Vec<Event> {
        let smallest = self.chart.timeframes()[0];
        let mut events: Vec<Neutral> = update
            .candles
            .iter()
            .map(|c| neutral(room, timestamp, "candle", &candle_data(symbol, c)))
            .collect();
        if let Some(closed) = update.closed
            && let Some(signal) = self.detector.on_bar(Bar {
                open: closed.bar.open,
                high: closed.bar.high,
                low: closed.bar.low,
                close: closed.bar.close,
                volume: closed.bar.volume,
            })
        {
            events.push(neutral(
                room,
                timestamp,
                "pattern",
                &PatternData {
                    symbol,
                    pattern_type: signal.pattern_type,
                    score: signal.score,
                    entry_price: round(signal.entry_price, 2),
                    stop_price: round(signal.stop_price, 2),
                    target_price: round(signal.target_price, 2),
                    risk_reward_ratio: signal.risk_reward_ratio,
                    message: signal.message,
                    timeframe: count_first_label(smallest),
                },
            ));
        }
        if let Some(structure) = &update.structure {
            let e = neutral(
                room,
                timestamp,
                "structure",
                &structure_data(symbol, structure),
            );
            self.structure = Some(e.canonical_frame().clone());
            events.push(e);
        }
        if let Some(confluence) = &update.confluence {
            let e = neutral(
                room,
                timestamp,
                "confluence",
                &confluence_data(symbol, confluence),
            );
            self.confluence = Some(e.canonical_frame().clone());
            events.push(e);
        }
        let mut snapshot: Vec<Bytes> = self
            .chart
            .forming()
            .map(|c| {
                neutral(room, timestamp, "candle", &candle_data(symbol, c))
                    .canonical_frame()
                    .clone()
            })
            .collect();
        snapshot.extend(self.structure.iter().chain(&self.confluence).cloned());
        if let Some(last) = events.pop() {
            events.push(last.with_snapshot(snapshot));
        }
        events.into_iter().map(Event::Neutral).collect()
    }
}

fn candle_data<'a>(symbol: &'a str, c: &Candle) -> CandleData<'a> {
    CandleData {
        symbol,
        timeframe: count_first_label(c.timeframe),
        time: unix(c.bar.time),
        open: c.bar.open,
        high: c.bar.high,
        low: c.bar.low,
        close: c.bar.close,
        volume: c.bar.volume,
        is_closed: c.is_closed,
    }
}

fn structure_data<'a>(symbol: &'a str, s: &Structure) -> StructureData<'a> {
    let swing = |s: Option<Swing>| {
        s.map(|s| SwingData {
            price: s.price,
            time: unix(s.time),
        })
    };
    StructureData {
        symbol,
        timeframe: count_first_label(s.timeframe),
        trend: s.trend.label(),
        last_swing_high: swing(s.last_swing_high),
        last_swing_low: swing(s.last_swing_low),
        break_of_structure: s.break_of_structure,
    }
}

fn confluence_data<'a>(symbol: &'a str, c: &'a Confluence) -> ConfluenceData<'a> {
    ConfluenceData {
        symbol,
        score: c.score,
        direction: c.direction,
        factors: &c.factors,
    }
}

/// One message of `room`.
fn neutral(room: &RoomName, timestamp: &str, kind: &str, data: &impl Serialize) -> Neutral {
    Neutral::new(room.clone(), kind, timestamp, data).expect("a trading room and a plain type")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    #[test]
    fn a_tick_is_one_candle_per_timeframe_and_the_batch_carries_the_snapshot() {
        let mut chart = SymbolChart {
            chart: Chart::new(vec![Timeframe::M1, Timeframe::M5]),
            detector: PatternDetector::new(PatternConfig::default()),
            structure: None,
            confluence: None,
        };
        let room = RoomName::s003_market("AAPL").unwrap();
        let update = chart.chart.on_tick(100.0, 10.0, 60);
        let events = chart.events(&room, "AAPL", update, "2026-01-01T00:00:00.000Z");
        assert_eq!(events.len(), 2);
        let Event::Neutral(first) = &events[0] else {
            panic!()
        };
        let json: serde_json::Value =
            serde_json::from_slice(&frame::payload(first.canonical_frame())).unwrap();
        assert_eq!(json["type"], "candle");
        assert_eq!(
            json["data"],
            serde_json::json!({"symbol":"AAPL","timeframe":"1M","time":"1970-01-01T00:01:00.000Z",
                "open":100.0,"high":100.0,"low":100.0,"close":100.0,"volume":0,"is_closed":false})
        );
        let Event::Neutral(last) = &events[1] else {
            panic!()
        };
        assert_eq!(
            last.snapshot().map(<[Bytes]>::len),
            Some(2),
            "two forming candles"
        );
        // The next minute closes the 1M bar: a closed candle, then the forming ones, and a confluence.
        let update = chart.chart.on_tick(101.0, 20.0, 125);
        let events = chart.events(&room, "AAPL", update, "2026-01-01T00:00:00.000Z");
        let kinds: Vec<_> = events
            .iter()
            .map(|e| match e {
                Event::Neutral(n) => n.kind().to_string(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(kinds, ["candle", "candle", "candle", "confluence"]);
        let Event::Neutral(last) = events.last().unwrap() else {
            panic!()
        };
        assert_eq!(
            last.snapshot().map(<[Bytes]>::len),
            Some(3),
            "candles and the confluence"
        );
    }
}
