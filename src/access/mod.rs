//! Access control, between the accept loop and the handlers: each route of
//! the HTTP table declares its [`Access`] class, and [`AccessControl::check`]
//! runs in [`crate::http::Router::route`] before the handler, with the
//! peer's address (put in the request's extensions by the accept loop) and
//! the request's headers. Producer and administration endpoints need an API
//! key ([`api_keys`]); while none is configured they answer only the
//! trusted networks (loopback by default) and 403 everyone else. Browsers
//! get CORS ([`cors`]) and an origin check on WebSocket upgrades
//! ([`origins`]). Settings: [`settings`]; behaviour: `docs/access.md`.

pub mod api_keys;
pub mod cors;
pub mod origins;
pub mod settings;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::HeaderMap;
use hyper::StatusCode;
use hyper::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};

pub use api_keys::ApiKeys;
pub use cors::Cors;
pub use settings::AccessSettings;

use crate::http::response::{self, HttpResponse};

/// The `X-API-Key` request header, the alternative to `Authorization: Bearer`.
pub const X_API_KEY: &str = "x-api-key";

/// Who may use a route; every row of the router's table names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: streams, status, health.
    Open,
    /// Publishes into streams (broadcast and event POSTs): needs a key.
    Producer,
    /// Changes or reads state that is not one client's (alerts of every
    /// user, cancelling runs): needs a key.
    Admin,
    /// The seed UIs' start POSTs: open unless `ROOMCAST_PROTECT_START`.
    Start,
    /// `/metrics`: open unless `ROOMCAST_PROTECT_METRICS`.
    Metrics,
}

/// Why a request to a protected route was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// 401: keys are configured and the request carries none.
    #[error(
        "this endpoint needs an API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
    )]
    MissingKey,
    /// 401: the key sent is not one of the configured keys.
    #[error("the API key is not valid")]
    WrongKey,
    /// 403: no key is configured, and the peer is not in a trusted network.
    #[error(
        "this endpoint is closed to your address: no API key is configured, so it answers only ROOMCAST_TRUSTED_NETWORKS; the operator can set ROOMCAST_API_KEYS or ROOMCAST_API_KEY_FILE to open it to clients with a key"
    )]
    Untrusted,
}

impl Denied {
    /// The JSON error: 401 with `WWW-Authenticate: Bearer`, or 403.
    pub fn into_response(self) -> HttpResponse {
        match self {
            Denied::MissingKey | Denied::WrongKey => {
                let mut refusal = response::error(StatusCode::UNAUTHORIZED, &self.to_string());
                let challenge = match self {
                    Denied::WrongKey => r#"Bearer realm="roomcast", error="invalid_token""#,
                    _ => r#"Bearer realm="roomcast""#,
                };
                refusal
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                refusal
            }
            Denied::Untrusted => response::error(StatusCode::FORBIDDEN, &self.to_string()),
        }
    }
}

/// The node's access policy: the settings, the live key set and CORS.
#[derive(Debug)]
pub struct AccessControl {
    /// `ROOMCAST_TRUSTED_NETWORKS`, the protected optional classes, origins.
    settings: AccessSettings,
    /// The valid API keys, rotated by [`ApiKeys::run`].
    keys: Arc<ApiKeys>,
    /// The HTTP API's CORS policy.
    pub cors: Cors,
}

impl AccessControl {
    /// The policy of `settings`, with the keys loaded.
    pub fn new(settings: &AccessSettings) -> Self {
        AccessControl {
            keys: Arc::new(ApiKeys::new(
                settings.api_keys.as_ref(),
                settings.api_key_file.as_deref(),
            )),
            cors: Cors::new(settings),
            settings: settings.clone(),
        }
    }

    /// True when requests of `class` are checked.
    pub fn protects(&self, class: Access) -> bool {
        match class {
            Access::Open => false,
            Access::Producer | Access::Admin => true,
            Access::Start => self.settings.protect_start,
            Access::Metrics => self.settings.protect_metrics,
        }
    }

