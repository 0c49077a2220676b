//! The WebSocket opening handshake (RFC 6455 §4.2) on a hyper request: checks
//! the upgrade headers and builds the `101 Switching Protocols` response.
//! Done here rather than through `fastwebsockets::upgrade` so the session can
//! take the raw `TcpStream` back from hyper and write pre-framed bytes to it
//! with vectored writes.

use base64::Engine;
use hyper::header::{
    CONNECTION, HOST, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode, Version};
use sha1::{Digest, Sha1};

/// Why a request is not a valid WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("websocket upgrade requires GET")]
    NotGet,
    #[error("websocket upgrade requires HTTP/1.1")]
    OldHttp,
    #[error("missing 'Host' header")]
    MissingHost,
    #[error("missing or invalid 'Upgrade: websocket' header")]
    MissingUpgrade,
    #[error("missing 'Connection: upgrade' header")]
    MissingConnection,
    #[error("unsupported or missing Sec-WebSocket-Version (only 13 is supported)")]
    BadVersion,
    #[error("missing or invalid Sec-WebSocket-Key header (must be the base64 of 16 bytes)")]
    BadKey,
    #[error("more than one Sec-WebSocket-Key header")]
    RepeatedKey,
}

impl HandshakeError {
    /// The status the refusal is sent with: 426 (with
    /// `Sec-WebSocket-Version: 13`, see [`SUPPORTED_VERSION`]) for a version
    /// roomcast does not speak (RFC 6455 §4.2.2), 400 otherwise.
    pub fn status(self) -> StatusCode {
        match self {
            HandshakeError::BadVersion => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The one WebSocket version roomcast speaks, announced on a 426.
pub const SUPPORTED_VERSION: &str = "13";

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn header_has_token(headers: &HeaderMap, name: hyper::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// True when `key` is the base64 of exactly 16 bytes (RFC 6455 §4.1: a
/// randomly selected 16-byte nonce).
fn is_nonce(key: &[u8]) -> bool {
    let mut nonce = [0u8; 18];
    key.len() == 24
        && matches!(
            base64::engine::general_purpose::STANDARD.decode_slice(key, &mut nonce),
            Ok(16)
        )
}

/// Validates the handshake headers; returns the `Sec-WebSocket-Accept` value.
pub fn accept<B>(req: &Request<B>) -> Result<HeaderValue, HandshakeError> {
    if req.method() != Method::GET {
        return Err(HandshakeError::NotGet);
    }
    if req.version() < Version::HTTP_11 {
        return Err(HandshakeError::OldHttp);
    }
    let headers = req.headers();
    if !headers.contains_key(HOST) {
        return Err(HandshakeError::MissingHost);
    }
    if !header_has_token(headers, UPGRADE, "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !header_has_token(headers, CONNECTION, "upgrade") {
        return Err(HandshakeError::MissingConnection);
    }
    let mut versions = headers.get_all(SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.as_bytes() == SUPPORTED_VERSION.as_bytes() => {}
        _ => return Err(HandshakeError::BadVersion),
    }
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.as_bytes(),
        (Some(_), Some(_)) => return Err(HandshakeError::RepeatedKey),
        (None, _) => return Err(HandshakeError::BadKey),
    };
    if !is_nonce(key) {
        return Err(HandshakeError::BadKey);
    }
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

    fn upgrade() -> hyper::http::request::Builder {
        Request::builder()
            .uri("/api/ws")
            .header("host", "localhost")
            .header("upgrade", "websocket")
            .header("connection", "keep-alive, Upgrade")
    }

    fn with_key(key: &str) -> Request<()> {
        upgrade()
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key)
            .body(())
            .unwrap()
    }

    #[test]
    fn rfc_6455_example_key_is_accepted() {
        let req = with_key("dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(accept(&req).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn a_missing_or_other_version_is_426() {
        let none = upgrade().body(()).unwrap();
        assert_eq!(accept(&none), Err(HandshakeError::BadVersion));
        let eight = upgrade()
            .header("sec-websocket-version", "8")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        assert_eq!(accept(&eight), Err(HandshakeError::BadVersion));
        assert_eq!(
            HandshakeError::BadVersion.status(),
            StatusCode::UPGRADE_REQUIRED
        );
    }

    #[test]
    fn keys_must_be_one_base64_16_byte_nonce() {
        // 24 characters, not base64.
        assert_eq!(
            accept(&with_key("!!!!!!!!!!!!!!!!!!!!!!!!")),
            Err(HandshakeError::BadKey)
        );
        // The base64 of 18 bytes is 24 characters too.
        let eighteen = base64::engine::general_purpose::STANDARD.encode([7u8; 18]);
        assert_eq!(eighteen.len(), 24);
        assert_eq!(accept(&with_key(&eighteen)), Err(HandshakeError::BadKey));
        let two = upgrade()
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        assert_eq!(accept(&two), Err(HandshakeError::RepeatedKey));
    }

    #[test]
    fn http_1_0_is_refused() {
        let mut req = with_key("dGhlIHNhbXBsZSBub25jZQ==");
        *req.version_mut() = Version::HTTP_10;
        assert_eq!(accept(&req), Err(HandshakeError::OldHttp));
    }
}
