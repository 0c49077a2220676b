//! Authentication's section of [`crate::Config`]: whether each WebSocket
//! endpoint family asks for a JWT (`off`, `optional`, `required`), where the
//! verification keys come from (an HS256 secret, a PEM public key or a JWKS
//! file, both files reloaded on change), and what a token must say (`aud`,
//! `iss`, the leeway on `exp`/`nbf`, the claim that lists its rooms). Off by
//! default: the seeds' own clients send no credentials (see
//! `docs/security.md`).

use std::path::PathBuf;

use super::keys::KeySources;
use crate::config_error::{ConfigError, check_secs, invalid};
use crate::seconds::Seconds;
use crate::secret::Secret;

/// Shortest HS256 secret accepted: 256 bits, the hash's size (RFC 7518 §3.2).
pub const MIN_SECRET_LEN: usize = 32;

/// The WebSocket endpoint families, each with its own token policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/v1/ws`, the native protocol.
    Native,
    /// Seed 000's `/ws/modeldata-stream`.
    Seed000,
    /// Seed 001's `/api/ws`.
    Seed001,
    /// `/ws`: seeds 002 and 004.
    Ws,
    /// Seed 003's `/api/ws/stream/…`.
    Seed003,
    /// Anything else (the conformance echo): the common policy.
    Other,
}

impl Family {
    /// The families with a setting of their own.
    pub const ALL: [Family; 5] = [
        Family::Native,
        Family::Seed000,
        Family::Seed001,
        Family::Ws,
        Family::Seed003,
    ];

    /// Its name in logs.
    pub fn label(self) -> &'static str {
        match self {
            Family::Native => "native",
            Family::Seed000 => "seed000",
            Family::Seed001 => "seed001",
            Family::Ws => "ws",
            Family::Seed003 => "seed003",
            Family::Other => "other",
        }
    }
}

/// Whether an endpoint family asks for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// No token is read; every connection is anonymous and may join any room.
    Off,
    /// A token is checked when one is sent (a bad one is refused); without
    /// one the connection is anonymous.
    Optional,
    /// Every connection must present a valid token.
    Required,
}

/// JWT authentication of WebSocket connections.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct AuthSettings {
    /// Token policy for every WebSocket endpoint family without its own
    /// setting below: off, optional or required.
    #[arg(
        long = "auth",
        env = "ROOMCAST_AUTH",
        value_enum,
        default_value = "off"
    )]
    pub mode: AuthMode,

    /// Token policy for the native protocol (`/v1/ws`); unset: ROOMCAST_AUTH.
    #[arg(long = "auth-native", env = "ROOMCAST_AUTH_NATIVE", value_enum)]
    pub native: Option<AuthMode>,

    /// Token policy for seed 000's `/ws/modeldata-stream`; unset: ROOMCAST_AUTH.
    #[arg(long = "auth-seed000", env = "ROOMCAST_AUTH_SEED000", value_enum)]
    pub seed000: Option<AuthMode>,

    /// Token policy for seed 001's `/api/ws`; unset: ROOMCAST_AUTH.
    #[arg(long = "auth-seed001", env = "ROOMCAST_AUTH_SEED001", value_enum)]
    pub seed001: Option<AuthMode>,

    /// Token policy for `/ws` (seeds 002 and 004); unset: ROOMCAST_AUTH.
    #[arg(long = "auth-ws", env = "ROOMCAST_AUTH_WS", value_enum)]
    pub ws: Option<AuthMode>,

    /// Token policy for seed 003's `/api/ws/stream/…`; unset: ROOMCAST_AUTH.
    #[arg(long = "auth-seed003", env = "ROOMCAST_AUTH_SEED003", value_enum)]
    pub seed003: Option<AuthMode>,

    /// HS256 secret (at least 32 bytes). Never logged.
    #[arg(
        long = "jwt-secret",
        env = "ROOMCAST_JWT_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<Secret>,

    /// PEM file with the public key of RS256 (RSA) or ES256 (P-256) tokens;
    /// re-read when it changes.
    #[arg(long = "jwt-public-key", env = "ROOMCAST_JWT_PUBLIC_KEY")]
    pub public_key: Option<PathBuf>,

    /// JWKS file (`{"keys": [...]}`, RSA, EC P-256 or oct keys) chosen by the
    /// token's `kid`; re-read when it changes.
    #[arg(long = "jwt-jwks", env = "ROOMCAST_JWT_JWKS")]
    pub jwks: Option<PathBuf>,

    /// Required `aud`: a token must name this audience. Unset: not checked.
    #[arg(long = "jwt-audience", env = "ROOMCAST_JWT_AUDIENCE")]
    pub audience: Option<String>,

    /// Required `iss`. Unset: not checked.
    #[arg(long = "jwt-issuer", env = "ROOMCAST_JWT_ISSUER")]
    pub issuer: Option<String>,

    /// Seconds of clock skew allowed on `exp` and `nbf` (0 to 300).
    #[arg(long = "jwt-leeway", env = "ROOMCAST_JWT_LEEWAY", default_value_t = 30)]
    pub leeway: u64,

    /// The claim listing the rooms a token may join, as glob patterns (`*`
    /// any run, `?` one character): an array of strings or one
    /// space-separated string. A token without it may join any room.
    #[arg(
        long = "jwt-rooms-claim",
        env = "ROOMCAST_JWT_ROOMS_CLAIM",
        default_value = "rooms"
    )]
    pub rooms_claim: String,

    /// How often the key files are checked for changes (SIGHUP reloads at once).
    #[arg(
        long = "jwt-reload-interval",
        env = "ROOMCAST_JWT_RELOAD_INTERVAL",
        default_value_t = Seconds::from_secs(5)
    )]
    pub jwt_reload_interval: Seconds,
}

