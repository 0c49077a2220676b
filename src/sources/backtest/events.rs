//! The messages a run publishes, in each seed's shapes and units, built
//! once from the engine's steps and metrics: seed 002's topic events
//! (`{type, data}` with the timestamp inside `data`, percent units) into
//! `topic:backtest`, and seed 003's stream events (`{type, timestamp,
//! data}`, fractions except where its example shows percent) into
//! `backtest:<id>`. An [`Emitter`] collects a chunk's events per room, in
//! order, for one publish each, and enforces the run room's event cap.
//! Every number sent is finite and rounded the way it is shown.

use serde::Serialize;
use serde_json::json;

use engine::calendar::rfc3339;
use engine::metrics::{Metrics, cents};
use engine::run::{Position, Trade};

use super::log::{LogLine, python_level};
use super::request::RunRequest;
use crate::catalog::RoomName;
use crate::protocol::{Event, Neutral};

/// Why a run ended without completing (its terminal error, spec §6.6).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// The data does not cover the range.
    #[error("Insufficient historical data")]
    Insufficient {
        /// The symbol.
        symbol: String,
        /// The range's start.
        required_start: String,
        /// The data's first bar, if any.
        available_start: Option<String>,
    },
    /// The engine failed (a data file that does not parse, a panic).
    #[error("Strategy execution failed")]
    Engine(String),
    /// `DELETE` of the run.
    #[error("Backtest cancelled")]
    Cancelled,
    /// The node is draining.
    #[error("Server shutting down")]
    ShuttingDown,
    /// The node running it died (fleet).
    #[error("Backtest node lost")]
    NodeLost,
    /// The run would retain more events than its room keeps.
    #[error("Backtest produced more than {0} events; narrow the date range")]
    TooManyEvents(usize),
}

impl RunError {
    /// Seed 003's `details` object.
    pub fn details(&self) -> serde_json::Value {
        match self {
            RunError::Insufficient {
                symbol,
                required_start,
                available_start,
            } => json!({
                "symbol": symbol,
                "required_start": required_start,
                "available_start": available_start,
            }),
            RunError::Engine(message) => json!({ "message": message }),
            RunError::Cancelled => json!({ "reason": "cancelled" }),
            RunError::ShuttingDown | RunError::NodeLost | RunError::TooManyEvents(_) => json!({}),
        }
    }

    /// Seed 002's `error_details`: the details as one readable line.
    pub fn error_details(&self) -> String {
        match self {
            RunError::Insufficient {
                symbol,
                required_start,
                available_start,
            } => format!(
                "{symbol}: data required from {required_start}, available from {}",
                available_start.as_deref().unwrap_or("nowhere")
            ),
            RunError::Engine(message) => message.clone(),
            RunError::Cancelled => "cancelled".into(),
            other => other.to_string(),
        }
    }
}

impl From<engine::data::DataError> for RunError {
    fn from(e: engine::data::DataError) -> Self {
        match e {
            engine::data::DataError::Insufficient {
                symbol,
                required_start,
                available_start,
            } => RunError::Insufficient {
                symbol,
                required_start,
                available_start,
            },
            // Clients see `<SYMBOL>/<TF>.csv`, never the server's directory.
            engine::data::DataError::Csv { path, message } => {
                let mut parts: Vec<&str> = path.rsplit(['/', '\\']).take(2).collect();
                parts.reverse();
                RunError::Engine(format!("{}: {message}", parts.join("/")))
            }
        }
    }
}

pub use crate::protocol::json::round;

/// A price as sent: 8 decimals, enough for any instrument, none of the
/// binary noise.
fn price(value: f64) -> f64 {
    round(value, 8)
}

/// A run's running statistics, for progress events.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Closed trades.
    pub trades: usize,
    /// Closed trades whose sent pnl is above zero.
    pub winners: usize,
    /// The highest equity so far (from the initial balance).
    pub peak: f64,
    /// The worst drawdown so far, a negative fraction.
    pub max_drawdown: f64,
}

impl Tally {
    /// A tally starting at `initial` equity.
    pub fn new(initial: f64) -> Self {
        Tally {
            peak: initial,
            ..Tally::default()
        }
    }

    /// Counts a closed trade.
    pub fn trade(&mut self, trade: &Trade) {
        self.trades += 1;
        if cents(trade.pnl) > 0.0 {
            self.winners += 1;
        }
    }

