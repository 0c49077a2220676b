//! The run registry: every backtest run this node knows by id, pending,
//! running or finished (kept `ROOMCAST_BACKTEST_RETENTION`, at most
//! `ROOMCAST_BACKTEST_MAX_RUNS`, oldest evicted first), with the slots
//! that cap how many execute at once and the queue behind them. Both seeds'
//! POSTs start runs here, the stream endpoint asks it whether an id exists,
//! `DELETE` cancels through it, and a drain ends every run with its
//! terminal error before sessions close. Each run's driver is spawned on the
//! registry's own tracker so the drain can wait for exactly those.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::driver::Driver;
use super::events::{Emitter, RunError};
use super::external::Lifecycle;
use super::fleet::{Fence, FleetRuns, RemoteCancel, Renewal};
use super::request::{Origin, RunRequest};
use super::run::{RunEntry, RunStatus, Stop};
use super::settings::BacktestSettings;
use super::slots::Slots;
use crate::catalog::RoomName;
use crate::publisher::Publisher;
use crate::rooms::Rooms;

/// Why a run could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The id is registered (running or retained): 409.
    #[error("backtest_id already exists")]
    Duplicate,
    /// Every slot is busy and the queue is full: 503.
    #[error("backtest queue full")]
    QueueFull,
    /// The node is draining: 503.
    #[error("server shutting down")]
    ShuttingDown,
    /// The fleet registry (Redis) did not answer: 503.
    #[error("backtest registry unavailable: {0}")]
    Unavailable(String),
}

/// Why a run could not be cancelled (or paused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No run has this id (never, or no longer): 404.
    #[error("backtest not found")]
    NotFound,
    /// The run has already ended: 409.
    #[error("backtest already finished")]
    Finished,
    /// An external engine publishes the run; only it can end it: 409.
    #[error("backtest is published by an external engine; end it there")]
    External,
    /// The fleet registry (Redis) did not answer: 503.
    #[error("backtest registry unavailable: {0}")]
    Unavailable(String),
}

/// A run as the status endpoint shows it, wherever in the fleet it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Percent done (at the last heartbeat, for another node's run).
    pub progress: f64,
    /// `seed002` or `seed003`.
    pub origin: String,
    /// Seed 002's `backtest_complete.data`, once completed.
    pub result: Option<Value>,
    /// Seed 002's `backtest_error.data`, once failed or cancelled.
    pub error: Option<Value>,
    /// The node running it (fleet mode).
    pub node: Option<String>,
}

/// How a start's id is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdPolicy {
    /// Exactly as given; a registered one is [`StartError::Duplicate`].
    Exact,
    /// As given, or with `_2`, `_3`, … appended until free (seed 003's
    /// generated `backtest_<date>_<time>`, two starts in one second).
    Suffixed,
}

/// A run's end, to record in the fleet registry.
#[derive(Debug, Clone)]
struct Ended {
    /// The run.
    id: String,
    /// How it ended.
    status: RunStatus,
    /// Its last progress.
    progress: f64,
    /// Seed 002's terminal data.
    data: Value,
}

/// The node's backtest runs.
#[derive(Debug)]
pub struct Backtests {
    /// Pace, reporting, costs, caps.
    settings: BacktestSettings,
    /// Events a run room keeps (`ROOMCAST_BACKTEST_MAX_EVENTS`): the cap on a run's stream.
    max_events: usize,
    /// How long a finished run stays known (`ROOMCAST_BACKTEST_RETENTION`).
    retention: Duration,
    /// Where runs publish.
    publisher: Publisher,
    /// The node's rooms, to drop a run's room when the run is evicted.
    rooms: Arc<Rooms>,
    /// Runs by id.
    runs: Mutex<HashMap<String, Arc<RunEntry>>>,
    /// Finished runs, oldest first, with when they ended.
    finished: Mutex<VecDeque<(Instant, String)>>,
    /// One slot per run executing, handed out in start order.
    slots: Arc<Slots>,
    /// Set when the drain begins: no new run starts.
    closing: AtomicBool,
    /// Every run's driver.
    tracker: TaskTracker,
    /// The fleet registry on Redis (fleet mode).
    fleet: Option<FleetRuns>,
    /// Open while this node's renewals are answered: its drivers publish
    /// only then (always open embedded).
    fence: Arc<Fence>,
    /// Ends the fleet registry has not recorded yet (Redis did not
    /// answer), retried every renewal round.
    unrecorded: Mutex<Vec<Ended>>,
    /// Held while an external engine's request is checked, published and
    /// recorded, so two requests for one run cannot interleave.
    external: tokio::sync::Mutex<()>,
}

