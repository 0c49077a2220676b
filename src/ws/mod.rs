//! WebSocket endpoints: the upgrade (handshake checks, connection cap, query
//! validation) and the session machinery shared by every dialect.

pub mod handshake;
pub mod limits;
pub mod message;
pub mod reader;
pub mod session;
pub mod sessions;
pub mod stream;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, SEC_WEBSOCKET_VERSION};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::app::App;
use crate::auth::AuthError;
use crate::dialect::{DialectKind, DialectSession};
use crate::http::response::{self, HttpResponse};
use crate::peers::PeerGuard;
use crate::telemetry::{Limit, metrics};

/// Upgrades `req` to a WebSocket session speaking dialect `D`, or answers why
/// not: 403 for an `Origin` outside the allowlist ([`crate::access`]), 400
/// for a bad handshake, 426 (with `Sec-WebSocket-Version: 13`) for another
/// protocol version, 503 with a JSON reason at the connection cap or while
/// draining, 401 for a missing or bad token where the family's policy asks
/// for one ([`crate::auth`]), 403 when the dialect refuses the token's user.
/// Every refusal closes the connection (see [`crate::http`]).
pub fn upgrade<D: DialectSession>(
    app: &Arc<App>,
    mut req: Request<Incoming>,
    mut dialect: D,
) -> HttpResponse {
    if let Some(refusal) = crate::access::origins::refuse_upgrade(
        &app.config.access.ws_origins,
        app.config.access.ws_missing_origin,
        &req,
    ) {
        return refusal;
    }
    let accept = match handshake::accept(&req) {
        Ok(accept) => accept,
        Err(e) => {
            let mut refusal = response::error(e.status(), &e.to_string());
            if e.status() == StatusCode::UPGRADE_REQUIRED {
                refusal.headers_mut().insert(
                    SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static(handshake::SUPPORTED_VERSION),
                );
            }
            return refusal;
        }
    };
    if app.shutdown.is_cancelled() {
        return response::error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down");
    }
    let spoken = (D::KIND == DialectKind::Native).then_some(crate::native::session::PROTOCOL);
    let admitted = match app.auth.authenticate(&req, D::KIND.auth_family(), spoken) {
        Ok(admitted) => admitted,
        Err(e) => {
            metrics().auth_refused.increment(1);
            tracing::debug!(error = %e, dialect = D::KIND.label(), "upgrade refused: token");
            return unauthorized(&e);
        }
    };
    if let Err(reason) = dialect.authenticated(admitted.identity.user.as_deref()) {
        metrics().auth_refused.increment(1);
        return response::error(StatusCode::FORBIDDEN, reason);
    }
    let Some(permit) = app.sessions.try_reserve() else {
        metrics().limit_hit(Limit::Connections);
        return response::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({
                "error": "connection limit reached",
                "max_connections": app.sessions.max(),
            }),
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let app_for_task = Arc::clone(app);
    // The session counts against its address's connections as long as it lives.
    let peer_guard = req.extensions_mut().remove::<PeerGuard>();
    app.tracker.spawn(async move {
        let _peer_guard = peer_guard;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        // The stream hyper served: plain TCP, or TLS over it (`crate::server`).
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let stream = parts.io.into_inner();
                return session::run(
                    app_for_task,
                    stream,
                    parts.read_buf,
                    dialect,
                    permit,
                    admitted.identity,
                )
                .await;
            }
            Err(upgraded) => upgraded,
        };
        match upgraded.downcast::<TokioIo<TlsStream<TcpStream>>>() {
            Ok(parts) => {
                let stream = parts.io.into_inner();
                session::run(
                    app_for_task,
                    stream,
                    parts.read_buf,
                    dialect,
                    permit,
                    admitted.identity,
                )
                .await
            }
            Err(_) => tracing::error!("upgraded connection is neither TCP nor TLS over TCP"),
        }
    });
    let mut switching = handshake::switching_protocols(accept);
    if let Some(protocol) = admitted.protocol {
        switching
            .headers_mut()
            .insert(hyper::header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    switching
}

/// The 401 refusing an upgrade for its token (RFC 6750 §3): JSON like every
/// other error, with the `WWW-Authenticate` challenge. Never quotes the token.
fn unauthorized(e: &AuthError) -> HttpResponse {
    let mut refusal = response::json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({ "error": e.to_string(), "code": e.oauth_code() }),
    );
    if let Ok(value) = HeaderValue::from_str(&e.challenge()) {
        refusal
            .headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, value);
    }
    refusal
}