    /// Notes a bar's closing equity; returns its current drawdown.
    pub fn equity(&mut self, equity: f64) -> f64 {
        self.peak = self.peak.max(equity);
        let drawdown = engine::metrics::drawdown(equity, self.peak);
        self.max_drawdown = self.max_drawdown.min(drawdown);
        drawdown
    }

    /// Winners over trades (0 without trades).
    pub fn win_rate(&self) -> f64 {
        if self.trades == 0 {
            0.0
        } else {
            self.winners as f64 / self.trades as f64
        }
    }
}

/// Where a step of the run stands, for a progress event.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Percent, one decimal (exactly 100.0 only after the last bar).
    pub percent: f64,
    /// Bars stepped.
    pub bars_processed: usize,
    /// The last stepped bar's open time.
    pub bar_time: i64,
    /// Realised balance.
    pub balance: f64,
    /// Mark-to-market equity.
    pub equity: f64,
    /// Positions open.
    pub open_positions: usize,
}

/// Collects a run's events for its two rooms, in publish order, and
/// counts the run room's against its cap.
#[derive(Debug)]
pub struct Emitter {
    /// The run's id.
    id: String,
    /// Seed 002's events, for `topic:backtest`.
    topic: Outlet,
    /// Seed 003's events, for `backtest:<id>` (counted against the cap).
    stream: Outlet,
    /// The run room's cap (`ROOMCAST_BACKTEST_MAX_EVENTS`).
    max_events: usize,
    /// The wall clock of this chunk's events.
    now: String,
}

impl Emitter {
    /// An emitter for `request`'s run, its room keeping `max_events`.
    pub fn new(request: &RunRequest, max_events: usize) -> Self {
        let (topic, stream) = if request.streaming {
            (
                Some(RoomName::topic("backtest").expect("a valid topic")),
                Some(RoomName::backtest(&request.id).expect("the id was checked")),
            )
        } else {
            (None, None)
        };
        Emitter {
            id: request.id.clone(),
            topic: Outlet::new(topic),
            stream: Outlet::new(stream),
            max_events,
            now: crate::protocol::time::now(),
        }
    }

    /// An emitter for a run known only by its id and its rooms (another
    /// node's, ended here): its seed 002 topic and its seed 003 stream,
    /// whichever `rooms` names.
    pub fn for_rooms(id: &str, rooms: &[RoomName], max_events: usize) -> Self {
        let of = |kind| rooms.iter().find(|r| r.kind() == kind).cloned();
        Emitter {
            id: id.to_string(),
            topic: Outlet::new(of(crate::catalog::RoomKind::Topic)),
            stream: Outlet::new(of(crate::catalog::RoomKind::Backtest)),
            max_events,
            now: crate::protocol::time::now(),
        }
    }

    /// The run's id (for [`super::log::run_log`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Restamps the wall clock for the events that follow.
    pub fn tick(&mut self) {
        self.now = crate::protocol::time::now();
    }

    /// The current wall-clock timestamp.
    pub fn now(&self) -> &str {
        &self.now
    }

    /// Whether `more` run-room events still fit, one kept for the terminal event.
    pub fn fits(&self, more: usize) -> bool {
        self.stream.room.is_none() || self.stream.count + more < self.max_events
    }

    /// Queues a log line as seed 002's `log_entry`.
    pub fn log_line(&mut self, line: LogLine) {
        let data = LogEntry {
            backtest_id: &self.id,
            timestamp: &self.now,
            level: python_level(line.level),
            message: &line.message,
            module: line.module,
            function: line.function,
            line: line.line,
            logger_name: format!("backtest.{}", self.id),
        };
        self.topic.push(&self.now, "log_entry", &data);
    }

    /// Seed 002's `backtest_start`.
    pub fn start(&mut self, request: &RunRequest) {
        let data = Start {
            backtest_id: &self.id,
            variant: &request.variant,
            symbol: &request.symbol,
            timeframe: &request.timeframe_label,
            start_date: request.start_date(),
            end_date: request.end_date(),
            timestamp: &self.now,
        };
        self.topic.push(&self.now, "backtest_start", &data);
    }

