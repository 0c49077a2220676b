//! Seed 003's face: the backtest stream (`GET
//! /api/ws/stream/backtest/{id}`, its [`session`]), the start
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
            return response::json(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({
                    "error": "stream connection limit reached",
                    "max_connections": cap,
                }),
            );
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
