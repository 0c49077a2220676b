//! Typed configuration from flags and environment variables. Every setting has
//! a documented default (see `README.md` and `roomcast --help`), and
//! [`Config::validate`] rejects bad values at start-up with a message naming
//! the variable. Where a seed names an environment variable, roomcast honours
//! that exact name (`REDIS_URL`, `REALTIME_UPDATE_INTERVAL`,
//! `REALTIME_AFTER_HOURS_INTERVAL`, `WEBSOCKET_MAX_CONNECTIONS`).

use std::net::SocketAddr;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use crate::catalog::normalize_ticker;
pub use crate::config_error::ConfigError;
use crate::config_error::{check_range, check_secs, invalid};
use crate::http::limits::HttpLimits;
use crate::peers::PeerLimits;
use crate::rooms::limits::RoomLimits;
use crate::seconds::Seconds;

/// Default symbols of the embedded market simulator.
pub const DEFAULT_SYMBOLS: &str = "AAPL,MSFT,TSLA,NVDA,AMZN,GOOGL,META,BTC-USD,ETH-USD";

/// roomcast: a real-time WebSocket streaming gateway for trading platforms.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(name = "roomcast", version, about, long_about = None)]
pub struct Config {
    /// Address to serve HTTP and WebSocket on.
    #[arg(long, env = "ROOMCAST_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Redis URL for fleet mode (seed 001's variable): publishes go through
    /// Redis to every node; room history lives in Redis streams.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// This node's name in the fleet (leases, status); default: host-pid-random.
    #[arg(long, env = "ROOMCAST_NODE_ID")]
    pub node_id: Option<String>,

    /// Prefix of roomcast's Redis keys and channels.
    #[arg(long, env = "ROOMCAST_REDIS_PREFIX", default_value = "roomcast")]
    pub redis_prefix: String,

    /// Events each room's Redis stream keeps for replay and resume (at least).
    #[arg(long, env = "ROOMCAST_REDIS_STREAM_LEN", default_value_t = 1_000)]
    pub redis_stream_len: usize,