    /// Progress in both seeds' shapes, and seed 003's equity beside it.
    pub fn progress(&mut self, request: &RunRequest, at: &Progress, tally: &Tally, drawdown: f64) {
        let topic = TopicProgress {
            backtest_id: &self.id,
            progress: at.percent,
            status: format!(
                "Processing bar {}/{}",
                at.bars_processed, request.total_bars
            ),
            bars_processed: at.bars_processed,
            total_bars: request.total_bars,
            current_date: super::request::date_of(at.bar_time),
            trades_count: tally.trades,
            current_pnl: round(at.equity - request.initial_balance, 2),
            timestamp: &self.now,
        };
        self.topic.push(&self.now, "backtest_progress", &topic);
        let stream = StreamProgress {
            backtest_id: &self.id,
            progress: at.percent,
            current_time: rfc3339(at.bar_time),
            metrics: ProgressMetrics {
                balance: round(at.balance, 2),
                open_positions: at.open_positions,
                total_trades: tally.trades,
                winning_trades: tally.winners,
                win_rate: round(tally.win_rate(), 4),
                max_drawdown: round(tally.max_drawdown, 4),
            },
        };
        self.stream.push(&self.now, "progress", &stream);
        self.equity(at, drawdown);
    }

    /// Seed 003's `equity`.
    pub fn equity(&mut self, at: &Progress, drawdown: f64) {
        let data = Equity {
            backtest_id: &self.id,
            time: rfc3339(at.bar_time),
            equity: round(at.equity, 2),
            balance: round(at.balance, 2),
            drawdown: round(drawdown, 4),
        };
        self.stream.push(&self.now, "equity", &data);
    }

    /// Seed 003's `trade` entry.
    pub fn entry(&mut self, symbol: &str, position: &Position) {
        let direction = position.entry.direction.label();
        let data = TradeEntry {
            event: "entry",
            trade_id: format!("trade_{}", position.id),
            symbol,
            direction,
            entry_price: price(position.entry_price),
            entry_time: rfc3339(position.entry_time),
            quantity: round(position.quantity, 8),
            stop_loss: position.stop.map(price),
            take_profit_levels: position.targets.iter().map(|t| price(*t)).collect(),
            reasoning: Reasoning {
                decision: format!("enter_{direction}"),
                confidence: round(position.entry.confidence, 2),
                rationale: &position.entry.rationale,
            },
        };
        self.stream.push(&self.now, "trade", &data);
    }

    /// Seed 003's `trade` exit.
    pub fn exit(&mut self, symbol: &str, trade: &Trade) {
        let p = &trade.position;
        let notional = p.entry_price * p.quantity;
        let data = TradeExit {
            event: "exit",
            trade_id: format!("trade_{}", p.id),
            symbol,
            direction: p.entry.direction.label(),
            entry_price: price(p.entry_price),
            entry_time: rfc3339(p.entry_time),
            exit_price: price(trade.exit_price),
            exit_time: rfc3339(trade.exit_time),
            exit_reason: trade.reason.label(),
            pnl: round(cents(trade.pnl), 2),
            pnl_percent: if notional > 0.0 {
                round(trade.pnl / notional * 100.0, 2)
            } else {
                0.0
            },
            mfe: round(p.mfe, 2),
            mae: round(p.mae, 2),
        };
        self.stream.push(&self.now, "trade", &data);
    }

    /// Seed 003's periodic `metrics`.
    pub fn metrics(&mut self, m: &Metrics) {
        let data = RunningMetrics {
            backtest_id: &self.id,
            total_trades: m.total_trades,
            winning_trades: m.winning_trades,
            win_rate: round(m.win_rate, 4),
            profit_factor: m.profit_factor.map(|pf| round(pf, 2)),
            sharpe_ratio: round(m.sharpe_ratio, 2),
            max_drawdown: round(m.max_drawdown, 4),
        };
        self.stream.push(&self.now, "metrics", &data);
    }

    /// The terminal success: seed 003's `complete`, seed 002's
    /// `backtest_complete`; returns the latter's data (the run's result).
    pub fn complete(
        &mut self,
        request: &RunRequest,
        m: &Metrics,
        bars: usize,
        duration: f64,
    ) -> serde_json::Value {
        let metrics = complete_metrics(m);
        let complete = Complete {
            backtest_id: &self.id,
            metrics: &metrics,
        };
        self.stream.push(&self.now, "complete", &complete);
        let data = TopicComplete {
            backtest_id: &self.id,
            final_balance: round(m.final_equity, 2),
            total_trades: m.total_trades,
            win_rate: round(m.win_rate * 100.0, 2),
            sharpe_ratio: round(m.sharpe_ratio, 2),
            drawdown: round(-m.max_drawdown * 100.0, 2),
            return_pct: round(m.total_return * 100.0, 2),
            duration_seconds: round(duration, 3),
            timestamp: &self.now,
            results: Results {
                metrics: &metrics,
                initial_balance: request.initial_balance,
                bars_processed: bars,
            },
        };
        self.topic.push(&self.now, "backtest_complete", &data);
        serde_json::to_value(&data).expect("plain data serialises")
    }

