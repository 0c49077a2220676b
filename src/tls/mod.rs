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

/// Makes [`provider`] the process's default, for the TLS configurations
/// that libraries build themselves (the Redis client's): rustls picks one
/// on its own only while exactly one provider is compiled in, which another
/// dependency could change. Idempotent.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
