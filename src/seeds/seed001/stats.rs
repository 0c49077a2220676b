//! Seed 001's stats endpoint, `GET /api/ws/stats`: the seed's fields
//! (connections, subscribers per channel, message totals), then roomcast's
//! own (its room count, the fleet).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use hyper::StatusCode;
use serde::Serialize;

use crate::app::App;
use crate::catalog::RoomKind;
use crate::http::response::{self, HttpResponse};
use crate::http::status::cluster;
use crate::telemetry::metrics;

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
            RoomKind::ModelData
            | RoomKind::Topic
            | RoomKind::Backtest
            | RoomKind::S004Prices
            | RoomKind::S004Signals
            | RoomKind::S004Trades
            | RoomKind::S004Portfolio
            | RoomKind::S003Live
            | RoomKind::S003Account
            | RoomKind::S003Market => {}
        }
    }
    let totals = &metrics().totals;
    stats.total_connections = totals.connections.load(Ordering::Relaxed);
    stats.messages_sent = totals.messages_sent.load(Ordering::Relaxed);
    stats.messages_received = totals.messages_received.load(Ordering::Relaxed);
    stats.errors = totals.errors.load(Ordering::Relaxed);
    response::json(StatusCode::OK, &stats)
}
