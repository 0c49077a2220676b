//! Seed 000's face: the modeldata stream (`GET /ws/modeldata-stream`, its
//! [`session`]) and its status (`GET /ws/status`, [`status`]). Its encoder
//! is `crate::dialect::seed000` (below the rooms); the feeds it streams are
//! the modeldata source (`crate::sources::modeldata`).

pub mod session;
pub mod status;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

pub use session::Seed000Session;

use crate::app::App;
use crate::http::response::{self, HttpResponse};
use crate::sources::modeldata::FeedOptions;

/// `GET /ws/modeldata-stream`: options checked before the upgrade (400 naming the option).
pub fn stream(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let max_points = app.modeldata.config().max_points;
    let options = match FeedOptions::from_query(req.uri().query(), max_points) {
        Ok(options) => options,
        Err(e) => return response::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Err(e) = app.modeldata.check(&options) {
        return response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let session = Seed000Session::new(Arc::clone(&app.modeldata), options);
    crate::ws::upgrade(app, req, session)
}
