//! The accept loop: admits each TCP connection by its address
//! ([`crate::peers`]), then serves it as one hyper HTTP/1.1 connection with
//! upgrades enabled, so WebSocket sessions can take the socket over. With
//! TLS on ([`crate::tls`]) an admitted connection first completes its TLS
//! handshake, within the header timeout, and hyper is served over the TLS
//! stream; plain connections take the same path as without TLS (the
//! connection code is generic over the stream, not boxed).
//!
//! Every phase before an upgrade is bounded ([`HttpLimits`]): hyper's timer
//! enforces the header timeout (a silent socket, a slowloris, a partial
//! request line), a watchdog here closes connections idle between requests
//! after the keep-alive timeout, and body reads have their own timeout
//! ([`crate::http::response::read_body`]). When descriptors run out, accept
//! backs off and warns at most every [`WARN_EVERY`] instead of spinning.
//!
//! On shutdown it stops accepting and asks idle HTTP connections to finish;
//! upgraded sockets are not hyper's any more and are drained by the session
//! registry (close 1001).

use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::http::Router;
use crate::http::limits::HttpLimits;
use crate::peers::{PeerGuard, PeerRefusal, Peers};
use crate::telemetry::{Limit, metrics};

/// How often addresses without connections are forgotten.
const PEER_SWEEP: Duration = Duration::from_secs(10);

/// Refused connections being answered at once; beyond it a refused
/// connection is closed without an answer (a flood must not pin descriptors).
const MAX_REFUSALS_IN_FLIGHT: usize = 256;

/// How long a refused connection is kept to deliver its 429 and read what
/// the client sent (closing with unread bytes resets the connection, which
/// can destroy the response before the client reads it).
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// First pause after an `accept` that failed for lack of resources.
const BACKOFF_MIN: Duration = Duration::from_millis(5);

