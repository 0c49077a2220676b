//! Why a certificate, a key or a CA file could not be used: the TLS
//! boundary's errors, each naming the file (never its contents).

use std::path::PathBuf;

/// A PEM file that could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not PEM of the expected kind.
    #[error("{path} is not a PEM {what}: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What it should hold (`certificate chain`, `private key`).
        what: &'static str,
        /// What the parser said.
        detail: String,
    },
    /// The file holds no item of the expected kind.
    #[error("{path} holds no {what}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
    },
    /// rustls refused the key, or the key does not belong to the certificate.
    #[error("{key} cannot be used with {cert}: {source}")]
    Key {
        /// The certificate chain file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// rustls refused a CA certificate.
    #[error("{path}: a CA certificate was refused: {source}")]
    Root {
        /// The CA file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

impl TlsError {
    /// Whether the fault lies with the private key file (rather than the
    /// certificate file), so configuration errors name the right variable.
    pub fn is_key_fault(&self, key: &std::path::Path) -> bool {
        match self {
            TlsError::Key { .. } => true,
            TlsError::Read { path, .. }
            | TlsError::Pem { path, .. }
            | TlsError::Empty { path, .. }
            | TlsError::Root { path, .. } => path == key,
        }
    }
}
