//! Authentication of WebSocket connections: before an upgrade,
//! [`Authenticator::authenticate`] reads the token the request presents
//! ([`credentials`]), verifies it against the configured keys ([`keys`]:
//! HS256, RS256, ES256; `exp`, `nbf`, `aud`, `iss` with a leeway) and turns
//! its claims into the connection's [`Identity`]: the user (`sub`), the rooms
//! it may join ([`grant`]) and when it expires. The session checks the grant
//! on every join and closes with 4001 when the token expires, unless the
//! client refreshed it in-band ([`Authenticator::verify`]). Policies are per
//! endpoint family ([`settings`]); off by default.

pub mod credentials;
pub mod grant;
pub mod keys;
pub mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Request;
use hyper::header::HeaderValue;
use jsonwebtoken::{Validation, decode, decode_header};
use parking_lot::RwLock;

use crate::reload::Reloadable;
use credentials::{CredentialsError, presented};
use grant::{GrantError, RoomGrant};
use keys::{ALGORITHMS, KeySet};
pub use settings::{AuthMode, AuthSettings, Family};

/// Longest token read (a JWT with a long rooms claim fits easily).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Who a connection is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// The token's `sub`; `None` for an anonymous connection.
    pub user: Option<Arc<str>>,
    /// The rooms it may join.
    pub grant: RoomGrant,
    /// When its token expires; `None` for an anonymous connection.
    pub expires_at: Option<SystemTime>,
}

impl Identity {
    /// An anonymous connection: no user, any room, no expiry.
    pub fn anonymous() -> Self {
        Identity {
            user: None,
            grant: RoomGrant::any(),
            expires_at: None,
        }
    }

    /// Time left before the token expires (zero once past), measured now.
    pub fn expires_in(&self) -> Option<Duration> {
        self.expires_at.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}

/// Why a token was refused. The texts are sent to the client; they never
/// quote the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token, where one is required.
    #[error("a token is required")]
    Missing,
    /// The request's credentials could not be read.
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Not a JWT, or its header or claims are malformed.
    #[error("malformed token")]
    Malformed,
    /// Signed with an algorithm roomcast does not verify.
    #[error("token algorithm not accepted (HS256, RS256 or ES256)")]
    Algorithm,
    /// No configured key verifies it.
    #[error("token signature not valid")]
    Signature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Before `nbf`.
    #[error("token not yet valid")]
    NotYetValid,
    /// Wrong `aud`.
    #[error("token audience not accepted")]
    Audience,
    /// Wrong `iss`.
    #[error("token issuer not accepted")]
    Issuer,
    /// A required claim is missing or has the wrong type.
    #[error("token claim missing or malformed: {0}")]
    Claim(String),
    /// The rooms claim is malformed.
    #[error("{0}")]
    Grant(#[from] GrantError),
    /// A refreshed token names another user.
    #[error("the new token names another user")]
    OtherUser,
}

impl AuthError {
    /// The OAuth `error` code of `WWW-Authenticate` (RFC 6750 §3.1).
    pub fn oauth_code(&self) -> &'static str {
        match self {
            AuthError::Missing => "invalid_request",
            AuthError::Credentials(_) => "invalid_request",
            _ => "invalid_token",
        }
    }

    /// The `WWW-Authenticate` challenge of the 401 refusing an upgrade (RFC 6750 §3).
    pub fn challenge(&self) -> String {
        format!(
            "Bearer realm=\"roomcast\", error=\"{}\", error_description=\"{self}\"",
            self.oauth_code()
        )
    }
}

/// A connection allowed in: who it is, and the subprotocol to answer with.
#[derive(Debug)]
pub struct Admitted {
    /// Who it is.
    pub identity: Identity,
    /// The `Sec-WebSocket-Protocol` to select, when the token came as one.
    pub protocol: Option<HeaderValue>,
}

/// The node's token checker: the settings and the keys in use.
#[derive(Debug)]
pub struct Authenticator {
    /// Policies, claims and key sources.
    settings: AuthSettings,
    /// The keys in use, swapped whole on reload; readers clone the `Arc` out.
    keys: RwLock<Arc<KeySet>>,
}