    /// The terminal failure: seed 003's `error`, seed 002's
    /// `backtest_error`; returns the latter's data.
    pub fn error(&mut self, error: &RunError) -> serde_json::Value {
        let details = json!({ "error": error.to_string(), "details": error.details() });
        self.stream.push(&self.now, "error", &details);
        let data = json!({
            "backtest_id": self.id,
            "error": error.to_string(),
            "error_details": error.error_details(),
            "timestamp": self.now,
        });
        self.topic.push(&self.now, "backtest_error", &data);
        data
    }

    /// Drops the queued events (a chunk that broke the cap: the run ends
    /// with [`RunError::TooManyEvents`] instead).
    pub fn discard(&mut self) {
        self.topic.discard();
        self.stream.discard();
    }

    /// Takes the queued events: (seed 002's, seed 003's).
    pub fn take(&mut self) -> (Vec<Event>, Vec<Event>) {
        (
            std::mem::take(&mut self.topic.events),
            std::mem::take(&mut self.stream.events),
        )
    }
}

/// One room's side of an emitter: its events not yet published, and how
/// many it has been given in all (the run room's cap counts them).
#[derive(Debug)]
struct Outlet {
    /// The room, when the run streams.
    room: Option<RoomName>,
    /// Events not yet published, in order.
    events: Vec<Event>,
    /// Events given so far, published or not (less those discarded).
    count: usize,
}

impl Outlet {
    fn new(room: Option<RoomName>) -> Self {
        Outlet {
            room,
            events: Vec::new(),
            count: 0,
        }
    }

    /// Queues an event of `kind` with `data`, stamped `now`, if the run streams.
    fn push(&mut self, now: &str, kind: &str, data: &impl Serialize) {
        if let Some(room) = &self.room {
            let event = Neutral::new(room.clone(), kind, now, data)
                .expect("run events are objects of the backtest family");
            self.events.push(Event::Neutral(event));
            self.count += 1;
        }
    }

    /// Drops the queued events.
    fn discard(&mut self) {
        self.count -= self.events.len();
        self.events.clear();
    }
}

/// Seed 003's `complete.metrics` (13 keys; percent where its example
/// shows percent), also seed 002's `results`.
pub fn complete_metrics(m: &Metrics) -> CompleteMetrics {
    CompleteMetrics {
        total_trades: m.total_trades,
        winning_trades: m.winning_trades,
        losing_trades: m.losing_trades,
        win_rate: round(m.win_rate, 4),
        profit_factor: m.profit_factor.map(|pf| round(pf, 2)),
        total_return: round(m.total_return * 100.0, 2),
        max_drawdown: round(m.max_drawdown * 100.0, 2),
        sharpe_ratio: round(m.sharpe_ratio, 2),
        average_win: round(m.average_win, 2),
        average_loss: round(m.average_loss, 2),
        largest_win: round(m.largest_win, 2),
        largest_loss: round(m.largest_loss, 2),
        total_commissions: round(m.total_commissions, 2),
    }
}

// The messages' data, each member in the order the seeds' examples show.

/// Seed 002's `backtest_start` data.
#[derive(Serialize)]
struct Start<'a> {
    backtest_id: &'a str,
    variant: &'a str,
    symbol: &'a str,
    timeframe: &'a str,
    start_date: String,
    end_date: String,
    timestamp: &'a str,
}

/// Seed 002's `backtest_progress` data.
#[derive(Serialize)]
struct TopicProgress<'a> {
    backtest_id: &'a str,
    progress: f64,
    status: String,
    bars_processed: usize,
    total_bars: usize,
    current_date: String,
    trades_count: usize,
    current_pnl: f64,
    timestamp: &'a str,
}

/// Seed 003's `progress` data.
#[derive(Serialize)]
struct StreamProgress<'a> {
    backtest_id: &'a str,
    progress: f64,
    current_time: String,
    metrics: ProgressMetrics,
}

/// Seed 003's `progress.metrics`.
#[derive(Serialize)]
struct ProgressMetrics {
    balance: f64,
    open_positions: usize,
    total_trades: usize,
    winning_trades: usize,
    win_rate: f64,
    max_drawdown: f64,
}

