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
