//! The HTTP router: one match on method and path, dispatching to the
//! publish, status and alert handlers and to the WebSocket upgrades. Unknown
//! paths get 404 and wrong methods 405, both as JSON.

pub mod alerts;
pub mod publish;
pub mod response;
pub mod status;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use crate::app::App;
use crate::dialect::native::NativeSession;
use crate::dialect::seed000::Seed000Session;
use crate::dialect::seed001::{self, Seed001Session};
use crate::sources::modeldata::FeedOptions;
use response::HttpResponse;

/// Answers one HTTP request.
pub async fn route(app: Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/health") => status::health(&app),
        (&Method::GET, "/ready") => status::ready(&app),
        (&Method::GET, "/metrics") => status::metrics_text(),
        (&Method::GET, "/api/ws/stats") => status::stats(&app).await,
        (&Method::GET, "/ws/status") => status::ws_status(&app).await,
        (&Method::GET, "/v1/ws") => {
            let session = NativeSession::new(&app.node);
            crate::ws::upgrade(&app, req, session)
        }
        (&Method::GET, "/ws/modeldata-stream") => {
            let max_points = app.modeldata.config().max_points;
            let options = match FeedOptions::from_query(req.uri().query(), max_points) {
                Ok(options) => options,
                Err(e) => return response::error(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            if let Err(e) = app.modeldata.check(&options) {
                return response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            }
            let session = Seed000Session::new(Arc::clone(&app.modeldata), options);
            crate::ws::upgrade(&app, req, session)
        }
        (&Method::GET, "/api/ws") => {
            let user_id = response::query_param(&req, "user_id");
            if let Some(user) = &user_id
                && let Err(e) = seed001::validate_user_id(user)
            {
                return response::error(StatusCode::BAD_REQUEST, e);
            }
            crate::ws::upgrade(&app, req, Seed001Session::new(user_id.as_deref()))
        }
        (&Method::POST, p) if p.starts_with("/api/ws/broadcast/") => {
            match publish::Broadcast::from_path(&p["/api/ws/broadcast/".len()..]) {
                Some(kind) => publish::broadcast(&app, kind, req).await,
                None => not_found(p),
            }
        }
        (&Method::POST, "/api/alerts") => alerts::create(&app, req).await,
        (&Method::GET, "/api/alerts") => alerts::list(&app),
        (&Method::DELETE, p) if p.starts_with("/api/alerts/") => {
            alerts::delete(&app, &p["/api/alerts/".len()..])
        }
        (_, p) if is_known(p) => response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} not allowed on {p}"),
        ),
        (_, p) => not_found(p),
    }
}

fn is_known(path: &str) -> bool {
    matches!(
        path,
        "/health"
            | "/ready"
            | "/metrics"
            | "/api/ws/stats"
            | "/api/ws"
            | "/api/alerts"
            | "/ws/status"
            | "/ws/modeldata-stream"
            | "/v1/ws"
    ) || path.starts_with("/api/ws/broadcast/")
        || path.starts_with("/api/alerts/")
}

fn not_found(path: &str) -> HttpResponse {
    response::error(StatusCode::NOT_FOUND, &format!("no route for {path}"))
}