    /// Seconds after which an idle room's Redis keys expire.
    #[arg(
        long = "redis-key-ttl",
        env = "ROOMCAST_REDIS_KEY_TTL",
        default_value_t = Seconds::from_secs(86_400)
    )]
    pub redis_key_ttl: Seconds,

    /// Seconds a producer lease (simulator, ingest) outlives its holder.
    #[arg(long = "lease-ttl", env = "ROOMCAST_LEASE_TTL", default_value_t = Seconds::from_secs(10))]
    pub lease_ttl: Seconds,

    /// Seconds between simulated price updates during US market hours (and
    /// always for crypto symbols).
    #[arg(
        long = "update-interval",
        env = "REALTIME_UPDATE_INTERVAL",
        default_value_t = Seconds::from_secs(5)
    )]
    pub update_interval: Seconds,

    /// Seconds between simulated equity price updates outside market hours.
    #[arg(
        long = "after-hours-interval",
        env = "REALTIME_AFTER_HOURS_INTERVAL",
        default_value_t = Seconds::from_secs(60)
    )]
    pub after_hours_interval: Seconds,

    /// Run the embedded market simulator (prices, market status, patterns).
    #[arg(long, env = "ROOMCAST_SIMULATOR", default_value_t = true, action = ArgAction::Set)]
    pub simulator: bool,

    /// Symbols the simulator publishes (comma-separated).
    #[arg(long, env = "ROOMCAST_SYMBOLS", value_delimiter = ',', default_value = DEFAULT_SYMBOLS)]
    pub symbols: Vec<String>,

    /// Seed for the simulator's random walk (random when unset).
    #[arg(long, env = "ROOMCAST_SIM_SEED")]
    pub sim_seed: Option<u64>,

    /// Seconds without any client frame (message or pong) before a session is closed (4000).
    #[arg(
        long = "heartbeat-timeout",
        env = "ROOMCAST_HEARTBEAT_TIMEOUT",
        default_value_t = Seconds::from_secs(60)
    )]
    pub heartbeat_timeout: Seconds,

    /// Seconds of client silence after which the server pings the session.
    #[arg(
        long = "ping-interval",
        env = "ROOMCAST_PING_INTERVAL",
        default_value_t = Seconds::from_secs(20)
    )]
    pub ping_interval: Seconds,

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

    /// Price alerts (`POST /api/alerts`) the node holds at once.
    #[arg(long, env = "ROOMCAST_MAX_ALERTS", default_value_t = 10_000)]
    pub max_alerts: usize,

    /// PostgreSQL holding the `modeldata` table (seed 000). Unset: an embedded
    /// in-memory store of simulated AI trading models.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The modeldata table (`name` or `schema.name`).
    #[arg(long, env = "MODELDATA_TABLE", default_value = "modeldata")]
    pub modeldata_table: String,

    /// Seconds between two `modeldata_update` broadcasts (seed 000's 20).
    #[arg(
        long = "modeldata-interval",
        env = "MODELDATA_INTERVAL_SECS",
        default_value_t = Seconds::from_secs(20)
    )]
    pub modeldata_interval: Seconds,

    /// Whether roomcast creates its `(display_name, created_at, id)` index.
    #[arg(
        long,
        env = "MODELDATA_CREATE_INDEX",
        value_enum,
        default_value = "create"
    )]
    pub modeldata_create_index: crate::sources::modeldata::postgres::IndexMode,

    /// Database connections in the modeldata pool.
    #[arg(long, env = "MODELDATA_POOL_SIZE", default_value_t = 4)]
    pub modeldata_pool_size: usize,

    /// Distinct modeldata option sets (`?points`, `?sampler`, `?from`, `?to`) served at once.
    #[arg(long, env = "MODELDATA_MAX_FEEDS", default_value_t = 32)]
    pub modeldata_max_feeds: usize,

    /// Largest `?points` a modeldata connection may ask for.
    #[arg(long, env = "MODELDATA_MAX_POINTS", default_value_t = 5_000)]
    pub modeldata_max_points: usize,

    /// Simulated models of the embedded modeldata store (no DATABASE_URL).
    #[arg(long, env = "MODELDATA_SIM_MODELS", default_value_t = 6)]
    pub modeldata_sim_models: usize,

    /// Seconds a graceful shutdown may take before remaining sessions are dropped.
    #[arg(
        long = "shutdown-timeout",
        env = "ROOMCAST_SHUTDOWN_TIMEOUT",
        default_value_t = Seconds::from_secs(10)
    )]
    pub shutdown_timeout: Seconds,

    /// Serve the WebSocket echo endpoint `/v1/echo` (for conformance tests
    /// such as Autobahn|Testsuite; it runs the production reader, writer and
    /// limits). Off in production.
    #[arg(long, env = "ROOMCAST_ECHO", default_value_t = false, action = ArgAction::Set)]
    pub echo: bool,

    /// Timeouts and sizes of the HTTP phase.
    #[command(flatten)]
    pub http: HttpLimits,

    /// Per-address connection limits.
    #[command(flatten)]
    pub peers: PeerLimits,

    /// Room history, room cap and idle retirement.
    #[command(flatten)]
    pub rooms: RoomLimits,
}

/// `name` or `schema.name`, each an unquoted lower-case SQL identifier, so it
/// can be put into queries as is.
fn is_table_name(name: &str) -> bool {
    let ident = |s: &str| {
        s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let mut parts = name.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(t), None, None) => ident(t),
        (Some(s), Some(t), None) => ident(s) && ident(t),
        _ => false,
    }
}

impl Default for Config {
    /// The documented defaults, ignoring the environment.
    fn default() -> Self {
        let command = Config::command().mut_args(|arg| arg.env(None::<&str>));
        let matches = command.get_matches_from(["roomcast"]);
        Config::from_arg_matches(&matches).expect("the defaults parse")
    }
}

