//! Seed 003's status endpoint, `GET /api/ws/stream/status`: its exact keys
//! (`timestamp`, `active_connections` by stream type with their `total`,
//! and every stream with at least one connection, sorted by type, then
//! id); then roomcast's own (`backtests`: this node's runs by state;
//! `cluster` in a fleet). Backtest viewers are counted fleet-wide (other
//! nodes' counts as of their last heartbeat, a second or so old); the
//! live-trading streams (by filter, `all` when unfiltered) and market-data
//! streams (by symbol) on this node.

use hyper::StatusCode;
use serde_json::json;

use crate::app::App;
use std::collections::BTreeMap;

use crate::catalog::{RoomKind, RoomName};
use crate::dialect::DialectKind;
use crate::http::response::{self, HttpResponse};
use crate::http::status::cluster;
use crate::protocol::time;

/// `GET /api/ws/stream/status`.
pub async fn stream_status(app: &App) -> HttpResponse {
    // Viewers by run: this node's live counts, plus every other live node's
    // from its last heartbeat (fleet mode).
    let mut viewers: BTreeMap<String, usize> = BTreeMap::new();
    for (room, n) in app
        .rooms
        .member_counts_of(RoomKind::Backtest, DialectKind::Seed003)
    {
        *viewers
            .entry(room.backtest_id().unwrap_or_default().to_string())
            .or_default() += n;
    }
    if let Some(Ok(nodes)) = app.bus.cluster().await {
        for node in nodes.iter().filter(|n| n.node != app.node) {
            for (room, n) in &node.streams {
                if let Some(id) = RoomName::from_wire(room)
                    .as_ref()
                    .and_then(RoomName::backtest_id)
                {
                    *viewers.entry(id.to_string()).or_default() += n;
                }
            }
        }
    }
    let backtest: usize = viewers.values().sum();
    let mut streams: Vec<_> = viewers
        .iter()
        .map(|(id, n)| json!({ "type": "backtest", "id": id, "connections": n }))
        .collect();
    let live = app.trading.live_viewers.counts();
    let live_trading: usize = live.iter().map(|(_, n)| n).sum();
    streams.extend(
        live.iter()
            .map(|(id, n)| json!({ "type": "live_trading", "id": id, "connections": n })),
    );
    let markets: BTreeMap<String, usize> = app
        .rooms
        .member_counts_of(RoomKind::S003Market, DialectKind::Seed003)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .filter_map(|(room, n)| Some((room.symbols().first()?.to_string(), n)))
        .collect();
    let market_data: usize = markets.values().sum();
    streams.extend(
        markets
            .iter()
            .map(|(id, n)| json!({ "type": "market_data", "id": id, "connections": n })),
    );
    let (pending, running, finished) = app.backtests.counts();
    response::json(
        StatusCode::OK,
        &json!({
            "timestamp": time::now(),
            "active_connections": {
                "backtest": backtest,
                "live_trading": live_trading,
                "market_data": market_data,
                "total": backtest + live_trading + market_data,
            },
            "streams": streams,
            "backtests": { "pending": pending, "running": running, "finished": finished },
            "cluster": cluster(app).await,
        }),
    )
}
