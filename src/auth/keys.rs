//! The keys tokens are verified with: the HS256 secret, the RS256/ES256
//! public key of a PEM file, the keys of a JWKS file. Each key carries the
//! one algorithm it verifies, so a token cannot pick another (no HS256
//! "signed" with a public key). The files are re-read by
//! [`crate::reload::watch`] when they change or on SIGHUP; a reload that
//! fails keeps the keys in use.

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::secret::Secret;

/// Algorithms roomcast verifies; anything else is refused whatever the keys.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256];

/// Why a key source could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file holds no usable key.
    #[error("{path}: {reason}")]
    Invalid {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl KeyError {
    /// The setting at fault.
    pub fn setting(&self) -> &'static str {
        match self {
            KeyError::Read { setting, .. } | KeyError::Invalid { setting, .. } => setting,
        }
    }
}

/// One verification key.
pub struct Key {
    /// The JWKS `kid`, matched against the token header's; `None` for the
    /// secret and the PEM key, which any `kid` may use.
    pub kid: Option<String>,
    /// The only algorithm this key verifies.
    pub algorithm: Algorithm,
    /// The key material.
    pub key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the material: a secret key is secret.
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Where the keys come from: the settings' three sources.
#[derive(Debug, Clone, Copy)]
pub struct KeySources<'a> {
    /// The HS256 secret.
    pub secret: Option<&'a Secret>,
    /// The PEM public key file.
    pub public_key: Option<&'a Path>,
    /// The JWKS file.
    pub jwks: Option<&'a Path>,
}

/// Every key in use.
#[derive(Debug, Default)]
pub struct KeySet {
    /// The keys, in source order (secret, PEM, JWKS).
    pub keys: Vec<Key>,
}

impl KeySet {
    /// Loads every key the sources name (`ROOMCAST_JWT_SECRET`,
    /// `ROOMCAST_JWT_PUBLIC_KEY`, `ROOMCAST_JWT_JWKS`).
    pub fn load(sources: KeySources<'_>) -> Result<KeySet, KeyError> {
        let mut set = KeySet::default();
        if let Some(secret) = sources.secret {
            set.keys.push(Key {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.expose().as_bytes()).map_err(|e| {
                    KeyError::Invalid {
                        setting: "ROOMCAST_JWT_SECRET",
                        path: PathBuf::new(),
                        reason: e.to_string(),
                    }
                })?,
            });
        }
        if let Some(path) = sources.public_key {
            let pem = read(path, "ROOMCAST_JWT_PUBLIC_KEY")?;
            set.keys
                .push(pem_key(&pem).map_err(|reason| KeyError::Invalid {
                    setting: "ROOMCAST_JWT_PUBLIC_KEY",
                    path: path.to_path_buf(),
                    reason,
                })?);
        }
        if let Some(path) = sources.jwks {
            let json = read(path, "ROOMCAST_JWT_JWKS")?;
            set.keys
                .extend(jwks_keys(&json).map_err(|reason| KeyError::Invalid {
                    setting: "ROOMCAST_JWT_JWKS",
                    path: path.to_path_buf(),
                    reason,
                })?);
        }
        Ok(set)
    }

    /// The keys that may verify a token signed with `algorithm` under `kid`.
    pub fn candidates<'a>(
        &'a self,
        algorithm: Algorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            k.algorithm == algorithm
                && match (&k.kid, kid) {
                    (Some(mine), Some(theirs)) => mine == theirs,
                    // A token that names no key may use any key of its algorithm.
                    _ => true,
                }
        })
    }
}

fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

/// The one public key of a PEM file: RSA (RS256) or EC P-256 (ES256).
fn pem_key(pem: &[u8]) -> Result<Key, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file".to_string())?;
    if text.contains("PRIVATE KEY") {
        return Err("holds a private key; give the public key only".into());
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(Key {
            kid: None,
            algorithm: Algorithm::RS256,
            key,
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok(Key {
            kid: None,
            algorithm: Algorithm::ES256,
            key,
        });
    }
    Err("no RSA or EC public key (PEM `PUBLIC KEY`) found".into())
}

/// The keys of a JWKS document that verify RS256, ES256 or HS256; keys of
/// other types or algorithms are skipped, and a document with none is an error.
fn jwks_keys(json: &[u8]) -> Result<Vec<Key>, String> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let implied = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
            _ => continue,
        };
        let algorithm = match jwk.common.key_algorithm {
            Some(declared) => match Algorithm::try_from(declared) {
                Ok(alg) if alg == implied => alg,
                _ => continue,
            },
            None => implied,
        };
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    if keys.is_empty() {
        return Err("no RS256, ES256 or HS256 key in the set".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwks_keeps_only_keys_of_supported_algorithms() {
        let json = br#"{"keys":[
            {"kty":"oct","kid":"a","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
            {"kty":"oct","kid":"b","alg":"HS512","k":"c2VjcmV0"},
            {"kty":"OKP","kid":"c","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}"#;
        let keys = jwks_keys(json).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("a"));
        assert_eq!(keys[0].algorithm, Algorithm::HS256);
        assert!(jwks_keys(br#"{"keys":[]}"#).is_err());
        assert!(jwks_keys(b"nope").is_err());
    }

    #[test]
    fn a_private_key_file_is_refused() {
        let e =
            pem_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(e.contains("private"), "{e}");
        assert!(pem_key(b"garbage").is_err());
    }

    #[test]
    fn keys_are_chosen_by_algorithm_and_kid() {
        let key = |kid: Option<&str>, algorithm| Key {
            kid: kid.map(str::to_string),
            algorithm,
            key: DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap(),
        };
        let set = KeySet {
            keys: vec![
                key(None, Algorithm::HS256),
                key(Some("k1"), Algorithm::RS256),
                key(Some("k2"), Algorithm::RS256),
            ],
        };
        assert_eq!(set.candidates(Algorithm::RS256, Some("k2")).count(), 1);
        assert_eq!(set.candidates(Algorithm::RS256, None).count(), 2);
        assert_eq!(set.candidates(Algorithm::RS256, Some("k3")).count(), 0);
        assert_eq!(set.candidates(Algorithm::HS256, Some("any")).count(), 1);
        assert_eq!(set.candidates(Algorithm::ES256, None).count(), 0);
        assert!(!format!("{:?}", set.keys[0]).contains("0123"));
    }
}
