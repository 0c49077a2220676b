//! Where clients reach this node, for the WebSocket URLs handed out in
//! responses (seed 003's `stream_url`): `ROOMCAST_PUBLIC_URL` when set
//! (behind a proxy), else the request's own `X-Forwarded-Proto`,
//! `X-Forwarded-Host` or `Host`, else `ROOMCAST_BIND`; a node terminating
//! TLS itself (`ROOMCAST_TLS_CERT`) hands out `wss://`. Never a hard-coded
//! `localhost`: a client elsewhere must be able to open the URL it is given.

use std::net::SocketAddr;

use hyper::Request;
use hyper::header::HOST;

/// A WebSocket scheme and an authority (`wss`, `stream.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `ws` or `wss`.
    scheme: &'static str,
    /// `host[:port]`.
    authority: String,
}

impl PublicUrl {
    /// Reads `ROOMCAST_PUBLIC_URL`: `ws://`, `wss://`, `http://` or
    /// `https://` (the latter two mean `ws`, `wss`) and an authority, with
    /// no path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("expected a URL such as wss://stream.example.com")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            other => return Err(format!("scheme {other:?} is not ws, wss, http or https")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if !valid_authority(authority) {
            return Err(format!("{authority:?} is not a host[:port] (no path)"));
        }
        Ok(PublicUrl {
            scheme,
            authority: authority.to_string(),
        })
    }

    /// Where the client of `req` reached this node: `configured` when set,
    /// else the forwarded or `Host` headers, else `bind`; `wss` when the
    /// node's listener is TLS (`tls`) or a proxy says the client used TLS.
    pub fn of_request<B>(
        req: &Request<B>,
        configured: Option<&str>,
        bind: SocketAddr,
        tls: bool,
    ) -> Self {
        if let Some(url) = configured.and_then(|c| PublicUrl::parse(c).ok()) {
            return url;
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                // A proxy chain lists the first hop first.
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let scheme = match header("x-forwarded-proto") {
            _ if tls => "wss",
            Some(proto)
                if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("wss") =>
            {
                "wss"
            }
            _ => "ws",
        };
        let authority = header("x-forwarded-host")
            .or_else(|| req.headers().get(HOST).and_then(|v| v.to_str().ok()))
            .filter(|a| valid_authority(a))
            .map(str::to_string)
            .unwrap_or_else(|| bind.to_string());
        PublicUrl { scheme, authority }
    }

    /// The URL of `path` (which starts with `/`) on this node.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.authority)
    }
}

/// A `host[:port]` with nothing a URL would read as a path, query,
/// credentials or whitespace.
fn valid_authority(authority: &str) -> bool {
    !authority.is_empty()
        && authority.len() <= 255
        && authority.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/api/backtesting/start");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap()
    }

    const BIND: &str = "127.0.0.1:8000";

    #[test]
    fn the_host_the_client_used_is_handed_back() {
        let url = PublicUrl::of_request(
            &request(&[("host", "10.0.0.5:9000")]),
            None,
            BIND.parse().unwrap(),
            false,
        );
        assert_eq!(url.ws_url("/x"), "ws://10.0.0.5:9000/x");
    }

    #[test]
    fn a_tls_proxy_gives_wss_and_its_forwarded_host() {
        let req = request(&[
            ("host", "backend:8000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "stream.example.com, proxy2"),
        ]);
        let url = PublicUrl::of_request(&req, None, BIND.parse().unwrap(), false);
        assert_eq!(url.ws_url("/x"), "wss://stream.example.com/x");
    }

    #[test]
    fn the_configured_url_wins_and_bad_ones_are_refused() {
        let req = request(&[("host", "backend:8000")]);
        let url = PublicUrl::of_request(
            &req,
            Some("https://api.example.com/"),
            BIND.parse().unwrap(),
            false,
        );
        assert_eq!(url.ws_url("/x"), "wss://api.example.com/x");
        assert!(PublicUrl::parse("ftp://x").is_err());
        assert!(PublicUrl::parse("wss://x/path").is_err());
        assert!(PublicUrl::parse("example.com").is_err());
        // No Host at all: the bind address.
        let url = PublicUrl::of_request(&request(&[]), None, BIND.parse().unwrap(), false);
        assert_eq!(url.ws_url("/x"), "ws://127.0.0.1:8000/x");
        // A Host with a path or spaces is not used.
        let url = PublicUrl::of_request(
            &request(&[("host", "a b/c")]),
            None,
            BIND.parse().unwrap(),
            false,
        );
        assert_eq!(url.ws_url("/x"), "ws://127.0.0.1:8000/x");
    }

    #[test]
    fn a_tls_listener_hands_out_wss() {
        let req = request(&[("host", "stream.example.com:8443")]);
        let url = PublicUrl::of_request(&req, None, BIND.parse().unwrap(), true);
        assert_eq!(url.ws_url("/x"), "wss://stream.example.com:8443/x");
        // Even when a proxy in front says its client spoke plain HTTP: the
        // hop to this node is TLS, and so must the client's be.
        let req = request(&[("host", "h"), ("x-forwarded-proto", "http")]);
        let url = PublicUrl::of_request(&req, None, BIND.parse().unwrap(), true);
        assert_eq!(url.ws_url("/x"), "wss://h/x");
    }
}
