//! `DATABASE_URL` as libpq reads it, TLS included: the connection settings
//! tokio-postgres takes, plus what it does not know, `sslmode`'s
//! `verify-ca` and `verify-full` and the CA file `sslrootcert` (or
//! `PGSSLROOTCERT`), turned into a rustls connector. Both the modeldata
//! pool ([`super::postgres`]) and `roomcast seed-modeldata` connect through it.
//!
//! | `sslmode` | TLS | server certificate checked |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `prefer` (default) | if the server offers it | no |
//! | `require` | always | no (as `verify-ca` when a CA file is given) |
//! | `verify-ca` | always | chain to the CA |
//! | `verify-full` | always | chain to the CA and the host name |
//!
//! The CA is `sslrootcert=` in the URL, else `PGSSLROOTCERT`, else (for the
//! verifying modes) the system's trust store; `sslrootcert=system` asks for
//! the system's store explicitly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::tls::TlsError;

/// libpq's `sslmode`, all five that roomcast supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, unverified; else plain.
    Prefer,
    /// TLS, unverified.
    Require,
    /// TLS, the certificate chain verified against the CA.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Why a `DATABASE_URL` or its CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    /// tokio-postgres refused the URL.
    #[error("DATABASE_URL: {0}")]
    Parse(#[source] tokio_postgres::Error),
    /// `sslmode` is not one of libpq's.
    #[error(
        "DATABASE_URL: sslmode={0:?} is not disable, prefer, require, verify-ca or verify-full (allow is not supported)"
    )]
    SslMode(String),
    /// The CA file could not be loaded.
    #[error("CA file for PostgreSQL: {0}")]
    RootCert(#[source] TlsError),
    /// No usable CA certificate to verify the server with.
    #[error("no usable CA certificate in {0} to verify PostgreSQL with")]
    NoRoots(String, #[source] rustls::client::VerifierBuilderError),
}

/// Where the CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// A PEM file.
    File(PathBuf),
    /// The system's trust store.
    System,
}

/// A parsed `DATABASE_URL`.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    /// What tokio-postgres connects with (its `sslmode` is `require` for
    /// every mode that demands TLS; verification is the connector's).
    config: tokio_postgres::Config,
    /// The libpq mode asked for.
    mode: SslMode,
    /// The CA, when one was named (else the system's for verifying modes).
    roots: Option<Roots>,
}

/// Splits libpq-only TLS options out of a URL or key=value connection
/// string: returns the rest, `sslmode` and `sslrootcert`.
fn split_tls_options(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), None, None);
        };
        let mut kept = form_urlencoded::Serializer::new(String::new());
        let mut any = false;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "sslmode" => mode = Some(value.into_owned()),
                "sslrootcert" => root = Some(value.into_owned()),
                _ => {
                    kept.append_pair(&key, &value);
                    any = true;
                }
            }
        }
        let rest = if any {
            format!("{base}?{}", kept.finish())
        } else {
            base.to_string()
        };
        return (rest, mode, root);
    }
    // key=value form: unquoted `sslmode=` and `sslrootcert=` words.
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        if let Some(v) = word.strip_prefix("sslmode=") {
            mode = Some(v.to_string());
        } else if let Some(v) = word.strip_prefix("sslrootcert=") {
            root = Some(v.to_string());
        } else {
            kept.push(word);
        }
    }
    (kept.join(" "), mode, root)
}

impl DatabaseUrl {
    /// Parses `url`; `root_cert` is `PGSSLROOTCERT`, used when the URL names
    /// no `sslrootcert`.
    pub fn parse(url: &str, root_cert: Option<&Path>) -> Result<Self, DatabaseUrlError> {
        let (rest, mode, root) = split_tls_options(url);
        let mode = match mode {
            None => SslMode::Prefer,
            Some(m) => SslMode::parse(&m).ok_or(DatabaseUrlError::SslMode(m))?,
        };
        let roots = match root.as_deref() {
            Some("system") => Some(Roots::System),
            Some(path) => Some(Roots::File(PathBuf::from(path))),
            None => root_cert.map(|p| Roots::File(p.to_path_buf())),
        };
        // libpq: `require` with a CA file verifies the chain, as `verify-ca`.
        let mode = match (mode, &roots) {
            (SslMode::Require, Some(Roots::File(_))) => SslMode::VerifyCa,
            (mode, _) => mode,
        };
        let mut config: tokio_postgres::Config = rest.parse().map_err(DatabaseUrlError::Parse)?;
        config.ssl_mode(match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        });
        Ok(DatabaseUrl {
            config,
            mode,
            roots,
        })
    }

    /// The settings tokio-postgres connects with.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The same, to adjust (timeouts, application name).
    pub fn config_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.config
    }

    /// The mode asked for.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// `host:port/db` for error messages (no user, no password).
    pub fn target(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self
            .config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres");
        format!("{host}:{port}/{db}")
    }

    /// The rustls connector for this mode (it loads the CA file).
    pub fn connector(&self) -> Result<MakeRustlsConnect, DatabaseUrlError> {
        let provider = crate::tls::provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions");
        let config = match self.mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth(),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = match &self.roots {
                    Some(Roots::File(path)) => {
                        crate::tls::roots::from_file(path).map_err(DatabaseUrlError::RootCert)?
                    }
                    Some(Roots::System) | None => crate::tls::roots::system(),
                };
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| DatabaseUrlError::NoRoots(self.root_path(), e))?;
                let verifier: Arc<dyn ServerCertVerifier> = if self.mode == SslMode::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth()
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn root_path(&self) -> String {
        match &self.roots {
            Some(Roots::File(path)) => path.display().to_string(),
            _ => "the system trust store".into(),
        }
    }
}

