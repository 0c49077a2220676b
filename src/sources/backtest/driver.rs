//! One run's async driver: waits for a slot, loads the bars, then advances
//! the engine a chunk of bars at a time, publishing each chunk's events
//! (one batch per room) and sleeping to keep the pace
//! (`ROOMCAST_BACKTEST_BARS_PER_SEC`). Between chunks it obeys its
//! control: pause, cancel, drain. It owns the run's ordering guarantees:
//! `backtest_start` comes first, progress never decreases and ends at
//! exactly 100.0, the terminal event comes last and nothing follows it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use engine::calendar::Calendar;
use engine::metrics;
use engine::run::{Account, FinalFill, Position, Run, Sizing, Trade};
use engine::strategy::Strategy;

use super::events::{Emitter, Progress, RunError, Tally, round};
use super::fleet::Fence;
use super::log::run_log;
use super::request::RunRequest;
use super::run::{Control, RunEntry, RunStatus, Stop};
use super::settings::BacktestSettings;
use super::slots::Ticket;
use crate::protocol::Event;
use crate::publisher::Publisher;

/// Progress intervals between two seed 003 `metrics` events.
const METRICS_EVERY: usize = 10;

/// How often a driver held at a closed fence looks again.
const FENCE_POLL: Duration = Duration::from_millis(100);

/// Bars stepped per chunk when unpaced (the task yields between chunks).
const UNPACED_CHUNK: usize = 2_000;

/// A run's driver (spawned by the registry).
pub(super) struct Driver {
    /// The run's registry entry: control in, state out.
    pub entry: Arc<RunEntry>,
    /// What to run.
    pub request: RunRequest,
    /// Where its events go.
    pub publisher: Publisher,
    /// Pace, reporting, commission, data source.
    pub settings: BacktestSettings,
    /// The run room's event cap.
    pub max_events: usize,
    /// Closed while this node's renewals go unanswered (fleet): nothing is
    /// published then.
    pub fence: Arc<Fence>,
}

/// A run that has begun executing.
type Engine = Run<Box<dyn Strategy + Send>>;

impl Driver {
    /// Drives the run to its end, once `ticket` comes to a slot; returns
    /// once its terminal event is out.
    pub async fn run(self, ticket: Ticket) {
        let mut control = self.entry.control();
        let mut emit = Emitter::new(&self.request, self.max_events);
        let slot = tokio::select! {
            slot = ticket.slot() => slot,
            stop = stopped(&mut control) => {
                emit.start(&self.request);
                self.end(&mut emit, &mut control, Err(stop)).await;
                return;
            }
        };
        self.entry.update(|s| s.status = RunStatus::Running);
        let started = Instant::now();
        emit.start(&self.request);
        let result = self.execute(&mut emit, &mut control).await;
        let outcome = result.map(|(engine, tally)| (engine, tally, started.elapsed()));
        self.end(&mut emit, &mut control, outcome).await;
        drop(slot);
    }

