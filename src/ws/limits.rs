//! The WebSocket sessions' bounds, a section of [`crate::Config`]: the
//! heartbeat (ping after silence, close after more), what a client may send
//! (message rate, burst and hard limit, message size and time, rooms per
//! connection), how many connections a node takes, and how far a session may
//! fall behind before its rooms' slow-consumer policy applies
//! (`docs/limits.md`).

use std::time::Duration;

use crate::config_error::{ConfigError, check_range, check_secs, invalid};
use crate::seconds::Seconds;

/// Limits of the WebSocket sessions.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SessionLimits {
    /// Seconds without any client frame (message or pong) before a session is closed (4000).
    #[arg(
        long = "heartbeat-timeout",
        env = "ROOMCAST_HEARTBEAT_TIMEOUT",
        default_value_t = Seconds::from_secs(60)
    )]
    pub heartbeat_timeout: Seconds,

    /// Seconds of client silence after which the server pings the session
    /// (default 20; see [`SessionLimits::ping_interval`]).
    #[arg(long = "ping-interval", env = "ROOMCAST_PING_INTERVAL")]
    pub ping_interval: Option<Seconds>,

    /// Seed 004's name for the ping interval, read when
    /// `ROOMCAST_PING_INTERVAL` is unset; both set to different values
    /// refuse to start.
    #[arg(long = "websocket-ping-interval", env = "WEBSOCKET_PING_INTERVAL")]
    pub websocket_ping_interval: Option<Seconds>,

    /// Client messages per second a connection may send (sustained).
    #[arg(long, env = "ROOMCAST_CLIENT_MSG_RATE", default_value_t = 10)]
    pub client_msg_rate: u32,

    /// Client messages a connection may send in a burst above the rate.
    #[arg(long, env = "ROOMCAST_CLIENT_MSG_BURST", default_value_t = 10)]
    pub client_msg_burst: u32,

    /// Rejected (over-rate) messages within one second that close the connection with 4029.
    #[arg(long, env = "ROOMCAST_CLIENT_MSG_HARD_LIMIT", default_value_t = 50)]
    pub client_msg_hard_limit: u32,

    /// Largest client frame or reassembled message in bytes; larger closes with 1009.
    #[arg(long, env = "ROOMCAST_MAX_MESSAGE_SIZE", default_value_t = 65_536)]
    pub max_message_size: usize,

    /// Seconds a client WebSocket message may take from its first byte to its
    /// last (all fragments); longer closes with 1008.
    #[arg(
        long = "message-timeout",
        env = "ROOMCAST_MESSAGE_TIMEOUT",
        default_value_t = Seconds::from_secs(10)
    )]
    pub message_timeout: Seconds,

    /// Rooms one connection may be subscribed to at once.
    #[arg(long, env = "ROOMCAST_MAX_SUBSCRIPTIONS", default_value_t = 256)]
    pub max_subscriptions: usize,

    /// Concurrent WebSocket connections; beyond it upgrades get 503 (seed 004's variable).
    #[arg(long, env = "WEBSOCKET_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// Frames a session may have queued before its room's slow-consumer policy applies.
    #[arg(long, env = "ROOMCAST_OUTBOX_CAPACITY", default_value_t = crate::delivery::outbox::DEFAULT_CAPACITY)]
    pub outbox_capacity: usize,

    /// Connections one seed 003 stream (one backtest run) may have on this
    /// node; beyond it the upgrade gets 503. 0 = unlimited (the seed's
    /// default: only `WEBSOCKET_MAX_CONNECTIONS` applies).
    #[arg(long, env = "ROOMCAST_STREAM_MAX_CONNECTIONS", default_value_t = 0)]
    pub stream_max_connections: usize,
}

/// The ping interval when neither name sets it.
pub const DEFAULT_PING_INTERVAL: Seconds = Seconds::from_secs(20);

impl SessionLimits {
    /// The effective ping interval: `ROOMCAST_PING_INTERVAL`, else seed
    /// 004's `WEBSOCKET_PING_INTERVAL`, else 20 s.
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
            .or(self.websocket_ping_interval)
            .unwrap_or(DEFAULT_PING_INTERVAL)
            .get()
    }

    /// Rejects values the sessions cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs("ROOMCAST_HEARTBEAT_TIMEOUT", self.heartbeat_timeout.get())?;
        if let (Some(ours), Some(seeds)) = (self.ping_interval, self.websocket_ping_interval)
            && ours != seeds
        {
            return Err(invalid(
                "ROOMCAST_PING_INTERVAL",
                format!(
                    "{} s conflicts with WEBSOCKET_PING_INTERVAL ({} s): they name one setting; set one, or both alike",
                    ours.get().as_secs_f64(),
                    seeds.get().as_secs_f64()
                ),
            ));
        }
        check_secs("ROOMCAST_PING_INTERVAL", self.ping_interval())?;
        if self.ping_interval() >= self.heartbeat_timeout.get() {
            return Err(invalid(
                "ROOMCAST_PING_INTERVAL",
                "must be shorter than ROOMCAST_HEARTBEAT_TIMEOUT, or idle clients are closed before being pinged",
            ));
        }
        if self.client_msg_rate == 0 {
            return Err(invalid("ROOMCAST_CLIENT_MSG_RATE", "must be at least 1"));
        }
        if self.client_msg_hard_limit == 0 {
            return Err(invalid(
                "ROOMCAST_CLIENT_MSG_HARD_LIMIT",
                "must be at least 1",
            ));
        }
        check_range(
            "ROOMCAST_MAX_MESSAGE_SIZE",
            self.max_message_size,
            128,
            16 << 20,
        )?;
        check_range(
            "ROOMCAST_MAX_SUBSCRIPTIONS",
            self.max_subscriptions,
            1,
            100_000,
        )?;
        check_range(
            "WEBSOCKET_MAX_CONNECTIONS",
            self.max_connections,
            1,
            10_000_000,
        )?;
        check_range(
            "ROOMCAST_OUTBOX_CAPACITY",
            self.outbox_capacity,
            16,
            1 << 20,
        )?;
        check_secs("ROOMCAST_MESSAGE_TIMEOUT", self.message_timeout.get())?;
        Ok(())
    }
}