/// Seed 003's `equity` data.
#[derive(Serialize)]
struct Equity<'a> {
    backtest_id: &'a str,
    time: String,
    equity: f64,
    balance: f64,
    drawdown: f64,
}

/// Seed 003's `trade` entry data (no `backtest_id`, as the seed shows).
#[derive(Serialize)]
struct TradeEntry<'a> {
    event: &'static str,
    trade_id: String,
    symbol: &'a str,
    direction: &'static str,
    entry_price: f64,
    entry_time: String,
    quantity: f64,
    stop_loss: Option<f64>,
    take_profit_levels: Vec<f64>,
    reasoning: Reasoning<'a>,
}

/// Why an entry was taken.
#[derive(Serialize)]
struct Reasoning<'a> {
    decision: String,
    confidence: f64,
    rationale: &'a str,
}

/// Seed 003's `trade` exit data.
#[derive(Serialize)]
struct TradeExit<'a> {
    event: &'static str,
    trade_id: String,
    symbol: &'a str,
    direction: &'static str,
    entry_price: f64,
    entry_time: String,
    exit_price: f64,
    exit_time: String,
    exit_reason: String,
    pnl: f64,
    pnl_percent: f64,
    mfe: f64,
    mae: f64,
}

/// Seed 003's periodic `metrics` data.
#[derive(Serialize)]
struct RunningMetrics<'a> {
    backtest_id: &'a str,
    total_trades: usize,
    winning_trades: usize,
    win_rate: f64,
    profit_factor: Option<f64>,
    sharpe_ratio: f64,
    max_drawdown: f64,
}

/// Seed 003's `complete.metrics`; seed 002's `results` holds them too.
#[derive(Debug, Clone, Serialize)]
pub struct CompleteMetrics {
    total_trades: usize,
    winning_trades: usize,
    losing_trades: usize,
    win_rate: f64,
    profit_factor: Option<f64>,
    total_return: f64,
    max_drawdown: f64,
    sharpe_ratio: f64,
    average_win: f64,
    average_loss: f64,
    largest_win: f64,
    largest_loss: f64,
    total_commissions: f64,
}

/// Seed 003's `complete` data.
#[derive(Serialize)]
struct Complete<'a> {
    backtest_id: &'a str,
    metrics: &'a CompleteMetrics,
}

/// Seed 002's `backtest_complete` data.
#[derive(Serialize)]
struct TopicComplete<'a> {
    backtest_id: &'a str,
    final_balance: f64,
    total_trades: usize,
    win_rate: f64,
    sharpe_ratio: f64,
    drawdown: f64,
    return_pct: f64,
    duration_seconds: f64,
    timestamp: &'a str,
    results: Results<'a>,
}

/// Seed 002's `results`: seed 003's 13 metrics, then the run's size.
#[derive(Serialize)]
struct Results<'a> {
    #[serde(flatten)]
    metrics: &'a CompleteMetrics,
    initial_balance: f64,
    bars_processed: usize,
}

/// Seed 002's `log_entry` data.
#[derive(Serialize)]
struct LogEntry<'a> {
    backtest_id: &'a str,
    timestamp: &'a str,
    level: &'static str,
    message: &'a str,
    module: &'static str,
    function: &'static str,
    line: u32,
    logger_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_never_sends_nan_infinity_or_negative_zero() {
        assert_eq!(round(f64::NAN, 2), 0.0);
        assert_eq!(round(f64::INFINITY, 2), 0.0);
        assert!(round(-0.0001, 2).is_sign_positive());
        assert_eq!(round(1.234_567, 2), 1.23);
        assert_eq!(price(1.083_450_000_000_001), 1.08345);
    }

    #[test]
    fn run_errors_carry_each_seeds_texts() {
        let e = RunError::Insufficient {
            symbol: "BTC-USD".into(),
            required_start: "2019-01-01T00:00:00Z".into(),
            available_start: Some("2020-01-01T00:00:00Z".into()),
        };
        assert_eq!(e.to_string(), "Insufficient historical data");
        assert_eq!(e.details()["available_start"], "2020-01-01T00:00:00Z");
        assert_eq!(
            RunError::Cancelled.details(),
            json!({"reason": "cancelled"})
        );
        assert_eq!(
            RunError::TooManyEvents(20_000).to_string(),
            "Backtest produced more than 20000 events; narrow the date range"
        );
    }
}