/// Longest pause between accepts while resources stay exhausted.
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// At most one warning per this period while `accept` keeps failing.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Accepts connections until `app.shutdown` is cancelled; with `tls`, every
/// connection is a TLS connection.
pub async fn run(listener: TcpListener, app: Arc<App>, tls: Option<TlsAcceptor>) {
    let router = Arc::new(Router::new(&app.config));
    let peers = Peers::new(app.config.peers.clone());
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let mut backoff = AcceptBackoff::default();
    let mut sweep = tokio::time::interval(PEER_SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = sweep.tick() => {
                peers.sweep(std::time::Instant::now());
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => {
                backoff.succeeded();
                conn
            }
            Err(e) => {
                metrics().accept_errors.increment(1);
                if let Some(pause) = backoff.failed(&e, Instant::now()) {
                    tokio::time::sleep(pause).await;
                }
                continue;
            }
        };
        match peers.admit(peer.ip(), std::time::Instant::now()) {
            Ok(guard) => match &tls {
                None => {
                    let connection = serve_connection(
                        stream,
                        Arc::clone(&app),
                        Arc::clone(&router),
                        guard,
                        peer.ip(),
                    );
                    app.tracker.spawn(connection);
                }
                Some(acceptor) => {
                    let connection = serve_tls(
                        stream,
                        acceptor.clone(),
                        Arc::clone(&app),
                        Arc::clone(&router),
                        guard,
                        peer.ip(),
                    );
                    app.tracker.spawn(connection);
                }
            },
            Err(refusal) => {
                tracing::debug!(%peer, %refusal, "connection refused");
                // Without a permit the stream is dropped: closed unanswered.
                if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                    app.tracker.spawn(async move {
                        refuse(stream, refusal).await;
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// Completes the TLS handshake of an admitted connection within the header
/// timeout (a client hello that never completes holds nothing longer than a
/// silent plain socket would), then serves it like a plain one. A failed
/// handshake (a plain-text client, an unknown protocol version, a client that
/// refuses the certificate) just closes the connection.
async fn serve_tls(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    router: Arc<Router>,
    guard: PeerGuard,
    peer: IpAddr,
) {
    let header_timeout = app.config.http.header_timeout.get();
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(header_timeout, acceptor.accept(stream)) => handshake,
        _ = app.shutdown.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => serve_connection(stream, app, router, guard, peer).await,
        Ok(Err(error)) => {
            metrics().tls_handshake_failures.increment(1);
            tracing::debug!(%error, "TLS handshake failed");
        }
        Err(_) => {
            metrics().tls_handshake_failures.increment(1);
            metrics().limit_hit(Limit::HeaderTimeout);
            tracing::debug!("TLS handshake timed out");
        }
    }
}

/// Answers a refused connection with its canned 429 and closes it.
async fn refuse(mut stream: TcpStream, refusal: PeerRefusal) {
    let exchange = async {
        stream.write_all(&refusal.response()).await?;
        stream.shutdown().await?;
        let mut discard = [0u8; 512];
        while stream.read(&mut discard).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, exchange).await;
}

/// Pacing of an accept loop whose `accept` fails. Failures for lack of
/// resources (descriptors, buffers, memory) would repeat at once: they pause
/// the loop, doubling from [`BACKOFF_MIN`] to [`BACKOFF_MAX`], and are logged
/// at most once per [`WARN_EVERY`] with a count. Failures of one connection
/// (aborted before it was accepted) do not pause.
#[derive(Debug, Default)]
struct AcceptBackoff {
    /// The next pause; zero while accepts succeed.
    pause: Duration,
    /// When the last warning was logged.
    warned: Option<Instant>,
    /// Failures since the last warning.
    unreported: u64,
}

impl AcceptBackoff {
    /// Records a failure at `now`; returns how long to pause.
    fn failed(&mut self, error: &io::Error, now: Instant) -> Option<Duration> {
        let exhausted = matches!(
            error.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        );
        if !exhausted {
            tracing::debug!(%error, "accept failed for one connection");
            return None;
        }
        self.unreported += 1;
        if self
            .warned
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
        {
            tracing::warn!(
                %error,
                failures = self.unreported,
                "accept failed: out of resources; pausing accepts (raise the descriptor limit or lower WEBSOCKET_MAX_CONNECTIONS)"
            );
            self.warned = Some(now);
            self.unreported = 0;
        }
        self.pause = (self.pause * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        Some(self.pause)
    }

    /// Records a successful accept: the next failure starts from the shortest pause.
    fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }
}

/// Whether a connection is between requests, for the keep-alive watchdog.
#[derive(Debug)]
struct Activity {
    /// The connection's start: origin of `idle_since_ms`.
    opened: Instant,
    /// Requests being answered now.
    in_flight: AtomicU32,
    /// When the connection last became idle (opened, or a response was
    /// handed to hyper), in milliseconds since `opened`.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.idle_since_ms.store(now, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// When the connection will have been idle for `timeout`, or `None`
    /// while a request is being answered.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        Some(self.opened + since + timeout)
    }
}

/// Serves one admitted connection until it ends, is upgraded, idles out or
/// the node drains. `guard` is handed to an upgraded session through the
/// request's extensions, so the address's count covers the session too;
/// `peer`, the client's address, goes there for the access checks.
async fn serve_connection<S>(
    stream: S,
    app: Arc<App>,
    router: Arc<Router>,
    guard: PeerGuard,
    peer: IpAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits: &HttpLimits = &app.config.http;
    let activity = Arc::new(Activity::new());
    let service = {
        let app = Arc::clone(&app);
        let activity = Arc::clone(&activity);
        service_fn(move |mut req| {
            req.extensions_mut().insert(guard.clone());
            // Who is asking, for the access checks of protected routes.
            req.extensions_mut().insert(peer);
            activity.begin();
            let (app, router, activity) =
                (Arc::clone(&app), Arc::clone(&router), Arc::clone(&activity));
            async move {
                let response = router.route(app, req).await;
                activity.end();
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.get())
        .max_header_size(limits.max_header_size)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let keepalive = limits.keepalive_timeout.get();
    let result = loop {
        // Re-armed only when it fires: a request in flight, or one that
        // ended since, pushes the deadline out.
        let deadline = activity
            .idle_deadline(keepalive)
            .unwrap_or_else(|| Instant::now() + keepalive);
        tokio::select! {
            result = conn.as_mut() => break result,
            _ = app.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if activity.idle_deadline(keepalive).is_some_and(|d| d <= Instant::now()) {
                    // Closes at once when no request has begun; a request
                    // head already arriving is answered (within the header
                    // timeout), then the connection closes.
                    metrics().limit_hit(Limit::KeepaliveTimeout);
                    conn.as_mut().graceful_shutdown();
                    break conn.await;
                }
            }
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            metrics().limit_hit(Limit::HeaderTimeout);
        } else if e.is_parse_too_large() {
            metrics().limit_hit(Limit::HeaderSize);
        }
        tracing::debug!(error = %e, "http connection ended with error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_exhaustion_backs_off_and_warns_rarely() {
        let mut backoff = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let t0 = Instant::now();
        let pauses: Vec<_> = (0..8)
            .map(|_| backoff.failed(&emfile, t0).unwrap())
            .collect();
        assert_eq!(pauses[0], BACKOFF_MIN);
        assert_eq!(pauses[1], BACKOFF_MIN * 2);
        assert_eq!(*pauses.last().unwrap(), BACKOFF_MAX);
        // One warning so far; the other seven wait for the next period.
        assert_eq!(backoff.unreported, 7);
        backoff.failed(&emfile, t0 + WARN_EVERY).unwrap();
        assert_eq!(backoff.unreported, 0);
        backoff.succeeded();
        assert_eq!(backoff.failed(&emfile, t0).unwrap(), BACKOFF_MIN);
    }

    #[test]
    fn a_connection_aborted_before_accept_does_not_pause() {
        let mut backoff = AcceptBackoff::default();
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(backoff.failed(&aborted, Instant::now()), None);
    }
}
