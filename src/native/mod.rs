//! roomcast's native protocol, v1 (`/v1/ws`, `docs/protocol-v1.md`): its
//! face, as a seed's folder is (`crate::seeds`): the session state machine
//! ([`session`]) and the upgrade. Its encoder is `crate::dialect::native`
//! (below the rooms).

pub mod session;

use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;

pub use session::{MAX_ROOMS_PER_MESSAGE, NativeSession, PROTOCOL, parse_room};

use crate::app::App;
use crate::http::response::HttpResponse;

/// `GET /v1/ws`: a native session on this node.
pub fn stream(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    crate::ws::upgrade(app, req, NativeSession::new(&app.node))
}
