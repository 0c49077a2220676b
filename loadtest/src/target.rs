//! Where the load goes: parsing `--url` into a socket address, and refusing
//! anything that is not loopback. The generator opens thousands of sockets
//! and publishes as fast as it is told to; pointed at a real host that is an
//! attack, so only 127.0.0.0/8, `localhost` and `::1` are accepted, and
//! `localhost` is mapped to 127.0.0.1 here rather than resolved (no DNS, no
//! `/etc/hosts` surprises). TLS is not supported (`https`/`wss` are refused).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One server under test, parsed from a base URL such as `http://127.0.0.1:8000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The base URL as given, for the report (so a result says what it measured).
    pub url: String,
    /// The loopback address to connect to; checked once here so no other code
    /// path can reach a non-loopback host.
    pub addr: SocketAddr,
    /// The `Host` header value (`127.0.0.1:8000`, `[::1]:8000`): HTTP/1.1
    /// requires it and servers route on it.
    pub host_header: String,
    /// A path prefix before the dialect's own paths (empty, or `/edge` with no
    /// trailing slash), for a server mounted under a prefix behind a proxy.
    pub prefix: String,
}

/// Why a `--url` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not `http://` or `ws://`.
    Scheme(String),
    /// The host is not 127.0.0.0/8, `localhost` or `::1`.
    NotLoopback(String),
    /// The URL could not be parsed (empty host, bad port, query string …).
    Malformed(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Scheme(u) => write!(
                f,
                "{u}: only http:// and ws:// base URLs are supported (no TLS)"
            ),
            UrlError::NotLoopback(h) => write!(
                f,
                "refusing host {h}: loopback only (127.0.0.0/8, localhost or ::1)"
            ),
            UrlError::Malformed(m) => write!(f, "malformed URL: {m}"),
        }
    }
}

impl std::error::Error for UrlError {}

/// The loopback address a host names, or `None` if it is not loopback.
/// `host` is as written in a URL: IPv6 in brackets, `localhost` in any case.
pub fn loopback_ip(host: &str) -> Option<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let v6: Ipv6Addr = inner.parse().ok()?;
        return (v6 == Ipv6Addr::LOCALHOST).then_some(IpAddr::V6(v6));
    }
    let v4: Ipv4Addr = host.parse().ok()?;
    (v4.octets()[0] == 127).then_some(IpAddr::V4(v4))
}

/// Parses a base URL (`http://host[:port][/prefix]`, or `ws://`) into a loopback [`Target`].
pub fn parse(url: &str) -> Result<Target, UrlError> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if let Some(r) = url.strip_prefix("ws://") {
        r
    } else {
        return Err(UrlError::Scheme(url.to_string()));
    };
    if rest.contains(['?', '#', '@']) {
        return Err(UrlError::Malformed(format!(
            "{url}: no query, fragment or user info in a base URL"
        )));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // Split host and port; an IPv6 host is bracketed and contains colons.
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let host = &authority[..=end];
                match &authority[end + 1..] {
                    "" => (host, None),
                    p => match p.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return Err(UrlError::Malformed(url.to_string())),
                    },
                }
            }
            None => return Err(UrlError::Malformed(url.to_string())),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::Malformed(format!("{url}: empty host")));
    }
    let ip = loopback_ip(host).ok_or_else(|| UrlError::NotLoopback(host.to_string()))?;
    let port: u16 = match port {
        None => 80,
        Some(p) => p
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| UrlError::Malformed(format!("{url}: bad port {p:?}")))?,
    };
    let addr = SocketAddr::new(ip, port);
    let host_header = match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    };
    Ok(Target {
        url: url.to_string(),
        addr,
        host_header,
        prefix: path.trim_end_matches('/').to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_accepted() {
        for (url, addr) in [
            ("http://127.0.0.1:8000", "127.0.0.1:8000"),
            ("ws://127.9.8.7:1", "127.9.8.7:1"),
            ("http://localhost:9000", "127.0.0.1:9000"),
            ("http://LocalHost", "127.0.0.1:80"),
            ("http://[::1]:8000", "[::1]:8000"),
            ("http://[0:0:0:0:0:0:0:1]:7", "[::1]:7"),
        ] {
            let t = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(t.addr, addr.parse::<SocketAddr>().unwrap(), "{url}");
        }
        let t = parse("http://127.0.0.1:8000/edge/").unwrap();
        assert_eq!(t.prefix, "/edge");
        assert_eq!(t.host_header, "127.0.0.1:8000");
    }

    #[test]
    fn non_loopback_hosts_are_refused() {
        for url in [
            "http://10.0.0.1:8000",
            "http://192.168.1.2",
            "http://0.0.0.0:8000",
            "http://128.0.0.1",
            "http://example.com:8000",
            "http://localhost.example.com",
            "http://[::2]:8000",
            "http://[::ffff:127.0.0.1]:8000",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(
                matches!(parse(url), Err(UrlError::NotLoopback(_))),
                "{url} was not refused as non-loopback: {:?}",
                parse(url)
            );
        }
    }

    #[test]
    fn malformed_and_tls_urls_are_refused() {
        assert!(matches!(
            parse("https://127.0.0.1"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(parse("wss://[::1]"), Err(UrlError::Scheme(_))));
        assert!(matches!(parse("127.0.0.1:80"), Err(UrlError::Scheme(_))));
        for url in [
            "http://",
            "http://:80",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:80?x=1",
            "http://user@127.0.0.1",
            "http://[::1",
            "http://[::1]x",
        ] {
            assert!(
                matches!(parse(url), Err(UrlError::Malformed(_))),
                "{url}: {:?}",
                parse(url)
            );
        }
    }
}
