//! Shared helpers for the integration tests: a real roomcast server on an
//! ephemeral port, real WebSocket clients (tokio-tungstenite and a raw-TCP
//! one for frame-level checks), and a tiny HTTP client on hyper.
//!
//! Every wait here is bounded by [`TIMEOUT`]; a timeout is a test failure,
//! never a synchronisation mechanism.

#![allow(dead_code)]

pub mod fleet;
pub mod postgres;
pub mod process;
pub mod python;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use roomcast::{Config, ConfigError};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous bound on any single wait (a message, a response, a close).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A tokio-tungstenite client connected with [`TestServer::ws_connect`].
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The 13 keys of seed 003's `complete.metrics` (also seed 002's `results`).
pub const COMPLETE_METRICS_KEYS: [&str; 13] = [
    "total_trades",
    "winning_trades",
    "losing_trades",
    "win_rate",
    "profit_factor",
    "total_return",
    "max_drawdown",
    "sharpe_ratio",
    "average_win",
    "average_loss",
    "largest_win",
    "largest_loss",
    "total_commissions",
];

/// Seed 003's example backtest request body, verbatim.
pub const SEED003_EXAMPLE: &str = r#"{
    "name": "Test Backtest",
    "symbol": "BTC-USD",
    "timeframes": ["4H", "1H", "15M"],
    "start_date": "2024-01-01",
    "end_date": "2024-01-31",
    "initial_capital": 10000,
    "strategy_ids": ["strategy1"],
    "risk_per_trade": 0.02
}"#;

/// Awaits `fut`, failing the test with `what` if it takes longer than [`TIMEOUT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// A roomcast server running in a task of the test's runtime.
pub struct TestServer {
    /// Where it listens (127.0.0.1, ephemeral port).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ConfigError>>>,
}

impl TestServer {
    /// Starts a server with the documented defaults, the simulator off, then `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        TestServer::start_on(listener, tweak)
    }

    /// Starts a server like [`TestServer::start`] on `addr`: the port a
    /// stopped server used, so its clients reconnect to the new one (a restart).
    pub async fn start_at(addr: SocketAddr, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("bind {addr} again: {e}"));
        TestServer::start_on(listener, tweak)
    }

    /// Runs a server on `listener` with the test defaults, then `tweak`.
    fn start_on(listener: TcpListener, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let addr = listener.local_addr().expect("local addr");
        let mut config = Config {
            bind: addr,
            ..Config::default()
        };
        config.market.simulator = false;
        tweak(&mut config);
        config.validate().expect("test config must be valid");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(roomcast::run(listener, config, async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Triggers the graceful shutdown and awaits `run`'s result.
    pub async fn shutdown(mut self) -> Result<(), ConfigError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("server task");
        // Drain may wait for close replies; bounded by the server's shutdown timeout.
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("roomcast::run did not return after shutdown")
            .expect("roomcast::run panicked")
    }

    /// `ws://addr{path}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Opens a WebSocket to `path` (e.g. `/api/ws?user_id=user123`).
    pub async fn ws_connect(&self, path: &str) -> Ws {
        let (ws, _response) = within(
            "websocket connect",
            tokio_tungstenite::connect_async(self.ws_url(path)),
        )
        .await
        .unwrap_or_else(|e| panic!("websocket connect to {path} failed: {e}"));
        ws
    }

    /// Opens a seed 001 connection and consumes its `connection` ack.
    pub async fn connect_001(&self) -> Ws {
        let mut ws = self.ws_connect("/api/ws").await;
        let ack = recv_json(&mut ws).await;
        assert_eq!(ack["type"], "connection", "{ack}");
        ws
    }

    /// Opens a WebSocket over a socket whose receive buffer is tiny, so a
    /// client that stops reading backs the server up quickly.
    pub async fn ws_connect_small_rcvbuf(&self, path: &str) -> WebSocketStream<TcpStream> {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = within("tcp connect", socket.connect(self.addr))
            .await
            .expect("tcp connect");
        let (ws, _) = within(
            "websocket handshake",
            tokio_tungstenite::client_async(self.ws_url(path), stream),
        )
        .await
        .expect("websocket handshake");
        ws
    }

    /// One HTTP request on a fresh connection; returns status and raw body.
    pub async fn http(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Bytes) {
        let mut client = HttpClient::connect(self.addr).await;
        client.request(method, path, body, headers).await
    }

    /// `GET path` → status and JSON body.
    pub async fn http_get(&self, path: &str) -> (StatusCode, Value) {
        let (status, body) = self.http(Method::GET, path, None, &[]).await;
        (status, json_body(&body))
    }

    /// `GET path` → status and text body.
    pub async fn http_get_text(&self, path: &str) -> (StatusCode, String) {
        let (status, body) = self.http(Method::GET, path, None, &[]).await;
        (
            status,
            String::from_utf8(body.to_vec()).expect("utf-8 body"),
        )
    }

    /// `POST path` with a JSON body → status and JSON body.
    pub async fn http_post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let (status, body) = self.http(Method::POST, path, Some(body), &[]).await;
        (status, json_body(&body))
    }

    /// `DELETE path` → status and JSON body.
    pub async fn http_delete(&self, path: &str) -> (StatusCode, Value) {
        let (status, body) = self.http(Method::DELETE, path, None, &[]).await;
        (status, json_body(&body))
    }

    /// A WebSocket upgrade request made by hand, for refused upgrades: status and JSON body.
    pub async fn ws_upgrade_refused(&self, path: &str) -> (StatusCode, Value) {
        let (status, body) = self
            .http(
                Method::GET,
                path,
                None,
                &[
                    (UPGRADE.as_str(), "websocket"),
                    (CONNECTION.as_str(), "Upgrade"),
                    ("sec-websocket-version", "13"),
                    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ],
            )
            .await;
        assert_ne!(
            status,
            StatusCode::SWITCHING_PROTOCOLS,
            "upgrade was accepted"
        );
        (status, json_body(&body))
    }

    /// `roomcast_limit_hits_total{limit="…"}` now.
    pub async fn limit_hits(&self, limit: &str) -> f64 {
        let (_, text) = self.http_get_text("/metrics").await;
        limit_hits_in(&text, limit)
    }

    /// A persistent (keep-alive) HTTP connection, for publishing many events.
    pub async fn http_client(&self) -> HttpClient {
        HttpClient::connect(self.addr).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Dropping the sender resolves the shutdown future: the server drains.
        self.shutdown.take();
    }
}

