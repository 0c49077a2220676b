//! JWT authentication of WebSocket connections, against a real server over
//! real sockets: tokens from each place a client can put one, every claim
//! check, room grants in several dialects, expiry mid-connection (4001), the
//! native protocol's in-band refresh, RS256 and ES256 key files reloaded on
//! change, and no secret or token in the logs of a real roomcast process.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use roomcast::auth::AuthMode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token for `claims` (an `exp` an hour away unless given).
fn hs256(claims: Value) -> String {
    sign(
        claims,
        Header::new(Algorithm::HS256),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
}

fn sign(mut claims: Value, header: Header, key: &EncodingKey) -> String {
    if claims.get("exp").is_none() {
        claims["exp"] = json!(now() + 3600);
    }
    encode(&header, &claims, key).unwrap()
}

/// A server whose every WebSocket family requires an HS256 token.
async fn server(tweak: impl FnOnce(&mut roomcast::Config)) -> TestServer {
    TestServer::start(|c| {
        c.market.simulator = false;
        c.auth.mode = AuthMode::Required;
        c.auth.secret = Some(SECRET.parse().unwrap());
        c.auth.leeway = 0;
        tweak(c);
    })
    .await
}

/// An upgrade with `headers` that must be refused: status, JSON body and
/// the `WWW-Authenticate` challenge.
async fn refused(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, String) {
    let mut client = server.http_client().await;
    let mut all = vec![
        (UPGRADE.as_str(), "websocket"),
        (CONNECTION.as_str(), "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    all.extend_from_slice(headers);
    let response = client.request_full(Method::GET, path, None, &all).await;
    assert_ne!(
        response.status,
        StatusCode::SWITCHING_PROTOCOLS,
        "upgrade was accepted"
    );
    let challenge = response
        .headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status, json_body(&response.body), challenge)
}

/// Connects with extra request headers; returns the socket and the
/// subprotocol the server selected.
async fn connect_with(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (Ws, Option<String>) {
    let mut request = server.ws_url(path).into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let (ws, response) = within(
        "websocket connect",
        tokio_tungstenite::connect_async(request),
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {path} failed: {e}"));
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    (ws, protocol)
}

async fn welcome(ws: &mut Ws) {
    let w = recv_json(ws).await;
    assert_eq!(w["type"], "welcome", "{w}");
}

#[tokio::test]
async fn a_required_token_is_asked_for_with_401_and_a_bearer_challenge() {
    let server = server(|_| {}).await;
    for path in ["/v1/ws", "/api/ws", "/ws", "/ws/modeldata-stream"] {
        let (status, body, challenge) = refused(&server, path, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"], "a token is required", "{path}: {body}");
        assert!(
            challenge.starts_with("Bearer realm=\"roomcast\""),
            "{challenge}"
        );
    }
    // The node keeps serving: a good token gets in, on every family (the
    // `token` parameter is reserved by every endpoint's query rules).
    let token = hs256(json!({}));
    let (mut ws, _) = connect_with(&server, &format!("/v1/ws?token={token}"), &[]).await;
    welcome(&mut ws).await;
    for path in [
        "/api/ws",
        "/ws",
        "/ws/modeldata-stream",
        "/api/ws/stream/live-trading",
    ] {
        // Upgraded (101), or connect_with fails the test.
        let (ws, _) = connect_with(&server, &format!("{path}?token={token}"), &[]).await;
        drop(ws);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_is_read_from_the_query_the_authorization_header_or_a_subprotocol() {
    let server = server(|_| {}).await;
    let token = hs256(json!({ "sub": "alice" }));
    let (mut ws, protocol) = connect_with(&server, &format!("/v1/ws?token={token}"), &[]).await;
    welcome(&mut ws).await;
    assert_eq!(protocol, None);
    let bearer = format!("Bearer {token}");
    let (mut ws, _) = connect_with(&server, "/v1/ws", &[("authorization", &bearer)]).await;
    welcome(&mut ws).await;
    // A browser can only set subprotocols: the token entry, beside the
    // protocol it speaks, which is the one selected (the token is not echoed).
    let offered = format!("roomcast.v1, bearer.{token}");
    let (mut ws, protocol) =
        connect_with(&server, "/v1/ws", &[("sec-websocket-protocol", &offered)]).await;
    welcome(&mut ws).await;
    assert_eq!(protocol.as_deref(), Some("roomcast.v1"));
    // Alone, the token entry is what can be selected.
    let offered = format!("bearer.{token}");
    let (mut ws, protocol) =
        connect_with(&server, "/api/ws", &[("sec-websocket-protocol", &offered)]).await;
    let ack = recv_json(&mut ws).await;
    assert_eq!(ack["type"], "connection", "{ack}");
    assert_eq!(protocol.as_deref(), Some(offered.as_str()));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_reason() {
    let server = server(|c| {
        c.auth.audience = Some("roomcast".into());
        c.auth.issuer = Some("https://issuer.example".into());
    })
    .await;
    let good = json!({ "aud": "roomcast", "iss": "https://issuer.example" });
    let with = |extra: Value| {
        let mut claims = good.clone();
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let other_key = EncodingKey::from_secret(b"another-secret-0123456789-abcdefghijkl").unwrap();
    let cases: Vec<(String, &str)> = vec![
        (hs256(with(json!({ "exp": now() - 10 }))), "token expired"),
        (
            hs256(with(json!({ "nbf": now() + 600 }))),
            "token not yet valid",
        ),
        (
            hs256(with(json!({ "aud": "someone-else" }))),
            "token audience not accepted",
        ),
        (
            hs256(with(json!({ "iss": "https://evil.example" }))),
            "token issuer not accepted",
        ),
        (
            sign(good.clone(), Header::new(Algorithm::HS256), &other_key),
            "token signature not valid",
        ),
        (
            hs256(with(json!({ "rooms": 42 }))),
            "the rooms claim must be a string or an array of strings",
        ),
        ("not-a-jwt".into(), "malformed token"),
        // alg "none", unsigned.
        (
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.".into(),
            "malformed token",
        ),
        // A real HS512 token: an algorithm roomcast does not verify.
        (
            sign(
                good.clone(),
                Header::new(Algorithm::HS512),
                &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            ),
            "token algorithm not accepted (HS256, RS256 or ES256)",
        ),
    ];
    for (token, reason) in cases {
        let (status, body, challenge) =
            refused(&server, &format!("/v1/ws?token={token}"), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}");
        assert_eq!(body["error"], reason, "{body}");
        assert_eq!(body["code"], "invalid_token");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    let (status, body, _) = refused(
        &server,
        "/v1/ws",
        &[("authorization", "Basic dXNlcjpwYXNz")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_request", "{body}");
    let (mut ws, _) = connect_with(&server, &format!("/v1/ws?token={}", hs256(good)), &[]).await;
    welcome(&mut ws).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn optional_mode_admits_anonymous_clients_but_not_bad_tokens() {
    let server = server(|c| {
        c.auth.mode = AuthMode::Optional;
        c.auth.seed001 = Some(AuthMode::Off);
    })
    .await;
    let mut ws = server.ws_connect("/v1/ws").await;
    welcome(&mut ws).await;
    let (status, _, _) = refused(&server, "/v1/ws?token=bad", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A family switched off does not even read the token.
    let ack = recv_json(&mut server.ws_connect("/api/ws?token=bad").await).await;
    assert_eq!(ack["type"], "connection", "{ack}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn joins_outside_the_rooms_claim_get_the_dialect_error_and_the_connection_stays_open() {
    let server = server(|_| {}).await;
    let token = hs256(json!({ "sub": "bot-1", "rooms": ["ticker:A*", "alerts"] }));
    // Native protocol: error code `forbidden` per room; granted rooms deliver.
    let (mut ws, _) = connect_with(&server, &format!("/v1/ws?token={token}"), &[]).await;
    welcome(&mut ws).await;
    send_json(
        &mut ws,
        &json!({ "type": "subscribe", "rooms": ["ticker:MSFT", "ticker:AAPL"] }),
    )
    .await;
    let refused_room = recv_json(&mut ws).await;
    assert_eq!(refused_room["type"], "error", "{refused_room}");
    assert_eq!(refused_room["code"], "forbidden");
    assert_eq!(refused_room["room"], "ticker:MSFT");
    let ok = recv_json(&mut ws).await;
    assert_eq!(
        (ok["type"].as_str(), ok["room"].as_str()),
        (Some("subscribed"), Some("ticker:AAPL")),
        "{ok}"
    );
    publish_price(&server, "AAPL", 101.5).await;
    let m = recv_until(&mut ws, |m| m["type"] == "message").await;
    assert_eq!(m["room"], "ticker:AAPL");
    assert_eq!(ping_pong(&mut ws).await["type"], "pong");

    // Seed 001: its own error text, then the connection still answers.
    let (mut ws, _) = connect_with(&server, &format!("/api/ws?token={token}"), &[]).await;
    assert_eq!(recv_json(&mut ws).await["type"], "connection");
    send_json(
        &mut ws,
        &json!({ "type": "subscribe", "channel": "patterns" }),
    )
    .await;
    let e = recv_json(&mut ws).await;
    assert_eq!(e["type"], "error", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Cannot subscribe: not permitted: patterns"),
        "{e}"
    );
    send_json(
        &mut ws,
        &json!({ "type": "subscribe", "channel": "alerts" }),
    )
    .await;
    let ok = recv_json(&mut ws).await;
    assert_eq!(
        (ok["type"].as_str(), ok["action"].as_str()),
        (Some("subscription"), Some("subscribed")),
        "{ok}"
    );

    // Seed 000 names its one room in the path: outside the grant, an error and 4003.
    let (mut ws, _) =
        connect_with(&server, &format!("/ws/modeldata-stream?token={token}"), &[]).await;
    let closed = recv_close_collect(&mut ws).await;
    assert_eq!(closed.code, 4003, "{closed:?}");
    assert!(closed.texts[0].contains("not permitted"), "{closed:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_token_subject_is_the_seed001_user_and_cannot_be_overridden() {
    let server = server(|_| {}).await;
    let token = hs256(json!({ "sub": "alice" }));
    let (mut ws, _) = connect_with(&server, &format!("/api/ws?token={token}"), &[]).await;
    let ack = recv_json(&mut ws).await;
    assert!(
        ack["connection_id"].as_str().unwrap().starts_with("alice_"),
        "{ack}"
    );
    let (mut ws, _) = connect_with(
        &server,
        &format!("/api/ws?user_id=alice&token={token}"),
        &[],
    )
    .await;
    assert!(
        recv_json(&mut ws).await["connection_id"]
            .as_str()
            .unwrap()
            .starts_with("alice_")
    );
    let (status, body, _) = refused(
        &server,
        &format!("/api/ws?user_id=mallory&token={token}"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "user_id does not match the token's sub");
    let odd = hs256(json!({ "sub": "has spaces" }));
    let (status, _, _) = refused(&server, &format!("/api/ws?token={odd}"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_that_expires_mid_connection_closes_it_with_4001() {
    let server = server(|_| {}).await;
    let token = hs256(json!({ "exp": now() + 2 }));
    let (mut ws, _) = connect_with(&server, &format!("/v1/ws?token={token}"), &[]).await;
    welcome(&mut ws).await;
    let closed = recv_close_collect(&mut ws).await;
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (4001, "token expired")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_native_client_refreshes_its_token_in_band_and_outlives_the_first() {
    let server = server(|_| {}).await;
    let first_exp = now() + 2;
    let (mut ws, _) = connect_with(
        &server,
        &format!(
            "/v1/ws?token={}",
            hs256(json!({ "sub": "bot", "exp": first_exp }))
        ),
        &[],
    )
    .await;
    welcome(&mut ws).await;
    // Another user's token, or a bad one, is refused and changes nothing.
    send_json(
        &mut ws,
        &json!({ "type": "auth", "token": hs256(json!({ "sub": "other" })) }),
    )
    .await;
    let e = recv_json(&mut ws).await;
    assert_eq!(
        (e["code"].as_str(), e["message"].as_str()),
        (
            Some("invalid_token"),
            Some("the new token names another user")
        )
    );
    send_json(&mut ws, &json!({ "type": "auth", "token": 7 })).await;
    assert_eq!(recv_json(&mut ws).await["code"], "bad_message");
    let fresh = hs256(json!({ "sub": "bot", "rooms": ["ticker:*"] }));
    send_json(&mut ws, &json!({ "type": "auth", "token": fresh })).await;
    let ok = recv_json(&mut ws).await;
    assert_eq!(ok["type"], "auth_ok", "{ok}");
    assert!(ok["expires_at"].is_string(), "{ok}");
    // The new token's rooms apply to later joins.
    send_json(
        &mut ws,
        &json!({ "type": "subscribe", "rooms": ["alerts"] }),
    )
    .await;
    assert_eq!(recv_json(&mut ws).await["code"], "forbidden");
    // Past the first token's expiry the connection still answers (the
    // wait is the behaviour under test: there is no event to await).
    while now() <= first_exp + 1 {
        assert_eq!(ping_pong(&mut ws).await["type"], "pong");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ping_pong(&mut ws).await["type"], "pong");
    server.shutdown().await.unwrap();
}

/// A key pair from the `openssl` command: (private PEM, public PEM).
fn openssl_pair(dir: &std::path::Path, name: &str, genpkey: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let ok = Command::new("openssl")
        .arg("genpkey")
        .args(genpkey)
        .arg("-out")
        .arg(&private)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkey -pubout");
    (
        std::fs::read(private).unwrap(),
        std::fs::read(public).unwrap(),
    )
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("roomcast-auth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls the upgrade with `token` until it is `accepted` (or not): the
/// reload has no event a client can await.
async fn until_token(server: &TestServer, token: &str, accepted: bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let mut client = server.http_client().await;
        let response = client
            .request_full(
                Method::GET,
                &format!("/v1/ws?token={token}"),
                None,
                &[
                    (UPGRADE.as_str(), "websocket"),
                    (CONNECTION.as_str(), "Upgrade"),
                    ("sec-websocket-version", "13"),
                    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ],
            )
            .await;
        if (response.status == StatusCode::SWITCHING_PROTOCOLS) == accepted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "token never {}",
            if accepted { "accepted" } else { "refused" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rs256_keys_come_from_a_pem_file_that_is_reloaded_when_it_changes() {
    let dir = temp_dir("pem");
    let (old_private, old_public) = openssl_pair(
        &dir,
        "old",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let (new_private, new_public) = openssl_pair(
        &dir,
        "new",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let key_file = dir.join("jwt.pem");
    std::fs::write(&key_file, &old_public).unwrap();
    let server = server(|c| {
        c.auth.secret = None;
        c.auth.public_key = Some(key_file.clone());
        c.auth.jwt_reload_interval = roomcast::seconds::Seconds::from_secs_f64(0.1);
    })
    .await;
    let rs256 = |private: &[u8]| {
        sign(
            json!({ "sub": "svc" }),
            Header::new(Algorithm::RS256),
            &EncodingKey::from_rsa_pem(private).unwrap(),
        )
    };
    let (old_token, new_token) = (rs256(&old_private), rs256(&new_private));
    until_token(&server, &old_token, true).await;
    until_token(&server, &new_token, false).await;
    // An HS256 token "signed" with the public key is not accepted.
    let confused = sign(
        json!({}),
        Header::new(Algorithm::HS256),
        &EncodingKey::from_secret(&old_public).unwrap(),
    );
    let (status, body, _) = refused(&server, &format!("/v1/ws?token={confused}"), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Rotation: the new key is in use once the file changes; a broken file
    // keeps it.
    std::fs::write(&key_file, &new_public).unwrap();
    until_token(&server, &new_token, true).await;
    until_token(&server, &old_token, false).await;
    std::fs::write(&key_file, b"not a key").unwrap();
    // Reloads happen every 0.1 s; the broken file must not take the key away.
    for _ in 0..10 {
        until_token(&server, &new_token, true).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn es256_keys_come_from_a_jwks_file_by_kid() {
    let dir = temp_dir("jwks");
    let (private, public) = openssl_pair(
        &dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    // The JWK of the public key: x and y from the DER's uncompressed point.
    let der = pem_body(&public);
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 4, "uncompressed point");
    let b64 = |b: &[u8]| base64url(b);
    let jwks = json!({ "keys": [
        { "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
          "x": b64(&point[1..33]), "y": b64(&point[33..65]) }
    ]});
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let server = server(|c| {
        c.auth.secret = None;
        c.auth.jwks = Some(jwks_file.clone());
    })
    .await;
    let key = EncodingKey::from_ec_pem(&private).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let (mut ws, _) = connect_with(
        &server,
        &format!("/v1/ws?token={}", sign(json!({}), header.clone(), &key)),
        &[],
    )
    .await;
    welcome(&mut ws).await;
    header.kid = Some("k2".into());
    let (status, body, _) = refused(
        &server,
        &format!("/v1/ws?token={}", sign(json!({}), header, &key)),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token signature not valid"))
    );
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn pem_body(pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text: String = std::str::from_utf8(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn secrets_and_tokens_never_reach_the_logs() {
    // A real roomcast process at debug level, its log captured whole.
    let port = process::free_port();
    let log = temp_dir("logs").join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .env_clear()
        .env("ROOMCAST_BIND", format!("127.0.0.1:{port}"))
        .env("ROOMCAST_SIMULATOR", "false")
        .env("ROOMCAST_AUTH", "required")
        .env("ROOMCAST_JWT_SECRET", SECRET)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(log.with_extension("err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let good = hs256(json!({ "sub": "alice", "exp": now() + 1 }));
    let expired = hs256(json!({ "sub": "alice", "exp": now() - 100 }));
    let forged = sign(
        json!({ "sub": "eve" }),
        Header::new(Algorithm::HS256),
        &EncodingKey::from_secret(b"forged-secret-0123456789-abcdefghijk").unwrap(),
    );
    // Wait for the listener, then exercise every path that handles a token.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "roomcast never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = |token: &str| format!("ws://{addr}/v1/ws?token={token}");
    for token in [&expired, &forged] {
        assert!(tokio_tungstenite::connect_async(url(token)).await.is_err());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(url(&good)).await.unwrap();
    send_json(&mut ws, &json!({ "type": "auth", "token": forged })).await;
    let _ = recv_until(&mut ws, |m| m["type"] == "error").await;
    let (code, _) = recv_close(&mut ws).await;
    assert_eq!(code, 4001);
    process::signal(&child, libc::SIGTERM);
    process::wait_bounded(&mut child, TIMEOUT).expect("roomcast did not stop");
    let mut captured = String::new();
    for file in [log.clone(), log.with_extension("err")] {
        std::fs::File::open(file)
            .unwrap()
            .read_to_string(&mut captured)
            .unwrap();
    }
    assert!(
        captured.contains("upgrade refused"),
        "debug logging was on: {captured}"
    );
    for secret in [SECRET, good.as_str(), expired.as_str(), forged.as_str()] {
        assert!(!captured.contains(secret), "a secret reached the log");
    }
    // Not even the signature part of a token.
    for token in [&good, &expired, &forged] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !captured.contains(signature),
            "a token signature reached the log"
        );
    }
}
