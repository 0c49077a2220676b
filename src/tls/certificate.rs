//! The node's own TLS certificate: the chain and private key clients see in
//! the handshake of every `wss://` and `https://` connection. Read from PEM
//! files at start, and read again on SIGHUP or when the files change
//! (polled; [`crate::reload`]), so a renewed certificate needs no restart. New
//! handshakes use the pair loaded last; established connections keep the
//! one they were made with; a reload that fails (unreadable file, bad PEM, a
//! key that does not belong to the certificate) is logged and changes
//! nothing. The pair is swapped whole ([`ArcSwap`]): a handshake reads one
//! pointer, never a lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::{self, PemObject};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use super::error::TlsError;
use crate::reload::Reloadable;
use crate::telemetry::metrics;

/// The swappable certificate and key, and where they are read from.
#[derive(Debug)]
pub struct ServerCertificate {
    /// The PEM certificate chain (`ROOMCAST_TLS_CERT`): re-read on reload,
    /// named in logs.
    cert: PathBuf,
    /// The PEM private key (`ROOMCAST_TLS_KEY`): re-read on reload; its
    /// contents are never logged.
    key: PathBuf,
    /// Parses keys and signs handshakes.
    provider: Arc<CryptoProvider>,
    /// What new handshakes present.
    current: ArcSwap<CertifiedKey>,
}

/// Reads the chain at `cert` and the key at `key` and checks that they
/// belong together.
pub fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = super::roots::read_certificates(cert, "certificate chain")?;
    let key_pem = std::fs::read(key).map_err(|source| TlsError::Read {
        path: key.to_path_buf(),
        source,
    })?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::Empty {
            path: key.to_path_buf(),
            what: "private key",
        },
        other => TlsError::Pem {
            path: key.to_path_buf(),
            what: "private key",
            detail: other.to_string(),
        },
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| TlsError::Key {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}

impl ServerCertificate {
    /// Loads the pair at `cert` and `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = super::provider();
        let pair = load_pair(cert, key, &provider)?;
        Ok(Arc::new(ServerCertificate {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: ArcSwap::from_pointee(pair),
        }))
    }

    /// The certificate chain file, for logs.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The pair new handshakes present now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// A TLS acceptor (HTTP/1.1 by ALPN) presenting whatever pair is current
    /// at each handshake.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// Reads both files again and, if they make a valid pair, presents it
    /// from the next handshake on; otherwise keeps the current pair.
    pub fn try_reload(&self) -> Result<(), TlsError> {
        let pair = load_pair(&self.cert, &self.key, &self.provider)?;
        self.current.store(Arc::new(pair));
        Ok(())
    }
}

impl Reloadable for ServerCertificate {
    fn what(&self) -> &'static str {
        "TLS certificate"
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.cert.clone(), self.key.clone()]
    }

    /// [`ServerCertificate::try_reload`], logged and counted.
    fn reload(&self) {
        match self.try_reload() {
            Ok(()) => {
                metrics().tls_reloads.increment(1);
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                metrics().tls_reload_failures.increment(1);
                tracing::warn!(%error, "TLS certificate reload failed; new handshakes keep the previous certificate");
            }
        }
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `name` and its key, as PEM.
    fn pair(name: &str) -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        (certified.cert.pem(), certified.signing_key.serialize_pem())
    }

    fn write(dir: &Path, cert: &str, key: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        // Renamed into place, as a certificate manager does.
        std::fs::write(dir.join("cert.tmp"), cert).unwrap();
        std::fs::write(dir.join("key.tmp"), key).unwrap();
        std::fs::rename(dir.join("cert.tmp"), &c).unwrap();
        std::fs::rename(dir.join("key.tmp"), &k).unwrap();
        (c, k)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "roomcast-tls-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_changed_pair_is_presented_and_a_bad_one_keeps_the_old() {
        let dir = temp_dir("reload");
        let (a_cert, a_key) = pair("a.test");
        let (c, k) = write(&dir, &a_cert, &a_key);
        let certs = ServerCertificate::load(&c, &k).unwrap();
        let first = certs.current();

        let (b_cert, b_key) = pair("b.test");
        write(&dir, &b_cert, &b_key);
        certs.try_reload().unwrap();
        let second = certs.current();
        assert_ne!(first.cert[0], second.cert[0]);

        // A key that belongs to another certificate.
        write(&dir, &a_cert, &b_key);
        let err = certs.try_reload().unwrap_err();
        assert!(matches!(err, TlsError::Key { .. }), "{err}");
        assert_eq!(certs.current().cert[0], second.cert[0]);

        // Not PEM at all.
        write(&dir, "garbage", &b_key);
        let err = certs.try_reload().unwrap_err();
        assert!(err.to_string().contains("cert.pem"), "{err}");
        assert_eq!(certs.current().cert[0], second.cert[0]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_never_the_key() {
        let dir = temp_dir("errors");
        let (cert, key) = pair("a.test");
        let (c, k) = write(&dir, &cert, "");
        let err = ServerCertificate::load(&c, &k).unwrap_err();
        assert!(err.is_key_fault(&k), "{err}");
        assert!(err.to_string().contains("key.pem"), "{err}");
        let (c, k) = write(&dir, "", &key);
        let err = ServerCertificate::load(&c, &k).unwrap_err();
        assert!(!err.is_key_fault(&k), "{err}");
        let (_, other_key) = pair("b.test");
        let (c, k) = write(&dir, &cert, &other_key);
        let err = ServerCertificate::load(&c, &k).unwrap_err().to_string();
        assert!(!err.contains("PRIVATE KEY"), "{err}");
        let missing = dir.join("missing.pem");
        let err = ServerCertificate::load(&missing, &k).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