/// Parses a JSON body, failing the test with the body text if it is not JSON.
pub fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "response body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })
}

/// A whole HTTP response, as a test reads it.
#[derive(Debug)]
pub struct HttpResponse {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: hyper::HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        json_body(&self.body)
    }
}

/// A keep-alive HTTP/1.1 client connection on hyper.
pub struct HttpClient {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl HttpClient {
    /// Connects and performs the HTTP/1 client handshake.
    pub async fn connect(addr: SocketAddr) -> HttpClient {
        let stream = within("http connect", TcpStream::connect(addr))
            .await
            .expect("http connect");
        HttpClient::handshake(addr, stream).await
    }

    /// Connects from a socket bound to `from` (a second "host" on loopback,
    /// such as 127.0.0.2), then performs the handshake.
    pub async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> HttpClient {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind((from, 0).into())
            .expect("bind the client address");
        let stream = within("http connect", socket.connect(addr))
            .await
            .expect("http connect");
        HttpClient::handshake(addr, stream).await
    }

    /// The HTTP/1 client handshake on `stream`.
    async fn handshake(addr: SocketAddr, stream: TcpStream) -> HttpClient {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        HttpClient { addr, sender }
    }

    /// Sends one request and reads the whole response: status and body.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Bytes) {
        let response = self.request_full(method, path, body, headers).await;
        (response.status, response.body)
    }

    /// Sends one request and reads the whole response, headers included.
    pub async fn request_full(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string());
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
            .expect("request");
        within("http response", async {
            self.sender.ready().await.expect("http connection ready");
            let response = self
                .sender
                .send_request(request)
                .await
                .expect("http request");
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("http body")
                .to_bytes();
            HttpResponse {
                status,
                headers,
                body,
            }
        })
        .await
    }

    /// `POST path` with a JSON body → status and JSON body.
    pub async fn post(&mut self, path: &str, body: &str) -> (StatusCode, Value) {
        let (status, body) = self.request(Method::POST, path, Some(body), &[]).await;
        (status, json_body(&body))
    }

    /// `GET path` → status and text body.
    pub async fn get_text(&mut self, path: &str) -> (StatusCode, String) {
        let (status, body) = self.request(Method::GET, path, None, &[]).await;
        (
            status,
            String::from_utf8(body.to_vec()).expect("utf-8 body"),
        )
    }
}

/// The next text message as a string; pings and pongs are skipped (tungstenite
/// answers pings itself). A close, an error or the end of the stream fails the test.
pub async fn recv_text<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> String {
    loop {
        let next = within("a text message", ws.next()).await;
        match next {
            Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                panic!("expected a text message, got close {frame:?}")
            }
            Some(Ok(other)) => panic!("expected a text message, got {other:?}"),
            Some(Err(e)) => panic!("expected a text message, got error {e}"),
            None => panic!("expected a text message, the stream ended"),
        }
    }
}

