//! Sources: long-lived tasks that publish into rooms through
//! [`crate::app::App::publish`]. The embedded default feed is the market
//! simulator (prices, market status, pattern alerts); user price alerts are
//! evaluated on every price update whatever its source.

pub mod alerts;
pub mod market;
pub mod market_hours;
pub mod patterns;

use std::sync::Arc;

use crate::app::App;

/// Spawns the configured built-in sources on the app's task tracker.
pub fn spawn_sources(app: &Arc<App>) {
    if app.config.simulator {
        let simulator = market::MarketSimulator::new(&app.config);
        let shutdown = app.shutdown.clone();
        app.tracker.spawn(simulator.run(Arc::clone(app), shutdown));
    }
}
