//! The Python package's asyncio subscriber (`clients/python`,
//! `roomcast_client.Subscriber`) against real roomcast: an in-process
//! server, or nodes of a fleet as real processes on a private Redis. A
//! Python process (`tests/python/subscriber_driver.py`) prints every event
//! the subscriber yields as a JSON line and takes commands on its standard
//! input; the test publishes, cuts connections (a TCP proxy it controls, or
//! `kill -9` of a node) and checks what the application would have seen:
//! every message once, in order, resumed across reconnects, and gaps told.
//! Needs `python3` with `websockets` >= 12 (a missing one fails the tests;
//! `tests/run.sh` installs it).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::fleet::{Node, RedisServer};
use common::python::{self, Script};
use common::*;
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// Reconnect quickly: the tests wait for events, not for backoff.
const FAST_RECONNECT: (f64, f64) = (0.05, 0.5);

/// The subscriber under test, in its Python process.
struct PySubscriber {
    /// The driver script.
    script: Script,
    /// Every event it printed so far (for failure messages).
    seen: Vec<Value>,
}

impl PySubscriber {
    /// Starts a subscriber on `urls` joining `rooms`, reconnecting fast.
    async fn start(urls: &[String], rooms: &[&str]) -> PySubscriber {
        Self::start_with(urls, rooms, json!({})).await
    }

    /// [`PySubscriber::start`] with more of the Subscriber's keyword
    /// arguments (`{"token": …}`).
    async fn start_with(urls: &[String], rooms: &[&str], more: Value) -> PySubscriber {
        python::require_websockets().await;
        let mut options = json!({
            "urls": urls,
            "rooms": rooms,
            "min_reconnect_delay": FAST_RECONNECT.0,
            "max_reconnect_delay": FAST_RECONNECT.1,
        });
        for (key, value) in more.as_object().expect("keyword arguments") {
            options[key] = value.clone();
        }
        let driver =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/subscriber_driver.py");
        PySubscriber {
            script: Script::spawn(&driver, &[&options.to_string()]),
            seen: Vec::new(),
        }
    }

    /// The next event the subscriber yielded.
    async fn next(&mut self) -> Value {
        let line = self.script.next_line().await;
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the driver printed something else ({e}): {line}"));
        self.seen.push(event.clone());
        event
    }

    /// The next event, which must be of kind `kind`.
    async fn expect(&mut self, kind: &str) -> Value {
        let event = self.next().await;
        assert_eq!(event["event"], kind, "{event} after {:?}", self.seen);
        event
    }

