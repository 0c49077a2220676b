//! Seed 003's face: the backtest stream (`GET
//! /api/ws/stream/backtest/{id}`, its [`session`]), the live-trading and
//! market-data streams (`GET /api/ws/stream/live-trading[?symbols=]`,
//! `GET /api/ws/stream/market-data/{symbol}`, fed by
//! `crate::sources::trading`), the start
//! (`POST /api/backtesting/start`, [`backtest`]) with cancel
//! (`DELETE /api/backtesting/{id}`, `crate::http::backtest`), and the
//! stream status (`GET /api/ws/stream/status`, [`status`]). Its encoder is
//! `crate::dialect::seed003`; the runs are `crate::sources::backtest`.

pub mod backtest;
pub mod events;
pub mod session;
pub mod status;

use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;

pub use session::Seed003Session;

use crate::app::App;
use crate::http::backtest::{bad_run_id, run_id};
use crate::http::response::{self, HttpResponse};

/// `GET /api/ws/stream/backtest/{id}`: a malformed id gets 400 before the
/// upgrade, a stream at `ROOMCAST_STREAM_MAX_CONNECTIONS` 503; an unknown
/// id is upgraded, told, and closed with 4004.
pub async fn backtest_stream(
    app: &Arc<App>,
    req: Request<Incoming>,
    segment: &str,
) -> HttpResponse {
    let id = match run_id(segment) {
        Ok(id) => id,
        Err(e) => return bad_run_id(e),
    };
    let cap = app.config.ws.stream_max_connections;
    if cap > 0 {
        let room = crate::catalog::RoomName::backtest(&id).expect("run_id checked the id");
        let watching = app.rooms.get(&room).map_or(0, |r| {
            r.member_count_of(crate::dialect::DialectKind::Seed003)
        });
        if watching >= cap {
            return stream_full(cap);
        }
    }
    let known = match app.backtests.lookup(&id).await {
        Ok(run) => run.is_some(),
        Err(e) => {
            return response::error(hyper::StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
        }
    };
    let session = Seed003Session::backtest(id, known, Arc::clone(&app.backtests));
    crate::ws::upgrade(app, req, session)
}

/// 503 for a stream at `ROOMCAST_STREAM_MAX_CONNECTIONS`.
fn stream_full(cap: usize) -> HttpResponse {
    response::json(
        hyper::StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({
            "error": "stream connection limit reached",
            "max_connections": cap,
        }),
    )
}

/// 400 naming `field`.
fn bad_field(field: &str, error: String) -> HttpResponse {
    response::json(
        hyper::StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": error, "field": field }),
    )
}

/// `GET /api/ws/stream/live-trading[?symbols=A,B]`: the paper account's
/// live stream, filtered by symbol (empty items ignored; a bad symbol gets
/// 400 naming `symbols` before the upgrade).
pub fn live_trading_stream(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let raw = response::query_param(&req, "symbols").unwrap_or_default();
    let symbols = match crate::catalog::symbol_set(raw.split(',').filter(|s| !s.trim().is_empty()))
    {
        Ok(symbols) => symbols,
        Err(e) => return bad_field("symbols", e.to_string()),
    };
    let cap = app.config.ws.stream_max_connections;
    let Some(viewer) = app
        .trading
        .live_viewers
        .join(&session::live_filter(&symbols), cap)
    else {
        return stream_full(cap);
    };
    crate::ws::upgrade(app, req, Seed003Session::live(symbols, viewer))
}

/// `GET /api/ws/stream/market-data/{symbol}`: one symbol's market data. A
/// malformed symbol gets 400 before the upgrade; one nobody publishes is
/// upgraded, told, and closed with 4004.
pub async fn market_data_stream(
    app: &Arc<App>,
    req: Request<Incoming>,
    segment: &str,
) -> HttpResponse {
    let decoded: String = form_urlencoded::parse(format!("s={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let symbol = match crate::catalog::normalize_ticker(&decoded) {
        Ok(symbol) => symbol,
        Err(e) => return bad_field("symbol", e.to_string()),
    };
    let room = crate::catalog::RoomName::s003_market(&symbol).expect("a normalised symbol");
    let cap = app.config.ws.stream_max_connections;
    if cap > 0
        && app.rooms.get(&room).map_or(0, |r| {
            r.member_count_of(crate::dialect::DialectKind::Seed003)
        }) >= cap
    {
        return stream_full(cap);
    }
    let known = app.trading.quotes.has(&symbol)
        || match app.bus.has_room(&room).await {
            Ok(known) => known,
            Err(e) => {
                return response::error(hyper::StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            }
        };
    crate::ws::upgrade(app, req, Seed003Session::market(symbol, known))
}
