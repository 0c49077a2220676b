//! One run as the registry holds it: where it stands ([`RunState`],
//! written by its driver or, for an external engine's run, by the producer
//! endpoints) and what its owner asks of it ([`Control`]: pause, stop, read
//! by its driver). Both are watch channels, so waiters (`?wait=true`, the
//! driver) wake on change.

use std::time::Instant;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

use super::request::Origin;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunStatus {
    /// Waiting for a slot; nothing published yet.
    #[default]
    Pending,
    /// Executing.
    Running,
    /// Ended with its results.
    Completed,
    /// Ended with an error (data, engine, drain, node lost, event cap).
    Failed,
    /// Ended by `DELETE`.
    Cancelled,
}

impl RunStatus {
    /// `pending`, `running`, `completed`, `failed`, `cancelled`.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// What a run's watchers can read of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    /// Where it stands.
    pub status: RunStatus,
    /// Percent of its bars stepped.
    pub progress: f64,
    /// Seed 002's `backtest_complete.data`, once completed.
    pub result: Option<Value>,
    /// Seed 002's `backtest_error.data`, once failed or cancelled.
    pub error: Option<Value>,
    /// Its end has been recorded (retention, the fleet registry): what
    /// anyone asks of it from now on, on any node, says it ended.
    pub settled: bool,
}

/// Why a run is asked to stop early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `DELETE` of the run.
    Cancel,
    /// The node is draining.
    Drain,
    /// Another node declared the run lost (this node stalled past its
    /// lease) and published its end: stop without a word.
    Lost,
}

/// What the run's owner asks of its driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    /// Pacing suspended (seed 003's pause).
    pub paused: bool,
    /// End now, with this reason's error.
    pub stop: Option<Stop>,
}

/// One run, as the registry holds it.
#[derive(Debug)]
pub struct RunEntry {
    /// Its id.
    pub id: String,
    /// Which seed's POST started it.
    pub origin: Origin,
    /// Pause and stop requests, read by the driver.
    control: watch::Sender<Control>,
    /// Its state, written by the driver; `?wait=true` waits on it.
    state: watch::Sender<RunState>,
    /// For a run an external engine publishes (no driver here): when its
    /// last event came, so an abandoned one is forgotten after the retention.
    external: Option<Mutex<Instant>>,
}

impl RunEntry {
    /// A pending run of this node's driver.
    pub(super) fn new(id: String, origin: Origin) -> Self {
        RunEntry {
            id,
            origin,
            external: None,
            control: watch::Sender::new(Control::default()),
            state: watch::Sender::new(RunState {
                status: RunStatus::Pending,
                progress: 0.0,
                result: None,
                error: None,
                settled: false,
            }),
        }
    }

    /// Whether an external engine publishes it (rather than a driver here).
    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }

    /// Its state now.
    pub fn state(&self) -> RunState {
        self.state.borrow().clone()
    }

    /// Waits until it has ended and its end is recorded; its final state.
    pub async fn finished(&self) -> RunState {
        let mut state = self.state.subscribe();
        let result = state
            .wait_for(|s| s.status.is_terminal() && s.settled)
            .await;
        match result {
            Ok(s) => s.clone(),
            Err(_) => self.state(),
        }
    }

    /// Watches its control requests (the driver).
    pub(super) fn control(&self) -> watch::Receiver<Control> {
        self.control.subscribe()
    }

    /// Updates its state (the driver).
    pub(super) fn update(&self, f: impl FnOnce(&mut RunState)) {
        self.state.send_modify(f);
    }

    /// A running run an external engine publishes.
    pub(super) fn external(id: String, origin: Origin) -> Self {
        let mut entry = RunEntry::new(id, origin);
        entry.external = Some(Mutex::new(Instant::now()));
        entry.state.send_modify(|s| s.status = RunStatus::Running);
        entry
    }

    /// Where it stands now.
    pub fn status(&self) -> RunStatus {
        self.state.borrow().status
    }

    /// Notes an external engine's event now; false for a driver's run.
    pub(super) fn touch(&self) -> bool {
        match &self.external {
            Some(last) => {
                *last.lock() = Instant::now();
                true
            }
            None => false,
        }
    }

    /// When an external engine's last event came.
    pub(super) fn last_event(&self) -> Option<Instant> {
        self.external.as_ref().map(|last| *last.lock())
    }

    /// Updates its state when `f` says it changed (the producer endpoints).
    pub(super) fn update_if(&self, f: impl FnOnce(&mut RunState) -> bool) {
        self.state.send_if_modified(f);
    }

    /// Suspends or resumes its pacing.
    pub(super) fn set_paused(&self, paused: bool) {
        self.control.send_modify(|c| c.paused = paused);
    }

    /// Asks its driver to stop (the first reason stands).
    pub(super) fn request_stop(&self, stop: Stop) {
        self.control.send_modify(|c| {
            c.stop.get_or_insert(stop);
        });
    }
}
