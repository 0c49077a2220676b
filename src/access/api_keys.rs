//! The API keys a protected request is checked against: those of
//! `ROOMCAST_API_KEYS` plus those of `ROOMCAST_API_KEY_FILE`, held as
//! SHA-256 digests and compared in constant time, so neither a key's bytes
//! nor its length leak through response timing. The file is re-read when it
//! changes (polled every `ROOMCAST_API_KEY_POLL`) and on SIGHUP
//! ([`crate::reload`]); every key in it is valid at once,
//! so a rotation overlaps (add the new key, move clients, remove the old). A
//! file that fails to load keeps the keys already loaded and warns. Keys are
//! never logged; messages name a key by its line.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::reload::Reloadable;

/// The shortest key accepted: shorter keys can be guessed.
pub const MIN_KEY_LEN: usize = 16;

/// The longest key accepted (it travels in a header).
pub const MAX_KEY_LEN: usize = 512;

/// A key's SHA-256 digest.
type KeyDigest = [u8; 32];

/// Why a key file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file holds no key (a truncated write, or a mistake): refused, so
    /// it cannot silently revoke every key.
    #[error("{path} holds no key")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A line is not a valid key.
    #[error("{path} line {line}: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it (never the key itself).
        reason: &'static str,
    },
}

/// Checks that `key` can be a key: [`MIN_KEY_LEN`] to [`MAX_KEY_LEN`]
/// visible ASCII characters, no comma. The error never contains the key.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.len() < MIN_KEY_LEN || key.len() > MAX_KEY_LEN {
        return Err("an API key must be 16 to 512 characters");
    }
    if !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err("an API key may contain only visible ASCII characters other than ','");
    }
    Ok(())
}

/// The keys of a key file: one a line, blank lines and `#` comments skipped.
pub fn read_key_file(path: &Path) -> Result<Vec<String>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let key = line.trim();
        if key.is_empty() || key.starts_with('#') {
            continue;
        }
        check_key(key).map_err(|reason| KeyFileError::BadKey {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        })?;
        keys.push(key.to_string());
    }
    if keys.is_empty() {
        return Err(KeyFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(keys)
}

fn digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

/// API keys given in a setting (comma-separated). Never printed: its
/// `Debug` shows how many there are, not what they are.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct KeyList(pub Vec<String>);

impl fmt::Debug for KeyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyList({} redacted)", self.0.len())
    }
}

impl FromStr for KeyList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| {
                check_key(k)
                    .map(|()| k.to_string())
                    .map_err(|e| format!("key #{}: {e}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(KeyList)
    }
}

/// The valid API keys, rotated in place.
#[derive(Debug)]
pub struct ApiKeys {
    /// Digests of every valid key (setting and file); swapped whole on a
    /// reload, read under a short lock on every protected request.
    digests: RwLock<Arc<[KeyDigest]>>,
    /// Digests of `ROOMCAST_API_KEYS`: fixed, joined to the file's on every reload.
    from_setting: Vec<KeyDigest>,
    /// `ROOMCAST_API_KEY_FILE`, if any.
    file: Option<PathBuf>,
}

impl ApiKeys {
    /// The keys of `setting` and `file`. A file that does not load is
    /// warned about and its keys are missing until it does (start-up
    /// validation refuses such a file first).
    pub fn new(setting: Option<&KeyList>, file: Option<&Path>) -> Self {
        let from_setting: Vec<KeyDigest> = setting
            .map(|keys| keys.0.iter().map(|k| digest(k.as_bytes())).collect())
            .unwrap_or_default();
        let keys = ApiKeys {
            digests: RwLock::new(from_setting.clone().into()),
            from_setting,
            file: file.map(Path::to_path_buf),
        };
        keys.reload();
        keys
    }

    /// How many keys are valid now.
    pub fn len(&self) -> usize {
        self.digests.read().len()
    }

    /// True when no key is configured (protected endpoints then answer
    /// only trusted networks).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `presented` is one of the valid keys. Every key's digest is
    /// compared, in constant time, whichever matches.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let presented = digest(presented);
        let digests = Arc::clone(&self.digests.read());
        let mut found = Choice::from(0);
        for valid in digests.iter() {
            found |= valid.ct_eq(&presented);
        }
        found.into()
    }
}

impl Reloadable for ApiKeys {
    fn what(&self) -> &'static str {
        "API keys"
    }

    fn files(&self) -> Vec<PathBuf> {
        self.file.iter().cloned().collect()
    }

    /// Reads the key file again. A file that fails to load keeps the keys
    /// and warns.
    fn reload(&self) {
        let Some(path) = &self.file else {
            return;
        };
        match read_key_file(path) {
            Ok(keys) => {
                let mut all = self.from_setting.clone();
                all.extend(keys.iter().map(|k| digest(k.as_bytes())));
                let count = all.len();
                *self.digests.write() = all.into();
                tracing::info!(path = %path.display(), keys = count, "API keys loaded");
            }
            Err(error) => {
                tracing::warn!(%error, keys = self.len(), "API key file not loaded; keeping the keys loaded before");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "key-aaaaaaaaaaaaaaaa";
    const B: &str = "key-bbbbbbbbbbbbbbbb";

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("roomcast-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn keys_from_the_setting_verify_and_others_do_not() {
        let keys = ApiKeys::new(Some(&KeyList(vec![A.into(), B.into()])), None);
        assert_eq!(keys.len(), 2);
        assert!(keys.verify(A.as_bytes()));
        assert!(keys.verify(B.as_bytes()));
        assert!(!keys.verify(b"key-cccccccccccccccc"));
        assert!(!keys.verify(&A.as_bytes()[..A.len() - 1]), "a prefix");
        assert!(!keys.verify(b""));
        assert!(ApiKeys::new(None, None).is_empty());
    }

    #[test]
    fn a_key_file_skips_comments_and_blank_lines() {
        let path = temp_file(
            "comments",
            &format!("# rotated 2026-12-01\n\n  {A}  \n#{B}\n"),
        );
        assert_eq!(read_key_file(&path).unwrap(), vec![A.to_string()]);
        let keys = ApiKeys::new(Some(&KeyList(vec![B.into()])), Some(&path));
        assert!(keys.verify(A.as_bytes()) && keys.verify(B.as_bytes()));
    }

    #[test]
    fn a_file_that_fails_to_load_keeps_the_old_keys() {
        let path = temp_file("keeps", &format!("{A}\n"));
        let keys = ApiKeys::new(None, Some(&path));
        assert!(keys.verify(A.as_bytes()));
        std::fs::write(&path, "# nothing here any more\n").unwrap();
        keys.reload();
        assert!(keys.verify(A.as_bytes()));
        std::fs::write(&path, "short\n").unwrap();
        let e = read_key_file(&path).unwrap_err().to_string();
        assert!(e.contains("line 1") && !e.contains("short"), "{e}");
        keys.reload();
        assert!(keys.verify(A.as_bytes()));
        std::fs::write(&path, format!("{B}\n")).unwrap();
        keys.reload();
        assert!(!keys.verify(A.as_bytes()));
        assert!(keys.verify(B.as_bytes()));
    }
}
