//! Seed 003's status endpoint, `GET /api/ws/stream/status`: its exact keys
//! (`timestamp`, `active_connections` by stream type with their `total`,
//! and every stream with at least one connection, sorted by type, then
//! id), counting this node's seed 003 connections only; then roomcast's
//! own (`backtests`: runs by state; `cluster` in a fleet).

use hyper::StatusCode;
use serde_json::json;

use crate::app::App;
use crate::catalog::RoomKind;
use crate::dialect::DialectKind;
use crate::http::response::{self, HttpResponse};
use crate::http::status::cluster;
use crate::protocol::time;

/// `GET /api/ws/stream/status`.
pub async fn stream_status(app: &App) -> HttpResponse {
    let mut backtests = app
        .rooms
        .member_counts_of(RoomKind::Backtest, DialectKind::Seed003);
    backtests.sort();
    let backtest: usize = backtests.iter().map(|(_, n)| n).sum();
    let streams: Vec<_> = backtests
        .iter()
        .map(|(room, n)| json!({ "type": "backtest", "id": room.backtest_id(), "connections": n }))
        .collect();
    let (pending, running, finished) = app.backtests.counts();
    response::json(
        StatusCode::OK,
        &json!({
            "timestamp": time::now(),
            "active_connections": {
                "backtest": backtest,
                "live_trading": 0,
                "market_data": 0,
                "total": backtest,
            },
            "streams": streams,
            "backtests": { "pending": pending, "running": running, "finished": finished },
            "cluster": cluster(app).await,
        }),
    )
}