impl Backtests {
    /// A registry running runs with `settings`, publishing through
    /// `publisher`; run rooms keep `max_events` and stay `retention`.
    pub fn new(
        settings: BacktestSettings,
        max_events: usize,
        retention: Duration,
        publisher: Publisher,
        rooms: Arc<Rooms>,
        fleet: Option<FleetRuns>,
    ) -> Arc<Self> {
        Arc::new(Backtests {
            slots: Slots::new(settings.max_concurrent),
            settings,
            max_events,
            retention,
            publisher,
            rooms,
            runs: Mutex::new(HashMap::new()),
            finished: Mutex::new(VecDeque::new()),
            closing: AtomicBool::new(false),
            tracker: TaskTracker::new(),
            fence: match &fleet {
                Some(fleet) => Fence::for_lease(fleet.lease),
                None => Fence::open(),
            },
            fleet,
            unrecorded: Mutex::new(Vec::new()),
            external: tokio::sync::Mutex::new(()),
        })
    }

    /// The lock external engines' requests take turns on.
    pub(super) fn external_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.external
    }

    /// Where runs publish (external engines' messages too).
    pub(super) fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// The settings runs are made with (bar caps for request checks).
    pub fn settings(&self) -> &BacktestSettings {
        &self.settings
    }

    /// Registers `request` and spawns its run, which waits for a slot;
    /// answers at once. With [`IdPolicy::Suffixed`] the run's id may differ
    /// from the request's (read it from the entry).
    pub async fn start(
        self: &Arc<Self>,
        mut request: RunRequest,
        ids: IdPolicy,
    ) -> Result<Arc<RunEntry>, StartError> {
        // What this node can refuse by itself, before claiming anything.
        {
            let runs = self.runs.lock();
            self.admits(&runs)?;
            if runs.contains_key(&request.id) && ids == IdPolicy::Exact {
                return Err(StartError::Duplicate);
            }
        }
        let claimed = match &self.fleet {
            Some(fleet) => {
                request.id = self.claim(fleet, &request, ids).await?;
                true
            }
            None => false,
        };
        let admitted = {
            let mut runs = self.runs.lock();
            let free = match self.admits(&runs) {
                Err(e) => Err(e),
                Ok(()) if !runs.contains_key(&request.id) => Ok(()),
                Ok(()) if ids == IdPolicy::Exact || claimed => Err(StartError::Duplicate),
                Ok(()) => {
                    let base = request.id.clone();
                    request.id = (2..)
                        .map(|n| format!("{base}_{n}"))
                        .find(|id| !runs.contains_key(id))
                        .expect("some suffix is free");
                    Ok(())
                }
            };
            free.map(|()| {
                let entry = Arc::new(RunEntry::new(request.id.clone(), request.origin));
                runs.insert(request.id.clone(), Arc::clone(&entry));
                // In line now, under the lock: runs execute in start order.
                (entry, self.slots.queue())
            })
        };
        let (entry, ticket) = match admitted {
            Ok(admitted) => admitted,
            Err(e) => {
                if claimed {
                    self.release_claims(std::slice::from_ref(&request.id)).await;
                }
                return Err(e);
            }
        };
        let driver = Driver {
            entry: Arc::clone(&entry),
            request,
            publisher: self.publisher.clone(),
            settings: self.settings.clone(),
            max_events: self.max_events,
            fence: Arc::clone(&self.fence),
        };
        let registry = Arc::clone(self);
        let finished = Arc::clone(&entry);
        self.tracker.spawn(async move {
            driver.run(ticket).await;
            registry.handle_finished(&finished).await;
        });
        Ok(entry)
    }

    /// Whether a new run may be registered now: not while draining, nor
    /// beyond the slots and the queue. Checked under the runs' lock, which
    /// the drain takes too.
    fn admits(&self, runs: &HashMap<String, Arc<RunEntry>>) -> Result<(), StartError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(StartError::ShuttingDown);
        }
        let active = runs.values().filter(|r| !r.status().is_terminal()).count();
        if active >= self.capacity() {
            return Err(StartError::QueueFull);
        }
        Ok(())
    }

    /// Claims a free id in the fleet for `request`: its id itself or, with
    /// [`IdPolicy::Suffixed`], the first free of `id_2`, `id_3`, … that this
    /// node does not hold either.
    async fn claim(
        &self,
        fleet: &FleetRuns,
        request: &RunRequest,
        ids: IdPolicy,
    ) -> Result<String, StartError> {
        let suffixed = ids == IdPolicy::Suffixed;
        for n in 1..=100 {
            let candidate = if n == 1 {
                request.id.clone()
            } else {
                format!("{}_{n}", request.id)
            };
            if n > 1 && self.runs.lock().contains_key(&candidate) {
                continue;
            }
            // Where its end goes should another node have to publish it.
            let ends: Vec<RoomName> = if request.streaming {
                [RoomName::topic("backtest"), RoomName::backtest(&candidate)]
                    .into_iter()
                    .flatten()
                    .collect()
            } else {
                Vec::new()
            };
            match fleet
                .claim(&candidate, request.origin.label(), &ends, false)
                .await
            {
                Ok(true) => return Ok(candidate),
                Ok(false) if !suffixed => return Err(StartError::Duplicate),
                Ok(false) => continue,
                Err(e) => return Err(StartError::Unavailable(e.to_string())),
            }
        }
        Err(StartError::Duplicate)
    }

    /// The lifecycle of run `id` as an external producer's messages see it.
    pub(super) fn lifecycle_of(&self, id: &str) -> Lifecycle {
        match self.get(id) {
            None => Lifecycle::default(),
            Some(entry) => {
                let state = entry.state();
                Lifecycle {
                    registered: true,
                    external: entry.is_external(),
                    origin: Some(entry.origin),
                    status: state.status,
                    progress: state.progress,
                    result: None,
                    error: None,
                }
            }
        }
    }

    /// Unfinished runs this node holds, against the cap of runs executing
    /// and waiting (external engines' runs count too).
    pub(super) fn active(&self) -> usize {
        self.runs
            .lock()
            .values()
            .filter(|r| !r.status().is_terminal())
            .count()
    }

    /// The cap [`Backtests::active`] is held to.
    pub(super) fn capacity(&self) -> usize {
        self.settings.max_concurrent + self.settings.max_queued
    }

    /// Claims `id` fleet-wide for an external engine's run (no-op
    /// embedded): `Ok(false)` when it is taken.
    pub(super) async fn claim_external(
        &self,
        id: &str,
        origin: Origin,
        ends: &[RoomName],
    ) -> Result<bool, String> {
        match &self.fleet {
            None => Ok(true),
            Some(fleet) => fleet
                .claim(id, origin.label(), ends, true)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Gives back claims that no run came of.
    pub(super) async fn release_claims(&self, ids: &[String]) {
        if let Some(fleet) = &self.fleet {
            for id in ids {
                fleet.release(id).await;
            }
        }
    }

    /// Records an external engine's run at `life` (registering it if new),
    /// after its messages were published; its end starts its retention.
    pub(super) async fn commit_external(&self, id: &str, origin: Origin, life: &Lifecycle) {
        let entry = {
            let mut runs = self.runs.lock();
            let entry = runs
                .entry(id.to_string())
                .or_insert_with(|| Arc::new(RunEntry::external(id.to_string(), origin)));
            Arc::clone(entry)
        };
        if !entry.touch() {
            tracing::warn!(
                backtest_id = id,
                "an external engine's run collided with an embedded one; not recorded"
            );
            return;
        }
        let mut ended = false;
        entry.update_if(|state| {
            if state.status.is_terminal() {
                return false;
            }
            state.status = life.status;
            state.progress = life.progress;
            state.result.clone_from(&life.result);
            state.error.clone_from(&life.error);
            ended = life.status.is_terminal();
            true
        });
        if ended {
            self.handle_finished(&entry).await;
        }
    }

    /// The run `id` wherever it runs: this node's, or (fleet mode) another
    /// node's from the fleet registry. `None` when unknown or expired.
    pub async fn lookup(&self, id: &str) -> Result<Option<RunView>, ControlError> {
        if let Some(entry) = self.get(id) {
            let state = entry.state();
            return Ok(Some(RunView {
                status: state.status.label().to_string(),
                progress: state.progress,
                origin: entry.origin.label().to_string(),
                result: state.result,
                error: state.error,
                node: self.fleet.as_ref().map(|f| f.node().to_string()),
            }));
        }
        let Some(fleet) = &self.fleet else {
            return Ok(None);
        };
        let remote = fleet
            .lookup(id)
            .await
            .map_err(|e| ControlError::Unavailable(e.to_string()))?;
        Ok(remote.map(|r| {
            let completed = r.status == "completed";
            RunView {
                result: r.result.clone().filter(|_| completed),
                error: r.result.filter(|_| !completed),
                status: r.status,
                progress: r.progress,
                origin: r.origin,
                node: Some(r.owner),
            }
        }))
    }

    /// The run `id`, if it is known (pending, running or retained).
    pub fn get(&self, id: &str) -> Option<Arc<RunEntry>> {
        self.runs.lock().get(id).cloned()
    }

    /// Ends the run `id` early with "Backtest cancelled".
    pub async fn cancel(&self, id: &str) -> Result<(), ControlError> {
        let Some(entry) = self.get(id) else {
            // Another node's run: its owner reads the flag when it renews.
            let Some(fleet) = &self.fleet else {
                return Err(ControlError::NotFound);
            };
            return match fleet.cancel(id).await {
                Ok(RemoteCancel::Asked) => Ok(()),
                Ok(RemoteCancel::Ended) => Err(ControlError::Finished),
                Ok(RemoteCancel::External) => Err(ControlError::External),
                Ok(RemoteCancel::Unknown) => Err(ControlError::NotFound),
                Err(e) => Err(ControlError::Unavailable(e.to_string())),
            };
        };
        if entry.state().status.is_terminal() {
            return Err(ControlError::Finished);
        }
        if entry.is_external() {
            return Err(ControlError::External);
        }
        entry.request_stop(Stop::Cancel);
        Ok(())
    }

    /// Suspends (`true`) or resumes the pacing of the run `id`.
    pub fn pause(&self, id: &str, paused: bool) -> Result<(), ControlError> {
        let entry = self.get(id).ok_or(ControlError::NotFound)?;
        if entry.state().status.is_terminal() {
            return Err(ControlError::Finished);
        }
        if entry.is_external() {
            return Err(ControlError::External);
        }
        entry.set_paused(paused);
        Ok(())
    }

    /// Runs by status, for metrics and status: (pending, running, finished).
    pub fn counts(&self) -> (usize, usize, usize) {
        let runs = self.runs.lock();
        let mut counts = (0, 0, 0);
        for run in runs.values() {
            match run.status() {
                RunStatus::Pending => counts.0 += 1,
                RunStatus::Running => counts.1 += 1,
                _ => counts.2 += 1,
            }
        }
        counts
    }

    /// The drain: no new run starts, every unfinished run ends with "Server
    /// shutting down" (published before sessions close), and this returns
    /// when all of them have.
    pub async fn shut_down(&self) {
        let runs: Vec<Arc<RunEntry>> = {
            // Under the lock starts check it under: none slips past.
            let runs = self.runs.lock();
            self.closing.store(true, Ordering::Release);
            runs.values().cloned().collect()
        };
        for run in runs {
            run.request_stop(Stop::Drain);
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Fleet mode: every third of the lease, renews this node's unfinished
    /// runs (and obeys a cancel asked on another node), then ends the runs
    /// whose owner stopped renewing: one node wins each by script and
    /// publishes its terminal error, "Backtest node lost". Until `shutdown`.
    pub async fn run_fleet(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(fleet) = self.fleet.clone() else {
            return;
        };
        let mut tick = tokio::time::interval((fleet.lease / 3).max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let mine: Vec<Arc<RunEntry>> = self
                .runs
                .lock()
                .values()
                .filter(|r| !r.status().is_terminal())
                .cloned()
                .collect();
            // All at once: the connection pipelines them, so a round takes
            // one round trip however many runs this node has.
            let sent = Instant::now();
            let renewals = futures_util::future::join_all(mine.iter().map(|run| {
                let state = run.state();
                let fleet = &fleet;
                async move {
                    fleet
                        .renew(&run.id, state.status.label(), state.progress)
                        .await
                }
            }))
            .await;
            let mut answered = true;
            for (run, renewal) in mine.iter().zip(renewals) {
                match renewal {
                    Renewal::Cancel if !run.is_external() => run.request_stop(Stop::Cancel),
                    Renewal::Lost if run.is_external() => self.lose_external(run),
                    Renewal::Lost => run.request_stop(Stop::Lost),
                    Renewal::Unknown => answered = false,
                    Renewal::Cancel | Renewal::Held => {}
                }
            }
            // Ends Redis missed: until recorded, a run could be declared lost.
            let unrecorded = std::mem::take(&mut *self.unrecorded.lock());
            for run in unrecorded {
                self.record_end(&fleet, &run).await;
            }
            let Ok(active) = fleet.active().await else {
                continue;
            };
            if answered {
                self.fence.renewed(sent);
            }
            for id in active {
                if self.runs.lock().contains_key(&id) {
                    continue;
                }
                self.end_lost(&fleet, &id).await;
            }
        }
    }

    /// An external engine's run another node declared lost (this node
    /// stalled): it takes no more events.
    fn lose_external(&self, run: &RunEntry) {
        run.update_if(|state| {
            if state.status.is_terminal() {
                return false;
            }
            state.status = RunStatus::Failed;
            state.error = Some(serde_json::json!({
                "backtest_id": run.id,
                "error": RunError::NodeLost.to_string(),
            }));
            true
        });
    }

    /// Ends another node's run if its owner stopped renewing it, in the
    /// rooms its owner named when it claimed the run.
    async fn end_lost(&self, fleet: &FleetRuns, id: &str) {
        let error = RunError::NodeLost;
        let data = serde_json::json!({
            "backtest_id": id,
            "error": error.to_string(),
            "error_details": error.error_details(),
            "timestamp": crate::protocol::time::now(),
        });
        let ends = match fleet.mark_lost(id, &data).await {
            Ok(Some(ends)) => ends,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(backtest_id = id, error = %e, "lost-run check failed");
                return;
            }
        };
        tracing::warn!(backtest_id = id, "backtest node lost: run ended here");
        let mut emit = Emitter::for_rooms(id, &ends, self.max_events);
        emit.error(&error);
        let (topic, stream) = emit.take();
        for events in [topic, stream] {
            if let Err(e) = self.publisher.publish_batch(&events).await {
                tracing::warn!(backtest_id = id, error = %e, "node-lost end not published");
            }
        }
    }

    /// Forgets finished runs older than the retention, a sweep every
    /// quarter of it (1–60 s), until `shutdown`.
    pub async fn run_expiry(self: Arc<Self>, shutdown: CancellationToken) {
        let period = (self.retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.expire(Instant::now()),
            }
        }
    }

    /// Forgets the finished runs that ended `retention` before `now`.
    fn expire(&self, now: Instant) {
        let expired: Vec<String> = {
            let mut finished = self.finished.lock();
            let mut expired = Vec::new();
            while let Some((ended, _)) = finished.front() {
                if now.duration_since(*ended) < self.retention {
                    break;
                }
                expired.extend(finished.pop_front().map(|(_, id)| id));
            }
            expired
        };
        // External runs whose engine went quiet without ending them.
        let abandoned: Vec<String> = self
            .runs
            .lock()
            .values()
            .filter(|r| {
                r.last_event().is_some_and(|last| {
                    now.saturating_duration_since(last) >= self.retention
                        && !r.status().is_terminal()
                })
            })
            .map(|r| r.id.clone())
            .collect();
        for id in expired.into_iter().chain(abandoned) {
            self.forget(&id);
        }
    }

    /// Notes a run's end (in the fleet registry too); evicts the oldest
    /// finished runs beyond the cap.
    async fn handle_finished(&self, entry: &RunEntry) {
        if let Some(fleet) = &self.fleet {
            let state = entry.state();
            let end = Ended {
                id: entry.id.clone(),
                status: state.status,
                progress: state.progress,
                data: state.result.or(state.error).unwrap_or(Value::Null),
            };
            self.record_end(fleet, &end).await;
        }
        let evicted: Vec<String> = {
            let mut finished = self.finished.lock();
            finished.push_back((Instant::now(), entry.id.clone()));
            let excess = finished.len().saturating_sub(self.settings.max_runs);
            finished.drain(..excess).map(|(_, id)| id).collect()
        };
        for id in evicted {
            self.forget(&id);
        }
        entry.update(|s| s.settled = true);
    }

    /// Records a run's end in the fleet registry; kept for the next
    /// renewal round when Redis does not answer.
    async fn record_end(&self, fleet: &FleetRuns, end: &Ended) {
        match fleet
            .finish(&end.id, end.status.label(), end.progress, &end.data)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(backtest_id = %end.id, "backtest had been declared lost by another node");
            }
            Err(e) => {
                tracing::warn!(backtest_id = %end.id, error = %e, "backtest end not recorded in redis; retrying");
                self.unrecorded.lock().push(end.clone());
            }
        }
    }

    /// Removes a finished run and its room (watchers still in it keep
    /// what they have; a new viewer of the id gets 4004).
    fn forget(&self, id: &str) {
        self.runs.lock().remove(id);
        if let Ok(room) = RoomName::backtest(id) {
            self.rooms.discard(&room);
        }
        tracing::debug!(backtest_id = id, "finished backtest run forgotten");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{AlertBook, Alerts};
    use crate::bus::Bus;
    use crate::rooms::limits::RoomLimits;

    fn registry(max_runs: usize) -> (Arc<Backtests>, Arc<Rooms>) {
        let rooms = Arc::new(Rooms::new(&RoomLimits::default()));
        let publisher = Publisher::new(
            Arc::new(Bus::local(Arc::clone(&rooms))),
            Arc::new(Alerts::Local(AlertBook::new(10, 10))),
            Arc::default(),
        );
        let settings = BacktestSettings {
            bars_per_sec: 0.0,
            max_runs,
            ..BacktestSettings::default()
        };
        let registry = Backtests::new(
            settings,
            1_000,
            Duration::from_secs(60),
            publisher,
            Arc::clone(&rooms),
            None,
        );
        (registry, rooms)
    }

    fn request(id: &str) -> RunRequest {
        let from = engine::calendar::parse_date("2024-01-01").unwrap();
        RunRequest {
            id: id.to_string(),
            origin: Origin::Seed003,
            name: "test".into(),
            variant: "sma_crossover".into(),
            strategy: "sma_crossover".into(),
            symbol: "BTC-USD".into(),
            timeframe_label: "1H".into(),
            timeframe: engine::Timeframe::H1,
            higher: Vec::new(),
            from,
            to: from + 2 * 86_400,
            total_bars: 48,
            initial_balance: 10_000.0,
            risk_per_trade: 0.01,
            streaming: true,
        }
    }

    #[tokio::test]
    async fn finished_runs_beyond_the_cap_are_forgotten_oldest_first_with_their_rooms() {
        let (registry, rooms) = registry(2);
        for id in ["run-1", "run-2", "run-3"] {
            let run = registry.start(request(id), IdPolicy::Exact).await.unwrap();
            assert_eq!(run.finished().await.status, RunStatus::Completed);
        }
        // Every driver has returned and been recorded.
        registry.shut_down().await;
        assert!(registry.get("run-1").is_none());
        assert!(rooms.get(&RoomName::backtest("run-1").unwrap()).is_none());
        for id in ["run-2", "run-3"] {
            assert!(registry.get(id).is_some(), "{id}");
            let room = rooms
                .get(&RoomName::backtest(id).unwrap())
                .expect("its room");
            assert!(room.seq() > 5, "{id} published its run");
        }
        // The retention ends what the cap left.
        registry.expire(Instant::now() + Duration::from_secs(61));
        assert_eq!(registry.counts(), (0, 0, 0));
        assert!(rooms.get(&RoomName::backtest("run-3").unwrap()).is_none());
    }

    #[tokio::test]
    async fn ids_are_unique_suffixed_on_demand_and_nothing_starts_while_draining() {
        let (registry, _) = registry(8);
        let first = registry
            .start(request("bt"), IdPolicy::Exact)
            .await
            .unwrap();
        assert_eq!(
            registry
                .start(request("bt"), IdPolicy::Exact)
                .await
                .unwrap_err(),
            StartError::Duplicate
        );
        let second = registry
            .start(request("bt"), IdPolicy::Suffixed)
            .await
            .unwrap();
        assert_eq!(second.id, "bt_2");
        first.finished().await;
        second.finished().await;
        assert_eq!(registry.cancel("bt").await, Err(ControlError::Finished));
        assert_eq!(registry.cancel("nope").await, Err(ControlError::NotFound));
        registry.shut_down().await;
        assert_eq!(
            registry
                .start(request("late"), IdPolicy::Exact)
                .await
                .unwrap_err(),
            StartError::ShuttingDown
        );
    }

    #[tokio::test]
    async fn an_external_run_keeps_its_lifecycle_in_order() {
        use super::super::external::{ExternalError, ProducerError, Target};
        let (registry, rooms) = registry(8);
        let topic = Target::Topic(RoomName::topic("backtest").unwrap());
        let message =
            |kind: &str, data: serde_json::Value| serde_json::json!({"type": kind, "data": data});
        let refused = |r: Result<_, ExternalError>| match r {
            Err(ExternalError::Refused {
                index,
                published,
                error,
            }) => (index, published, error),
            other => panic!("not refused: {other:?}"),
        };
        let log = message("log_entry", serde_json::json!({"backtest_id": "ext"}));
        let (_, _, e) = refused(registry.publish_external(&topic, vec![log.clone()]).await);
        assert_eq!(e, ProducerError::NotStarted);
        let start = message("backtest_start", serde_json::json!({"backtest_id": "ext"}));
        let progress = |p: f64| {
            message(
                "backtest_progress",
                serde_json::json!({"backtest_id": "ext", "progress": p}),
            )
        };
        // A refused message: those before it are published and recorded.
        let (index, published, e) = refused(
            registry
                .publish_external(
                    &topic,
                    vec![start.clone(), progress(40.0), progress(20.0), log.clone()],
                )
                .await,
        );
        assert_eq!((index, published), (2, 2));
        assert!(matches!(e, ProducerError::Backwards { .. }));
        assert_eq!(registry.get("ext").unwrap().state().progress, 40.0);
        let (_, _, e) = refused(registry.publish_external(&topic, vec![start]).await);
        assert_eq!(e, ProducerError::Duplicate);
        assert_eq!(registry.cancel("ext").await, Err(ControlError::External));
        // Seed 003's messages cannot end a seed 002 run.
        let stream = Target::Run("ext".into());
        let done = serde_json::json!({"type": "complete", "data": {"metrics": {}}});
        let (_, _, e) = refused(registry.publish_external(&stream, vec![done]).await);
        assert_eq!(e, ProducerError::OtherSeed);
        let end = message(
            "backtest_complete",
            serde_json::json!({"backtest_id": "ext", "final_balance": 1.0}),
        );
        let published = registry.publish_external(&topic, vec![end]).await.unwrap();
        assert_eq!(published.count, 1);
        let (_, _, e) = refused(registry.publish_external(&topic, vec![log]).await);
        assert_eq!(e, ProducerError::Finished);
        let state = registry.get("ext").unwrap().state();
        assert_eq!(state.status, RunStatus::Completed);
        assert_eq!(state.result.unwrap()["final_balance"], 1.0);
        drop(rooms);
    }
}
