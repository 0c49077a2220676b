//! Abuse limits at accept time: one address over its connection cap or its
//! connect rate gets a 429 with a JSON reason and is closed, while other
//! addresses (127.0.0.2 here: all of 127/8 is loopback) connect as usual;
//! and a node whose descriptors run out backs off, warns once instead of
//! twenty times a second, keeps serving the sessions it has, and recovers as
//! idle connections time out.

mod common;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::fleet::status_of;
use common::process::{free_port, prepare, signal, spawn, wait_bounded};
use common::*;
use hyper::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `server` from the loopback address `from`.
async fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .expect("bind a loopback source address");
    within("tcp connect", socket.connect(server))
        .await
        .expect("tcp connect")
}

/// `GET /health` from `from`: the whole response once the server closes.
async fn health_from(from: &str, server: SocketAddr) -> String {
    let mut stream = connect_from(from, server).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_until_closed(&mut stream).await
}

/// A seed 001 WebSocket from `from`, its `connection` ack consumed.
async fn ws_from(from: &str, server: &TestServer) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let stream = connect_from(from, server.addr).await;
    let (mut ws, _) = within(
        "websocket handshake",
        tokio_tungstenite::client_async(server.ws_url("/api/ws"), stream),
    )
    .await
    .expect("websocket handshake");
    assert_eq!(recv_json(&mut ws).await["type"], "connection");
    ws
}

/// `/metrics` fetched from 127.0.0.3 (not the address under test).
async fn metrics_text(server: &TestServer) -> String {
    let mut stream = connect_from("127.0.0.3", server.addr).await;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_until_closed(&mut stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_connection_cap_gets_429_and_other_addresses_connect() {
    let server = TestServer::start(|c| {
        c.peers.peer_limit_exempt = "none".parse().unwrap();
        c.peers.max_connections_per_ip = 3;
    })
    .await;
    let before = limit_hits_in(&metrics_text(&server).await, "peer_connections");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(ws_from("127.0.0.1", &server).await);
    }
    let refused = health_from("127.0.0.1", server.addr).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.contains("too many connections from this address"),
        "{refused}"
    );
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );

    // Another address is unaffected, and so are the sessions already held.
    let mut other = ws_from("127.0.0.2", &server).await;
    ping_pong(&mut other).await;
    for ws in &mut held {
        ping_pong(ws).await;
    }
    assert!(limit_hits_in(&metrics_text(&server).await, "peer_connections") > before);

    // Closing one session frees its slot (once the server has seen it go).
    let mut closing = held.pop().unwrap();
    closing.close(None).await.unwrap();
    within("a freed slot", async {
        loop {
            if health_from("127.0.0.1", server.addr)
                .await
                .starts_with("HTTP/1.1 200")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_connecting_too_fast_gets_429_and_other_addresses_connect() {
    let server = TestServer::start(|c| {
        c.peers.peer_limit_exempt = "none".parse().unwrap();
        c.peers.connect_rate_per_ip = 1;
        c.peers.connect_burst_per_ip = 3;
    })
    .await;
    for _ in 0..3 {
        let ok = health_from("127.0.0.1", server.addr).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }
    let refused = health_from("127.0.0.1", server.addr).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("connecting too fast"), "{refused}");
    let other = health_from("127.0.0.2", server.addr).await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    assert!(limit_hits_in(&metrics_text(&server).await, "peer_connect_rate") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_exempt_by_default() {
    let server = TestServer::start(|c| {
        c.peers.max_connections_per_ip = 1;
        c.peers.connect_rate_per_ip = 1;
        c.peers.connect_burst_per_ip = 1;
    })
    .await;
    let mut a = server.connect_001().await;
    let mut b = server.connect_001().await;
    for _ in 0..5 {
        let ok = health_from("127.0.0.1", server.addr).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }
    ping_pong(&mut a).await;
    ping_pong(&mut b).await;
}

/// Descriptors the test node may open (soft and hard limit).
const NODE_FDS: libc::rlim_t = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_exhaustion_backs_off_warns_once_and_recovers() {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roomcast"));
    cmd.env_clear()
        .env("ROOMCAST_BIND", addr.to_string())
        .env("ROOMCAST_SIMULATOR", "false")
        .env("ROOMCAST_HEADER_TIMEOUT", "1")
        .env("ROOMCAST_KEEPALIVE_TIMEOUT", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // the log
        .stderr(Stdio::inherit());
    prepare(&mut cmd, None);
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: NODE_FDS,
                rlim_max: NODE_FDS,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = spawn(cmd).expect("starting roomcast");
    within("the node to answer /health", async {
        while status_of(addr, "/health").await != Some(StatusCode::OK) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (mut session, _) = within(
        "websocket connect",
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws")),
    )
    .await
    .expect("websocket connect");
    assert_eq!(recv_json(&mut session).await["type"], "connection");

    // Three times as many silent connections as the node has descriptors.
    let mut silent = Vec::new();
    for _ in 0..3 * NODE_FDS {
        silent.push(
            within("tcp connect", TcpStream::connect(addr))
                .await
                .expect("the kernel queues connections the node cannot accept yet"),
        );
    }
    // While accept fails, the session the node holds is served.
    ping_pong(&mut session).await;
    // Every silent connection is eventually accepted and timed out ...
    for stream in &mut silent {
        expect_closed(stream).await;
    }
    // ... and the node serves new clients again.
    within("the node to answer /health again", async {
        while status_of(addr, "/health").await != Some(StatusCode::OK) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let metrics = {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        read_until_closed(&mut stream).await
    };
    let failures = prometheus_value(
        metrics.split("\r\n\r\n").nth(1).unwrap_or(""),
        "roomcast_accept_errors_total",
    );
    assert!(
        failures >= 1.0,
        "accept never failed: the test did not exhaust descriptors"
    );

    signal(&child, libc::SIGKILL);
    wait_bounded(&mut child, TIMEOUT);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut log).unwrap();
    let warnings = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        (1..=2).contains(&warnings),
        "{failures} failed accepts were logged {warnings} times:\n{log}"
    );
}
