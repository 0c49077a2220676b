//! Typed configuration from flags and environment variables. Every setting has
//! a documented default (see `README.md` and `roomcast --help`), and
//! [`Config::validate`] rejects bad values at start-up with a message naming
//! the variable. Each subsystem owns its section (flattened here, validated
//! by itself): the HTTP phase, per-address limits, WebSocket sessions, rooms,
//! the fleet, the simulator, modeldata; what is left here is the node's own. Where a seed names an environment variable, roomcast honours
//! that exact name (`REDIS_URL`, `REALTIME_UPDATE_INTERVAL`,
//! `REALTIME_AFTER_HOURS_INTERVAL`, `WEBSOCKET_MAX_CONNECTIONS`).

use std::net::SocketAddr;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use crate::access::AccessSettings;
use crate::auth::AuthSettings;
use crate::bus::settings::FleetSettings;
pub use crate::config_error::ConfigError;
use crate::config_error::{check_range, check_secs};
use crate::http::limits::HttpLimits;
use crate::peers::PeerLimits;
use crate::rooms::limits::RoomLimits;
use crate::seconds::Seconds;
use crate::sources::backtest::BacktestSettings;
use crate::sources::market::MarketSettings;
use crate::sources::modeldata::settings::ModelDataSettings;
use crate::sources::trading::TradingSettings;
use crate::telemetry::LogFormat;
use crate::tls::TlsSettings;
use crate::ws::limits::SessionLimits;

/// roomcast: a real-time WebSocket streaming gateway for trading platforms.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(name = "roomcast", version, about, long_about = None)]
pub struct Config {
    /// Address to serve HTTP and WebSocket on.
    /// `IP:PORT`, or `localhost:PORT` (127.0.0.1).
    #[arg(long, env = "ROOMCAST_BIND", default_value = "127.0.0.1:8000", value_parser = parse_bind)]
    pub bind: SocketAddr,

    /// This node's name in the fleet (leases, status); default: host-pid-random.
    #[arg(long, env = "ROOMCAST_NODE_ID")]
    pub node_id: Option<String>,

    /// Price alerts (`POST /api/alerts`) the node holds at once.
    #[arg(long, env = "ROOMCAST_MAX_ALERTS", default_value_t = 10_000)]
    pub max_alerts: usize,

    /// Price alerts one `user_id` may hold at once (alerts without a
    /// `user_id` share one allowance), so one client cannot take the whole
    /// of ROOMCAST_MAX_ALERTS.
    #[arg(long, env = "ROOMCAST_MAX_ALERTS_PER_USER", default_value_t = 1_000)]
    pub max_alerts_per_user: usize,

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

    /// Log lines as `text` (coloured only on a terminal and without
    /// NO_COLOR) or `json` (one object per line, for log collectors).
    #[arg(long, env = "ROOMCAST_LOG_FORMAT", default_value_t = LogFormat::Text, value_enum)]
    pub log_format: LogFormat,

    /// API keys, trusted networks, CORS and WebSocket origins.
    #[command(flatten)]
    pub access: AccessSettings,

    /// TLS termination: the certificate and key clients are served with.
    #[command(flatten)]
    pub tls: TlsSettings,

    /// Timeouts and sizes of the HTTP phase.
    #[command(flatten)]
    pub http: HttpLimits,

    /// JWT authentication of WebSocket connections (off by default).
    #[command(flatten)]
    pub auth: AuthSettings,

    /// Per-address connection limits.
    #[command(flatten)]
    pub peers: PeerLimits,

    /// Room history, room cap and idle retirement.
    #[command(flatten)]
    pub rooms: RoomLimits,

    /// WebSocket sessions: heartbeat, message limits, connection cap, outbox.
    #[command(flatten)]
    pub ws: SessionLimits,

    /// Fleet mode: Redis, its keys and streams, producer leases.
    #[command(flatten)]
    pub fleet: FleetSettings,

    /// The embedded market simulator.
    #[command(flatten)]
    pub market: MarketSettings,

    /// Seed 000's modeldata source and feeds.
    #[command(flatten)]
    pub modeldata: ModelDataSettings,

    /// Backtest runs (seeds 002 and 003).
    #[command(flatten)]
    pub backtest: BacktestSettings,

    /// Seed 004's streams on `/ws`, the price batcher and the paper account.
    #[command(flatten)]
    pub trading: TradingSettings,

