//! Sources: long-lived tasks that publish into rooms through
//! [`crate::app::App::publish`]. The embedded default feed is the market
//! simulator (prices, market status, pattern alerts); user price alerts are
//! evaluated on every price update whatever its source. The modeldata source
//! (seed 000) reads PostgreSQL when `DATABASE_URL` is set and simulated AI
//! trading models otherwise.

pub mod market;
pub mod market_hours;
pub mod modeldata;
pub mod patterns;

use std::sync::Arc;

use crate::app::App;
use crate::config::Config;
use modeldata::memory::{MemoryConfig, MemoryStore};
use modeldata::postgres::PgStore;
use modeldata::{Store, StoreError};

/// The modeldata store the config asks for.
pub fn modeldata_store(config: &Config) -> Result<Store, StoreError> {
    Ok(match &config.database_url {
        Some(url) => Store::Postgres(Box::new(PgStore::new(
            url,
            &config.modeldata_table,
            config.modeldata_pool_size,
            config.modeldata_create_index,
        )?)),
        None => Store::Memory(MemoryStore::new(
            MemoryConfig {
                models: config.modeldata_sim_models,
                seed: config.sim_seed.unwrap_or_else(rand::random),
                ..MemoryConfig::default()
            },
            chrono::Utc::now().timestamp_micros(),
        )),
    })
}

/// Spawns the configured built-in sources on the app's task tracker.
pub fn spawn_sources(app: &Arc<App>, modeldata: Store) {
    app.modeldata.spawn(app, modeldata);
    if app.config.simulator {
        let simulator = market::MarketSimulator::new(&app.config);
        let shutdown = app.shutdown.clone();
        app.tracker.spawn(simulator.run(Arc::clone(app), shutdown));
    }
}
