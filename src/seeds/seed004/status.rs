//! `GET /websocket/status`: seed 004's status, with exactly the seed's keys.
//! `active_connections` counts this node's WebSocket connections, beside
//! the node-wide `max_connections` (`WEBSOCKET_MAX_CONNECTIONS`). The
//! intervals are the effective ones in seconds (whole numbers as JSON
//! integers). `stream_health` has all four streams, each with all five
//! keys, from the real producers ([`crate::sources::trading::health`]). In
//! a fleet, a node that does not hold the `trading` lease is on standby:
//! another node produces, and its streams are healthy while its bus is.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::bus::Producer;
use crate::http::response::{self, HttpResponse};
use crate::sources::trading::health::Stream;

/// Seconds as seed 004 writes them: `30`, or `0.5`.
fn seconds(duration: Duration) -> Value {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        json!(duration.as_secs())
    } else {
        json!(secs)
    }
}

/// `GET /websocket/status`.
pub fn websocket_status(app: &App) -> HttpResponse {
    let trading = &app.trading;
    let settings = &trading.settings;
    let bus_ready = app.bus.is_ready();
    let standby = settings.enabled && app.bus.is_fleet() && !app.publisher.holds(Producer::Trading);
    let mut health = Map::new();
    for stream in Stream::ALL {
        let periodic = stream == Stream::PriceUpdates || settings.paper_trading;
        let mut report = trading.health.report(stream, bus_ready, periodic);
        if standby && !report.is_healthy {
            report.is_healthy = bus_ready;
        }
        health.insert(
            stream.label().to_string(),
            serde_json::to_value(report).expect("plain data"),
        );
    }
    response::json(
        StatusCode::OK,
        &json!({
            "enabled": settings.enabled,
            "active_connections": app.sessions.len(),
            "max_connections": app.config.ws.max_connections,
            "ping_interval": seconds(app.config.ws.ping_interval()),
            "price_update_interval": seconds(settings.price_interval.get()),
            "portfolio_update_interval": seconds(settings.portfolio_interval.get()),
            "stream_health": health,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_are_integers() {
        assert_eq!(seconds(Duration::from_secs(30)).to_string(), "30");
        assert_eq!(seconds(Duration::from_millis(500)).to_string(), "0.5");
    }
}
