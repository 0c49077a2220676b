//! Fuzzes the WebSocket opening handshake check,
//! `roomcast::ws::handshake::accept`: raw HTTP request bytes are parsed with
//! `httparse` (as hyper does), turned into an `http::Request<()>`, and
//! checked. Invariants:
//!
//! * `accept` never panics;
//! * it accepts exactly the requests RFC 6455 §4.2.1 (and roomcast's
//!   stricter reading of it) allows, as decided by an independent check
//!   written here: GET, HTTP/1.1 or later, a `Host`, `Upgrade: websocket`,
//!   `Connection: upgrade` (as list tokens, any case), exactly one
//!   `Sec-WebSocket-Version: 13`, and exactly one `Sec-WebSocket-Key` that
//!   is the canonical base64 of 16 bytes;
//! * a refusal names a condition the request really breaks;
//! * an accepted key's answer is the 28-character base64 of
//!   SHA-1(key + GUID), and the `101` response carries it.
#![no_main]

use base64::Engine;
use http::header::{HeaderMap, HeaderName};
use http::{Method, Request, StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use roomcast::ws::handshake::{HandshakeError, accept, switching_protocols};
use sha1::{Digest, Sha1};

/// Most headers a request is parsed with (hyper's default is 100).
const MAX_HEADERS: usize = 64;

/// The GUID RFC 6455 §1.3 appends to the key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fuzz_target!(|data: &[u8]| {
    let Some(request) = parse_request(data) else {
        return;
    };
    let result = accept(&request);
    let broken = broken_conditions(&request);
    match result {
        Ok(value) => {
            assert!(
                broken.is_empty(),
                "accepted a request that breaks {broken:?}"
            );
            let key = request
                .headers()
                .get("sec-websocket-key")
                .expect("an accepted request has a key");
            let mut sha = Sha1::new();
            sha.update(key.as_bytes());
            sha.update(GUID.as_bytes());
            let want = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
            assert_eq!(value.as_bytes().len(), 28, "accept value is not 28 bytes");
            assert!(
                value
                    .as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
                "accept value is not base64"
            );
            assert_eq!(value.as_bytes(), want.as_bytes(), "wrong accept value");
            let response = switching_protocols::<()>(value);
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            assert_eq!(
                response
                    .headers()
                    .get("sec-websocket-accept")
                    .map(|v| v.as_bytes()),
                Some(want.as_bytes())
            );
        }
        Err(error) => {
            assert!(!broken.is_empty(), "refused a valid request with {error:?}");
            assert!(
                broken.contains(&error),
                "refused with {error:?}, but the request breaks {broken:?}"
            );
            let status = error.status();
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UPGRADE_REQUIRED,
                "a refused handshake answered {status}"
            );
        }
    }
});

/// The request as hyper would hand it over, or `None` for bytes that are not
/// one complete HTTP/1.x request head hyper would accept.
fn parse_request(data: &[u8]) -> Option<Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    if !parsed.parse(data).ok()?.is_complete() {
        return None;
    }
    let mut builder = Request::builder()
        .method(parsed.method?)
        .uri(parsed.path?)
        .version(match parsed.version? {
            0 => Version::HTTP_10,
            _ => Version::HTTP_11,
        });
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok()
}

/// Every handshake rule `request` breaks, as the refusal that names it.
fn broken_conditions(request: &Request<()>) -> Vec<HandshakeError> {
    let headers = request.headers();
    let mut broken = Vec::new();
    if request.method() != Method::GET {
        broken.push(HandshakeError::NotGet);
    }
    if request.version() < Version::HTTP_11 {
        broken.push(HandshakeError::OldHttp);
    }
    if !headers.contains_key("host") {
        broken.push(HandshakeError::MissingHost);
    }
    if !lists_token(headers, "upgrade", "websocket") {
        broken.push(HandshakeError::MissingUpgrade);
    }
    if !lists_token(headers, "connection", "upgrade") {
        broken.push(HandshakeError::MissingConnection);
    }
    let versions: Vec<_> = headers.get_all("sec-websocket-version").iter().collect();
    if !matches!(versions[..], [v] if v.as_bytes() == b"13") {
        broken.push(HandshakeError::BadVersion);
    }
    let keys: Vec<_> = headers.get_all("sec-websocket-key").iter().collect();
    match keys[..] {
        [key] if is_base64_of_16_bytes(key.as_bytes()) => {}
        [_] | [] => broken.push(HandshakeError::BadKey),
        _ => broken.push(HandshakeError::RepeatedKey),
    }
    broken
}

/// Whether any `name` header, read as a comma-separated list, holds `token`
/// (ASCII case-insensitive, surrounding whitespace ignored).
fn lists_token(headers: &HeaderMap, name: &'static str, token: &str) -> bool {
    let name = HeaderName::from_static(name);
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Whether `key` is the canonical base64 (with padding) of 16 bytes: 21
/// characters of the alphabet, one whose low 4 bits are zero (`A`, `Q`,
/// `g`, `w`: the last 2 bits of data), then `==`.
fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    let is_alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24
        && key[..21].iter().all(is_alphabet)
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}
