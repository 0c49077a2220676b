//! TLS termination settings, a section of [`crate::Config`]: the PEM files
//! of the certificate chain and private key clients are served with
//! (`wss://`, `https://`), and how often they are checked for a renewal.
//! Neither set: plain TCP (`ws://`), as behind a TLS-terminating proxy.

use std::path::PathBuf;

use crate::config_error::{ConfigError, check_secs, invalid};
use crate::seconds::Seconds;

use super::certificate::{ServerCertificate, load_pair};

/// Where the node's certificate and key are, if it terminates TLS.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct TlsSettings {
    /// PEM certificate chain (leaf first, then intermediates) served to
    /// clients. Set together with ROOMCAST_TLS_KEY to serve `wss://` and
    /// `https://` on ROOMCAST_BIND instead of plain `ws://`/`http://`.
    #[arg(long = "tls-cert", env = "ROOMCAST_TLS_CERT")]
    pub cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the ROOMCAST_TLS_CERT leaf.
    #[arg(long = "tls-key", env = "ROOMCAST_TLS_KEY")]
    pub key: Option<PathBuf>,

    /// Seconds between checks of the two files' modification times; a
    /// change reloads them (so does SIGHUP).
    #[arg(
        long = "tls-reload-interval",
        env = "ROOMCAST_TLS_RELOAD_INTERVAL",
        default_value_t = Seconds::from_secs(5)
    )]
    pub reload_interval: Seconds,
}

impl TlsSettings {
    /// Whether the node terminates TLS (both files are set).
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }

    /// Rejects a half configuration and files that do not load as a
    /// matching pair, naming the variable and the file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs("ROOMCAST_TLS_RELOAD_INTERVAL", self.reload_interval.get())?;
        match (&self.cert, &self.key) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(invalid(
                "ROOMCAST_TLS_KEY",
                "must be set with ROOMCAST_TLS_CERT (the certificate's private key)",
            )),
            (None, Some(_)) => Err(invalid(
                "ROOMCAST_TLS_CERT",
                "must be set with ROOMCAST_TLS_KEY (the key's certificate chain)",
            )),
            (Some(cert), Some(key)) => {
                load_pair(cert, key, &super::provider())
                    .map(drop)
                    .map_err(|e| {
                        let name = if e.is_key_fault(key) {
                            "ROOMCAST_TLS_KEY"
                        } else {
                            "ROOMCAST_TLS_CERT"
                        };
                        invalid(name, e.to_string())
                    })
            }
        }
    }

    /// The reloadable certificate, if TLS is on.
    pub fn load(&self) -> Result<Option<std::sync::Arc<ServerCertificate>>, ConfigError> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Ok(None);
        };
        ServerCertificate::load(cert, key)
            .map(Some)
            .map_err(|e| invalid("ROOMCAST_TLS_CERT", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn both_files_or_neither() {
        let mut c = Config::default();
        assert!(!c.tls.enabled());
        c.tls.cert = Some("/nonexistent/cert.pem".into());
        assert_eq!(c.validate().unwrap_err().name, "ROOMCAST_TLS_KEY");
        c.tls.key = Some("/nonexistent/key.pem".into());
        let e = c.validate().unwrap_err();
        assert_eq!(e.name, "ROOMCAST_TLS_CERT");
        assert!(e.message.contains("/nonexistent/cert.pem"), "{e}");
        c.tls.cert = None;
        assert_eq!(c.validate().unwrap_err().name, "ROOMCAST_TLS_CERT");
    }
}
