//! Seed 002's face: QuantMindX's topics on `/ws` (its [`session`], which
//! seed 004's trading stream will share) and the backtest start
//! (`POST /api/v1/backtest/run`, [`backtest`]), with cancel and status
//! (`DELETE`/`GET /api/v1/backtest/{id}`, `crate::http::backtest`). Its
//! encoder is `crate::dialect::ws_root`; the runs are
//! `crate::sources::backtest`.

pub mod backtest;
pub mod events;
pub mod session;

use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;

pub use session::WsRootSession;

use crate::app::App;
use crate::http::response::HttpResponse;

/// `GET /ws`: the shared root stream.
pub fn stream(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    crate::ws::upgrade(app, req, WsRootSession::new())
}
