//! TLS, both ways (`docs/tls.md`): the node terminating TLS for its own
//! clients (`wss://`, `https://`) with a certificate that can be replaced
//! while it runs ([`certificate`]), and the trust roots its own outgoing
//! TLS connections (PostgreSQL, Redis) verify servers against ([`roots`]).
//! Everything uses rustls with the `ring` provider.

pub mod certificate;
pub mod error;
pub mod roots;
pub mod settings;

pub use certificate::ServerCertificate;
pub use error::TlsError;
pub use settings::TlsSettings;

use std::sync::Arc;

/// The crypto provider every TLS configuration of the node is built with.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Without TLS there is nothing to reload: answers SIGHUP with a log line
/// until `shutdown`, so a `systemctl reload` (SIGHUP) never ends a node
/// whatever its settings. The handler is in place when this returns.
pub fn ignore_hangup(
    shutdown: tokio_util::sync::CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let hangup = hangup();
    async move {
        let Some(mut hangup) = hangup else {
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(()) = hangup.recv() => {
                    tracing::info!("SIGHUP: nothing to reload (TLS is off)");
                }
            }
        }
    }
}

/// A SIGHUP handler, registered now; `None` (with a warning) if it cannot be.
fn hangup() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "no SIGHUP handler"))
        .ok()
}

/// Makes [`provider`] the process's default, for the TLS configurations
/// that libraries build themselves (the Redis client's): rustls picks one
/// on its own only while exactly one provider is compiled in, which another
/// dependency could change. Idempotent.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