impl Authenticator {
    /// An authenticator for `settings`. A key file that cannot be loaded
    /// (validation already read it once) leaves no key, so every token is
    /// refused until a reload succeeds: fail closed.
    pub fn new(settings: AuthSettings) -> Arc<Self> {
        let keys = match KeySet::load(settings.key_sources()) {
            Ok(keys) => keys,
            Err(e) => {
                tracing::error!(error = %e, "JWT keys not loaded; every token is refused until they are");
                KeySet::default()
            }
        };
        Arc::new(Authenticator {
            settings,
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    /// The policy of the endpoint family `family`.
    pub fn mode(&self, family: Family) -> AuthMode {
        self.settings.mode(family)
    }

    /// Decides whether an upgrade to a `family` endpoint may proceed, and as
    /// whom. `spoken` is the subprotocol the endpoint speaks, if any (see
    /// [`credentials::presented`]).
    pub fn authenticate<B>(
        &self,
        req: &Request<B>,
        family: Family,
        spoken: Option<&str>,
    ) -> Result<Admitted, AuthError> {
        let mode = self.mode(family);
        if mode == AuthMode::Off {
            return Ok(Admitted {
                identity: Identity::anonymous(),
                protocol: None,
            });
        }
        match presented(req, spoken)? {
            Some(p) => Ok(Admitted {
                identity: self.verify(&p.token)?,
                protocol: p.protocol,
            }),
            None if mode == AuthMode::Optional => Ok(Admitted {
                identity: Identity::anonymous(),
                protocol: None,
            }),
            None => Err(AuthError::Missing),
        }
    }

    /// Verifies `token` and returns the identity it grants.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TooLong);
        }
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Algorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.settings.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &self.settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.settings.issuer {
            validation.set_issuer(&[iss]);
        }
        let keys = Arc::clone(&self.keys.read());
        let mut last = AuthError::Signature;
        for key in keys.candidates(header.alg, header.kid.as_deref()) {
            match decode::<serde_json::Map<String, serde_json::Value>>(token, &key.key, &validation)
            {
                Ok(data) => return self.identity(&data.claims),
                Err(e) => {
                    last = classify(e.kind());
                    // Only a bad signature is worth another key; any other
                    // failure (expired, wrong audience) would repeat.
                    if last != AuthError::Signature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    /// The identity verified `claims` grant.
    fn identity(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Identity, AuthError> {
        let user = match claims.get("sub") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(Arc::from(s.as_str())),
            Some(_) => return Err(AuthError::Claim("sub".into())),
        };
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| AuthError::Claim("exp".into()))?;
        Ok(Identity {
            user,
            grant: RoomGrant::from_claim(claims.get(&self.settings.rooms_claim))?,
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(exp)),
        })
    }

    /// How often the key files are checked for changes.
    pub fn reload_interval(&self) -> Duration {
        self.settings.jwt_reload_interval.get()
    }
}

impl Reloadable for Authenticator {
    fn what(&self) -> &'static str {
        "JWT keys"
    }

    fn files(&self) -> Vec<PathBuf> {
        [&self.settings.public_key, &self.settings.jwks]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Loads the key sources again; keeps the current keys if that fails.
    fn reload(&self) {
        match KeySet::load(self.settings.key_sources()) {
            Ok(keys) => {
                tracing::info!(keys = keys.keys.len(), "JWT keys reloaded");
                *self.keys.write() = Arc::new(keys);
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWT keys not reloaded; the previous keys stay in use");
            }
        }
    }
}

/// Our error for one of jsonwebtoken's.
fn classify(kind: &jsonwebtoken::errors::ErrorKind) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::NotYetValid,
        K::InvalidAudience => AuthError::Audience,
        K::InvalidIssuer => AuthError::Issuer,
        K::InvalidSignature => AuthError::Signature,
        K::InvalidAlgorithm => AuthError::Algorithm,
        K::MissingRequiredClaim(c) | K::InvalidClaimFormat(c) => AuthError::Claim(c.clone()),
        _ => AuthError::Malformed,
    }
}
