//! Status endpoints: `/health` (liveness), `/ready` (readiness: false, with a
//! `reason`, while a required backend is down or the node is draining), `/metrics`
//! (Prometheus), and the fleet's totals every seed's status endpoint
//! carries (those endpoints are in `src/seeds/`).

use hyper::StatusCode;

use super::response::{self, HttpResponse};
use crate::app::App;
use crate::telemetry;

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
    // The first thing in the way, in words an operator can act on.
    let reason = if draining {
        Some("draining (shutting down)".to_string())
    } else if let Some(bus) = app.bus.not_ready_reason() {
        Some(bus)
    } else if !database {
        Some(format!(
            "modeldata database not ready{}",
            modeldata
                .last_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))
    } else {
        None
    };
    response::json(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &serde_json::json!({
            "ready": ready,
            "reason": reason,
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
