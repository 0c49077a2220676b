//! Fleet mode's settings, a section of [`crate::Config`]: where Redis is,
//! how roomcast names its keys, how long a room's stream and its idle keys
//! last, and how long a producer's lease outlives its holder
//! (`docs/fleet.md`).

use crate::config_error::{ConfigError, check_range, check_secs, invalid};
use crate::seconds::Seconds;

/// Redis, for fleet mode.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct FleetSettings {
    /// Redis URL for fleet mode (seed 001's variable): publishes go through
    /// Redis to every node; room history lives in Redis streams.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// CA certificates (PEM) a `rediss://` REDIS_URL's server certificate
    /// must chain to, for a private CA. Unset: the system's trust store.
    /// The certificate is always verified, host name included.
    #[arg(long = "redis-ca-file", env = "ROOMCAST_REDIS_CA_FILE")]
    pub redis_ca_file: Option<std::path::PathBuf>,

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
}

impl FleetSettings {
    /// Rejects values the bus cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if let Some(ca) = &self.redis_ca_file {
            if !self
                .redis_url
                .as_deref()
                .is_some_and(|u| u.starts_with("rediss://"))
            {
                return Err(invalid(
                    "ROOMCAST_REDIS_CA_FILE",
                    "applies to a rediss:// REDIS_URL only",
                ));
            }
            crate::tls::roots::from_file(ca)
                .map_err(|e| invalid("ROOMCAST_REDIS_CA_FILE", e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn a_redis_ca_file_needs_rediss_and_must_load() {
        let mut c = Config::default();
        c.fleet.redis_ca_file = Some("/nonexistent/ca.pem".into());
        c.fleet.redis_url = Some("redis://127.0.0.1:6379".into());
        let e = c.validate().unwrap_err();
        assert_eq!(e.name, "ROOMCAST_REDIS_CA_FILE");
        assert!(e.message.contains("rediss://"), "{e}");
        c.fleet.redis_url = Some("rediss://127.0.0.1:6379".into());
        let e = c.validate().unwrap_err();
        assert_eq!(e.name, "ROOMCAST_REDIS_CA_FILE");
        assert!(e.message.contains("/nonexistent/ca.pem"), "{e}");
        c.fleet.redis_ca_file = None;
        c.validate().unwrap();
    }
}
