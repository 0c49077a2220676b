//! The WebSocket opening handshake (RFC 6455 §4.2) on a hyper request: checks
//! the upgrade headers and builds the `101 Switching Protocols` response.
//! Done here rather than through `fastwebsockets::upgrade` so the session can
//! take the raw `TcpStream` back from hyper and write pre-framed bytes to it
//! with vectored writes.

use base64::Engine;
use hyper::header::{CONNECTION, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use sha1::{Digest, Sha1};

/// Why a request is not a valid WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("websocket upgrade requires GET")]
    NotGet,
    #[error("missing or invalid 'Upgrade: websocket' header")]
    MissingUpgrade,
    #[error("missing 'Connection: upgrade' header")]
    MissingConnection,
    #[error("unsupported Sec-WebSocket-Version (only 13)")]
    BadVersion,
    #[error("missing or invalid Sec-WebSocket-Key header")]
    BadKey,
}

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn header_has_token(headers: &HeaderMap, name: hyper::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Validates the handshake headers; returns the `Sec-WebSocket-Accept` value.
pub fn accept<B>(req: &Request<B>) -> Result<HeaderValue, HandshakeError> {
    if req.method() != Method::GET {
        return Err(HandshakeError::NotGet);
    }
    let headers = req.headers();
    if !header_has_token(headers, UPGRADE, "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !header_has_token(headers, CONNECTION, "upgrade") {
        return Err(HandshakeError::MissingConnection);
    }
    if headers.get("sec-websocket-version").map(|v| v.as_bytes()) != Some(b"13") {
        return Err(HandshakeError::BadVersion);
    }
    let key = headers
        .get("sec-websocket-key")
        .map(|v| v.as_bytes())
        .filter(|k| k.len() == 24)
        .ok_or(HandshakeError::BadKey)?;
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    HeaderValue::from_str(&accept).map_err(|_| HandshakeError::BadKey)
}

/// The `101 Switching Protocols` response.
pub fn switching_protocols<B: Default>(accept: HeaderValue) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_example_key_is_accepted() {
        let req = Request::builder()
            .uri("/api/ws")
            .header("upgrade", "websocket")
            .header("connection", "keep-alive, Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        assert_eq!(accept(&req).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn missing_headers_are_named() {
        let req = Request::builder()
            .uri("/api/ws")
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .body(())
            .unwrap();
        assert_eq!(accept(&req), Err(HandshakeError::BadVersion));
    }
}
