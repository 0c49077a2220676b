//! CORS for the HTTP API: which web pages (`ROOMCAST_CORS_ORIGINS`) a
//! browser lets read roomcast's answers and send it JSON bodies and API-key
//! headers. The router answers every `OPTIONS` for a path in its table here
//! (a preflight when it carries `Origin`), and stamps the answers to an
//! allowed origin with `Access-Control-Allow-Origin` and `Vary: Origin`.
//! With no origin configured no CORS header is ever sent, and browsers keep
//! other sites' pages from reading or (JSON bodies need a preflight)
//! posting to the API.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, HeaderValue, VARY,
};
use hyper::{Method, Response, StatusCode};

use super::origins::Origins;
use super::settings::AccessSettings;
use crate::http::response::{self, HttpResponse};

/// The request headers a page may send (`Access-Control-Allow-Headers`):
/// JSON bodies and API keys.
pub const ALLOWED_HEADERS: &str = "Content-Type, Authorization, X-API-Key";

/// The CORS policy of the HTTP API.
#[derive(Debug, Clone)]
pub struct Cors {
    /// Origins whose pages may call the API (`ROOMCAST_CORS_ORIGINS`).
    origins: Origins,
    /// How long a browser may cache a preflight's answer.
    max_age: Duration,
}

impl Cors {
    /// The policy of `settings`.
    pub fn new(settings: &AccessSettings) -> Self {
        Cors {
            origins: settings.cors_origins.clone(),
            max_age: settings.cors_max_age.get(),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`,
    /// or `None` when that origin is not allowed (or none was sent).
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        if !self.origins.allows(origin) {
            return None;
        }
        Some(if self.origins.is_any() {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        })
    }

    /// Adds the CORS headers to an answer to a request from `origin`.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response: &mut HttpResponse) {
        if let Some(allow) = self.allow_origin(origin) {
            let headers = response.headers_mut();
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            if !headers.get_all(VARY).iter().any(|v| v == "Origin") {
                headers.append(VARY, HeaderValue::from_static("Origin"));
            }
        }
    }

    /// The answer to `OPTIONS` on a path served with `methods`: without
    /// `Origin`, 204 with `Allow`; a preflight from an allowed origin, 204
    /// with the `Access-Control-*` headers; from another origin, 403.
    pub fn preflight(&self, origin: Option<&HeaderValue>, methods: &[&Method]) -> HttpResponse {
        let mut names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
        names.push("OPTIONS");
        let list =
            HeaderValue::from_str(&names.join(", ")).expect("method names are valid header text");
        if origin.is_some() && self.allow_origin(origin).is_none() {
            let mut refusal = response::error(
                StatusCode::FORBIDDEN,
                "this origin may not call this API from a browser (ROOMCAST_CORS_ORIGINS)",
            );
            refusal
                .headers_mut()
                .insert(VARY, HeaderValue::from_static("Origin"));
            return refusal;
        }
        let mut answer = Response::new(Full::new(Bytes::new()));
        *answer.status_mut() = StatusCode::NO_CONTENT;
        answer.headers_mut().insert(ALLOW, list.clone());
        if let Some(allow) = self.allow_origin(origin) {
            let headers = answer.headers_mut();
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, list);
            headers.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(self.max_age.as_secs()),
            );
            headers.insert(VARY, HeaderValue::from_static("Origin"));
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn cors(origins: &str) -> Cors {
        let mut settings = Config::default().access;
        settings.cors_origins = origins.parse().unwrap();
        Cors::new(&settings)
    }

    const PAGE: HeaderValue = HeaderValue::from_static("https://app.example.com");

    #[test]
    fn a_preflight_from_an_allowed_origin_lists_the_methods_headers_and_max_age() {
        let answer = cors("https://app.example.com").preflight(Some(&PAGE), &[&Method::POST]);
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        let h = answer.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "POST, OPTIONS");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], ALLOWED_HEADERS);
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[VARY], "Origin");
        // The router stamps every answer: a preflight keeps one `Vary`.
        let mut answer = answer;
        cors("https://app.example.com").decorate(Some(&PAGE), &mut answer);
        assert_eq!(answer.headers().get_all(VARY).iter().count(), 1);
    }

    #[test]
    fn a_preflight_from_another_origin_or_with_none_configured_is_403() {
        for configured in ["https://other.example.com", ""] {
            let answer = cors(configured).preflight(Some(&PAGE), &[&Method::GET]);
            assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{configured:?}");
            assert!(!answer.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        }
    }

    #[test]
    fn options_without_origin_is_204_with_allow() {
        let answer = cors("").preflight(None, &[&Method::GET, &Method::DELETE]);
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        assert_eq!(answer.headers()[ALLOW], "GET, DELETE, OPTIONS");
        assert!(!answer.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[test]
    fn answers_to_an_allowed_origin_carry_allow_origin_and_vary() {
        let mut answer = response::error(StatusCode::NOT_FOUND, "x");
        cors("https://app.example.com").decorate(Some(&PAGE), &mut answer);
        assert_eq!(
            answer.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(answer.headers()[VARY], "Origin");
        let mut answer = response::error(StatusCode::NOT_FOUND, "x");
        cors("*").decorate(Some(&PAGE), &mut answer);
        assert_eq!(answer.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let mut answer = response::error(StatusCode::NOT_FOUND, "x");
        cors("").decorate(Some(&PAGE), &mut answer);
        assert!(!answer.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(!answer.headers().contains_key(VARY));
    }
}