    /// Loads the bars and steps every one; the run and its tally at the end.
    async fn execute(
        &self,
        emit: &mut Emitter,
        control: &mut watch::Receiver<Control>,
    ) -> Result<(Engine, Tally), RunError> {
        let request = &self.request;
        run_log!(
            emit,
            INFO,
            "Backtest started: {} ({}) on {} {} from {} to {}",
            request.name,
            request.strategy,
            request.symbol,
            request.timeframe.label(),
            request.start_date(),
            request.end_date()
        );
        let bars = self.load(emit).await?;
        let account = Account {
            initial_balance: request.initial_balance,
            commission: self.settings.commission,
            sizing: Sizing::Risk(request.risk_per_trade),
            lot: request.lot(),
            final_fill: FinalFill::LastClose,
        };
        let first_time = bars[0].time;
        let mut engine = Run::new(bars, request.strategy(), account);
        let mut tally = Tally::new(request.initial_balance);
        let total = engine.total_bars();
        let opening = Progress {
            percent: 0.0,
            bars_processed: 0,
            bar_time: first_time,
            balance: request.initial_balance,
            equity: request.initial_balance,
            open_positions: 0,
        };
        emit.progress(request, &opening, &tally, 0.0);
        if let Some(stop) = self.fenced(control).await {
            return Err(stop);
        }
        self.publish(emit, control).await;

        let paced = self.settings.bars_per_sec > 0.0;
        let chunk = if paced {
            ((self.settings.bars_per_sec / 20.0) as usize).clamp(1, self.settings.progress_bars)
        } else {
            UNPACED_CHUNK
        };
        // Pace from here: bars stepped since `mark` should take `bars / pace` s.
        let mut mark = (Instant::now(), 0usize);
        let mut progress_events = 0usize;
        while engine.bars_processed() < total {
            let end = (engine.bars_processed() + chunk).min(total);
            emit.tick();
            let stepped = std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.step_until(&mut engine, end, emit, &mut tally, &mut progress_events)
            }));
            if let Err(panic) = stepped {
                emit.discard();
                return Err(RunError::Engine(panic_message(panic)));
            }
            if !emit.fits(0) {
                emit.discard();
                return Err(RunError::TooManyEvents(self.max_events));
            }
            if let Some(stop) = self.fenced(control).await {
                emit.discard();
                return Err(stop);
            }
            self.publish(emit, control).await;
            self.entry
                .update(|s| s.progress = engine.progress().min(99.9));
            if engine.bars_processed() == total {
                break;
            }
            if paced {
                let due = mark.0
                    + Duration::from_secs_f64(
                        (engine.bars_processed() - mark.1) as f64 / self.settings.bars_per_sec,
                    );
                let processed = engine.bars_processed();
                if let Some(stop) = self.wait(control, Some(due), &mut mark, processed).await {
                    return Err(stop);
                }
            } else {
                tokio::task::yield_now().await;
                let processed = engine.bars_processed();
                if let Some(stop) = self.wait(control, None, &mut mark, processed).await {
                    return Err(stop);
                }
            }
        }
        if !emit.fits(METRICS_EVERY) {
            return Err(RunError::TooManyEvents(self.max_events));
        }
        Ok((engine, tally))
    }

    /// Steps bars up to `end`, queuing what they did.
    fn step_until(
        &self,
        engine: &mut Engine,
        end: usize,
        emit: &mut Emitter,
        tally: &mut Tally,
        progress_events: &mut usize,
    ) {
        let request = &self.request;
        let total = engine.total_bars();
        let every = self.settings.progress_bars;
        while engine.bars_processed() < end {
            let Some(step) = engine.step() else { break };
            // A bar closes earlier positions at its open, may open one, and
            // may close that one too (stopped out on its entry bar): each
            // trade's entry goes out before its exit.
            let opened = step.entry.as_ref().map(|p| p.id);
            let (same_bar, earlier): (Vec<&Trade>, Vec<&Trade>) = step
                .exits
                .iter()
                .partition(|t| Some(t.position.id) == opened);
            for trade in earlier {
                self.handle_exit(emit, tally, trade);
            }
            if let Some(position) = &step.entry {
                self.handle_entry(emit, position);
            }
            for trade in same_bar {
                self.handle_exit(emit, tally, trade);
            }
            let drawdown = tally.equity(step.equity);
            let processed = step.index + 1;
            if processed % every == 0 && processed < total {
                let at = Progress {
                    percent: engine.progress(),
                    bars_processed: processed,
                    bar_time: step.bar.time,
                    balance: step.balance,
                    equity: step.equity,
                    open_positions: usize::from(engine.position().is_some()),
                };
                emit.progress(request, &at, tally, drawdown);
                *progress_events += 1;
                if (*progress_events).is_multiple_of(METRICS_EVERY) {
                    emit.metrics(&self.metrics(engine));
                }
            }
        }
    }

    /// Queues a closed trade: seed 003's exit, seed 002's log line.
    fn handle_exit(&self, emit: &mut Emitter, tally: &mut Tally, trade: &Trade) {
        let request = &self.request;
        tally.trade(trade);
        emit.exit(&request.symbol, trade);
        run_log!(
            emit,
            INFO,
            "Position closed: {} {} {} @ {} ({}), PnL {:.2}",
            trade.position.entry.direction.label(),
            lots(request, trade.position.quantity),
            request.symbol,
            round(trade.exit_price, 8),
            trade.reason.label(),
            trade.pnl
        );
    }

    /// Queues an opened position: seed 003's entry, seed 002's log line.
    fn handle_entry(&self, emit: &mut Emitter, position: &Position) {
        let request = &self.request;
        emit.entry(&request.symbol, position);
        let side = match position.entry.direction {
            engine::strategy::Direction::Long => "BUY",
            engine::strategy::Direction::Short => "SELL",
        };
        run_log!(
            emit,
            INFO,
            "Trade executed: {side} {} {} @ {}",
            lots(request, position.quantity),
            request.symbol,
            round(position.entry_price, 8)
        );
    }

    /// Reads the run's bars (off the runtime: a CSV file or a long
    /// generated range takes a while).
    async fn load(&self, emit: &mut Emitter) -> Result<Vec<engine::Bar>, RunError> {
        let request = &self.request;
        let source = self.settings.source();
        let (symbol, timeframe, from, to) = (
            request.symbol.clone(),
            request.timeframe,
            request.from,
            request.to,
        );
        let loaded =
            tokio::task::spawn_blocking(move || source.bars(&symbol, timeframe, from, to)).await;
        let bars = match loaded {
            Ok(result) => result?,
            Err(e) => return Err(RunError::Engine(format!("loading bars failed: {e}"))),
        };
        run_log!(
            emit,
            INFO,
            "Loaded {} bars of {} {}",
            bars.len(),
            request.symbol,
            request.timeframe.label()
        );
        if bars.len() < request.total_bars {
            run_log!(
                emit,
                WARN,
                "Data gaps: {} of the range's {} bars are missing",
                request.total_bars - bars.len(),
                request.total_bars
            );
        }
        Ok(bars)
    }

    /// Waits until `due` (or just checks, with `None`), obeying pause and
    /// stop; a stop's error. Resuming restarts the pace from now.
    async fn wait(
        &self,
        control: &mut watch::Receiver<Control>,
        due: Option<Instant>,
        mark: &mut (Instant, usize),
        processed: usize,
    ) -> Option<RunError> {
        loop {
            let now = *control.borrow_and_update();
            if let Some(stop) = now.stop {
                return Some(stop_error(stop));
            }
            if now.paused {
                if control.changed().await.is_err() {
                    return None;
                }
                *mark = (Instant::now(), processed);
                continue;
            }
            let due = due?;
            let now = Instant::now();
            if now >= due {
                // Behind the pace (a busy node): catch up, but never more
                // than a second's worth in a burst, and let the writers run
                // between chunks, or the run's own viewers fall behind it.
                if now - due > Duration::from_secs(1) {
                    *mark = (now, processed);
                }
                tokio::task::yield_now().await;
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => return None,
                changed = control.changed() => if changed.is_err() { return None },
            }
        }
    }

    /// The run's metrics so far.
    fn metrics(&self, engine: &Engine) -> metrics::Metrics {
        metrics::compute(
            engine.trades(),
            engine.equity_curve(),
            self.request.initial_balance,
            Calendar::for_symbol(&self.request.symbol).bars_per_year(self.request.timeframe),
        )
    }

    /// Publishes the run's end: the closing progress, equity, metrics and
    /// completion, or its error; then records it in the registry.
    async fn end(
        &self,
        emit: &mut Emitter,
        control: &mut watch::Receiver<Control>,
        outcome: Result<(Engine, Tally, Duration), RunError>,
    ) {
        // The end is published by its owner only: past the fence, or not
        // at all when another node has ended the run.
        let outcome = match self.fenced(control).await {
            Some(RunError::NodeLost) => Err(RunError::NodeLost),
            _ => outcome,
        };
        emit.tick();
        let request = &self.request;
        match outcome {
            Ok((engine, mut tally, took)) => {
                let m = self.metrics(&engine);
                let last = engine
                    .equity_curve()
                    .last()
                    .copied()
                    .unwrap_or(request.initial_balance);
                let drawdown = tally.equity(last);
                let at = Progress {
                    percent: 100.0,
                    bars_processed: engine.total_bars(),
                    bar_time: engine.last_bar_time().unwrap_or(request.from),
                    balance: engine.balance(),
                    equity: last,
                    open_positions: 0,
                };
                emit.progress(request, &at, &tally, drawdown);
                emit.metrics(&m);
                run_log!(
                    emit,
                    INFO,
                    "Backtest complete: {} trades, {:.1}% won, return {:.2}%, final balance {:.2}",
                    m.total_trades,
                    m.win_rate * 100.0,
                    m.total_return * 100.0,
                    m.final_equity
                );
                let result = emit.complete(request, &m, engine.total_bars(), took.as_secs_f64());
                // Ended before anyone can see its end: a client reacting to
                // `complete` finds the run completed (a cancel gets 409).
                self.entry.update(|s| {
                    s.status = RunStatus::Completed;
                    s.progress = 100.0;
                    s.result = Some(result);
                });
                self.publish(emit, control).await;
            }
            Err(RunError::NodeLost) => {
                // Another node declared this run lost and published its end:
                // nothing may follow that.
                emit.discard();
                tracing::warn!(backtest_id = %request.id, "backtest declared lost by another node; stopped");
                self.entry.update(|s| {
                    s.status = RunStatus::Failed;
                    s.error = Some(serde_json::json!({
                        "backtest_id": request.id,
                        "error": RunError::NodeLost.to_string(),
                    }));
                });
            }
            Err(error) => {
                let level_is_error = !matches!(error, RunError::Cancelled | RunError::ShuttingDown);
                if level_is_error {
                    run_log!(
                        emit,
                        ERROR,
                        "Backtest failed: {error}: {}",
                        error.error_details()
                    );
                } else {
                    run_log!(emit, WARN, "Backtest stopped: {error}");
                }
                let data = emit.error(&error);
                let status = if error == RunError::Cancelled {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Failed
                };
                self.entry.update(|s| {
                    s.status = status;
                    s.error = Some(data);
                });
                self.publish(emit, control).await;
            }
        }
    }

    /// Waits while the fence is closed (this node's renewals unanswered:
    /// another node may be declaring its runs lost); a stop asked meanwhile.
    async fn fenced(&self, control: &mut watch::Receiver<Control>) -> Option<RunError> {
        while !self.fence.is_open() {
            if let Some(stop) = control.borrow_and_update().stop {
                return Some(stop_error(stop));
            }
            tokio::select! {
                _ = tokio::time::sleep(FENCE_POLL) => {}
                _ = control.changed() => {}
            }
        }
        None
    }

    /// Publishes the queued events: seed 002's, then seed 003's (each room
    /// keeps its own order). A failed publish does not stop the run (seed
    /// 002: "a failed broadcast never crashes a run"); it is logged.
    async fn publish(&self, emit: &mut Emitter, control: &mut watch::Receiver<Control>) {
        let (topic, stream) = emit.take();
        for events in [topic, stream] {
            for batch in events.chunks(crate::bus::redis::MAX_BATCH) {
                self.publish_batch(batch, control).await;
            }
        }
    }

    /// Publishes one batch (the bus takes it whole or not at all), trying
    /// again while the bus refuses it, so a run's stream never has a hole:
    /// a run whose bus is down waits for it, behind the fence. Only another
    /// node ending the run (lost) gives up.
    async fn publish_batch(&self, batch: &[Event], control: &mut watch::Receiver<Control>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.publisher.publish_batch(batch).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(backtest_id = %self.request.id, error = %e, events = batch.len(), "backtest events not published; trying again");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            let lost = matches!(self.fenced(control).await, Some(RunError::NodeLost))
                || control.borrow().stop == Some(Stop::Lost);
            if lost {
                return;
            }
        }
    }
}

/// Waits for a stop request; its error.
async fn stopped(control: &mut watch::Receiver<Control>) -> RunError {
    loop {
        if let Some(stop) = control.borrow_and_update().stop {
            return stop_error(stop);
        }
        if control.changed().await.is_err() {
            // The registry is gone: nobody can stop the run any more.
            std::future::pending::<()>().await;
        }
    }
}

fn stop_error(stop: Stop) -> RunError {
    match stop {
        Stop::Cancel => RunError::Cancelled,
        Stop::Drain => RunError::ShuttingDown,
        Stop::Lost => RunError::NodeLost,
    }
}

/// A quantity as log lines show it: lots for FX (100,000 units), else units.
fn lots(request: &RunRequest, quantity: f64) -> String {
    match Calendar::for_symbol(&request.symbol) {
        Calendar::Fx => format!("{:.2} lots", quantity / 100_000.0),
        Calendar::Crypto => format!("{quantity:.4} units"),
        Calendar::Nyse => format!("{quantity:.0} shares"),
    }
}

/// The text of a panic.
fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the engine panicked".into())
}
