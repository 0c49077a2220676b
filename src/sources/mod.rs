//! Sources: long-lived tasks that publish into rooms through a
//! [`crate::publisher::Publisher`]. The embedded default feed is the market
//! simulator (prices, market status, pattern alerts); user price alerts are
//! evaluated on every price update whatever its source. The modeldata source
//! (seed 000) reads PostgreSQL when `DATABASE_URL` is set and simulated AI
//! trading models otherwise. In a fleet, the seed 001 Redis ingest is one
//! more. Seed 004's price batcher and paper-trading account
//! ([`trading`]) feed the `/ws` trading stream. `lib::run` spawns them.

pub mod backtest;
pub mod ingest;
pub mod market;
pub mod modeldata;
pub mod patterns;
pub mod trading;

use modeldata::database_url::DatabaseUrl;
use modeldata::memory::{MemoryConfig, MemoryStore};
use modeldata::postgres::PgStore;
use modeldata::settings::ModelDataSettings;
use modeldata::{Store, StoreError};

/// The modeldata store `settings` ask for; the simulated one's models
/// follow `sim_seed` (`ROOMCAST_SIM_SEED`) when set.
pub fn modeldata_store(
    settings: &ModelDataSettings,
    sim_seed: Option<u64>,
) -> Result<Store, StoreError> {
    Ok(match &settings.database_url {
        Some(url) => Store::Postgres(Box::new(PgStore::new(
            &DatabaseUrl::parse(url, settings.ssl_root_cert.as_deref())
                .map_err(|e| StoreError::Config(modeldata::database_url::cause_chain(&e)))?,
            &settings.table,
            settings.pool_size,
            settings.create_index,
        )?)),
        None => Store::Memory(MemoryStore::new(
            MemoryConfig {
                models: settings.sim_models,
                seed: sim_seed.unwrap_or_else(rand::random),
                ..MemoryConfig::default()
            },
            chrono::Utc::now().timestamp_micros(),
        )),
    })
}
