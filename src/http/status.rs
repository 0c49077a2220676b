//! Status endpoints: `/health` (liveness), `/ready` (readiness: false while a
//! required backend is down or the node is draining), `/metrics` (Prometheus)
//! and seed 001's `GET /api/ws/stats`; the fleet's totals every status
//! endpoint carries (seed 000's `GET /ws/status` is in `src/seeds/seed000/`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use hyper::StatusCode;
use serde::Serialize;

use super::response::{self, HttpResponse};
use crate::app::App;
use crate::catalog::RoomKind;
use crate::telemetry::{self, metrics};

/// `GET /health`: the process is up and serving.
pub fn health(app: &App) -> HttpResponse {
    response::json(
        StatusCode::OK,
        &serde_json::json!({
            "status": "ok",
            "uptime": app.started.elapsed().as_secs(),
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}

/// `GET /ready`: 200 when the node can take traffic, 503 otherwise.
pub fn ready(app: &App) -> HttpResponse {
    let draining = app.shutdown.is_cancelled();
    let bus = app.bus.is_ready();
    let modeldata = app.modeldata.report();
    let database = app.modeldata.is_ready();
    let ready = bus && database && !draining;
    response::json(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &serde_json::json!({
            "ready": ready,
            "bus": { "mode": app.bus.mode(), "ready": bus },
            "modeldata": {
                "source": modeldata.source,
                "ready": database,
                "error": modeldata.last_error,
            },
            "draining": draining,
        }),
    )
}

/// `GET /metrics`.
pub fn metrics_text() -> HttpResponse {
    response::text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        telemetry::render(),
    )
}

/// Seed 001's stats, plus roomcast's own room count.
#[derive(Debug, Serialize)]
struct Stats {
    active_connections: usize,
    ticker_subscriptions: BTreeMap<String, usize>,
    pattern_subscribers: usize,
    alert_subscribers: usize,
    market_status_subscribers: usize,
    total_connections: u64,
    messages_sent: u64,
    messages_received: u64,
    errors: u64,
    uptime: u64,
    rooms: usize,
    /// Fleet mode: the live nodes and their totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<serde_json::Value>,
}

/// Fleet totals for status endpoints: `null` in embedded mode, an `error`
/// while Redis is unreachable.
pub async fn cluster(app: &App) -> Option<serde_json::Value> {
    Some(match app.bus.cluster().await? {
        Ok(nodes) => serde_json::json!({
            "node": app.node,
            "nodes": nodes.len(),
            "active_connections": nodes.iter().map(|n| n.connections).sum::<usize>(),
            "subscriptions": nodes.iter().map(|n| n.subscriptions).sum::<usize>(),
            "members": nodes,
        }),
        Err(e) => serde_json::json!({ "node": app.node, "error": e.to_string() }),
    })
}

/// `GET /api/ws/stats`.
pub async fn stats(app: &App) -> HttpResponse {
    let mut stats = Stats {
        active_connections: app.sessions.len(),
        ticker_subscriptions: BTreeMap::new(),
        pattern_subscribers: 0,
        alert_subscribers: 0,
        market_status_subscribers: 0,
        total_connections: 0,
        messages_sent: 0,
        messages_received: 0,
        errors: 0,
        uptime: app.started.elapsed().as_secs(),
        rooms: app.rooms.len(),
        cluster: cluster(app).await,
    };
    for (room, members) in app.rooms.member_counts() {
        match room.kind() {
            RoomKind::Ticker => {
                if let Some(ticker) = room.ticker_symbol() {
                    stats
                        .ticker_subscriptions
                        .insert(ticker.to_string(), members);
                }
            }
            RoomKind::Patterns => stats.pattern_subscribers = members,
            RoomKind::Alerts => stats.alert_subscribers = members,
            RoomKind::MarketStatus => stats.market_status_subscribers = members,
            RoomKind::ModelData => {}
        }
    }
    let totals = &metrics().totals;
    stats.total_connections = totals.connections.load(Ordering::Relaxed);
    stats.messages_sent = totals.messages_sent.load(Ordering::Relaxed);
    stats.messages_received = totals.messages_received.load(Ordering::Relaxed);
    stats.errors = totals.errors.load(Ordering::Relaxed);
    response::json(StatusCode::OK, &stats)
}
