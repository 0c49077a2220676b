//! The HTTP phase is bounded: a socket that sends nothing, a slowloris, a
//! partial request line, a stalled body, an idle kept-alive connection, a
//! refused upgrade and an oversized head all end in bounded time with a
//! clear answer where one is possible, while other clients are served.
//! Every wait is an awaited event (the server closing the socket), bounded
//! by the helpers' timeout; the configured timeouts are short so a test that
//! passes does so quickly.

mod common;

use std::time::Duration;

use common::*;
use hyper::StatusCode;
use roomcast::seconds::Seconds;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Short HTTP-phase timeouts.
fn short_timeouts(c: &mut roomcast::Config) {
    c.http.header_timeout = Seconds::from_secs_f64(0.5);
    c.http.keepalive_timeout = Seconds::from_secs_f64(0.3);
    c.http.body_timeout = Seconds::from_secs_f64(0.5);
}

async fn connect(server: &TestServer) -> TcpStream {
    within("tcp connect", TcpStream::connect(server.addr))
        .await
        .expect("tcp connect")
}

/// The server still answers plain HTTP and WebSocket clients.
async fn others_are_served(server: &TestServer) {
    let (status, _) = server.http_get("/health").await;
    assert_eq!(status, StatusCode::OK);
    let mut ws = server.connect_001().await;
    ping_pong(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_sends_a_request_is_closed() {
    let server = TestServer::start(short_timeouts).await;
    let mut silent: Vec<TcpStream> = Vec::new();
    for _ in 0..20 {
        silent.push(connect(&server).await);
    }
    others_are_served(&server).await;
    for stream in &mut silent {
        assert_eq!(read_until_closed(stream).await, "", "closed without a word");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_is_closed_at_the_header_timeout() {
    let server = TestServer::start(short_timeouts).await;
    let before = server.limit_hits("header_timeout").await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    // One header byte every 50 ms, until the server hangs up.
    let drip = async {
        for byte in b"X-Slow: ".iter().cycle() {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (_, ()) = tokio::join!(
        others_are_served(&server),
        within("the slowloris to be cut off", drip)
    );
    assert!(server.limit_hits("header_timeout").await > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_request_line_is_closed() {
    let server = TestServer::start(short_timeouts).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /hea").await.unwrap();
    others_are_served(&server).await;
    assert_eq!(read_until_closed(&mut stream).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_gets_408_and_the_connection_is_closed() {
    let server = TestServer::start(short_timeouts).await;
    let before = server.limit_hits("body_timeout").await;
    let head =
        "POST /api/ws/broadcast/price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    // 27 of 100 announced bytes.
    let mut short = connect(&server).await;
    short
        .write_all(
            format!("{head}Content-Length: 100\r\n\r\n{{\"ticker\":\"AAPL\",\"price\":1")
                .as_bytes(),
        )
        .await
        .unwrap();
    // A chunked body whose last chunk never comes.
    let mut chunked = connect(&server).await;
    chunked
        .write_all(format!("{head}Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"tic\r\n").as_bytes())
        .await
        .unwrap();
    others_are_served(&server).await;
    for stream in [&mut short, &mut chunked] {
        let response = read_until_closed(stream).await;
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
        assert!(response.contains("not received within"), "{response}");
        assert!(
            response.to_ascii_lowercase().contains("connection: close"),
            "{response}"
        );
    }
    assert!(server.limit_hits("body_timeout").await >= before + 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = TestServer::start(short_timeouts).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The response, then nothing: the server closes the idle connection.
    let response = read_until_closed(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        !response.to_ascii_lowercase().contains("connection: close"),
        "kept alive at first: {response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_in_use_is_not_cut_off() {
    let server = TestServer::start(|c| {
        c.http.keepalive_timeout = Seconds::from_secs(1);
        c.http.header_timeout = Seconds::from_secs(2);
    })
    .await;
    let mut client = server.http_client().await;
    // A client pacing its requests well under the keep-alive timeout, for
    // longer than that timeout in all: the idle clock restarts after each.
    for _ in 0..15 {
        let (status, _) = client.get_text("/health").await;
        assert_eq!(status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upgrade_closes_the_connection() {
    let server = TestServer::start(|c| c.ws.max_connections = 1).await;
    let mut holder = server.connect_001().await;
    let request =
        b"GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    // raw_http returns only once the server has closed the connection.
    let response = raw_http(server.addr, request).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    ping_pong(&mut holder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_head_gets_431() {
    let server = TestServer::start(|c| c.http.max_header_size = 4096).await;
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(8192)
    );
    let response = raw_http(server.addr, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    others_are_served(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_alert_bodies_must_be_declared_json() {
    // The trading producers off: the room count is this test's alone.
    let server = TestServer::start(|c| {
        c.trading.enabled = false;
        c.trading.paper_trading = false;
        c.trading.market_data = false;
    })
    .await;
    let (_, before) = server.http_get("/api/ws/stats").await;
    let body = price_body("AAPL", 1.0);
    for (path, content_type) in [
        ("/api/ws/broadcast/price", "text/plain"),
        (
            "/api/ws/broadcast/price",
            "application/x-www-form-urlencoded",
        ),
        ("/api/alerts", "text/plain;charset=UTF-8"),
    ] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let response = raw_http(server.addr, request.as_bytes()).await;
        assert!(
            response.starts_with("HTTP/1.1 415"),
            "{content_type}: {response}"
        );
        assert!(response.contains("application/json"), "{response}");
    }
    // Nothing was published: no room was created.
    let (_, stats) = server.http_get("/api/ws/stats").await;
    assert_eq!(stats["rooms"], before["rooms"], "{stats}");
}
