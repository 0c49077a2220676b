//! Protected publishing and administration, and the browser policy, over
//! real sockets: API keys in either header (401 without or with a wrong
//! one, the handler runs and publishes with the right one), key rotation
//! through the key file, the trusted networks that stand in for keys while
//! none is configured (a second "host" is a client socket bound to
//! 127.0.0.2), CORS preflights and headers, the WebSocket origin allowlist,
//! and the per-user alert cap and paging of `/api/alerts`.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};
use roomcast::seconds::Seconds;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const KEY: &str = "test-key-0123456789abcdef";
const NEW_KEY: &str = "test-key-fedcba9876543210";
const HOST_A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const HOST_B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const PAGE: &str = "https://app.example.com";

/// A response as a test needs it: status, headers, body.
type Answer = HttpResponse;

/// One request from a client socket bound to `from` (a second "host" on loopback).
async fn request_from(
    server: &TestServer,
    from: IpAddr,
    method: Method,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    HttpClient::connect_from(server.addr, from)
        .await
        .request_full(method, path, body, headers)
        .await
}

/// A request from 127.0.0.1.
async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    request_from(server, HOST_A, method, path, body, headers).await
}

async fn post_price(server: &TestServer, price: f64, headers: &[(&str, &str)]) -> Answer {
    let body = price_body("AAPL", price);
    request(
        server,
        Method::POST,
        "/api/ws/broadcast/price",
        Some(&body),
        headers,
    )
    .await
}

/// A seed 001 client subscribed to AAPL's prices.
async fn aapl_subscriber(server: &TestServer) -> Ws {
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "ticker", Some("AAPL")).await;
    ws
}

fn trusting_only_host_b(c: &mut roomcast::Config) {
    c.access.trusted_networks = "127.0.0.2/32".parse().unwrap();
}