    /// Scheme and authority clients reach this node at, behind a proxy
    /// (`wss://stream.example.com`): replaces the request's own in the
    /// `stream_url`s handed out. Unset: from the request (`Host`,
    /// `X-Forwarded-Host`, `X-Forwarded-Proto`).
    #[arg(long, env = "ROOMCAST_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// `ROOMCAST_BIND`: `IP:PORT`, or `localhost:PORT`, bound on 127.0.0.1.
fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse() {
        return Ok(addr);
    }
    if let Some(port) = value.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Err("expected IP:PORT (e.g. 127.0.0.1:8000, or 0.0.0.0:8000 for every interface) or localhost:PORT".into())
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
        check_secs("ROOMCAST_SHUTDOWN_TIMEOUT", self.shutdown_timeout.get())?;
        check_range("ROOMCAST_MAX_ALERTS", self.max_alerts, 0, 10_000_000)?;
        check_range(
            "ROOMCAST_MAX_ALERTS_PER_USER",
            self.max_alerts_per_user,
            0,
            10_000_000,
        )?;
        self.access.validate()?;
        self.tls.validate()?;
        self.http.validate()?;
        self.peers.validate()?;
        self.auth.validate()?;
        self.ws.validate()?;
        self.rooms.validate()?;
        self.fleet.validate()?;
        self.market.validate()?;
        self.modeldata.validate()?;
        self.backtest.validate()?;
        self.trading.validate()?;
        if let Some(url) = &self.public_url {
            crate::http::public_url::PublicUrl::parse(url)
                .map_err(|e| crate::config_error::invalid("ROOMCAST_PUBLIC_URL", e))?;
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
        assert_eq!(c.market.update_interval.get(), Duration::from_secs(5));
        assert_eq!(c.market.after_hours_interval.get(), Duration::from_secs(60));
        assert_eq!(c.ws.heartbeat_timeout.get(), Duration::from_secs(60));
        assert_eq!(c.ws.max_message_size, 65_536);
        assert_eq!(c.market.symbols.len(), 9);
        assert!(c.market.simulator);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let mut c = Config::default();
        c.market.update_interval = Seconds::from_secs(2 * 86_400);
        assert_eq!(c.validate().unwrap_err().name, "REALTIME_UPDATE_INTERVAL");
        c.market.update_interval = Seconds::from_secs(5);
        c.ws.ping_interval = Some(Seconds::from_secs(90));
        assert_eq!(c.validate().unwrap_err().name, "ROOMCAST_PING_INTERVAL");
        c.ws.ping_interval = Some(Seconds::from_secs(20));
        c.ws.websocket_ping_interval = Some(Seconds::from_secs(30));
        let e = c.validate().unwrap_err();
        assert_eq!(e.name, "ROOMCAST_PING_INTERVAL");
        assert!(e.message.contains("WEBSOCKET_PING_INTERVAL"), "{e}");
        c.ws.ping_interval = None;
        assert_eq!(
            c.ws.ping_interval(),
            Duration::from_secs(30),
            "the seed's name alone"
        );
        c.validate().unwrap();
        c.ws.websocket_ping_interval = None;
        assert_eq!(c.ws.ping_interval(), Duration::from_secs(20), "the default");
        c.market.symbols = vec!["BAD SYMBOL".into()];
        assert_eq!(c.validate().unwrap_err().name, "ROOMCAST_SYMBOLS");
        c.market.symbols = vec!["AAPL".into()];
        c.fleet.redis_url = Some("localhost:6379".into());
        assert_eq!(c.validate().unwrap_err().name, "REDIS_URL");
        c.fleet.redis_url = None;
        c.modeldata.table = "modeldata; DROP TABLE x".into();
        assert_eq!(c.validate().unwrap_err().name, "MODELDATA_TABLE");
        c.modeldata.table = "trading.modeldata".into();
        c.modeldata.database_url = Some("postgres://u@h:notaport/db".into());
        assert_eq!(c.validate().unwrap_err().name, "DATABASE_URL");
        c.modeldata.database_url = Some("postgres://u@h/db?sslmode=allow".into());
        assert_eq!(c.validate().unwrap_err().name, "DATABASE_URL");
        c.modeldata.database_url = Some("postgres://u@h/db?sslmode=verify-full".into());
        c.modeldata.ssl_root_cert = Some("/nonexistent/ca.pem".into());
        let e = c.validate().unwrap_err();
        assert_eq!(e.name, "PGSSLROOTCERT");
        assert!(e.message.contains("/nonexistent/ca.pem"), "{e}");
        c.modeldata.database_url = Some("postgres://u@h/db?sslmode=require".into());
        c.modeldata.ssl_root_cert = None;
        c.validate().unwrap();
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
        assert!(!c.market.simulator);
        assert_eq!(c.market.symbols, vec!["AAPL", "MSFT"]);
        assert!(Config::try_parse_from(["roomcast", "--bind", "nope"]).is_err());
        let c = Config::try_parse_from(["roomcast", "--bind", "localhost:8001"]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8001");
        let e = Config::try_parse_from(["roomcast", "--bind", "example.com:80"]).unwrap_err();
        assert!(e.to_string().contains("expected IP:PORT"), "{e}");
        // Durations are seconds, fractions allowed; zero or junk is refused at parse time.
        let c = Config::try_parse_from(["roomcast", "--ping-interval", "0.5"]).unwrap();
        assert_eq!(c.ws.ping_interval(), Duration::from_millis(500));
        for bad in ["0", "-1", "soon", "NaN"] {
            assert!(
                Config::try_parse_from(["roomcast", "--ping-interval", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