/// `prefer` and `require`: encryption without authentication, as in libpq.
/// The handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(
    /// Its signature algorithms check the handshake's signatures.
    Arc<CryptoProvider>,
);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the CA; the host name is not
/// checked (webpki checks the name after the chain, so a name mismatch
/// means the chain was good).
#[derive(Debug)]
struct ChainOnly(
    /// The full check, whose host-name verdict alone is set aside.
    Arc<WebPkiServerVerifier>,
);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Why connecting to `target` (`host:port/db`, never the password)
/// failed: the server's own reason when it refused (a wrong password, a
/// missing database or role; SQLSTATE included), else the whole cause
/// chain (refused, timed out, no TLS on offer, a password the server wants
/// and the URL lacks).
pub fn connect_error(target: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(db) = cause.downcast_ref::<tokio_postgres::error::DbError>() {
            let mut text = format!(
                "connecting to {target}: {} (SQLSTATE {})",
                db.message(),
                db.code().code()
            );
            if let Some(hint) = db.hint() {
                text.push_str("; ");
                text.push_str(hint);
            }
            return text;
        }
        source = cause.source();
    }
    let chain = cause_chain(error);
    if chain.ends_with("password missing") {
        format!(
            "connecting to {target}: {chain} (the server asks for a password and the URL has none: postgres://user:PASSWORD@host/db)"
        )
    } else {
        format!("connecting to {target}: {chain}")
    }
}

/// `error` and its causes, `: `-separated (tokio-postgres's own message
/// for a failed TLS handshake does not say why).
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_and_the_ca_file_are_read_and_the_rest_passes_through() {
        let url = DatabaseUrl::parse(
            "postgres://u:secret@db.example:6543/app?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x",
            None,
        )
        .unwrap();
        assert_eq!(url.mode(), SslMode::VerifyFull);
        assert_eq!(url.roots, Some(Roots::File("/ca.pem".into())));
        assert_eq!(url.config().get_ssl_mode(), PgSslMode::Require);
        assert_eq!(url.config().get_application_name(), Some("x"));
        assert_eq!(url.target(), "db.example:6543/app");
        assert!(!url.target().contains("secret"));

        let url = DatabaseUrl::parse("postgres://u@h/db", None).unwrap();
        assert_eq!(url.mode(), SslMode::Prefer);
        assert_eq!(url.config().get_ssl_mode(), PgSslMode::Prefer);
        let url = DatabaseUrl::parse("postgres://u@h/db?sslmode=disable", None).unwrap();
        assert_eq!(url.config().get_ssl_mode(), PgSslMode::Disable);
        let url = DatabaseUrl::parse("host=h dbname=d sslmode=verify-ca", None).unwrap();
        assert_eq!(url.mode(), SslMode::VerifyCa);
        assert_eq!(url.target(), "h:5432/d");

        // PGSSLROOTCERT when the URL names none; the URL's wins.
        let env = Path::new("/env-ca.pem");
        let url = DatabaseUrl::parse("postgres://u@h/db?sslmode=verify-full", Some(env)).unwrap();
        assert_eq!(url.roots, Some(Roots::File(env.into())));
        let url = DatabaseUrl::parse("postgres://u@h/db?sslrootcert=system", Some(env)).unwrap();
        assert_eq!(url.roots, Some(Roots::System));
        // libpq: require with a CA file verifies the chain.
        let url = DatabaseUrl::parse("postgres://u@h/db?sslmode=require", Some(env)).unwrap();
        assert_eq!(url.mode(), SslMode::VerifyCa);

        let err = DatabaseUrl::parse("postgres://u@h/db?sslmode=allow", None).unwrap_err();
        assert!(err.to_string().contains("allow"), "{err}");
    }

    #[test]
    fn a_missing_ca_file_is_named_when_the_connector_is_built() {
        let url = DatabaseUrl::parse(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            None,
        )
        .unwrap();
        let Err(err) = url.connector() else {
            panic!("a missing CA file was accepted");
        };
        assert!(cause_chain(&err).contains("/nonexistent/ca.pem"), "{err}");
        // Unverified modes need no CA.
        let url = DatabaseUrl::parse("postgres://u@h/db?sslmode=require", None).unwrap();
        assert!(url.connector().is_ok());
    }
}