/// The next text message, parsed as JSON.
pub async fn recv_json<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    let text = recv_text(ws).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Skips messages until one satisfies `pred`, which is returned.
pub async fn recv_until<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    mut pred: impl FnMut(&Value) -> bool,
) -> Value {
    within("a matching message", async {
        loop {
            let v = recv_json(ws).await;
            if pred(&v) {
                return v;
            }
        }
    })
    .await
}

/// Sends a JSON value as a text message.
pub async fn send_json<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    value: &Value,
) {
    within(
        "sending a message",
        ws.send(Message::text(value.to_string())),
    )
    .await
    .expect("send");
}

/// Sends `{"type":"ping"}` and awaits the `pong` (the next message must be it).
pub async fn ping_pong<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    send_json(ws, &serde_json::json!({"type": "ping"})).await;
    let pong = recv_json(ws).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    pong
}

/// Subscribes to a seed 001 channel and checks the `subscription` confirmation;
/// for a ticker, also consumes and returns the `history` that follows.
pub async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    channel: &str,
    ticker: Option<&str>,
) -> Option<Value> {
    let mut msg = serde_json::json!({"type": "subscribe", "channel": channel});
    if let Some(t) = ticker {
        msg["ticker"] = Value::from(t);
    }
    send_json(ws, &msg).await;
    let confirmation = recv_json(ws).await;
    assert_eq!(confirmation["type"], "subscription", "{confirmation}");
    assert_eq!(confirmation["action"], "subscribed", "{confirmation}");
    assert_eq!(confirmation["channel"], channel, "{confirmation}");
    if channel == "ticker" {
        let history = recv_json(ws).await;
        assert_eq!(history["type"], "history", "{history}");
        Some(history)
    } else {
        None
    }
}

/// What a client saw up to and including the server's close frame.
#[derive(Debug)]
pub struct Closed {
    /// Close code.
    pub code: u16,
    /// Close reason.
    pub reason: String,
    /// Text messages received before the close frame, in order.
    pub texts: Vec<String>,
}

/// Reads until the server's Close frame (collecting text messages on the
/// way), then reads once more so tungstenite flushes its close reply.
pub async fn recv_close_collect<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> Closed {
    let mut texts = Vec::new();
    loop {
        let next = within("a close frame", ws.next()).await;
        match next {
            Some(Ok(Message::Text(text))) => texts.push(text.as_str().to_owned()),
            Some(Ok(Message::Close(Some(frame)))) => {
                // Lets tungstenite send its close reply; the stream then ends.
                let _ = tokio::time::timeout(TIMEOUT, ws.next()).await;
                return Closed {
                    code: u16::from(frame.code),
                    reason: frame.reason.as_str().to_owned(),
                    texts,
                };
            }
            Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!(
                "error before a close frame: {e} (after {} text messages)",
                texts.len()
            ),
            None => panic!(
                "stream ended without a close frame (after {} text messages)",
                texts.len()
            ),
        }
    }
}

/// Reads until the server's Close frame; returns its code and reason.
pub async fn recv_close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> (u16, String) {
    let closed = recv_close_collect(ws).await;
    (closed.code, closed.reason)
}

/// A WebSocket client on a raw TCP socket: handshake by hand, frames parsed
/// by hand, and nothing ever sent unless asked (no automatic pong).
pub struct RawWs {
    stream: TcpStream,
}

