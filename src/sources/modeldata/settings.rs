//! Seed 000's modeldata settings, a section of [`crate::Config`]: the
//! PostgreSQL table the feeds read (or the embedded simulated models), how
//! often they broadcast, and how many feeds and points a node serves
//! (`docs/seed000.md`).

use std::path::PathBuf;

use super::database_url::{DatabaseUrl, DatabaseUrlError, cause_chain};
use crate::config_error::{ConfigError, check_range, check_secs, invalid};
use crate::seconds::Seconds;

/// The modeldata source and its feeds.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ModelDataSettings {
    /// PostgreSQL holding the `modeldata` table (seed 000), with libpq's
    /// `sslmode` (disable, prefer, require, verify-ca, verify-full) and
    /// `sslrootcert`. Unset: an embedded in-memory store of simulated AI
    /// trading models.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// CA certificates (PEM) that DATABASE_URL's server certificate must
    /// chain to with `sslmode=verify-ca` or `verify-full` (libpq's name);
    /// `sslrootcert=` in the URL wins. Unset: the system's trust store.
    #[arg(long = "pg-ssl-root-cert", env = "PGSSLROOTCERT")]
    pub ssl_root_cert: Option<PathBuf>,

    /// The modeldata table (`name` or `schema.name`).
    #[arg(
        long = "modeldata-table",
        env = "MODELDATA_TABLE",
        default_value = "modeldata"
    )]
    pub table: String,

    /// Seconds between two `modeldata_update` broadcasts (seed 000's 20).
    #[arg(
        long = "modeldata-interval",
        env = "MODELDATA_INTERVAL_SECS",
        default_value_t = Seconds::from_secs(20)
    )]
    pub interval: Seconds,

    /// Whether roomcast creates its `(display_name, created_at, id)` index.
    #[arg(
        long = "modeldata-create-index",
        env = "MODELDATA_CREATE_INDEX",
        value_enum,
        default_value = "create"
    )]
    pub create_index: crate::sources::modeldata::postgres::IndexMode,

    /// Database connections in the modeldata pool.
    #[arg(
        long = "modeldata-pool-size",
        env = "MODELDATA_POOL_SIZE",
        default_value_t = 4
    )]
    pub pool_size: usize,

    /// Distinct modeldata option sets (`?points`, `?sampler`, `?from`, `?to`) served at once.
    #[arg(
        long = "modeldata-max-feeds",
        env = "MODELDATA_MAX_FEEDS",
        default_value_t = 32
    )]
    pub max_feeds: usize,

    /// Largest `?points` a modeldata connection may ask for.
    #[arg(
        long = "modeldata-max-points",
        env = "MODELDATA_MAX_POINTS",
        default_value_t = 5_000
    )]
    pub max_points: usize,

    /// Simulated models of the embedded modeldata store (no DATABASE_URL).
    #[arg(
        long = "modeldata-sim-models",
        env = "MODELDATA_SIM_MODELS",
        default_value_t = 6
    )]
    pub sim_models: usize,
}

impl ModelDataSettings {
    /// The source for the start-up log: the embedded simulator, or
    /// PostgreSQL's `host:port/dbname` and table (never the user or password).
    pub fn describe(&self) -> String {
        match &self.database_url {
            None => "embedded simulator (in memory; set DATABASE_URL for PostgreSQL)".into(),
            Some(url) => match DatabaseUrl::parse(url, self.ssl_root_cert.as_deref()) {
                Ok(parsed) => format!("PostgreSQL {} table {}", parsed.target(), self.table),
                // Validated at start; never echo an unparsed URL (it may hold a password).
                Err(_) => "PostgreSQL (DATABASE_URL)".into(),
            },
        }
    }

    /// Rejects values the modeldata source cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs("MODELDATA_INTERVAL_SECS", self.interval.get())?;
        check_range("MODELDATA_POOL_SIZE", self.pool_size, 1, 1_000)?;
        check_range("MODELDATA_MAX_FEEDS", self.max_feeds, 1, 10_000)?;
        check_range(
            "MODELDATA_MAX_POINTS",
            self.max_points,
            super::options::MIN_POINTS,
            1_000_000,
        )?;
        check_range("MODELDATA_SIM_MODELS", self.sim_models, 1, 1_000)?;
        if !is_table_name(&self.table) {
            return Err(invalid(
                "MODELDATA_TABLE",
                "must be an unquoted identifier, optionally schema-qualified (letters, digits, _; e.g. modeldata or trading.modeldata)",
            ));
        }
        if let Some(url) = &self.database_url {
            let parsed = DatabaseUrl::parse(url, self.ssl_root_cert.as_deref())
                .map_err(|e| invalid("DATABASE_URL", cause_chain(&e)))?;
            parsed.connector().map_err(|e| {
                let name = match (
                    &e,
                    self.ssl_root_cert.is_some() && !url.contains("sslrootcert="),
                ) {
                    (DatabaseUrlError::RootCert(_) | DatabaseUrlError::NoRoots(..), true) => {
                        "PGSSLROOTCERT"
                    }
                    _ => "DATABASE_URL",
                };
                invalid(name, cause_chain(&e))
            })?;
        }
        Ok(())
    }
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