    /// Every event up to and including the first that satisfies `until`.
    async fn events_until(&mut self, until: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            let done = until(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }

    /// Every event up to and including the message of `room` with `seq`.
    async fn through_seq(&mut self, room: &str, seq: u64) -> Vec<Value> {
        self.events_until(|e| e["event"] == "message" && e["room"] == room && e["seq"] == seq)
            .await
    }

    /// Sends a command to the driver.
    async fn command(&mut self, command: Value) {
        self.script.send_line(&command.to_string()).await;
    }

    /// Asks how many events wait in the subscriber until there are `n`
    /// (the loop is paused; the driver answers between events).
    async fn until_pending(&mut self, n: u64) {
        let mut last = Value::Null;
        within(&format!("{n} pending events"), async {
            loop {
                self.command(json!({"cmd": "pending"})).await;
                last = self.expect("pending").await;
                if last["n"] == n {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(last["n"], n);
    }

    /// Closes the subscriber: the iteration must end (with `end`, after
    /// nothing but what was already queued); the positions it reported.
    async fn close(mut self) -> Value {
        self.command(json!({"cmd": "close"})).await;
        let end = self
            .events_until(|e| e["event"] == "end" || e["event"] == "failed")
            .await;
        let last = end.last().unwrap().clone();
        assert_eq!(last["event"], "end", "{last}");
        let status = self.script.finish().await;
        assert!(status.success(), "the driver exited with {status}");
        last["positions"].clone()
    }
}

/// The `message` events among `events`.
fn messages(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "message").collect()
}

/// The seqs of the `message` events among `events`, in order.
fn seqs(events: &[Value]) -> Vec<u64> {
    messages(events)
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// A TCP proxy in front of a server whose connections the test can cut:
/// cut, it drops every connection and refuses new ones (accepts and closes
/// them, as a node that is down would fail the handshake), until opened
/// again, possibly towards another server.
struct Proxy {
    /// Where clients connect.
    addr: SocketAddr,
    /// The server behind it (`None`: cut) and the connections it pipes.
    state: Arc<Mutex<ProxyState>>,
    /// The accept loop.
    task: JoinHandle<()>,
}

struct ProxyState {
    /// Where new connections are piped; `None` while cut.
    upstream: Option<SocketAddr>,
    /// The pipes of open connections, aborted by a cut.
    pipes: Vec<AbortHandle>,
}

impl Proxy {
    /// A proxy to `upstream` on a free port of 127.0.0.1.
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(ProxyState {
            upstream: Some(upstream),
            pipes: Vec::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = shared.lock().unwrap();
                let Some(upstream) = state.upstream else {
                    continue; // dropped: the client sees the connection close
                };
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                state.pipes.push(pipe.abort_handle());
            }
        });
        Proxy { addr, state, task }
    }

    /// `ws://proxy/v1/ws`.
    fn url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.upstream = None;
        for pipe in state.pipes.drain(..) {
            pipe.abort();
        }
    }

    /// Pipes new connections to `upstream`.
    fn open(&self, upstream: SocketAddr) {
        self.state.lock().unwrap().upstream = Some(upstream);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// Publishes `price` for `ticker` through fleet node `node`; its seq.
async fn publish_on(node: &Node, ticker: &str, price: f64) -> u64 {
    let mut client = HttpClient::connect(node.addr).await;
    let (status, body) = client
        .post("/api/ws/broadcast/price", &price_body(ticker, price))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_subscriber_yields_published_prices_once_in_order_and_close_ends_it() {
    let server = TestServer::start(|_| {}).await;
    let url = server.ws_url("/v1/ws");
    // A lower-case symbol: roomcast names the room upper-cased, and the
    // subscriber must still match its messages to the subscription.
    let mut sub = PySubscriber::start(std::slice::from_ref(&url), &["ticker:aapl"]).await;
    let connected = sub.expect("connected").await;
    assert_eq!(connected["url"], url);
    assert!(
        !connected["node"].as_str().unwrap().is_empty(),
        "{connected}"
    );
    let subscribed = sub.expect("subscribed").await;
    assert_eq!(subscribed["room"], "ticker:AAPL");
    assert_eq!(subscribed["recovered"], Value::Null, "{subscribed}");
    let epoch = subscribed["epoch"].clone();

    for i in 1..=20 {
        publish_price(&server, "AAPL", 100.0 + f64::from(i)).await;
    }
    let events = sub.through_seq("ticker:AAPL", 20).await;
    assert_eq!(messages(&events).len(), events.len(), "{events:?}");
    assert_eq!(seqs(&events), (1..=20).collect::<Vec<_>>());
    for (i, m) in events.iter().enumerate() {
        assert_eq!(m["epoch"], epoch);
        assert_eq!(m["replayed"], false);
        assert_eq!(m["data"]["type"], "price_update");
        assert_eq!(m["data"]["price"], 101.0 + i as f64);
    }

    // close() ends the iteration, the position is the last message yielded,
    // and the server sees the session end (nothing reconnects).
    let positions = sub.close().await;
    assert_eq!(positions, json!({"ticker:AAPL": [20, epoch]}));
    within("the session to end on the server", async {
        loop {
            let (_, stats) = server.http_get("/api/ws/stats").await;
            if stats["active_connections"] == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_from_zero_replays_the_history_and_nothing_of_a_room_follows_its_unsubscribe() {
    let server = TestServer::start(|_| {}).await;
    for i in 1..=3 {
        publish_price(&server, "GOOG", f64::from(i)).await;
    }
    let mut sub = PySubscriber::start(&[server.ws_url("/v1/ws")], &["ticker:MARK"]).await;
    sub.expect("connected").await;
    sub.expect("subscribed").await;

    sub.command(json!({"cmd": "subscribe", "room": "ticker:goog", "from_seq": 0}))
        .await;
    let mut events = sub.through_seq("ticker:GOOG", 3).await;
    // The driver says the call returned from another task: before, among or
    // after these events.
    if !events.iter().any(|e| e["event"] == "done") {
        sub.expect("done").await;
    }
    events.retain(|e| e["event"] != "done");
    assert_eq!(events[0]["event"], "subscribed", "{events:?}");
    assert_eq!(events[0]["room"], "ticker:GOOG");
    assert_eq!(events[0]["recovered"], true);
    assert_eq!(seqs(&events), [1, 2, 3]);
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(messages(&events).iter().all(|m| m["replayed"] == true));
    publish_price(&server, "GOOG", 4.0).await;
    let live = sub.expect("message").await;
    assert_eq!(
        (&live["seq"], &live["replayed"]),
        (&json!(4), &json!(false))
    );

    sub.command(json!({"cmd": "unsubscribe", "room": "ticker:GOOG"}))
        .await;
    assert_eq!(sub.expect("done").await["cmd"], "unsubscribe");
    publish_price(&server, "GOOG", 5.0).await;
    publish_price(&server, "MARK", 1.0).await;
    // The next event is MARK's: GOOG's 5, whenever the server stopped
    // sending the room, is not yielded.
    let next = sub.expect("message").await;
    assert_eq!(
        (&next["room"], &next["seq"]),
        (&json!("ticker:MARK"), &json!(1))
    );
    let positions = sub.close().await;
    assert_eq!(positions["ticker:GOOG"], Value::Null, "{positions}");
    assert_eq!(positions["ticker:MARK"][0], 1, "{positions}");
}

/// An HS256 token for `claims`, an hour from expiry, under `secret`.
fn hs256(secret: &str, mut claims: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims["exp"] = json!(now + 3600);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_sent_a_refused_room_is_an_error_event_and_a_refused_token_ends_the_loop() {
    const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";
    let server = TestServer::start(|c| {
        c.auth.mode = roomcast::auth::AuthMode::Required;
        c.auth.secret = Some(SECRET.parse().unwrap());
    })
    .await;
    let url = server.ws_url("/v1/ws");
    let token = hs256(SECRET, json!({"sub": "bot-1", "rooms": ["ticker:A*"]}));
    let mut sub = PySubscriber::start_with(
        std::slice::from_ref(&url),
        &["ticker:MSFT", "ticker:AAPL"],
        json!({"token": token}),
    )
    .await;
    sub.expect("connected").await;
    let refused = sub.expect("servererror").await;
    assert_eq!(
        (&refused["code"], &refused["room"]),
        (&json!("forbidden"), &json!("ticker:MSFT")),
        "{refused}"
    );
    assert_eq!(sub.expect("subscribed").await["room"], "ticker:AAPL");
    publish_price(&server, "AAPL", 1.0).await;
    assert_eq!(sub.expect("message").await["room"], "ticker:AAPL");
    // The refused room is no longer the subscriber's.
    let positions = sub.close().await;
    assert_eq!(positions.as_object().unwrap().len(), 1, "{positions}");

    let wrong = hs256(
        "another-secret-0123456789-abcdefghijklmn",
        json!({"sub": "bot-1"}),
    );
    let mut sub = PySubscriber::start_with(&[url], &["ticker:AAPL"], json!({"token": wrong})).await;
    let failed = sub.expect("failed").await;
    assert_eq!(failed["status"], 401, "{failed}");
    assert_eq!(
        sub.expect("end").await["positions"],
        json!({"ticker:AAPL": []})
    );
    assert!(sub.script.finish().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_the_iteration_while_the_subscriber_is_still_trying_to_connect() {
    let server = TestServer::start(|_| {}).await;
    let proxy = Proxy::start(server.addr).await;
    proxy.cut();
    let sub = PySubscriber::start(&[proxy.url()], &["patterns"]).await;
    // Every attempt is refused; close must not wait for a connection.
    let positions = sub.close().await;
    assert_eq!(positions, json!({"patterns": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_with_exactly_the_missed_prices() {
    let server = TestServer::start(|_| {}).await;
    let proxy = Proxy::start(server.addr).await;
    let mut sub = PySubscriber::start(&[proxy.url()], &["ticker:MSFT"]).await;
    sub.expect("connected").await;
    let epoch = sub.expect("subscribed").await["epoch"].clone();
    for i in 1..=5 {
        publish_price(&server, "MSFT", f64::from(i)).await;
    }
    let before = sub.through_seq("ticker:MSFT", 5).await;

    proxy.cut();
    let disconnected = sub.expect("disconnected").await;
    assert_eq!(disconnected["code"], 1006, "{disconnected}");
    assert!(disconnected["reconnect_delay"].as_f64().is_some());
    // Published while the subscriber has no connection.
    for i in 6..=15 {
        publish_price(&server, "MSFT", f64::from(i)).await;
    }
    proxy.open(server.addr);
    sub.expect("connected").await;
    let resumed = sub.expect("subscribed").await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert_eq!(resumed["replayed"], 10, "{resumed}");
    let replayed = sub.through_seq("ticker:MSFT", 15).await;
    assert!(
        replayed.iter().all(|m| m["replayed"] == true),
        "{replayed:?}"
    );
    for i in 16..=20 {
        publish_price(&server, "MSFT", f64::from(i)).await;
    }
    let live = sub.through_seq("ticker:MSFT", 20).await;
    assert!(live.iter().all(|m| m["replayed"] == false), "{live:?}");

    let all: Vec<Value> = [before, replayed, live].concat();
    assert_eq!(messages(&all).len(), all.len(), "only messages: {all:?}");
    assert_eq!(seqs(&all), (1..=20).collect::<Vec<_>>());
    for m in &all {
        assert_eq!(m["epoch"], epoch);
        assert_eq!(
            Some(m["seq"].as_u64().unwrap() as f64),
            m["data"]["price"].as_f64()
        );
    }
    let positions = sub.close().await;
    assert_eq!(positions, json!({"ticker:MSFT": [20, epoch]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_while_the_loop_is_behind_resumes_from_what_was_yielded_without_duplicates() {
    let server = TestServer::start(|_| {}).await;
    let proxy = Proxy::start(server.addr).await;
    let mut sub = PySubscriber::start(&[proxy.url()], &["ticker:AMD"]).await;
    sub.expect("connected").await;
    let epoch = sub.expect("subscribed").await["epoch"].clone();
    // The application is busy: it takes message 1 and holds it; 2..5 wait
    // in the subscriber, received but not yielded.
    sub.command(json!({"cmd": "pause"})).await;
    for i in 1..=5 {
        publish_price(&server, "AMD", f64::from(i)).await;
    }
    sub.until_pending(4).await;

    proxy.cut();
    for i in 6..=8 {
        publish_price(&server, "AMD", f64::from(i)).await;
    }
    proxy.open(server.addr);
    // Disconnected, Connected, Subscribed and the replay of everything after
    // the last yielded message (2..8) arrive behind the queued 2..5.
    sub.until_pending(4 + 3 + 7).await;
    sub.command(json!({"cmd": "resume"})).await;

    let events = sub.through_seq("ticker:AMD", 8).await;
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "message" => format!("{}", e["seq"]),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "1",
            "2",
            "3",
            "4",
            "5",
            "disconnected",
            "connected",
            "subscribed",
            "6",
            "7",
            "8"
        ]
    );
    let resumed = &events[7];
    assert_eq!(
        (&resumed["recovered"], &resumed["replayed"]),
        (&json!(true), &json!(7)),
        "resumed after seq 1, the last yielded: {resumed}"
    );
    assert!(messages(&events).iter().all(|m| m["epoch"] == epoch));
    let positions = sub.close().await;
    assert_eq!(positions, json!({"ticker:AMD": [8, epoch]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_past_the_retained_history_yields_the_gap_then_what_is_retained() {
    let server = TestServer::start(|c| c.rooms.history_size = 3).await;
    let proxy = Proxy::start(server.addr).await;
    let mut sub = PySubscriber::start(&[proxy.url()], &["ticker:TSLA"]).await;
    sub.expect("connected").await;
    let epoch = sub.expect("subscribed").await["epoch"].clone();
    for i in 1..=2 {
        publish_price(&server, "TSLA", f64::from(i)).await;
    }
    sub.through_seq("ticker:TSLA", 2).await;

    proxy.cut();
    sub.expect("disconnected").await;
    for i in 3..=10 {
        publish_price(&server, "TSLA", f64::from(i)).await;
    }
    proxy.open(server.addr);
    sub.expect("connected").await;
    let resumed = sub.expect("subscribed").await;
    assert_eq!(resumed["recovered"], false, "{resumed}");
    let gap = sub.expect("gap").await;
    assert_eq!(
        gap,
        json!({"event": "gap", "room": "ticker:TSLA", "epoch": epoch, "reason": "trimmed",
               "from_seq": 3, "to_seq": 7})
    );
    let retained = sub.through_seq("ticker:TSLA", 10).await;
    assert_eq!(seqs(&retained), [8, 9, 10]);
    assert_eq!(messages(&retained).len(), retained.len(), "{retained:?}");
    let positions = sub.close().await;
    assert_eq!(positions, json!({"ticker:TSLA": [10, epoch]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_without_its_history_yields_an_epoch_gap_and_the_new_lineage() {
    let first = TestServer::start(|_| {}).await;
    let proxy = Proxy::start(first.addr).await;
    let mut sub = PySubscriber::start(&[proxy.url()], &["ticker:NVDA"]).await;
    sub.expect("connected").await;
    let old_epoch = sub.expect("subscribed").await["epoch"].clone();
    publish_price(&first, "NVDA", 1.0).await;
    sub.through_seq("ticker:NVDA", 1).await;

    // The server goes away (draining: 1001) and another, with no history,
    // takes its place behind the same address.
    proxy.cut();
    first.shutdown().await.unwrap();
    sub.expect("disconnected").await;
    let second = TestServer::start(|_| {}).await;
    for price in [2.0, 3.0] {
        publish_price(&second, "NVDA", price).await;
    }
    proxy.open(second.addr);
    sub.expect("connected").await;
    let resumed = sub.expect("subscribed").await;
    assert_eq!(resumed["recovered"], false, "{resumed}");
    let new_epoch = resumed["epoch"].clone();
    assert_ne!(new_epoch, old_epoch);
    let gap = sub.expect("gap").await;
    assert_eq!(
        gap,
        json!({"event": "gap", "room": "ticker:NVDA", "epoch": new_epoch, "reason": "epoch",
               "from_seq": null, "to_seq": null})
    );
    // Seqs start again in the new lineage, and are not taken for duplicates.
    let lineage = sub.through_seq("ticker:NVDA", 2).await;
    assert_eq!(seqs(&lineage), [1, 2]);
    assert!(
        lineage
            .iter()
            .all(|m| m["epoch"] == new_epoch && m["replayed"] == true)
    );
    assert_eq!(lineage[0]["data"]["price"], 2.0);
    let positions = sub.close().await;
    assert_eq!(positions, json!({"ticker:NVDA": [2, new_epoch]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_a_node_killed_mid_stream_the_subscriber_resumes_on_the_other_with_every_seq_once() {
    let redis = RedisServer::start();
    let mut a = Node::start(&redis, "node-a", &[]).await;
    let b = Node::start(&redis, "node-b", &[]).await;
    a.wait_for("/ready", StatusCode::OK).await;
    b.wait_for("/ready", StatusCode::OK).await;
    let urls = [a.ws_url("/v1/ws"), b.ws_url("/v1/ws")];
    let mut sub = PySubscriber::start(&urls, &["ticker:FLT"]).await;
    assert_eq!(sub.expect("connected").await["node"], "node-a");
    sub.expect("subscribed").await;

    // Published through b, delivered to the subscriber on a.
    for i in 1..=20u32 {
        assert_eq!(publish_on(&b, "FLT", f64::from(i)).await, u64::from(i));
    }
    let mut events = sub.through_seq("ticker:FLT", 20).await;

    // Publishing goes on through b while a dies under the subscriber.
    let publisher = tokio::spawn(async move {
        for i in 21..=60u32 {
            assert_eq!(publish_on(&b, "FLT", f64::from(i)).await, u64::from(i));
        }
        b
    });
    a.kill();
    events.extend(sub.through_seq("ticker:FLT", 60).await);
    let _b = publisher.await.expect("publisher");

    let nodes: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "connected")
        .map(|e| &e["node"])
        .collect();
    assert_eq!(nodes, [&json!("node-b")], "{events:?}");
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] != "message")
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["disconnected", "connected", "subscribed"],
        "{events:?}"
    );
    let resumed = events.iter().find(|e| e["event"] == "subscribed").unwrap();
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert_eq!(seqs(&events), (1..=60).collect::<Vec<_>>());
    let epochs: std::collections::BTreeSet<String> = messages(&events)
        .iter()
        .map(|m| m["epoch"].to_string())
        .collect();
    assert_eq!(epochs.len(), 1, "one lineage: {epochs:?}");
    sub.close().await;
}
