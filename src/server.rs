//! The accept loop: one hyper HTTP/1.1 connection per TCP connection, with
//! upgrades enabled so WebSocket sessions can take the socket over. On
//! shutdown it stops accepting and asks idle HTTP connections to finish;
//! upgraded sockets are not hyper's any more and are drained by the session
//! registry (close 1001).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::app::App;
use crate::http;

/// Accepts connections until `app.shutdown` is cancelled.
pub async fn run(listener: TcpListener, app: Arc<App>) {
    loop {
        let accepted = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, _peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        let tracker = app.tracker.clone();
        tracker.spawn(serve_connection(stream, app));
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, app: Arc<App>) {
    let service_app = Arc::clone(&app);
    let service = service_fn(move |req| {
        let app = Arc::clone(&service_app);
        async move { Ok::<_, Infallible>(http::route(app, req).await) }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "http connection ended with error");
            }
        }
        _ = app.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
