//! Trust roots for the node's outgoing TLS connections (PostgreSQL, Redis):
//! the CA certificates of a PEM file, for servers under a private CA, or
//! the system's trust store.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::error::TlsError;

/// Every certificate of the PEM file at `path`, as read.
pub fn read_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_path_buf(),
            what,
        });
    }
    Ok(certs)
}

/// The CA certificates of the PEM file at `path`.
pub fn from_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in read_certificates(path, "CA certificate")? {
        store.add(cert).map_err(|source| TlsError::Root {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(store)
}

/// The system's trust store (what it holds; unreadable entries are skipped
/// with a warning).
pub fn system() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "a system CA certificate could not be loaded");
    }
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::warn!(
            added,
            ignored,
            "some system CA certificates were not usable"
        );
    }
    store
}
