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

pub use session::{AutoStart, WsRootSession};

use crate::app::App;
use crate::http::response::{self, HttpResponse};
use crate::sources::trading::WsProtocol;

/// Longest seed 004 `client_id`.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// `GET /ws[?client_id=…]`: the shared root stream. Seed 004's optional
/// `client_id` (1–128 of letters, digits, `_ - . @ :`) is checked before
/// the upgrade (400 naming it); it never reaches the wire.
pub fn stream(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    if let Some(id) = response::query_param(&req, "client_id")
        && let Err(e) = validate_client_id(&id)
    {
        return response::json(
            hyper::StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": e, "field": "client_id" }),
        );
    }
    let settings = &app.trading.settings;
    let start = match settings.ws_protocol {
        WsProtocol::Seed002 => AutoStart::Never,
        WsProtocol::Seed004 => AutoStart::Now,
        WsProtocol::Auto if response::query_param(&req, "client_id").is_some() => AutoStart::Now,
        WsProtocol::Auto if settings.auto_subscribe_delay == 0.0 => AutoStart::Now,
        WsProtocol::Auto => AutoStart::After(settings.auto_subscribe_delay()),
    };
    let session = WsRootSession::new(Arc::clone(&app.trading), start);
    crate::ws::upgrade(app, req, session)
}

/// Checks a seed 004 `client_id`.
pub fn validate_client_id(id: &str) -> Result<(), &'static str> {
    let valid = (1..=MAX_CLIENT_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@' | b':'));
    if valid {
        Ok(())
    } else {
        Err("client_id must be 1 to 128 characters of letters, digits and _ - . @ :")
    }
}
