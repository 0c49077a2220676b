//! Seed 001's face: the real-time stream (`GET /api/ws`, its [`session`]),
//! the publish endpoints (`POST /api/ws/broadcast/*`, [`publish`]), the
//! price alerts (`/api/alerts`, [`alerts`]) and the stats
//! (`GET /api/ws/stats`, [`stats`]). Its encoder is
//! `crate::dialect::seed001` (below the rooms).

pub mod alerts;
pub mod publish;
pub mod session;
pub mod stats;

use std::sync::Arc;

use hyper::Request;
use hyper::StatusCode;
use hyper::body::Incoming;

pub use session::{MAX_USER_ID_LEN, Seed001Session, validate_user_id};

use crate::app::App;
use crate::http::response::{self, HttpResponse};

/// `GET /api/ws[?user_id=…]`: the user id checked before the upgrade.
pub fn stream(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let user_id = response::query_param(&req, "user_id");
    if let Some(user) = &user_id
        && let Err(e) = validate_user_id(user)
    {
        return response::error(StatusCode::BAD_REQUEST, e);
    }
    crate::ws::upgrade(app, req, Seed001Session::new(user_id.as_deref()))
}
