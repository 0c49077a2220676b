//! Backtest runs on the embedded engine (`engine/`), for seeds 002 and 003:
//! the [`registry`] of runs (ids, slots, queue, retention, cancel, drain;
//! its Redis half in [`fleet`]), each [`run`]'s entry (state out, control
//! in), each run's async [`driver`] (pacing, chunks, control), the [`events`] a
//! run publishes in each seed's shapes, the run's own [`log`] (seed 002's
//! `log_entry`), the checks every start [`request`] passes, and the
//! [`settings`]. The seeds' HTTP faces (`crate::seeds::seed002`,
//! `crate::seeds::seed003`) build requests and read the registry; runs
//! publish through the [`crate::publisher::Publisher`] like every source.

pub mod driver;
pub mod events;
pub mod external;
pub mod fleet;
pub mod log;
pub mod registry;
pub mod request;
pub mod run;
pub mod settings;
pub mod slots;

pub use external::{ProducedStep, ProducerError};
pub use registry::{Backtests, ControlError, IdPolicy, RunView, StartError};
pub use request::{Origin, RequestError, RunRequest};
pub use run::{RunEntry, RunState, RunStatus};
pub use settings::BacktestSettings;