/// One server frame as read by [`RawWs`].
#[derive(Debug)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawWs {
    /// Connects and performs the opening handshake for `path`.
    pub async fn connect(addr: SocketAddr, path: &str) -> RawWs {
        let mut stream = within("tcp connect", TcpStream::connect(addr))
            .await
            .expect("tcp connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        // Read the response head byte by byte so no frame bytes are consumed.
        let mut head = Vec::new();
        within("handshake response", async {
            while !head.ends_with(b"\r\n\r\n") {
                let b = stream.read_u8().await.expect("read handshake");
                head.push(b);
            }
        })
        .await;
        let head = String::from_utf8(head).expect("utf-8 head");
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "handshake refused: {head}"
        );
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "bad Sec-WebSocket-Accept: {head}"
        );
        RawWs { stream }
    }

    /// Reads one frame (server frames are unmasked).
    pub async fn read_frame(&mut self) -> RawFrame {
        within("a raw frame", async {
            let b0 = self.stream.read_u8().await.expect("frame header");
            let b1 = self.stream.read_u8().await.expect("frame header");
            assert_eq!(b1 & 0x80, 0, "server frames must not be masked");
            let len = match b1 & 0x7f {
                126 => u64::from(self.stream.read_u16().await.expect("length")),
                127 => self.stream.read_u64().await.expect("length"),
                n => u64::from(n),
            };
            let mut payload = vec![0; len as usize];
            self.stream
                .read_exact(&mut payload)
                .await
                .expect("frame payload");
            RawFrame {
                fin: b0 & 0x80 != 0,
                opcode: b0 & 0x0f,
                payload,
            }
        })
        .await
    }

    /// Sends bytes as they are (hand-made frames, partial frames).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send raw bytes");
    }

    /// Reads frames until the server's close frame (answering nothing);
    /// returns its code. Fails if the connection ends without one.
    pub async fn read_close_code(&mut self) -> u16 {
        loop {
            let frame = self.read_frame().await;
            if frame.opcode == 0x8 {
                assert!(frame.payload.len() >= 2, "close frame without a code");
                return u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
            }
        }
    }

    /// Awaits the end of the connection (EOF or reset) after the close.
    pub async fn expect_closed(&mut self) {
        expect_closed(&mut self.stream).await
    }

    /// Sends one masked, final client frame.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.send_frame_fin(true, opcode, payload).await
    }

    /// Sends one masked client frame; `fin = false` starts or continues a fragmented message.
    pub async fn send_frame_fin(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let frame = masked_frame(if fin { 0x80 } else { 0 } | opcode, payload);
        self.stream.write_all(&frame).await.expect("send frame");
    }
}

/// A masked client frame with every header bit given: `first` is the first
/// byte (FIN, RSV bits, opcode), the length is minimally encoded.
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Awaits EOF (or a reset) on `stream`, discarding what arrives first.
pub async fn expect_closed(stream: &mut TcpStream) {
    within("the server to close the connection", async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
}

/// Sends `request` on a fresh connection and reads until the server closes
/// it; returns everything it sent (a whole HTTP response, or nothing).
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = within("tcp connect", TcpStream::connect(addr))
        .await
        .expect("tcp connect");
    stream.write_all(request).await.expect("write request");
    read_until_closed(&mut stream).await
}

/// Reads until the server closes `stream`; returns what it sent.
pub async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    within("the server to answer and close", async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

/// Seed 001's curl example body for `POST /api/ws/broadcast/price`, verbatim.
pub const SEED_PRICE_BODY: &str = r#"{
    "ticker": "AAPL",
    "price": 150.25,
    "change": 2.50,
    "change_percent": 1.69,
    "volume": 75000000,
    "high": 151.00,
    "low": 148.50,
    "open_price": 149.00
  }"#;

/// A minimal valid price body for `ticker` at `price`.
pub fn price_body(ticker: &str, price: f64) -> String {
    serde_json::json!({"ticker": ticker, "price": price}).to_string()
}

/// A valid pattern body with `message`.
pub fn pattern_body(ticker: &str, message: &str) -> String {
    serde_json::json!({
        "ticker": ticker,
        "pattern_type": "VCP",
        "score": 8.5,
        "entry_price": 150.50,
        "stop_price": 145.00,
        "target_price": 165.00,
        "risk_reward_ratio": 2.64,
        "message": message,
    })
    .to_string()
}

/// A valid alert-trigger body with `message`.
pub fn alert_body(ticker: &str, message: &str) -> String {
    serde_json::json!({
        "ticker": ticker,
        "alert_type": "breakout",
        "trigger_price": 150.00,
        "current_price": 150.25,
        "message": message,
    })
    .to_string()
}

/// Publishes one price over a fresh connection and checks the 200.
pub async fn publish_price(server: &TestServer, ticker: &str, price: f64) -> Value {
    let (status, body) = server
        .http_post("/api/ws/broadcast/price", &price_body(ticker, price))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// `roomcast_limit_hits_total{limit="…"}` in a `/metrics` text (0 when absent).
pub fn limit_hits_in(metrics: &str, limit: &str) -> f64 {
    let sample = format!("roomcast_limit_hits_total{{limit=\"{limit}\"}}");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The value of an unlabelled Prometheus sample `name` (0 when absent).
pub fn prometheus_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(name)).then(|| parts.next()?.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// The member names of the JSON object `v` (panics on anything else).
pub fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `names` as a set, to compare with [`keys`].
pub fn key_set(names: &[&str]) -> std::collections::BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}