impl AuthSettings {
    /// The policy of the endpoint family `family`.
    pub fn mode(&self, family: Family) -> AuthMode {
        let own = match family {
            Family::Native => self.native,
            Family::Seed000 => self.seed000,
            Family::Seed001 => self.seed001,
            Family::Ws => self.ws,
            Family::Seed003 => self.seed003,
            Family::Other => None,
        };
        own.unwrap_or(self.mode)
    }

    /// Whether any family reads tokens.
    pub fn enabled(&self) -> bool {
        Family::ALL
            .iter()
            .any(|&family| self.mode(family) != AuthMode::Off)
    }

    /// Where the verification keys come from.
    pub fn key_sources(&self) -> KeySources<'_> {
        KeySources {
            secret: self.secret.as_ref(),
            public_key: self.public_key.as_deref(),
            jwks: self.jwks.as_deref(),
        }
    }

    /// Whether any verification key is configured.
    pub fn has_keys(&self) -> bool {
        self.secret.is_some() || self.public_key.is_some() || self.jwks.is_some()
    }

    /// Rejects settings that cannot authenticate anyone, naming the variable;
    /// the key files are loaded here so a bad one stops the start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs(
            "ROOMCAST_JWT_RELOAD_INTERVAL",
            self.jwt_reload_interval.get(),
        )?;
        if self.leeway > 300 {
            return Err(invalid(
                "ROOMCAST_JWT_LEEWAY",
                format!("{} s is more than 300 s", self.leeway),
            ));
        }
        if self.rooms_claim.is_empty() {
            return Err(invalid("ROOMCAST_JWT_ROOMS_CLAIM", "must not be empty"));
        }
        if let Some(secret) = &self.secret
            && secret.expose().len() < MIN_SECRET_LEN
        {
            return Err(invalid(
                "ROOMCAST_JWT_SECRET",
                format!("must be at least {MIN_SECRET_LEN} bytes (HS256 needs a 256-bit secret)"),
            ));
        }
        if self.enabled() && !self.has_keys() {
            return Err(invalid(
                "ROOMCAST_AUTH",
                "tokens are read but no key is set: set ROOMCAST_JWT_SECRET, ROOMCAST_JWT_PUBLIC_KEY or ROOMCAST_JWT_JWKS",
            ));
        }
        super::keys::KeySet::load(self.key_sources())
            .map_err(|e| invalid(e.setting(), e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn off_by_default_and_families_fall_back_to_the_common_mode() {
        let mut c = Config::default();
        assert!(!c.auth.enabled());
        c.validate().unwrap();
        c.auth.mode = AuthMode::Optional;
        c.auth.seed001 = Some(AuthMode::Off);
        assert_eq!(c.auth.mode(Family::Native), AuthMode::Optional);
        assert_eq!(c.auth.mode(Family::Seed001), AuthMode::Off);
        assert_eq!(c.auth.mode(Family::Other), AuthMode::Optional);
        assert_eq!(
            c.validate().unwrap_err().name,
            "ROOMCAST_AUTH",
            "tokens without a key"
        );
        c.auth.secret = Some("short".parse().unwrap());
        assert_eq!(c.validate().unwrap_err().name, "ROOMCAST_JWT_SECRET");
        c.auth.secret = Some("0123456789abcdef0123456789abcdef".parse().unwrap());
        c.validate().unwrap();
        c.auth.public_key = Some("/nonexistent/key.pem".into());
        let e = c.validate().unwrap_err();
        assert_eq!(e.name, "ROOMCAST_JWT_PUBLIC_KEY");
        assert!(e.message.contains("/nonexistent/key.pem"), "{e}");
    }

    #[test]
    fn the_secret_never_appears_in_the_config_debug() {
        let mut c = Config::default();
        c.auth.secret = Some("0123456789abcdef0123456789abcdef".parse().unwrap());
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }
}