fn temp_key_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roomcast-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Replaces the key file atomically (write, then rename), as operators should.
fn replace_key_file(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[test]
fn by_default_only_loopback_is_trusted_and_no_key_is_configured() {
    let c = roomcast::Config::default();
    assert_eq!(c.access.trusted_networks.to_string(), "127.0.0.0/8,::1/128");
    assert_eq!(c.access.api_keys, None);
    assert_eq!(c.access.api_key_file, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_a_peer_outside_the_trusted_networks_gets_403_and_one_inside_publishes() {
    let server = TestServer::start(trusting_only_host_b).await;
    let mut ws = aapl_subscriber(&server).await;
    let body = price_body("AAPL", 150.25);
    let refused = request_from(
        &server,
        HOST_A,
        Method::POST,
        "/api/ws/broadcast/price",
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let message = refused.json()["error"].as_str().unwrap().to_string();
    assert!(message.contains("ROOMCAST_API_KEYS"), "{message}");
    let allowed = request_from(
        &server,
        HOST_B,
        Method::POST,
        "/api/ws/broadcast/price",
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.json());
    // Only the trusted host's price was published.
    let update = recv_json(&mut ws).await;
    assert_eq!(update["type"], "price_update", "{update}");
    assert_eq!(update["price"], 150.25);
    assert_eq!(
        allowed.json()["seq"],
        1,
        "the refused one was not published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publishing_and_administration_endpoint_is_closed_to_an_untrusted_peer() {
    let server = TestServer::start(trusting_only_host_b).await;
    let routes = [
        (Method::POST, "/api/ws/broadcast/price", Some("{}")),
        (Method::POST, "/api/ws/broadcast/pattern", Some("{}")),
        (Method::POST, "/websocket/broadcast/signal", Some("{}")),
        (Method::POST, "/api/v1/backtest/events", Some("{}")),
        (
            Method::POST,
            "/api/ws/stream/backtest/backtest_1/events",
            Some("{}"),
        ),
        (Method::POST, "/api/alerts", Some("{}")),
        (Method::GET, "/api/alerts", None),
        (Method::DELETE, "/api/alerts/1", None),
        (Method::DELETE, "/api/v1/backtest/run_1", None),
        (Method::DELETE, "/api/backtesting/backtest_1", None),
    ];
    for (method, path, body) in routes {
        let answer = request(&server, method.clone(), path, body, &[]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert!(answer.json()["error"].is_string(), "{method} {path}");
        // From the trusted host the handler runs (whatever it then answers).
        let answer = request_from(&server, HOST_B, method.clone(), path, body, &[]).await;
        assert_ne!(answer.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_ne!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Open endpoints stay open.
    for path in ["/health", "/api/ws/stats", "/websocket/status", "/metrics"] {
        let answer = request(&server, Method::GET, path, None, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_uis_start_posts_stay_open_unless_protected() {
    let start = json!({"name": "t", "symbol": "BTC-USD", "timeframes": ["1H"],
        "start_date": "2024-01-01", "end_date": "2024-01-03", "initial_capital": 10000,
        "strategy_ids": ["strategy1"], "risk_per_trade": 0.02})
    .to_string();
    let run = json!({"mode": "spiced", "symbol": "EURUSD", "timeframe": "H1",
        "start_date": "2023-01-01", "end_date": "2023-01-05"})
    .to_string();
    let starts = [
        ("/api/backtesting/start", start.as_str()),
        ("/api/v1/backtest/run", run.as_str()),
    ];
    let open = TestServer::start(trusting_only_host_b).await;
    for (path, body) in starts {
        let answer = request(&open, Method::POST, path, Some(body), &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "{path}: {}",
            answer.json()
        );
    }
    let protected = TestServer::start(|c| {
        trusting_only_host_b(c);
        c.access.protect_start = true;
    })
    .await;
    for (path, body) in starts {
        let answer = request(&protected, Method::POST, path, Some(body), &[]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        let answer = request_from(&protected, HOST_B, Method::POST, path, Some(body), &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "{path}: {}",
            answer.json()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_protected_only_when_enabled() {
    let server = TestServer::start(|c| {
        trusting_only_host_b(c);
        c.access.protect_metrics = true;
    })
    .await;
    let refused = request(&server, Method::GET, "/metrics", None, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let served = request_from(&server, HOST_B, Method::GET, "/metrics", None, &[]).await;
    assert_eq!(served.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&served.body).contains("roomcast_"));

    let keyed = TestServer::start(|c| {
        c.access.api_keys = Some(KEY.parse().unwrap());
        c.access.protect_metrics = true;
    })
    .await;
    let refused = request(&keyed, Method::GET, "/metrics", None, &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let served = request(&keyed, Method::GET, "/metrics", None, &[("x-api-key", KEY)]).await;
    assert_eq!(served.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_configured_a_request_needs_it_in_either_header_and_then_publishes() {
    let server = TestServer::start(|c| c.access.api_keys = Some(KEY.parse().unwrap())).await;
    let mut ws = aapl_subscriber(&server).await;

    // Even from loopback: once a key is configured, every peer needs one.
    let missing = post_price(&server, 1.0, &[]).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
    );
    assert!(
        missing.json()["error"]
            .as_str()
            .unwrap()
            .contains("X-API-Key")
    );
    let wrong = post_price(
        &server,
        2.0,
        &[("authorization", "Bearer not-the-right-key-at-all")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.contains_key("www-authenticate"));
    let wrong = post_price(&server, 3.0, &[("x-api-key", NEW_KEY)]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let bearer = format!("Bearer {KEY}");
    let ok = post_price(&server, 150.25, &[("authorization", &bearer)]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json());
    let update = recv_json(&mut ws).await;
    assert_eq!(update["price"], 150.25, "{update}");
    let ok = post_price(&server, 151.5, &[("x-api-key", KEY)]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json());
    let update = recv_json(&mut ws).await;
    assert_eq!(update["price"], 151.5, "{update}");
    // The refused prices were never published.
    assert_eq!(ok.json()["seq"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_file_refuses_the_old_key_and_accepts_the_new_without_a_restart() {
    let path = temp_key_file("rotation", &format!("# first key\n{KEY}\n"));
    let file = path.clone();
    let server = TestServer::start(move |c| {
        c.access.api_key_file = Some(file);
        c.access.api_key_poll = Seconds::from_secs_f64(0.05);
    })
    .await;
    let old = [("x-api-key", KEY)];
    let new = [("x-api-key", NEW_KEY)];
    assert_eq!(post_price(&server, 1.0, &old).await.status, StatusCode::OK);
    assert_eq!(
        post_price(&server, 1.0, &new).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Overlap: both keys valid while clients move.
    replace_key_file(&path, &format!("{KEY}\n{NEW_KEY}\n"));
    within("the new key to be accepted", async {
        while post_price(&server, 1.0, &new).await.status != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(post_price(&server, 1.0, &old).await.status, StatusCode::OK);

    // The old key removed.
    replace_key_file(&path, &format!("{NEW_KEY}\n"));
    within("the old key to be refused", async {
        while post_price(&server, 1.0, &old).await.status != StatusCode::UNAUTHORIZED {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(post_price(&server, 1.0, &new).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflights_and_answers_follow_the_origin_allowlist() {
    let server = TestServer::start(|c| c.access.cors_origins = PAGE.parse().unwrap()).await;
    let preflight = |origin: Option<&'static str>| {
        let server = &server;
        async move {
            let mut headers = vec![("access-control-request-method", "POST")];
            if let Some(origin) = origin {
                headers.push(("origin", origin));
            }
            request(
                server,
                Method::OPTIONS,
                "/api/ws/broadcast/price",
                None,
                &headers,
            )
            .await
        }
    };
    let allowed = preflight(Some(PAGE)).await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT);
    let h = &allowed.headers;
    assert_eq!(h["access-control-allow-origin"], PAGE);
    assert_eq!(h["access-control-allow-methods"], "POST, OPTIONS");
    let allow_headers = h["access-control-allow-headers"].to_str().unwrap();
    for header in ["Content-Type", "Authorization", "X-API-Key"] {
        assert!(allow_headers.contains(header), "{allow_headers}");
    }
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(h["vary"], "Origin");

    let refused = preflight(Some("https://evil.example.net")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("ROOMCAST_CORS_ORIGINS")
    );
    assert!(!refused.headers.contains_key("access-control-allow-origin"));

    let plain = preflight(None).await;
    assert_eq!(plain.status, StatusCode::NO_CONTENT);
    assert_eq!(plain.headers["allow"], "POST, OPTIONS");
    let alerts = request(&server, Method::OPTIONS, "/api/alerts", None, &[]).await;
    assert_eq!(alerts.headers["allow"], "POST, GET, OPTIONS");
    let unknown = request(&server, Method::OPTIONS, "/nowhere", None, &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Actual answers: to the allowed origin only.
    let from_page = request(
        &server,
        Method::GET,
        "/api/ws/stats",
        None,
        &[("origin", PAGE)],
    )
    .await;
    assert_eq!(from_page.status, StatusCode::OK);
    assert_eq!(from_page.headers["access-control-allow-origin"], PAGE);
    assert_eq!(from_page.headers["vary"], "Origin");
    let body = price_body("AAPL", 1.0);
    let published = request(
        &server,
        Method::POST,
        "/api/ws/broadcast/price",
        Some(&body),
        &[("origin", PAGE)],
    )
    .await;
    assert_eq!(published.status, StatusCode::OK);
    assert_eq!(published.headers["access-control-allow-origin"], PAGE);
    let elsewhere = request(
        &server,
        Method::GET,
        "/api/ws/stats",
        None,
        &[("origin", "https://evil.example.net")],
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::OK);
    assert!(
        !elsewhere
            .headers
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_origins_no_cors_header_is_sent() {
    let server = TestServer::start(|_| {}).await;
    let answer = request(
        &server,
        Method::GET,
        "/api/ws/stats",
        None,
        &[("origin", PAGE)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.headers.contains_key("access-control-allow-origin"));
    let preflight = request(
        &server,
        Method::OPTIONS,
        "/api/ws/stats",
        None,
        &[("origin", PAGE)],
    )
    .await;
    assert_eq!(preflight.status, StatusCode::FORBIDDEN);
}

/// A WebSocket handshake to `path` with `origin`: the status it got.
async fn ws_handshake(server: &TestServer, path: &str, origin: Option<&str>) -> StatusCode {
    let mut headers = vec![
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    let answer = request(server, Method::GET, path, None, &headers).await;
    if answer.status != StatusCode::SWITCHING_PROTOCOLS {
        assert!(answer.json()["error"].is_string());
    }
    answer.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_from_an_origin_outside_the_allowlist_get_403() {
    let server = TestServer::start(|c| c.access.ws_origins = PAGE.parse().unwrap()).await;
    for path in ["/api/ws", "/ws", "/v1/ws", "/ws/modeldata-stream"] {
        assert_eq!(
            ws_handshake(&server, path, Some("https://evil.example.net")).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            ws_handshake(&server, path, Some(PAGE)).await,
            StatusCode::SWITCHING_PROTOCOLS,
            "{path}"
        );
        // Not a browser: allowed by default.
        assert_eq!(
            ws_handshake(&server, path, None).await,
            StatusCode::SWITCHING_PROTOCOLS,
            "{path}"
        );
    }
    // A real client from the allowed page works end to end.
    let mut req = server.ws_url("/api/ws").into_client_request().unwrap();
    req.headers_mut().insert("origin", PAGE.parse().unwrap());
    let (mut ws, _) = within("connect", tokio_tungstenite::connect_async(req))
        .await
        .expect("upgrade from the allowed origin");
    assert_eq!(recv_json(&mut ws).await["type"], "connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_without_origin_can_be_refused_and_any_origin_is_the_default() {
    let deny = TestServer::start(|c| {
        c.access.ws_missing_origin = roomcast::access::settings::MissingOrigin::Deny;
    })
    .await;
    assert_eq!(
        ws_handshake(&deny, "/api/ws", None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ws_handshake(&deny, "/api/ws", Some("https://anywhere.example.org")).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    let default = TestServer::start(|_| {}).await;
    assert_eq!(
        ws_handshake(&default, "/api/ws", Some("https://anywhere.example.org")).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_is_capped_and_alerts_list_a_page_at_a_time() {
    let server = TestServer::start(|c| c.max_alerts_per_user = 2).await;
    let arm = |user: Option<&str>, price: f64| {
        let mut body = json!({"ticker": "AAPL", "alert_type": "above", "trigger_price": price});
        if let Some(user) = user {
            body["user_id"] = json!(user);
        }
        body.to_string()
    };
    let mut http = server.http_client().await;
    for price in [200.0, 201.0] {
        let (status, v) = http.post("/api/alerts", &arm(Some("alice"), price)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, v) = http.post("/api/alerts", &arm(Some("alice"), 202.0)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(v["error"].as_str().unwrap().contains("alert limit"), "{v}");
    let (status, v) = http.post("/api/alerts", &arm(Some("bob"), 203.0)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    for price in [204.0, 205.0] {
        let (status, v) = http.post("/api/alerts", &arm(None, price)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, _) = http.post("/api/alerts", &arm(None, 206.0)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let (status, page) = server.http_get("/api/alerts?limit=2&offset=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 5, "{page}");
    assert_eq!(page["count"], 2, "{page}");
    assert_eq!(page["next_offset"], 3, "{page}");
    let prices: Vec<f64> = page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["trigger_price"].as_f64().unwrap())
        .collect();
    assert_eq!(prices, [201.0, 203.0]);
    let (_, last) = server.http_get("/api/alerts?limit=2&offset=4").await;
    assert_eq!(last["count"], 1);
    assert_eq!(last["next_offset"], Value::Null);
    let (_, all) = server.http_get("/api/alerts").await;
    assert_eq!(all["count"], 5);
    for (query, parameter) in [("?limit=0", "limit"), ("?offset=x", "offset")] {
        let (status, v) = server.http_get(&format!("/api/alerts{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(v["field"], parameter, "{query}");
    }
}

/// The built binary, serving on 127.0.0.1 with `env`, its log in a file.
struct Binary {
    addr: std::net::SocketAddr,
    child: std::process::Child,
    log: PathBuf,
}

impl Binary {
    async fn start(name: &str, env: &[(&str, &str)]) -> Binary {
        use common::process::{free_port, prepare, spawn};
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = temp_key_file(&format!("{name}.log"), "");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_roomcast"));
        cmd.env_clear()
            .env("ROOMCAST_BIND", addr.to_string())
            .env("ROOMCAST_SIMULATOR", "false")
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::inherit());
        prepare(&mut cmd, None);
        let child = spawn(cmd).expect("starting roomcast");
        within("the node to listen", async {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        Binary { addr, child, log }
    }

    async fn post_price(&self, key: &str) -> StatusCode {
        let mut http = HttpClient::connect(self.addr).await;
        let (status, _) = http
            .request(
                Method::POST,
                "/api/ws/broadcast/price",
                Some(&price_body("AAPL", 1.0)),
                &[("x-api-key", key)],
            )
            .await;
        status
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_key_file_at_once_and_no_key_reaches_the_log() {
    let path = temp_key_file("sighup", &format!("{KEY}\n"));
    // Polled once an hour: only the signal can make the change seen now.
    let node = Binary::start(
        "sighup",
        &[
            ("ROOMCAST_API_KEY_FILE", path.to_str().unwrap()),
            ("ROOMCAST_API_KEY_POLL", "3600"),
        ],
    )
    .await;
    assert_eq!(node.post_price(KEY).await, StatusCode::OK);
    assert_eq!(node.post_price(NEW_KEY).await, StatusCode::UNAUTHORIZED);
    replace_key_file(&path, &format!("{NEW_KEY}\n"));
    common::process::signal(&node.child, libc::SIGHUP);
    within("the new key to be accepted after SIGHUP", async {
        while node.post_price(NEW_KEY).await != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(node.post_price(KEY).await, StatusCode::UNAUTHORIZED);
    let log = node.log();
    assert!(log.contains("SIGHUP"), "{log}");
    assert!(log.contains("API keys loaded"), "{log}");
    assert!(
        !log.contains(KEY) && !log.contains(NEW_KEY),
        "a key was logged"
    );
    assert!(
        !log.contains("0123456789abcdef"),
        "part of a key was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_log_says_how_to_open_the_protected_endpoints() {
    let node = Binary::start("startup", &[]).await;
    // The node listens before it logs; the log line is the event awaited.
    within("the start-up warning", async {
        while !node
            .log()
            .contains("set ROOMCAST_API_KEYS or ROOMCAST_API_KEY_FILE")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let keyed = Binary::start("startup-keyed", &[("ROOMCAST_API_KEYS", KEY)]).await;
    within("the start-up line", async {
        while !keyed.log().contains("need an API key") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(!keyed.log().contains(KEY), "a key was logged");
}
