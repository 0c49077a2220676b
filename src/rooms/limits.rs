//! The room registry's bounds, a section of [`crate::Config`]: how many
//! events a ring room keeps, how many rooms a node may hold, and how long a
//! memberless room with history outlives its last publish. Together they
//! bound the memory rooms can hold (`docs/limits.md`): at most
//! `ROOMCAST_MAX_ROOMS × ROOMCAST_HISTORY_SIZE` retained events, and rooms
//! nobody publishes to or watches go after `ROOMCAST_ROOM_IDLE_TTL`.

use crate::config_error::{ConfigError, check_range, check_secs};
use crate::seconds::Seconds;

/// Default maximum number of rooms on one node.
pub const DEFAULT_MAX_ROOMS: usize = 100_000;

/// Retention bounds of the rooms on one node.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct RoomLimits {
    /// Events each ring room (tickers, patterns, alerts, market status)
    /// retains for replay to new subscribers.
    #[arg(long, env = "ROOMCAST_HISTORY_SIZE", default_value_t = super::history::DEFAULT_HISTORY_SIZE)]
    pub history_size: usize,

    /// Rooms this node may hold, besides the ones it publishes into itself.
    /// At the cap the longest-idle memberless rooms make way for new ones;
    /// only when every room has members is a new room refused.
    #[arg(long, env = "ROOMCAST_MAX_ROOMS", default_value_t = DEFAULT_MAX_ROOMS)]
    pub max_rooms: usize,

    /// Seconds a room with history but no members outlives its last publish
    /// (its history goes with it).
    #[arg(long = "room-idle-ttl", env = "ROOMCAST_ROOM_IDLE_TTL", default_value_t = RoomLimits::default().idle_ttl)]
    pub idle_ttl: Seconds,

    /// Events a backtest run's room retains: its whole replay. A run that
    /// would produce more stops with an error, so a replay is never
    /// silently incomplete.
    #[arg(long = "backtest-max-events", env = "ROOMCAST_BACKTEST_MAX_EVENTS", default_value_t = DEFAULT_RUN_MAX_EVENTS)]
    pub run_max_events: usize,

    /// Seconds a finished backtest run stays streamable (replayed whole to
    /// new viewers) after its last event.
    #[arg(long = "backtest-retention", env = "ROOMCAST_BACKTEST_RETENTION", default_value_t = RoomLimits::default().run_retention)]
    pub run_retention: Seconds,
}

/// Default events retained per backtest run.
pub const DEFAULT_RUN_MAX_EVENTS: usize = 20_000;

impl Default for RoomLimits {
    /// The configuration's defaults: 100 events, 100,000 rooms, one day;
    /// runs of 20,000 events kept an hour.
    fn default() -> Self {
        RoomLimits {
            history_size: super::history::DEFAULT_HISTORY_SIZE,
            max_rooms: DEFAULT_MAX_ROOMS,
            idle_ttl: Seconds::from_secs(86_400),
            run_max_events: DEFAULT_RUN_MAX_EVENTS,
            run_retention: Seconds::from_secs(3_600),
        }
    }
}

impl RoomLimits {
    /// Limits keeping `history_size` events per ring room, at most `max_rooms`
    /// rooms, the default idle TTL (tests, benches).
    pub fn new(history_size: usize, max_rooms: usize) -> Self {
        RoomLimits {
            history_size,
            max_rooms,
            ..RoomLimits::default()
        }
    }

    /// Rejects values the registry cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("ROOMCAST_HISTORY_SIZE", self.history_size, 0, 100_000)?;
        check_range("ROOMCAST_MAX_ROOMS", self.max_rooms, 1, 100_000_000)?;
        check_range(
            "ROOMCAST_BACKTEST_MAX_EVENTS",
            self.run_max_events,
            10,
            1_000_000,
        )?;
        check_secs("ROOMCAST_BACKTEST_RETENTION", self.run_retention.get())?;
        Ok(())
    }
}
