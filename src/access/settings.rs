//! Who may use what, a section of [`crate::Config`]: the API keys that open
//! the producer and administration endpoints (from a setting and/or a key
//! file re-read while the node runs), the networks trusted without a key
//! while none is configured, which optional classes are protected, and the
//! browser policy (CORS origins for the HTTP API, origins allowed to open
//! WebSockets). Read by [`super::AccessControl`] on every routed request and
//! by [`super::origins::refuse_upgrade`] on every upgrade (see `docs/access.md`).

use std::path::PathBuf;

use clap::ArgAction;

pub use super::api_keys::KeyList;
use super::api_keys::read_key_file;
pub use super::origins::{MissingOrigin, Origins};
use crate::config_error::{ConfigError, check_secs, invalid};
use crate::peers::AddressSet;
use crate::seconds::Seconds;

/// API keys, trusted networks, protected classes and browser policy.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct AccessSettings {
    /// API keys that open the producer and administration endpoints
    /// (comma-separated; each 16-512 visible ASCII characters). Sent as
    /// `Authorization: Bearer <key>` or `X-API-Key: <key>`. Default: none.
    #[arg(long, env = "ROOMCAST_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<KeyList>,

    /// A file of API keys, one a line (`#` starts a comment), valid together
    /// with ROOMCAST_API_KEYS. Re-read when it changes (polled) and on
    /// SIGHUP, so keys rotate without a restart. Default: none.
    #[arg(long, env = "ROOMCAST_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Seconds between checks of ROOMCAST_API_KEY_FILE for a change.
    #[arg(
        long = "api-key-poll",
        env = "ROOMCAST_API_KEY_POLL",
        default_value_t = Seconds::from_secs(5)
    )]
    pub api_key_poll: Seconds,

    /// Networks (addresses and CIDR blocks, comma-separated; `none` for
    /// none) whose peers may use protected endpoints without a key while no
    /// API key is configured; everyone else gets 403 then. Once a key is
    /// configured, every peer needs one.
    #[arg(
        long,
        env = "ROOMCAST_TRUSTED_NETWORKS",
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub trusted_networks: AddressSet,

    /// Protect `GET /metrics` like the administration endpoints.
    #[arg(long, env = "ROOMCAST_PROTECT_METRICS", default_value_t = false, action = ArgAction::Set)]
    pub protect_metrics: bool,

    /// Protect the seed UIs' start POSTs (`POST /api/v1/backtest/run`,
    /// `POST /api/backtesting/start`) like the producer endpoints.
    #[arg(long, env = "ROOMCAST_PROTECT_START", default_value_t = false, action = ArgAction::Set)]
    pub protect_start: bool,

    /// Origins (`scheme://host[:port]`, comma-separated, or `*` for any)
    /// whose pages may call the HTTP API from a browser (CORS). Default:
    /// none, and no CORS headers are sent.
    #[arg(long, env = "ROOMCAST_CORS_ORIGINS", default_value = "")]
    pub cors_origins: Origins,

    /// Seconds a browser may cache a CORS preflight answer (`Access-Control-Max-Age`).
    #[arg(
        long = "cors-max-age",
        env = "ROOMCAST_CORS_MAX_AGE",
        default_value_t = Seconds::from_secs(600)
    )]
    pub cors_max_age: Seconds,

    /// Origins (`scheme://host[:port]`, comma-separated, or `*` for any)
    /// whose pages may open WebSockets here; an upgrade from another origin
    /// gets 403. Default `*`: the seeds' pages are served from elsewhere.
    #[arg(long, env = "ROOMCAST_WS_ORIGINS", default_value = "*")]
    pub ws_origins: Origins,

    /// What a WebSocket upgrade without an `Origin` header gets when
    /// ROOMCAST_WS_ORIGINS is a list: `allow` (non-browser clients) or `deny`.
    #[arg(
        long,
        env = "ROOMCAST_WS_MISSING_ORIGIN",
        value_enum,
        default_value_t = MissingOrigin::Allow
    )]
    pub ws_missing_origin: MissingOrigin,
}

impl AccessSettings {
    /// Rejects values the node cannot run with, naming the variable. The
    /// key file is read once here, so a missing or empty file stops the
    /// start instead of silently leaving the endpoints closed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs("ROOMCAST_API_KEY_POLL", self.api_key_poll.get())?;
        check_secs("ROOMCAST_CORS_MAX_AGE", self.cors_max_age.get())?;
        if let Some(path) = &self.api_key_file {
            read_key_file(path).map_err(|e| invalid("ROOMCAST_API_KEY_FILE", e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crate::Config;

    use super::*;

    #[test]
    fn by_default_only_loopback_is_trusted_without_a_key() {
        let access = Config::default().access;
        access.validate().unwrap();
        assert_eq!(access.api_keys, None);
        assert_eq!(access.api_key_file, None);
        for trusted in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = trusted.parse().unwrap();
            assert!(access.trusted_networks.contains(ip), "{trusted}");
        }
        for untrusted in ["10.0.0.1", "192.168.1.2", "::2", "fe80::1", "0.0.0.0"] {
            let ip: IpAddr = untrusted.parse().unwrap();
            assert!(!access.trusted_networks.contains(ip), "{untrusted}");
        }
        assert!(!access.protect_metrics);
        assert!(!access.protect_start);
        assert!(access.cors_origins.is_empty());
        assert!(access.ws_origins.is_any());
        assert_eq!(access.ws_missing_origin, MissingOrigin::Allow);
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let keys: KeyList = "k-aaaaaaaaaaaaaaaa, k-bbbbbbbbbbbbbbbb".parse().unwrap();
        assert_eq!(keys.0.len(), 2);
        let mut config = Config::default();
        config.access.api_keys = Some(keys);
        let printed = format!("{config:?}");
        assert!(!printed.contains("aaaaaaaa"), "{printed}");
        assert!(printed.contains("KeyList(2 redacted)"), "{printed}");
    }

    #[test]
    fn a_short_or_spaced_key_is_refused_without_echoing_it() {
        let e = "short".parse::<KeyList>().unwrap_err();
        assert!(e.contains("key #1"), "{e}");
        assert!(!e.contains("short"), "{e}");
        assert!("a key with spaces in it".parse::<KeyList>().is_err());
    }

    #[test]
    fn a_missing_key_file_names_the_variable() {
        let mut access = Config::default().access;
        access.api_key_file = Some("/nonexistent/roomcast/keys".into());
        assert_eq!(access.validate().unwrap_err().name, "ROOMCAST_API_KEY_FILE");
    }
}
