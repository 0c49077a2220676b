//! The embedded backtest engine's settings, a section of [`crate::Config`]:
//! where bars come from, how fast runs go and how often they report, what
//! they cost, and how many run at once, wait, and are kept. (A run room's
//! replay depth and retention are room limits:
//! `ROOMCAST_BACKTEST_MAX_EVENTS`, `ROOMCAST_BACKTEST_RETENTION`.)

use std::path::PathBuf;

use crate::config_error::{ConfigError, check_range, invalid};

/// The generated series' default seed: the same bars on every node and
/// after every restart.
pub const DEFAULT_DATA_SEED: u64 = 2024;

/// Settings of the backtest runs.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct BacktestSettings {
    /// Directory of CSV bars, `<dir>/<SYMBOL>/<TF>.csv`; unset: the
    /// generated series.
    #[arg(long = "backtest-data-dir", env = "ROOMCAST_BACKTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Seed of the generated series (the same across restarts and nodes).
    #[arg(long = "backtest-data-seed", env = "ROOMCAST_BACKTEST_DATA_SEED", default_value_t = DEFAULT_DATA_SEED)]
    pub data_seed: u64,

    /// Bars per second a run advances, so progress is visible (0 = unpaced).
    #[arg(
        long = "backtest-bars-per-sec",
        env = "ROOMCAST_BACKTEST_BARS_PER_SEC",
        default_value_t = 2_000.0
    )]
    pub bars_per_sec: f64,

    /// Bars between progress (and equity) events.
    #[arg(
        long = "backtest-progress-bars",
        env = "ROOMCAST_BACKTEST_PROGRESS_BARS",
        default_value_t = 100
    )]
    pub progress_bars: usize,

    /// Commission per side, as a fraction of notional.
    #[arg(
        long = "backtest-commission",
        env = "ROOMCAST_BACKTEST_COMMISSION",
        default_value_t = 0.0004
    )]
    pub commission: f64,

    /// Runs executing at once; the others wait, pending.
    #[arg(
        long = "backtest-max-concurrent",
        env = "ROOMCAST_BACKTEST_MAX_CONCURRENT",
        default_value_t = 16
    )]
    pub max_concurrent: usize,

    /// Runs waiting for a slot; beyond this a start gets 503.
    #[arg(
        long = "backtest-max-queued",
        env = "ROOMCAST_BACKTEST_MAX_QUEUED",
        default_value_t = 256
    )]
    pub max_queued: usize,

    /// Bars of the largest run; a longer request gets 422.
    #[arg(
        long = "backtest-max-bars",
        env = "ROOMCAST_BACKTEST_MAX_BARS",
        default_value_t = 500_000
    )]
    pub max_bars: usize,

    /// Finished runs kept (streamable, and known to the status endpoint);
    /// the oldest goes first.
    #[arg(
        long = "backtest-max-runs",
        env = "ROOMCAST_BACKTEST_MAX_RUNS",
        default_value_t = 256
    )]
    pub max_runs: usize,
}

impl Default for BacktestSettings {
    /// The documented defaults.
    fn default() -> Self {
        BacktestSettings {
            data_dir: None,
            data_seed: DEFAULT_DATA_SEED,
            bars_per_sec: 2_000.0,
            progress_bars: 100,
            commission: 0.0004,
            max_concurrent: 16,
            max_queued: 256,
            max_bars: 500_000,
            max_runs: 256,
        }
    }
}

impl BacktestSettings {
    /// Rejects values runs cannot be made with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.bars_per_sec.is_finite() && (0.0..=10_000_000.0).contains(&self.bars_per_sec)) {
            return Err(invalid(
                "ROOMCAST_BACKTEST_BARS_PER_SEC",
                format!(
                    "{} is not in [0, 10000000] (0 = unpaced)",
                    self.bars_per_sec
                ),
            ));
        }
        if !(self.commission.is_finite() && (0.0..0.1).contains(&self.commission)) {
            return Err(invalid(
                "ROOMCAST_BACKTEST_COMMISSION",
                format!("{} is not a fraction in [0, 0.1)", self.commission),
            ));
        }
        check_range(
            "ROOMCAST_BACKTEST_PROGRESS_BARS",
            self.progress_bars,
            1,
            1_000_000,
        )?;
        check_range(
            "ROOMCAST_BACKTEST_MAX_CONCURRENT",
            self.max_concurrent,
            1,
            1_024,
        )?;
        check_range("ROOMCAST_BACKTEST_MAX_QUEUED", self.max_queued, 0, 100_000)?;
        check_range("ROOMCAST_BACKTEST_MAX_BARS", self.max_bars, 1, 10_000_000)?;
        check_range("ROOMCAST_BACKTEST_MAX_RUNS", self.max_runs, 1, 100_000)?;
        if let Some(dir) = &self.data_dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "ROOMCAST_BACKTEST_DATA_DIR",
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(())
    }

    /// Where runs read their bars.
    pub fn source(&self) -> engine::data::Source {
        match &self.data_dir {
            Some(dir) => engine::data::Source::Csv(dir.clone()),
            None => engine::data::Source::Generated(engine::data::Generator {
                seed: self.data_seed,
            }),
        }
    }
}
