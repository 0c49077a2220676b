//! TLS termination (`docs/tls.md`): `wss://` and `https://` served by the
//! node itself with certificates the tests make (a private CA), handshakes
//! bounded by the header timeout, and certificates replaced while the node
//! runs (changed files, SIGHUP to a real process).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{free_port, prepare, signal, spawn};
use common::tls::{TestCa, presented_leaf, replace};
use common::{
    SEED003_EXAMPLE, TIMEOUT, TestServer, price_body, prometheus_value, recv_json, subscribe,
    within,
};
use hyper::StatusCode;
use roomcast::Config;
use roomcast::seconds::Seconds;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Interval between polls where no event exists (a reload, a process start).
const POLL: Duration = Duration::from_millis(20);

/// Config tweak: serve TLS with `pem`.
fn with_tls(config: &mut Config, pem: &common::tls::ServerPem) {
    config.tls.cert = Some(pem.cert.clone());
    config.tls.key = Some(pem.key.clone());
}

/// Publishes a price over `https://` and checks the 200.
async fn publish_price_https(ca: &TestCa, server: &TestServer, ticker: &str, price: f64) {
    let (status, body) = ca
        .https_post(
            server.addr,
            "/api/ws/broadcast/price",
            &price_body(ticker, price),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_clients_subscribe_and_receive_published_prices() {
    let ca = TestCa::new("wss");
    let pem = ca.write_server("server");
    let server = TestServer::start(|c| with_tls(c, &pem)).await;

    let mut ws = ca.wss_connect(server.addr, "/api/ws").await;
    let ack = recv_json(&mut ws).await;
    assert_eq!(ack["type"], "connection", "{ack}");
    subscribe(&mut ws, "ticker", Some("AAPL")).await;
    // Two clients, so a fan-out writes more than one TLS session.
    let mut other = ca.wss_connect(server.addr, "/api/ws").await;
    recv_json(&mut other).await;
    subscribe(&mut other, "ticker", Some("AAPL")).await;

    for price in [101.5, 102.25] {
        publish_price_https(&ca, &server, "AAPL", price).await;
        for client in [&mut ws, &mut other] {
            let update = recv_json(client).await;
            assert_eq!(update["type"], "price_update", "{update}");
            assert_eq!(update["price"], price, "{update}");
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_health_answers_and_stream_urls_are_wss() {
    let ca = TestCa::new("https");
    let pem = ca.write_server("server");
    let server = TestServer::start(|c| with_tls(c, &pem)).await;
    let (status, body) = ca.https_get(server.addr, "/health").await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok", "{health}");

    // A seed 003 backtest hands out a wss:// stream URL that works.
    let (status, body) = ca
        .https_post(server.addr, "/api/backtesting/start", SEED003_EXAMPLE)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");
    let started: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = started["stream_url"].as_str().expect("stream_url");
    let prefix = format!("wss://{}/", server.addr);
    let path = url
        .strip_prefix(&prefix[..prefix.len() - 1])
        .unwrap_or_else(|| panic!("{url} is not under {prefix}"));
    let mut stream = ca.wss_connect(server.addr, path).await;
    let first = recv_json(&mut stream).await;
    assert!(first["type"].is_string(), "{first}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_on_a_tls_port_fails_cleanly_and_the_server_survives() {
    let ca = TestCa::new("plain");
    let pem = ca.write_server("server");
    let server = TestServer::start(|c| with_tls(c, &pem)).await;

    let plain = within(
        "a plain ws:// attempt",
        tokio_tungstenite::connect_async(server.ws_url("/api/ws")),
    )
    .await;
    assert!(
        plain.is_err(),
        "a plain WebSocket handshake on a TLS port succeeded"
    );
    // Plain HTTP: the server's TLS stack answers with an alert or closes,
    // never with an HTTP response.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within(
        "the server to close a plain connection",
        tcp.read_to_end(&mut answer),
    )
    .await
    .ok();
    assert!(!answer.starts_with(b"HTTP/"), "plain HTTP was answered");

    let (status, _) = ca.https_get(server.addr, "/health").await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_that_never_completes_is_dropped_after_the_header_timeout() {
    let ca = TestCa::new("stall");
    let pem = ca.write_server("server");
    let server = TestServer::start(|c| {
        with_tls(c, &pem);
        c.http.header_timeout = Seconds::from_secs(1);
        c.http.keepalive_timeout = Seconds::from_secs(1);
    })
    .await;

    // A TLS record header promising a 512-byte handshake, and 3 bytes of it.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])
        .await
        .unwrap();
    // Others are served meanwhile.
    let (status, _) = ca.https_get(server.addr, "/health").await;
    assert_eq!(status, StatusCode::OK);
    // The server closes the stalled connection (its task ended and dropped
    // the socket): EOF or a reset, and no bytes of an answer.
    let mut rest = Vec::new();
    let read = within(
        "the stalled handshake to be dropped",
        stalled.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_err() || rest.is_empty(), "{read:?} {rest:?}");
    let (status, _) = ca.https_get(server.addr, "/health").await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_stops_reading_an_ordered_stream_is_closed_with_4008() {
    let ca = TestCa::new("slow");
    let pem = ca.write_server("server");
    let server = TestServer::start(|c| {
        with_tls(c, &pem);
        c.ws.outbox_capacity = 16;
        // It does not read, so it cannot answer pings either.
        c.ws.heartbeat_timeout = Seconds::from_secs(3600);
    })
    .await;
    let mut slow = ca.wss_connect_small_rcvbuf(server.addr, "/api/ws").await;
    assert_eq!(recv_json(&mut slow).await["type"], "connection");
    subscribe(&mut slow, "patterns", None).await;

    // Publish 1 KiB alerts until the session's writer, backed up behind
    // the socket and the TLS buffer, lets the outbox overflow.
    let mut http = ca.https_client(server.addr).await;
    let mut published = 0;
    loop {
        assert!(published < 50_000, "the slow TLS client was never closed");
        let message = format!("#{published:06} {}", "x".repeat(990));
        let (status, report) = http
            .post(
                "/api/ws/broadcast/pattern",
                &common::pattern_body("AAPL", &message),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        published += 1;
        if report["recipients"] == 0 {
            break;
        }
    }
    // Reading at last: a prefix of the stream in order, then 4008.
    let closed = common::recv_close_collect(&mut slow).await;
    assert_eq!(closed.code, 4008, "{}", closed.reason);
    assert!(!closed.texts.is_empty() && closed.texts.len() < published);
    for (i, text) in closed.texts.iter().enumerate() {
        let alert: serde_json::Value = serde_json::from_str(text).unwrap();
        let index: usize = alert["message"].as_str().unwrap()[1..7].parse().unwrap();
        assert_eq!(index, i, "in order, no gaps");
    }
    // The node goes on serving TLS.
    let (status, _) = ca.https_get(server.addr, "/health").await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await.unwrap();
}

/// Polls fresh TLS connections to `addr` until one is shown `leaf`.
async fn await_leaf(ca: &TestCa, addr: std::net::SocketAddr, leaf: &[u8]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(tls) = ca.try_connect(addr).await
            && presented_leaf(&tls).as_ref() == leaf
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "new connections never saw the new certificate"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_files_reach_new_connections_and_a_bad_replacement_keeps_the_old() {
    let ca = TestCa::new("reload");
    let first = ca.write_server("server");
    let server = TestServer::start(|c| {
        with_tls(c, &first);
        c.tls.reload_interval = Seconds::from_secs_f64(0.05);
    })
    .await;
    let tls = ca.connect(server.addr).await;
    assert_eq!(presented_leaf(&tls), first.leaf);
    drop(tls);

    // A session opened under the first certificate.
    let mut ws = ca.wss_connect(server.addr, "/api/ws").await;
    recv_json(&mut ws).await;
    subscribe(&mut ws, "ticker", Some("MSFT")).await;

    let second = ca.write_server("server");
    assert_ne!(second.leaf, first.leaf);
    await_leaf(&ca, server.addr, &second.leaf).await;

    // The old session is still up and served.
    publish_price_https(&ca, &server, "MSFT", 250.5).await;
    let update = recv_json(&mut ws).await;
    assert_eq!(update["price"], 250.5, "{update}");

    // A broken chain file: the reload fails and the second pair stays.
    let failures = |text: &str| prometheus_value(text, "roomcast_tls_reload_failures_total");
    let before = failures(&metrics_text(&ca, server.addr).await);
    replace(&second.cert, b"-----BEGIN CERTIFICATE-----\nnot base64\n");
    let deadline = Instant::now() + TIMEOUT;
    while failures(&metrics_text(&ca, server.addr).await) <= before {
        assert!(
            Instant::now() < deadline,
            "the bad reload was never attempted"
        );
        tokio::time::sleep(POLL).await;
    }
    let tls = ca.connect(server.addr).await;
    assert_eq!(presented_leaf(&tls), second.leaf);
    server.shutdown().await.unwrap();
}

/// `/metrics` over `https://`.
async fn metrics_text(ca: &TestCa, addr: std::net::SocketAddr) -> String {
    let (_, body) = ca.https_get(addr, "/metrics").await;
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_of_a_running_node() {
    let ca = TestCa::new("sighup");
    let first = ca.write_server("server");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roomcast"));
    cmd.env_clear()
        .env("ROOMCAST_BIND", addr.to_string())
        .env("ROOMCAST_SIMULATOR", "false")
        .env("ROOMCAST_TLS_CERT", &first.cert)
        .env("ROOMCAST_TLS_KEY", &first.key)
        // Only the signal reloads here.
        .env("ROOMCAST_TLS_RELOAD_INTERVAL", "86400")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    prepare(&mut cmd, None);
    let mut child = spawn(cmd).expect("starting roomcast");
    let deadline = Instant::now() + TIMEOUT;
    let tls = loop {
        if let Ok(tls) = ca.try_connect(addr).await {
            break tls;
        }
        assert!(Instant::now() < deadline, "roomcast never served TLS");
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(presented_leaf(&tls), first.leaf);

    let second = ca.write_server("server");
    signal(&child, libc::SIGHUP);
    await_leaf(&ca, addr, &second.leaf).await;
    // The connection made before the reload still works.
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get("/health")
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = within("health on the old connection", sender.send_request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    signal(&child, libc::SIGTERM);
    let status = common::process::wait_bounded(&mut child, TIMEOUT);
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_leaves_the_node_serving() {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roomcast"));
    cmd.env_clear()
        .env("ROOMCAST_BIND", addr.to_string())
        .env("ROOMCAST_SIMULATOR", "false")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    prepare(&mut cmd, None);
    let mut child = spawn(cmd).expect("starting roomcast");
    let deadline = Instant::now() + TIMEOUT;
    while common::fleet::status_of(addr, "/health").await != Some(StatusCode::OK) {
        assert!(Instant::now() < deadline, "roomcast never answered /health");
        tokio::time::sleep(POLL).await;
    }
    signal(&child, libc::SIGHUP);
    // Still serving after the signal was handled: a second signal and a
    // request later, the process has not exited.
    signal(&child, libc::SIGHUP);
    assert_eq!(
        common::fleet::status_of(addr, "/health").await,
        Some(StatusCode::OK)
    );
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP ended the node");
    signal(&child, libc::SIGTERM);
    let status = common::process::wait_bounded(&mut child, TIMEOUT);
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