impl Config {
    /// Rejects values roomcast cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs("REALTIME_UPDATE_INTERVAL", self.update_interval.get())?;
        check_secs(
            "REALTIME_AFTER_HOURS_INTERVAL",
            self.after_hours_interval.get(),
        )?;
        check_secs("ROOMCAST_HEARTBEAT_TIMEOUT", self.heartbeat_timeout.get())?;
        check_secs("ROOMCAST_PING_INTERVAL", self.ping_interval.get())?;
        check_secs("ROOMCAST_SHUTDOWN_TIMEOUT", self.shutdown_timeout.get())?;
        if self.ping_interval >= self.heartbeat_timeout {
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
        self.http.validate()?;
        self.rooms.validate()?;
        self.peers.validate()?;
        check_range("ROOMCAST_MAX_ALERTS", self.max_alerts, 0, 10_000_000)?;
        if self.simulator && self.symbols.is_empty() {
            return Err(invalid("ROOMCAST_SYMBOLS", "must name at least one symbol"));
        }
        for symbol in &self.symbols {
            normalize_ticker(symbol)
                .map_err(|e| invalid("ROOMCAST_SYMBOLS", format!("{symbol:?}: {e}")))?;
        }
        check_secs("MODELDATA_INTERVAL_SECS", self.modeldata_interval.get())?;
        check_secs("ROOMCAST_LEASE_TTL", self.lease_ttl.get())?;
        if self.redis_key_ttl < Seconds::from_secs(1) {
            return Err(invalid(
                "ROOMCAST_REDIS_KEY_TTL",
                "must be at least 1 second",
            ));
        }
        check_range(
            "ROOMCAST_REDIS_STREAM_LEN",
            self.redis_stream_len,
            1,
            10_000_000,
        )?;
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return Err(invalid(
                "ROOMCAST_REDIS_PREFIX",
                "must be non-empty, without spaces",
            ));
        }
        check_range("MODELDATA_POOL_SIZE", self.modeldata_pool_size, 1, 1_000)?;
        check_range("MODELDATA_MAX_FEEDS", self.modeldata_max_feeds, 1, 10_000)?;
        check_range(
            "MODELDATA_MAX_POINTS",
            self.modeldata_max_points,
            crate::sources::modeldata::options::MIN_POINTS,
            1_000_000,
        )?;
        check_range("MODELDATA_SIM_MODELS", self.modeldata_sim_models, 1, 1_000)?;
        if !is_table_name(&self.modeldata_table) {
            return Err(invalid(
                "MODELDATA_TABLE",
                "must be an unquoted identifier, optionally schema-qualified (letters, digits, _; e.g. modeldata or trading.modeldata)",
            ));
        }
        if let Some(url) = &self.database_url {
            let parsed = url
                .parse::<tokio_postgres::Config>()
                .map_err(|e| invalid("DATABASE_URL", e.to_string()))?;
            if parsed.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
                return Err(invalid(
                    "DATABASE_URL",
                    "sslmode=require: TLS to PostgreSQL is not supported in this build (use sslmode=disable or prefer, e.g. over a private network or a local TLS proxy)",
                ));
            }
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
        {
            return Err(invalid(
                "REDIS_URL",
                "must start with redis://, rediss:// or unix://",
            ));
        }
        Ok(())
    }

    /// This node's fleet name: `ROOMCAST_NODE_ID`, or host-pid-random.
    pub fn node_name(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "node".into());
            format!(
                "{host}-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(c.update_interval.get(), Duration::from_secs(5));
        assert_eq!(c.after_hours_interval.get(), Duration::from_secs(60));
        assert_eq!(c.heartbeat_timeout.get(), Duration::from_secs(60));
        assert_eq!(c.max_message_size, 65_536);
        assert_eq!(c.symbols.len(), 9);
        assert!(c.simulator);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let mut c = Config {
            update_interval: Seconds::from_secs(2 * 86_400),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().name, "REALTIME_UPDATE_INTERVAL");
        c.update_interval = Seconds::from_secs(5);
        c.ping_interval = Seconds::from_secs(90);
        assert_eq!(c.validate().unwrap_err().name, "ROOMCAST_PING_INTERVAL");
        c.ping_interval = Seconds::from_secs(20);
        c.symbols = vec!["BAD SYMBOL".into()];
        assert_eq!(c.validate().unwrap_err().name, "ROOMCAST_SYMBOLS");
        c.symbols = vec!["AAPL".into()];
        c.redis_url = Some("localhost:6379".into());
        assert_eq!(c.validate().unwrap_err().name, "REDIS_URL");
        c.redis_url = None;
        c.modeldata_table = "modeldata; DROP TABLE x".into();
        assert_eq!(c.validate().unwrap_err().name, "MODELDATA_TABLE");
        c.modeldata_table = "trading.modeldata".into();
        c.database_url = Some("postgres://u@h:notaport/db".into());
        assert_eq!(c.validate().unwrap_err().name, "DATABASE_URL");
        c.database_url = Some("postgres://u@h/db?sslmode=require".into());
        assert!(c.validate().unwrap_err().message.contains("TLS"));
    }

    #[test]
    fn flags_parse() {
        let c = Config::try_parse_from([
            "roomcast",
            "--bind",
            "127.0.0.1:0",
            "--simulator",
            "false",
            "--symbols",
            "AAPL,MSFT",
        ])
        .unwrap();
        assert!(!c.simulator);
        assert_eq!(c.symbols, vec!["AAPL", "MSFT"]);
        assert!(Config::try_parse_from(["roomcast", "--bind", "nope"]).is_err());
        // Durations are seconds, fractions allowed; zero or junk is refused at parse time.
        let c = Config::try_parse_from(["roomcast", "--ping-interval", "0.5"]).unwrap();
        assert_eq!(c.ping_interval.get(), Duration::from_millis(500));
        for bad in ["0", "-1", "soon", "NaN"] {
            assert!(
                Config::try_parse_from(["roomcast", "--ping-interval", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