    /// May a request of `class` from `peer` with `headers` run? With keys
    /// configured it needs one of them; without, `peer` must be in a trusted
    /// network (an unknown peer is not).
    pub fn check(
        &self,
        class: Access,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<(), Denied> {
        if !self.protects(class) {
            return Ok(());
        }
        if self.keys.is_empty() {
            return match peer {
                Some(ip) if self.settings.trusted_networks.contains(ip) => Ok(()),
                _ => Err(Denied::Untrusted),
            };
        }
        let presented: Vec<&[u8]> = presented_keys(headers).collect();
        if presented.is_empty() {
            return Err(Denied::MissingKey);
        }
        // Each candidate is checked (no short cut on the first), so timing
        // does not tell which header held a valid key.
        let valid = presented
            .iter()
            .fold(false, |ok, key| self.keys.verify(key) | ok);
        if valid { Ok(()) } else { Err(Denied::WrongKey) }
    }

    /// Logs how protected endpoints are opened (never a key).
    pub fn log_startup(&self) {
        let keys = self.keys.len();
        if keys == 0 {
            tracing::warn!(
                trusted = %self.settings.trusted_networks,
                "no API key configured: publishing and administration endpoints answer only ROOMCAST_TRUSTED_NETWORKS; set ROOMCAST_API_KEYS or ROOMCAST_API_KEY_FILE to open them to other hosts with a key"
            );
        } else {
            tracing::info!(
                keys,
                "publishing and administration endpoints need an API key (Authorization: Bearer or X-API-Key)"
            );
        }
    }

    /// The API keys, for [`crate::reload::watch`] to keep current.
    pub fn keys(&self) -> Arc<ApiKeys> {
        Arc::clone(&self.keys)
    }

    /// How often the key file is checked for changes.
    pub fn key_poll(&self) -> Duration {
        self.settings.api_key_poll.get()
    }
}

/// The keys a request carries: `Authorization: Bearer <key>` (scheme in
/// any case) and `X-API-Key: <key>`.
fn presented_keys(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    let bearer = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(crate::http::response::bearer);
    let api_key = headers
        .get_all(X_API_KEY)
        .iter()
        .map(|v| v.as_bytes().trim_ascii());
    bearer.chain(api_key).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const KEY: &str = "key-aaaaaaaaaaaaaaaa";

    fn control(tweak: impl FnOnce(&mut AccessSettings)) -> AccessControl {
        let mut settings = Config::default().access;
        tweak(&mut settings);
        AccessControl::new(&settings)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const LOOPBACK: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    const REMOTE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3)));

    #[test]
    fn without_keys_protected_routes_answer_only_trusted_networks() {
        let c = control(|_| {});
        let none = HeaderMap::new();
        for class in [Access::Producer, Access::Admin] {
            assert_eq!(c.check(class, LOOPBACK, &none), Ok(()));
            assert_eq!(c.check(class, REMOTE, &none), Err(Denied::Untrusted));
            assert_eq!(c.check(class, None, &none), Err(Denied::Untrusted));
        }
        for open in [Access::Open, Access::Start, Access::Metrics] {
            assert_eq!(c.check(open, REMOTE, &none), Ok(()), "{open:?}");
        }
    }

    #[test]
    fn with_keys_every_peer_needs_one_in_either_header() {
        let c = control(|s| s.api_keys = Some(KEY.parse().unwrap()));
        let none = HeaderMap::new();
        assert_eq!(
            c.check(Access::Producer, LOOPBACK, &none),
            Err(Denied::MissingKey)
        );
        let bearer = headers(&[("authorization", &format!("Bearer {KEY}"))]);
        let lower = headers(&[("authorization", &format!("bearer  {KEY} "))]);
        let x_api = headers(&[("x-api-key", KEY)]);
        for ok in [&bearer, &lower, &x_api] {
            assert_eq!(c.check(Access::Admin, REMOTE, ok), Ok(()));
        }
        let wrong = headers(&[("x-api-key", "key-bbbbbbbbbbbbbbbb")]);
        assert_eq!(
            c.check(Access::Admin, REMOTE, &wrong),
            Err(Denied::WrongKey)
        );
        let basic = headers(&[("authorization", &format!("Basic {KEY}"))]);
        assert_eq!(
            c.check(Access::Admin, REMOTE, &basic),
            Err(Denied::MissingKey)
        );
        let either = headers(&[
            ("authorization", "Bearer not-the-key-at-all"),
            ("x-api-key", KEY),
        ]);
        assert_eq!(c.check(Access::Producer, REMOTE, &either), Ok(()));
    }

    #[test]
    fn optional_classes_follow_their_settings() {
        let c = control(|s| {
            s.protect_metrics = true;
            s.protect_start = true;
        });
        let none = HeaderMap::new();
        assert_eq!(
            c.check(Access::Metrics, REMOTE, &none),
            Err(Denied::Untrusted)
        );
        assert_eq!(
            c.check(Access::Start, REMOTE, &none),
            Err(Denied::Untrusted)
        );
        assert_eq!(c.check(Access::Start, LOOPBACK, &none), Ok(()));
    }

    #[test]
    fn refusals_are_401_with_a_challenge_or_403() {
        let r = Denied::MissingKey.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let r = Denied::WrongKey.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = Denied::Untrusted.into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(!r.headers().contains_key(WWW_AUTHENTICATE));
    }
}
