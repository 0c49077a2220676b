//! Origin allowlists for browsers: which web pages may call the HTTP API
//! (`ROOMCAST_CORS_ORIGINS`, applied by [`super::cors::Cors`]) and which may
//! open WebSockets here (`ROOMCAST_WS_ORIGINS`, checked by [`refuse_upgrade`]
//! at the top of every upgrade, before the handshake). A browser attaches a
//! page's cookies and network position to a WebSocket it opens anywhere and
//! always says which page asked in `Origin`; refusing unknown origins stops
//! another site's page from reading streams through a visitor's browser
//! (cross-site WebSocket hijacking). Clients that are not browsers send no
//! `Origin`; `ROOMCAST_WS_MISSING_ORIGIN` decides for them.

use std::str::FromStr;

use hyper::header::{HeaderValue, ORIGIN};
use hyper::{Request, StatusCode};

use crate::http::response::{self, HttpResponse};

/// A set of web origins: exact `scheme://host[:port]` values, or any (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origins {
    /// `*` was given: every origin is in the set.
    any: bool,
    /// The origins, lowercased, without a trailing `/`.
    exact: Vec<String>,
}

impl Origins {
    /// True when the set is `*`.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// True when no origin is in the set.
    pub fn is_empty(&self) -> bool {
        !self.any && self.exact.is_empty()
    }

    /// True when `origin` (an `Origin` header's value) is in the set.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        if self.any {
            return true;
        }
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        self.exact.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

impl FromStr for Origins {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut origins = Origins::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "*" {
                origins.any = true;
                continue;
            }
            let origin = part.trim_end_matches('/').to_ascii_lowercase();
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .ok_or_else(|| {
                    format!("{part:?} is not an origin (http:// or https://, then host[:port])")
                })?;
            if authority.is_empty()
                || authority
                    .bytes()
                    .any(|b| !b.is_ascii_graphic() || matches!(b, b'/' | b'?' | b'#' | b'@' | b','))
            {
                return Err(format!(
                    "{part:?} is not an origin: scheme://host[:port], without a path"
                ));
            }
            origins.exact.push(origin);
        }
        Ok(origins)
    }
}

/// Why a WebSocket upgrade was refused for its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginRefusal {
    /// The page's origin is not in `ROOMCAST_WS_ORIGINS`.
    #[error("this origin may not open WebSockets here (ROOMCAST_WS_ORIGINS)")]
    NotAllowed,
    /// No `Origin` header, and `ROOMCAST_WS_MISSING_ORIGIN=deny`.
    #[error(
        "a WebSocket upgrade without an Origin header is refused here (ROOMCAST_WS_MISSING_ORIGIN)"
    )]
    Missing,
}

/// The origin check of an upgrade: `Err` when `origin` (the request's
/// `Origin` header, if any) may not open a WebSocket.
pub fn check_origin(
    allowed: &Origins,
    missing: MissingOrigin,
    origin: Option<&HeaderValue>,
) -> Result<(), OriginRefusal> {
    match origin {
        None if missing == MissingOrigin::Deny => Err(OriginRefusal::Missing),
        None => Ok(()),
        Some(origin) if allowed.allows(origin) => Ok(()),
        Some(_) => Err(OriginRefusal::NotAllowed),
    }
}

/// What an upgrade without an `Origin` header gets when
/// `ROOMCAST_WS_ORIGINS` is a list (browsers always send one; bots, SDKs and
/// curl usually do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MissingOrigin {
    /// Accepted: a missing `Origin` is not a browser, so not a cross-site page.
    Allow,
    /// Refused (403): only browsers from the listed origins may connect.
    Deny,
}

/// The 403 for an upgrade whose origin may not open a WebSocket here, or
/// `None` to go on with the upgrade. Called first by [`crate::ws::upgrade`].
pub fn refuse_upgrade<B>(
    allowed: &Origins,
    missing: MissingOrigin,
    req: &Request<B>,
) -> Option<HttpResponse> {
    let origin = req.headers().get(ORIGIN);
    check_origin(allowed, missing, origin).err().map(|refusal| {
        tracing::debug!(%refusal, "WebSocket upgrade refused for its origin");
        response::error(StatusCode::FORBIDDEN, &refusal.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(s: &str) -> Origins {
        s.parse().unwrap()
    }

    fn value(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn exact_origins_match_whole_values_in_any_case() {
        let set = origins("https://app.example.com, http://localhost:3000/");
        assert!(set.allows(&value("https://app.example.com")));
        assert!(set.allows(&value("HTTPS://App.Example.com")));
        assert!(set.allows(&value("http://localhost:3000")));
        assert!(!set.allows(&value("http://app.example.com")), "scheme");
        assert!(!set.allows(&value("https://app.example.com:8443")), "port");
        assert!(!set.allows(&value("https://app.example.com.evil.test")));
        assert!(!set.allows(&value("null")));
        assert!(!set.is_any() && !set.is_empty());
    }

    #[test]
    fn star_is_any_and_empty_is_none() {
        assert!(origins("*").allows(&value("https://anything.test")));
        assert!(origins("").is_empty());
        assert!(!origins("").allows(&value("https://a.test")));
    }

    #[test]
    fn malformed_origins_are_refused() {
        for bad in [
            "example.com",
            "https://",
            "https://a.test/path",
            "ftp://a.test",
        ] {
            assert!(bad.parse::<Origins>().is_err(), "{bad}");
        }
    }

    #[test]
    fn upgrades_are_checked_against_the_list_and_the_missing_origin_policy() {
        let list = origins("https://app.example.com");
        let allow = MissingOrigin::Allow;
        let deny = MissingOrigin::Deny;
        let good = value("https://app.example.com");
        let evil = value("https://evil.test");
        assert_eq!(check_origin(&list, allow, Some(&good)), Ok(()));
        assert_eq!(
            check_origin(&list, allow, Some(&evil)),
            Err(OriginRefusal::NotAllowed)
        );
        assert_eq!(check_origin(&list, allow, None), Ok(()));
        assert_eq!(check_origin(&list, deny, None), Err(OriginRefusal::Missing));
        let any = origins("*");
        assert_eq!(check_origin(&any, allow, Some(&evil)), Ok(()));
        assert_eq!(check_origin(&any, deny, None), Err(OriginRefusal::Missing));
    }
}
