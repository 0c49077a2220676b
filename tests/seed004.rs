//! Seed 004's trading stream on `/ws`, end to end with real clients (spec
//! §4, §5): the silent client auto-subscribed after the hold window (at once
//! with `?client_id=`) and greeted with the latest price batch and
//! portfolio; seed 002 clients on the same path never seeing a seed 004
//! frame; both families on one connection; per-channel narrowing and
//! widening; the exact error texts; `ROOMCAST_WS_PROTOCOL=seed002` and
//! `WEBSOCKET_ENABLED=false`; `GET /websocket/status`; the producer
//! endpoints `POST /websocket/broadcast/*`; the embedded paper account; and
//! the seed's own JavaScript client, run in Node.
//!
//! The streams are deterministic: the paper account is off
//! (`ROOMCAST_PAPER_TRADING=false`), so signals, executions and portfolios
//! come only from the producer endpoints, and prices only from
//! `POST /api/ws/broadcast/price`. Absence is proved with barriers, never
//! with time: a `{"type":"ping"}` is answered after everything queued
//! before it, so "nothing before the pong" means nothing was sent; and a
//! second client that saw a batch proves the batch went out.

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::key_set as set;
use common::*;
use futures_util::SinkExt;
use hyper::{Method, StatusCode};
use roomcast::Config;
use roomcast::seconds::Seconds;
use roomcast::sources::trading::WsProtocol;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{ChildStdout, Command};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Seed 004's `signal` example (L90-101), verbatim.
const SEED_SIGNAL: &str = r#"{
  "type": "signal",
  "signal_type": "BUY",
  "symbol": "AAPL",
  "price": 150.25,
  "quantity": 10,
  "confidence": 0.85,
  "timestamp": "2024-12-19T12:00:00Z"
}"#;

/// Seed 004's `trade_executed` example (L103-113), verbatim.
const SEED_TRADE: &str = r#"{
  "type": "trade_executed",
  "symbol": "AAPL",
  "side": "BUY",
  "quantity": 10,
  "price": 150.25,
  "timestamp": "2024-12-19T12:00:00Z"
}"#;

/// Seed 004's `portfolio_update` example (L115-136), verbatim.
const SEED_PORTFOLIO: &str = r#"{
  "type": "portfolio_update",
  "channel": "portfolio",
  "timestamp": "2024-12-19T12:00:00Z",
  "data": {
    "positions": {
      "AAPL": {
        "symbol": "AAPL",
        "quantity": 10,
        "average_price": 150.25,
        "market_price": 151.50,
        "unrealized_pnl": 12.50,
        "unrealized_pnl_pct": 0.83
      }
    },
    "total_pnl": 12.50,
    "position_count": 1
  }
}"#;

const SIGNAL_PATH: &str = "/websocket/broadcast/signal";
const TRADE_PATH: &str = "/websocket/broadcast/trade_executed";
const PORTFOLIO_PATH: &str = "/websocket/broadcast/portfolio_update";
const PRICE_PATH: &str = "/api/ws/broadcast/price";

/// The pong both families get, byte for byte.
const PONG: &str = r#"{"type":"pong"}"#;

/// Seed 004's four server message types.
const SEED004_TYPES: [&str; 4] = [
    "price_update",
    "signal",
    "trade_executed",
    "portfolio_update",
];

/// Deterministic streams: no paper account (the producer endpoints are the
/// only source of signals, executions and portfolios), quick price batches,
/// and a client message rate that is not under test.
fn external(c: &mut Config) {
    c.trading.paper_trading = false;
    c.trading.price_interval = Seconds::from_secs_f64(0.2);
    c.ws.client_msg_rate = 1000;
    c.ws.client_msg_burst = 1000;
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn kind(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

/// The symbols of a `price_update` batch.
fn symbols_of(batch: &Value) -> BTreeSet<String> {
    assert_eq!(kind(batch), "price_update", "{batch}");
    keys(&batch["symbols"])
}

/// Awaits `fut` for at most `bound`: a failure guard for waits that are
/// longer by nature than [`TIMEOUT`], not a threshold under test.
async fn within_for<F: Future>(bound: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(bound, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {bound:?} waiting for {what}"),
    }
}

// ---------------------------------------------------------------------------
// Producers
// ---------------------------------------------------------------------------

/// POSTs `body` to `path`; the reply must be 200.
async fn post_ok(server: &TestServer, path: &str, body: &str) -> Value {
    let (status, reply) = server.http_post(path, body).await;
    assert_eq!(status, StatusCode::OK, "POST {path} {body}: {reply}");
    reply
}

/// A seed 004 `signal` as the seed writes it.
fn signal(symbol: &str, side: &str, price: f64) -> Value {
    json!({"type": "signal", "signal_type": side, "symbol": symbol, "price": price,
           "quantity": 10, "confidence": 0.85, "timestamp": "2024-12-19T12:00:00Z"})
}

/// A seed 004 `trade_executed` as the seed writes it.
fn trade(symbol: &str, side: &str, price: f64) -> Value {
    json!({"type": "trade_executed", "symbol": symbol, "side": side, "quantity": 10,
           "price": price, "timestamp": "2024-12-19T12:00:00Z"})
}

/// A seed 004 `portfolio_update` with no positions and `total_pnl`.
fn portfolio(total_pnl: f64) -> Value {
    json!({"type": "portfolio_update", "channel": "portfolio", "timestamp": "2024-12-19T12:00:00Z",
           "data": {"positions": {}, "total_pnl": total_pnl, "position_count": 0}})
}

/// Publishes a seed 004 message through its producer endpoint.
async fn publish(server: &TestServer, message: &Value) {
    let path = match kind(message) {
        "signal" => SIGNAL_PATH,
        "trade_executed" => TRADE_PATH,
        "portfolio_update" => PORTFOLIO_PATH,
        other => panic!("not a seed 004 producer message: {other}"),
    };
    post_ok(server, path, &message.to_string()).await;
}

/// Publishes a seed 001 price with every field.
async fn quote(server: &TestServer, ticker: &str, price: f64) {
    let body = json!({"ticker": ticker, "price": price, "change": 0.5, "change_percent": 0.33,
                      "volume": 1_000_000, "high": price + 1.0, "low": price - 1.0,
                      "open_price": price});
    post_ok(server, PRICE_PATH, &body.to_string()).await;
}

/// Publishes seed 002's `backtest_start` for run `id` to topic `backtest`
/// (an external engine's event): the marker that ends what a test looks at.
async fn topic_event(server: &TestServer, id: &str) {
    let body = json!({"type": "backtest_start", "data": {"backtest_id": id, "symbol": "EURUSD"}});
    post_ok(server, "/api/v1/backtest/events", &body.to_string()).await;
}

/// Checks that `v` is run `id`'s `backtest_start`, in seed 002's `{type,data}`.
fn assert_topic_event(v: &Value, id: &str) {
    assert_eq!(keys(v), set(&["type", "data"]), "{v}");
    assert_eq!(v["type"], "backtest_start", "{v}");
    assert_eq!(v["data"]["backtest_id"], id, "{v}");
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// Sends `{"type":"ping"}`; returns every message before the pong, which
/// must be exactly `{"type":"pong"}`. Everything queued to the connection
/// before the ping was read is among them.
async fn sync<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Vec<Value> {
    send_json(ws, &json!({"type": "ping"})).await;
    within("the pong", async {
        let mut before = Vec::new();
        loop {
            let text = recv_text(ws).await;
            if text == PONG {
                return before;
            }
            before.push(parse(&text));
        }
    })
    .await
}

/// The next message of one of `types` (price batches, mostly, are skipped).
async fn next_of<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    types: &[&str],
) -> Value {
    recv_until(ws, |v| types.contains(&kind(v))).await
}

/// Skips messages until `expected` arrives.
async fn await_message<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    expected: &Value,
) {
    recv_until(ws, |v| v == expected).await;
}

/// The next message that is not a price batch.
async fn next_not_price<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    recv_until(ws, |v| kind(v) != "price_update").await
}

/// The next `price_update` batch.
async fn next_batch<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    next_of(ws, &["price_update"]).await
}

/// Sends a seed 004 control message that must succeed silently; returns
/// what arrived before the barrier's pong (greetings, earlier traffic),
/// none of it an error.
async fn change<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    message: Value,
) -> Vec<Value> {
    send_json(ws, &message).await;
    let before = sync(ws).await;
    assert!(
        before.iter().all(|v| kind(v) != "error"),
        "{message} was refused: {before:?}"
    );
    before
}

fn subscribe(channel: &str, symbols: Option<&[&str]>) -> Value {
    let mut m = json!({"type": "subscribe", "channel": channel});
    if let Some(symbols) = symbols {
        m["symbols"] = json!(symbols);
    }
    m
}

fn unsubscribe(channel: &str, symbols: Option<&[&str]>) -> Value {
    let mut m = subscribe(channel, symbols);
    m["type"] = json!("unsubscribe");
    m
}

/// Checks that `v` is exactly seed 004's error frame with `text`.
fn assert_error(v: &Value, text: &str) {
    assert_eq!(keys(v), set(&["type", "error", "timestamp"]), "{v}");
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"], text, "{v}");
    assert!(is_rfc3339(&v["timestamp"]), "{v}");
}

/// Sends `raw` as a text message; the only reply must be the error `text`,
/// and the connection must still answer a ping with exactly the pong.
async fn refused<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    raw: &str,
    text: &str,
) {
    within("sending a message", ws.send(Message::text(raw)))
        .await
        .expect("send");
    let replies = sync(ws).await;
    assert_eq!(replies.len(), 1, "{raw}: one reply expected: {replies:?}");
    assert_error(&replies[0], text);
}

/// Subscribes a `/ws` connection to seed 002's topic `backtest`; the next
/// message must be exactly the confirmation.
async fn subscribe_002<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    send_json(ws, &json!({"action": "subscribe", "topic": "backtest"})).await;
    assert_eq!(
        recv_json(ws).await,
        json!({"type": "subscription_confirmed", "topic": "backtest"})
    );
}

/// Opens `/ws?client_id=…` (auto-subscribed at once) and waits for a batch
/// holding exactly `symbols`: from then on, batches with them go out.
async fn watcher(server: &TestServer, symbols: &[&str]) -> Ws {
    let mut ws = server.ws_connect("/ws?client_id=watcher").await;
    let want = set(symbols);
    recv_until(&mut ws, |v| {
        kind(v) == "price_update" && symbols_of(v) == want
    })
    .await;
    ws
}

// ---------------------------------------------------------------------------
// The silent client, the hold window, client_id
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_on_bare_ws_is_greeted_then_gets_all_four_streams_in_the_seeds_shapes() {
    let server = TestServer::start(external).await;
    post_ok(&server, PRICE_PATH, SEED_PRICE_BODY).await;
    quote(&server, "MSFT", 380.5).await;
    post_ok(&server, PORTFOLIO_PATH, SEED_PORTFOLIO).await;
    // A batch of both quotes has gone out, so it is the latest batch.
    let _watcher = watcher(&server, &["AAPL", "MSFT"]).await;

    let mut ws = server.ws_connect("/ws").await;
    // It sends nothing. After the hold window it is auto-subscribed, and
    // greeted before anything else: the latest batch (queued as the price
    // room is joined, so it comes first), then the latest portfolio, which
    // only the greeting can deliver (nothing is posted meanwhile).
    let greeting = recv_json(&mut ws).await;
    assert_eq!(keys(&greeting), set(&["type", "symbols", "timestamp"]));
    assert_eq!(symbols_of(&greeting), set(&["AAPL", "MSFT"]), "{greeting}");
    assert!(is_rfc3339(&greeting["timestamp"]), "{greeting}");
    // Seed 001's curl example, in seed 004's names.
    assert_eq!(
        greeting["symbols"]["AAPL"],
        json!({"price": 150.25, "change": 2.5, "change_pct": 1.69, "volume": 75_000_000,
               "high": 151.0, "low": 148.5, "open": 149.0, "close": 150.25})
    );
    assert!(greeting["symbols"]["AAPL"]["volume"].is_u64(), "{greeting}");
    assert_eq!(
        next_not_price(&mut ws).await,
        parse(SEED_PORTFOLIO),
        "the latest portfolio, exactly as published"
    );

    // Then every stream, flat as the seed shows them (the portfolio alone has `data`).
    post_ok(&server, SIGNAL_PATH, SEED_SIGNAL).await;
    post_ok(&server, TRADE_PATH, SEED_TRADE).await;
    publish(&server, &portfolio(0.0)).await;
    assert_eq!(next_not_price(&mut ws).await, parse(SEED_SIGNAL));
    assert_eq!(next_not_price(&mut ws).await, parse(SEED_TRADE));
    assert_eq!(next_not_price(&mut ws).await, portfolio(0.0));
    // And the batches keep coming, every interval, each the whole set.
    for _ in 0..2 {
        let batch = next_batch(&mut ws).await;
        assert_eq!(symbols_of(&batch), set(&["AAPL", "MSFT"]), "{batch}");
        for entry in batch["symbols"].as_object().unwrap().values() {
            assert_eq!(
                keys(entry),
                set(&[
                    "price",
                    "change",
                    "change_pct",
                    "volume",
                    "high",
                    "low",
                    "open",
                    "close"
                ]),
                "{batch}"
            );
            assert_eq!(entry["close"], entry["price"], "{batch}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_subscribes_at_once_while_a_bare_client_is_still_in_its_hold_window() {
    // A 30 s window: whatever a client gets within this test, it did not get by waiting it out.
    let server = TestServer::start(|c| {
        external(c);
        c.trading.auto_subscribe_delay = 30.0;
    })
    .await;
    post_ok(&server, PORTFOLIO_PATH, SEED_PORTFOLIO).await;

    let mut bare = server.ws_connect("/ws").await;
    let mut first = server.ws_connect("/ws?client_id=abc").await;
    // A duplicate client_id is another, independent connection.
    let mut second = server.ws_connect("/ws?client_id=abc").await;
    for ws in [&mut first, &mut second] {
        assert_eq!(
            recv_json(ws).await,
            parse(SEED_PORTFOLIO),
            "greeted at once"
        );
    }
    // Unparsable input is answered and leaves the window running (a
    // `{"type":"ping"}` would end it): the error is the bare client's first
    // message, so it was not greeted.
    within("send", bare.send(Message::text("hello")))
        .await
        .expect("send");
    assert_error(&recv_json(&mut bare).await, "Invalid message format");

    post_ok(&server, SIGNAL_PATH, SEED_SIGNAL).await;
    for ws in [&mut first, &mut second] {
        assert_eq!(next_not_price(ws).await, parse(SEED_SIGNAL));
    }
    // The signal reached the others, not the bare client.
    within("send", bare.send(Message::text("hello")))
        .await
        .expect("send");
    assert_error(&recv_json(&mut bare).await, "Invalid message format");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_client_id_gets_400_naming_client_id() {
    let server = TestServer::start(external).await;
    let long = "c".repeat(129);
    for bad in ["", "a%20b", "x%2Fy", "%C3%A9", "a;b", &long] {
        let (status, body) = server
            .ws_upgrade_refused(&format!("/ws?client_id={bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(body["field"], "client_id", "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let longest = "c".repeat(128);
    let mut ws = server
        .ws_connect(&format!("/ws?client_id={longest}&unknown=1"))
        .await;
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());
}

// ---------------------------------------------------------------------------
// Seeds 002 and 004 on one path
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed002_client_subscribing_within_the_hold_window_never_sees_a_seed004_frame() {
    // A 10 s window: the subscribe certainly arrives within it.
    let server = TestServer::start(|c| {
        external(c);
        c.trading.auto_subscribe_delay = 10.0;
    })
    .await;
    quote(&server, "AAPL", 150.0).await;
    publish(&server, &portfolio(1.0)).await;
    let mut watcher = watcher(&server, &["AAPL"]).await;

    let mut ui = server.ws_connect("/ws").await;
    subscribe_002(&mut ui).await;

    // Every seed 004 stream goes out after the subscribe (MSFT is quoted
    // only now, so a batch with it is one of these).
    post_ok(&server, SIGNAL_PATH, SEED_SIGNAL).await;
    post_ok(&server, TRADE_PATH, SEED_TRADE).await;
    publish(&server, &portfolio(2.0)).await;
    quote(&server, "MSFT", 380.0).await;
    await_message(&mut watcher, &parse(SEED_SIGNAL)).await;
    await_message(&mut watcher, &parse(SEED_TRADE)).await;
    await_message(&mut watcher, &portfolio(2.0)).await;
    recv_until(&mut watcher, |v| {
        kind(v) == "price_update" && symbols_of(v).contains("MSFT")
    })
    .await;

    topic_event(&server, "ext-004-hold").await;
    // The first thing after the confirmation is the topic's event.
    assert_topic_event(&recv_json(&mut ui).await, "ext-004-hold");
    // And a seed 002 ping is still a bare pong.
    send_json(&mut ui, &json!({"action": "ping"})).await;
    assert_eq!(recv_text(&mut ui).await, PONG);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed002_action_after_auto_subscription_undoes_it() {
    let server = TestServer::start(external).await;
    quote(&server, "AAPL", 150.0).await;
    publish(&server, &portfolio(1.0)).await;
    let mut watcher = watcher(&server, &["AAPL"]).await;

    // Auto-subscribed at once (client_id), as its greeting shows.
    let mut late = server.ws_connect("/ws?client_id=late-ui").await;
    assert_eq!(next_not_price(&mut late).await, portfolio(1.0));
    // Its first action cancels the auto-subscription; seed 004 frames
    // queued before it may precede the confirmation.
    send_json(
        &mut late,
        &json!({"action": "subscribe", "topic": "backtest"}),
    )
    .await;
    let confirmation = json!({"type": "subscription_confirmed", "topic": "backtest"});
    let before = within("the confirmation", async {
        let mut before = Vec::new();
        loop {
            let v = recv_json(&mut late).await;
            if v == confirmation {
                return before;
            }
            before.push(v);
        }
    })
    .await;
    assert!(
        before.iter().all(|v| SEED004_TYPES.contains(&kind(v))),
        "{before:?}"
    );

    post_ok(&server, SIGNAL_PATH, SEED_SIGNAL).await;
    post_ok(&server, TRADE_PATH, SEED_TRADE).await;
    publish(&server, &portfolio(2.0)).await;
    quote(&server, "MSFT", 380.0).await;
    await_message(&mut watcher, &parse(SEED_SIGNAL)).await;
    await_message(&mut watcher, &parse(SEED_TRADE)).await;
    await_message(&mut watcher, &portfolio(2.0)).await;
    recv_until(&mut watcher, |v| {
        kind(v) == "price_update" && symbols_of(v).contains("MSFT")
    })
    .await;

    topic_event(&server, "ext-004-late").await;
    assert_topic_event(&recv_json(&mut late).await, "ext-004-late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed002_ping_within_the_hold_window_cancels_auto_subscription_too() {
    let server = TestServer::start(|c| {
        external(c);
        c.trading.auto_subscribe_delay = 1.0;
    })
    .await;
    publish(&server, &portfolio(1.0)).await;
    let mut ui = server.ws_connect("/ws").await;
    let mut silent = server.ws_connect("/ws").await;
    send_json(&mut ui, &json!({"action": "ping"})).await;
    assert_eq!(recv_text(&mut ui).await, PONG);
    // The silent client, whose window opened later, is greeted: the UI's
    // window is over too, and it brought nothing.
    assert_eq!(next_not_price(&mut silent).await, portfolio(1.0));
    publish(&server, &signal("AAPL", "BUY", 150.0)).await;
    assert_eq!(
        next_not_price(&mut silent).await,
        signal("AAPL", "BUY", 150.0)
    );
    send_json(&mut ui, &json!({"action": "ping"})).await;
    assert_eq!(recv_text(&mut ui).await, PONG);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed002_client_and_a_silent_seed004_client_share_ws_each_getting_only_its_own() {
    // A 3 s window: the seed 002 client certainly subscribes within it, and
    // the silent one's greeting comes when it ends.
    let server = TestServer::start(|c| {
        external(c);
        c.trading.auto_subscribe_delay = 3.0;
    })
    .await;
    publish(&server, &portfolio(1.0)).await;
    quote(&server, "AAPL", 150.0).await;

    let mut trader = server.ws_connect("/ws").await;
    let mut ui = server.ws_connect("/ws").await;
    subscribe_002(&mut ui).await;
    // The silent one is auto-subscribed when its window ends: its greeting.
    assert_eq!(next_not_price(&mut trader).await, portfolio(1.0));

    publish(&server, &signal("AAPL", "BUY", 150.0)).await;
    topic_event(&server, "ext-004-both").await;
    publish(&server, &signal("MSFT", "SELL", 380.0)).await;

    assert_eq!(
        next_not_price(&mut trader).await,
        signal("AAPL", "BUY", 150.0)
    );
    assert_eq!(
        next_not_price(&mut trader).await,
        signal("MSFT", "SELL", 380.0),
        "no topic event in between"
    );
    // The trader's batches keep coming; the UI's first message is its event.
    assert_eq!(symbols_of(&next_batch(&mut trader).await), set(&["AAPL"]));
    assert_topic_event(&recv_json(&mut ui).await, "ext-004-both");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_holds_a_seed002_topic_and_explicit_seed004_channels_together() {
    let server = TestServer::start(external).await;
    publish(&server, &portfolio(1.0)).await;

    let mut ws = server.ws_connect("/ws").await;
    // A seed 004 subscribe ends the hold window (auto-subscription, then
    // the narrowing); a seed 002 subscribe then cancels the
    // auto-subscription, keeping the channel the client chose.
    send_json(&mut ws, &subscribe("signals", Some(&["AAPL"]))).await;
    send_json(
        &mut ws,
        &json!({"action": "subscribe", "topic": "backtest"}),
    )
    .await;
    let confirmation = json!({"type": "subscription_confirmed", "topic": "backtest"});
    recv_until(&mut ws, |v| *v == confirmation).await;

    // Of these, only the AAPL signals and the topic event are for it.
    quote(&server, "AAPL", 150.0).await;
    let _watcher = watcher(&server, &["AAPL"]).await;
    publish(&server, &signal("MSFT", "BUY", 380.0)).await;
    publish(&server, &signal("AAPL", "BUY", 150.0)).await;
    publish(&server, &trade("AAPL", "BUY", 150.0)).await;
    publish(&server, &portfolio(2.0)).await;
    topic_event(&server, "ext-004-one").await;
    publish(&server, &signal("AAPL", "SELL", 151.0)).await;

    assert_eq!(recv_json(&mut ws).await, signal("AAPL", "BUY", 150.0));
    assert_topic_event(&recv_json(&mut ws).await, "ext-004-one");
    assert_eq!(recv_json(&mut ws).await, signal("AAPL", "SELL", 151.0));
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());
}

// ---------------------------------------------------------------------------
// Narrowing and widening, per channel
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_and_widening_prices_changes_the_next_batches_and_leaves_other_channels_alone() {
    let server = TestServer::start(external).await;
    for (ticker, price) in [("AAPL", 150.0), ("MSFT", 380.0), ("TSLA", 250.0)] {
        quote(&server, ticker, price).await;
    }
    let all = ["AAPL", "MSFT", "TSLA"];
    let mut ws = server.ws_connect("/ws?client_id=narrow").await;
    recv_until(&mut ws, |v| {
        kind(v) == "price_update" && symbols_of(v) == set(&all)
    })
    .await;

    let steps: [(Value, &[&str]); 4] = [
        // The first subscribe replaces "all" with its set.
        (subscribe("price_updates", Some(&["AAPL"])), &["AAPL"]),
        // Later ones add to it.
        (
            subscribe("price_updates", Some(&["msft"])),
            &["AAPL", "MSFT"],
        ),
        // One without symbols means all of them.
        (subscribe("price_updates", None), &all),
        // Unsubscribing symbols from "all" leaves the other quoted ones.
        (
            unsubscribe("price_updates", Some(&["AAPL"])),
            &["MSFT", "TSLA"],
        ),
    ];
    for (message, expected) in steps {
        change(&mut ws, message.clone()).await;
        for _ in 0..2 {
            let batch = next_batch(&mut ws).await;
            assert_eq!(
                symbols_of(&batch),
                set(expected),
                "after {message}: {batch}"
            );
        }
    }

    // Unsubscribing without symbols drops the channel, and only it.
    let mut control = server.ws_connect("/ws?client_id=control").await;
    change(&mut ws, unsubscribe("price_updates", None)).await;
    // A batch goes out after the unsubscribe: the control client's pong
    // follows everything queued before, and the batch after it is newer.
    sync(&mut control).await;
    next_batch(&mut control).await;
    publish(&server, &signal("TSLA", "BUY", 250.0)).await;
    publish(&server, &portfolio(3.0)).await;
    assert_eq!(
        sync(&mut ws).await,
        vec![signal("TSLA", "BUY", 250.0), portfolio(3.0)],
        "signals and the portfolio continue, prices do not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_and_trades_narrowed_to_a_symbol_get_only_that_symbols_messages() {
    let server = TestServer::start(external).await;
    let mut ws = server.ws_connect("/ws?client_id=narrow").await;
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());
    // Subscribing and unsubscribing are silent: the seed has no confirmations.
    for message in [
        subscribe("signals", Some(&["aapl"])),
        subscribe("trades", Some(&["MSFT", "TSLA"])),
        unsubscribe("trades", Some(&["TSLA"])),
        // The portfolio has one account: symbols change nothing.
        subscribe("portfolio", Some(&["NVDA"])),
    ] {
        assert_eq!(change(&mut ws, message).await, Vec::<Value>::new());
    }

    publish(&server, &signal("MSFT", "BUY", 380.0)).await;
    publish(&server, &signal("AAPL", "BUY", 150.0)).await;
    publish(&server, &trade("AAPL", "BUY", 150.0)).await;
    publish(&server, &trade("TSLA", "BUY", 250.0)).await;
    publish(&server, &trade("MSFT", "SELL", 381.0)).await;
    publish(&server, &portfolio(4.0)).await;
    assert_eq!(
        sync(&mut ws).await,
        vec![
            signal("AAPL", "BUY", 150.0),
            trade("MSFT", "SELL", 381.0),
            portfolio(4.0)
        ]
    );

    // Unsubscribing from everything leaves only pongs and errors.
    for channel in ["price_updates", "signals", "trades", "portfolio"] {
        change(&mut ws, unsubscribe(channel, None)).await;
    }
    quote(&server, "AAPL", 150.0).await;
    let _watcher = watcher(&server, &["AAPL"]).await;
    publish(&server, &signal("AAPL", "SELL", 151.0)).await;
    publish(&server, &trade("MSFT", "BUY", 380.0)).await;
    publish(&server, &portfolio(5.0)).await;
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());
    refused(&mut ws, "{}", "Invalid message format").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_with_equal_symbol_sets_get_the_same_batch() {
    let server = TestServer::start(external).await;
    for (ticker, price) in [("AAPL", 150.0), ("MSFT", 380.0), ("TSLA", 250.0)] {
        quote(&server, ticker, price).await;
    }
    let mut a = server.ws_connect("/ws?client_id=a").await;
    let mut b = server.ws_connect("/ws?client_id=b").await;
    change(&mut a, subscribe("price_updates", Some(&["AAPL", "MSFT"]))).await;
    change(
        &mut b,
        subscribe("price_updates", Some(&["msft", "AAPL", "MSFT"])),
    )
    .await;
    let batch = recv_text(&mut a).await;
    assert_eq!(
        symbols_of(&parse(&batch)),
        set(&["AAPL", "MSFT"]),
        "{batch}"
    );
    // B's batches are in order: it reaches the same one, byte for byte.
    recv_until(&mut b, |v| *v == parse(&batch)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbol_with_no_quote_is_accepted_and_appears_once_quoted() {
    let server = TestServer::start(external).await;
    quote(&server, "AAPL", 150.0).await;
    let mut ws = server.ws_connect("/ws?client_id=early").await;
    change(&mut ws, subscribe("price_updates", Some(&["NVDA"]))).await;
    quote(&server, "NVDA", 180.0).await;
    // Batches are never empty: the first one holds NVDA.
    let batch = next_batch(&mut ws).await;
    assert_eq!(symbols_of(&batch), set(&["NVDA"]), "{batch}");
    assert_eq!(batch["symbols"]["NVDA"]["price"], 180.0, "{batch}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holds_each_symbols_latest_http_published_quote() {
    let server = TestServer::start(external).await;
    quote(&server, "AAPL", 150.0).await;
    quote(&server, "BTC-USD", 65_000.5).await;
    let mut ws = server.ws_connect("/ws?client_id=q").await;
    recv_until(&mut ws, |v| {
        kind(v) == "price_update" && symbols_of(v) == set(&["AAPL", "BTC-USD"])
    })
    .await;
    quote(&server, "AAPL", 151.5).await;
    let batch = recv_until(&mut ws, |v| {
        kind(v) == "price_update" && v["symbols"]["AAPL"]["price"] == 151.5
    })
    .await;
    assert_eq!(
        batch["symbols"]["AAPL"],
        json!({"price": 151.5, "change": 0.5, "change_pct": 0.33, "volume": 1_000_000,
               "high": 152.5, "low": 150.5, "open": 151.5, "close": 151.5})
    );
    assert_eq!(batch["symbols"]["BTC-USD"]["price"], 65_000.5, "{batch}");
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_exact_error_and_the_connection_stays_open() {
    let server = TestServer::start(external).await;
    let mut ws = server.ws_connect("/ws?client_id=bad").await;
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());

    for raw in [
        "not json",
        "{",
        "[]",
        "42",
        "null",
        "\"ping\"",
        "{}",
        r#"{"type":5}"#,
    ] {
        refused(&mut ws, raw, "Invalid message format").await;
    }
    refused(&mut ws, r#"{"type":"x"}"#, "Unknown message type: x").await;
    refused(
        &mut ws,
        r#"{"type":"subscribe","channel":"x"}"#,
        "Invalid channel: x",
    )
    .await;
    refused(
        &mut ws,
        r#"{"type":"unsubscribe","channel":"orders","symbols":["AAPL"]}"#,
        "Invalid channel: orders",
    )
    .await;
    refused(
        &mut ws,
        r#"{"type":"subscribe","channel":"price_updates","symbols":["AAPL","x y"]}"#,
        "Invalid symbol: x y",
    )
    .await;
    refused(
        &mut ws,
        r#"{"type":"subscribe","channel":"signals","symbols":["MSFT","bad!"]}"#,
        "Invalid symbol: bad!",
    )
    .await;
    let many: Vec<String> = (0..257).map(|i| format!("S{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    refused(
        &mut ws,
        &subscribe("price_updates", Some(&many)).to_string(),
        "Subscription limit reached",
    )
    .await;

    // None of them had any effect: every channel still delivers everything.
    quote(&server, "AAPL", 150.0).await;
    quote(&server, "MSFT", 380.0).await;
    let batch = recv_until(&mut ws, |v| {
        kind(v) == "price_update" && symbols_of(v).len() == 2
    })
    .await;
    assert_eq!(symbols_of(&batch), set(&["AAPL", "MSFT"]));
    publish(&server, &signal("MSFT", "BUY", 380.0)).await;
    assert_eq!(next_not_price(&mut ws).await, signal("MSFT", "BUY", 380.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_symbol_set_beyond_the_price_feed_cap_is_refused_and_an_existing_one_is_shared() {
    let server = TestServer::start(|c| {
        external(c);
        c.trading.max_price_feeds = 2;
    })
    .await;
    let mut a = server.ws_connect("/ws?client_id=a").await;
    let mut b = server.ws_connect("/ws?client_id=b").await;
    let mut c = server.ws_connect("/ws?client_id=c").await;
    change(&mut a, subscribe("price_updates", Some(&["AAPL"]))).await;
    change(&mut b, subscribe("price_updates", Some(&["MSFT"]))).await;
    let refused_text = "Too many distinct symbol sets on this server";
    refused(
        &mut c,
        &subscribe("price_updates", Some(&["TSLA"])).to_string(),
        refused_text,
    )
    .await;
    refused(
        &mut c,
        &subscribe("price_updates", Some(&["AAPL", "MSFT"])).to_string(),
        refused_text,
    )
    .await;
    // A set already served is shared.
    change(&mut c, subscribe("price_updates", Some(&["aapl"]))).await;
    quote(&server, "AAPL", 150.0).await;
    let batch = next_batch(&mut c).await;
    assert_eq!(symbols_of(&batch), set(&["AAPL"]), "{batch}");
    // "All symbols" is not a set: always available.
    change(&mut c, subscribe("price_updates", None)).await;
    // At the cap, a set's only holder may still move to a new set: its
    // old one is freed as the new one is taken. A shared set frees nothing.
    change(&mut b, subscribe("price_updates", Some(&["TSLA"]))).await;
    quote(&server, "MSFT", 300.0).await;
    quote(&server, "TSLA", 200.0).await;
    let batch = next_batch(&mut b).await;
    assert_eq!(symbols_of(&batch), set(&["MSFT", "TSLA"]), "{batch}");
    change(&mut c, unsubscribe("price_updates", None)).await;
    change(&mut c, subscribe("price_updates", Some(&["AAPL"]))).await;
    refused(
        &mut c,
        &subscribe("price_updates", Some(&["NVDA"])).to_string(),
        refused_text,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connections_symbol_set_is_freed_for_others() {
    let server = TestServer::start(|c| {
        external(c);
        c.trading.max_price_feeds = 1;
    })
    .await;
    let mut a = server.ws_connect("/ws?client_id=a").await;
    let mut b = server.ws_connect("/ws?client_id=b").await;
    change(&mut a, subscribe("price_updates", Some(&["AAPL"]))).await;
    refused(
        &mut b,
        &subscribe("price_updates", Some(&["MSFT"])).to_string(),
        "Too many distinct symbol sets on this server",
    )
    .await;
    drop(a);
    // The server notices the close in its own time: ask until the set is free.
    within("the closed connection's set to be freed", async {
        loop {
            send_json(&mut b, &subscribe("price_updates", Some(&["MSFT"]))).await;
            let replies = sync(&mut b).await;
            if replies.is_empty() {
                return;
            }
            assert_eq!(replies.len(), 1, "{replies:?}");
            assert_error(&replies[0], "Too many distinct symbol sets on this server");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    quote(&server, "MSFT", 380.0).await;
    assert_eq!(symbols_of(&next_batch(&mut b).await), set(&["MSFT"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_narrowing_that_ends_within_the_subscription_cap_is_accepted() {
    // Auto-subscription holds 4 rooms. Narrowing signals to 5 symbols ends
    // with 3 + 5 = 8 rooms, within the cap of 8.
    let server = TestServer::start(|c| {
        external(c);
        c.ws.max_subscriptions = 8;
    })
    .await;
    let mut ws = server.ws_connect("/ws?client_id=cap").await;
    change(
        &mut ws,
        subscribe("signals", Some(&["AAPL", "MSFT", "TSLA", "NVDA", "AMZN"])),
    )
    .await;
    publish(&server, &signal("AMZN", "BUY", 180.0)).await;
    assert_eq!(next_not_price(&mut ws).await, signal("AMZN", "BUY", 180.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbol_rooms_beyond_the_subscription_cap_are_refused_and_nothing_changes() {
    let server = TestServer::start(|c| {
        external(c);
        c.ws.max_subscriptions = 8;
    })
    .await;
    let mut ws = server.ws_connect("/ws?client_id=cap").await;
    refused(
        &mut ws,
        &subscribe(
            "signals",
            Some(&["AAPL", "MSFT", "TSLA", "NVDA", "AMZN", "META", "GOOGL"]),
        )
        .to_string(),
        "Subscription limit reached",
    )
    .await;
    // Still subscribed to every signal.
    publish(&server, &signal("NFLX", "BUY", 600.0)).await;
    assert_eq!(sync(&mut ws).await, vec![signal("NFLX", "BUY", 600.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_gets_rate_limit_errors_then_4029_and_another_client_is_unaffected() {
    let server = TestServer::start(|c| {
        c.trading.paper_trading = false;
        c.ws.client_msg_rate = 10;
        c.ws.client_msg_burst = 10;
        c.ws.client_msg_hard_limit = 20;
    })
    .await;
    let mut bystander = server.ws_connect("/ws?client_id=calm").await;
    let mut ws = server.ws_connect("/ws?client_id=flood").await;
    for _ in 0..100 {
        ws.feed(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    }
    // The server may close (and stop reading) before every ping is written.
    let _ = ws.flush().await;

    let closed = recv_close_collect(&mut ws).await;
    assert_eq!(closed.code, 4029, "{closed:?}");
    let pongs = closed.texts.iter().filter(|t| *t == PONG).count();
    let errors: Vec<Value> = closed
        .texts
        .iter()
        .filter(|t| *t != PONG)
        .map(|t| parse(t))
        .collect();
    assert_eq!(closed.texts[0], PONG, "the burst is served first");
    assert!(pongs >= 10, "the burst of 10 is served: {pongs} pongs");
    assert!(errors.len() >= 20, "{} errors", errors.len());
    for e in &errors {
        assert_error(
            e,
            "Rate limit exceeded: at most 10 messages per second; message ignored",
        );
    }
    assert!(closed.texts.len() < 100, "the flood was cut short");

    assert_eq!(sync(&mut bystander).await, Vec::<Value>::new());
}

// ---------------------------------------------------------------------------
// ROOMCAST_WS_PROTOCOL, WEBSOCKET_ENABLED, the connection cap
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ws_protocol_seed002_nothing_is_auto_subscribed_but_explicit_channels_work() {
    let server = TestServer::start(|c| {
        external(c);
        c.trading.ws_protocol = WsProtocol::Seed002;
        // Under `auto` this would subscribe at once.
        c.trading.auto_subscribe_delay = 0.0;
    })
    .await;
    publish(&server, &portfolio(1.0)).await;
    for path in ["/ws", "/ws?client_id=abc"] {
        let mut ws = server.ws_connect(path).await;
        // No greeting, and a seed 004 message does not subscribe either.
        assert_eq!(sync(&mut ws).await, Vec::<Value>::new(), "{path}");
        publish(&server, &signal("AAPL", "BUY", 150.0)).await;
        assert_eq!(sync(&mut ws).await, Vec::<Value>::new(), "{path}");
        // An explicit subscribe does: greeted with the latest portfolio.
        assert_eq!(
            change(&mut ws, subscribe("portfolio", None)).await,
            vec![portfolio(1.0)],
            "{path}"
        );
        subscribe_002(&mut ws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_websocket_enabled_false_seed004_is_off_and_seed002_still_works() {
    let server = TestServer::start(|c| {
        external(c);
        c.trading.enabled = false;
        c.trading.auto_subscribe_delay = 0.0;
    })
    .await;
    let (status, body) = server.http_post(SIGNAL_PATH, SEED_SIGNAL).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    quote(&server, "AAPL", 150.0).await;

    let mut ws = server.ws_connect("/ws?client_id=abc").await;
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());
    for message in [
        subscribe("signals", None),
        unsubscribe("price_updates", Some(&["AAPL"])),
    ] {
        refused(
            &mut ws,
            &message.to_string(),
            "WebSocket streaming is disabled",
        )
        .await;
    }
    subscribe_002(&mut ws).await;
    topic_event(&server, "ext-004-off").await;
    assert_topic_event(&recv_json(&mut ws).await, "ext-004-off");

    let (status, body) = server.http_get("/websocket/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["enabled"], false, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_websocket_max_connections_the_upgrade_gets_503_with_max_connections() {
    let server = TestServer::start(|c| {
        external(c);
        c.ws.max_connections = 1;
    })
    .await;
    let mut ws = server.ws_connect("/ws").await;
    let (status, body) = server.ws_upgrade_refused("/ws?client_id=second").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body,
        json!({"error": "connection limit reached", "max_connections": 1})
    );
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());
}

// ---------------------------------------------------------------------------
// GET /websocket/status
// ---------------------------------------------------------------------------

/// `GET /websocket/status`, checked for exactly the seed's keys.
async fn websocket_status(server: &TestServer) -> Value {
    let (status, body) = server.http_get("/websocket/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        keys(&body),
        set(&[
            "enabled",
            "active_connections",
            "max_connections",
            "ping_interval",
            "price_update_interval",
            "portfolio_update_interval",
            "stream_health"
        ]),
        "{body}"
    );
    assert!(body["enabled"].is_boolean(), "{body}");
    assert!(body["active_connections"].is_u64(), "{body}");
    assert!(body["max_connections"].is_u64(), "{body}");
    let health = &body["stream_health"];
    assert_eq!(
        keys(health),
        set(&["price_updates", "signals", "trades", "portfolio"]),
        "{body}"
    );
    for (name, stream) in health.as_object().unwrap() {
        assert_eq!(
            keys(stream),
            set(&[
                "last_update",
                "error_count",
                "recovery_attempts",
                "is_healthy",
                "started_at"
            ]),
            "{name}: {body}"
        );
        for time in ["last_update", "started_at"] {
            assert!(
                stream[time].is_null() || is_rfc3339(&stream[time]),
                "{name}.{time}: {body}"
            );
        }
        assert!(stream["error_count"].is_u64(), "{name}: {body}");
        assert!(stream["recovery_attempts"].is_u64(), "{name}: {body}");
        assert!(stream["is_healthy"].is_boolean(), "{name}: {body}");
    }
    body
}

/// Polls `/websocket/status` until `pred` holds (each poll a fresh request).
async fn status_until(server: &TestServer, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    within(what, async {
        loop {
            let body = websocket_status(server).await;
            if pred(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_status_has_exactly_the_seeds_keys_and_counts_open_connections() {
    let server = TestServer::start(|_| {}).await;
    let body = websocket_status(&server).await;
    assert_eq!(body["enabled"], true);
    assert_eq!(body["active_connections"], 0, "{body}");
    assert_eq!(body["max_connections"], 20_000, "{body}");
    // The defaults, whole seconds as integers (`30`, not `30.0`).
    for (key, seconds) in [
        ("ping_interval", 20),
        ("price_update_interval", 3),
        ("portfolio_update_interval", 5),
    ] {
        assert!(body[key].is_u64(), "{key}: {body}");
        assert_eq!(body[key], seconds, "{key}: {body}");
    }

    // Every WebSocket connection counts, whichever path.
    let _ws = server.ws_connect("/ws").await;
    let seed001 = server.connect_001().await;
    status_until(&server, "2 connections", |b| b["active_connections"] == 2).await;
    drop(seed001);
    status_until(&server, "1 connection", |b| b["active_connections"] == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_status_reports_effective_intervals_and_the_streams_last_updates() {
    let server = TestServer::start(|c| {
        external(c);
        c.trading.portfolio_interval = Seconds::from_secs_f64(1.5);
        c.ws.websocket_ping_interval = Some(Seconds::from_secs(30));
        c.ws.max_connections = 100;
    })
    .await;
    let body = websocket_status(&server).await;
    assert_eq!(body["max_connections"], 100, "{body}");
    assert_eq!(body["ping_interval"], json!(30), "seed 004's name: {body}");
    assert_eq!(body["price_update_interval"], json!(0.2), "{body}");
    assert_eq!(body["portfolio_update_interval"], json!(1.5), "{body}");
    // With the account off, its streams are the producer endpoints': open, quiet.
    assert!(body["stream_health"]["signals"]["last_update"].is_null());
    assert!(body["stream_health"]["signals"]["started_at"].is_string());
    assert_eq!(body["stream_health"]["signals"]["is_healthy"], true);

    post_ok(&server, SIGNAL_PATH, SEED_SIGNAL).await;
    let body = websocket_status(&server).await;
    assert!(
        is_rfc3339(&body["stream_health"]["signals"]["last_update"]),
        "{body}"
    );
    assert!(body["stream_health"]["trades"]["last_update"].is_null());
    quote(&server, "AAPL", 150.0).await;
    status_until(&server, "a price batch recorded", |b| {
        let prices = &b["stream_health"]["price_updates"];
        is_rfc3339(&prices["last_update"]) && prices["is_healthy"] == true
    })
    .await;
}

// ---------------------------------------------------------------------------
// Producer endpoints
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_endpoints_refuse_bad_bodies_naming_the_field_and_publish_nothing() {
    let server = TestServer::start(external).await;
    let mut ws = server.ws_connect("/ws?client_id=listener").await;
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());

    let cases: [(&str, &str, &str); 14] = [
        (
            SIGNAL_PATH,
            r#"{"signal_type":"HOLD","symbol":"AAPL","price":1}"#,
            "signal_type",
        ),
        (SIGNAL_PATH, r#"{"signal_type":"BUY","price":1}"#, "symbol"),
        (
            SIGNAL_PATH,
            r#"{"signal_type":"BUY","symbol":"A B","price":1}"#,
            "symbol",
        ),
        (
            SIGNAL_PATH,
            r#"{"signal_type":"BUY","symbol":"AAPL","price":"1"}"#,
            "price",
        ),
        (
            SIGNAL_PATH,
            r#"{"signal_type":"BUY","symbol":"AAPL","price":1,"confidence":"high"}"#,
            "confidence",
        ),
        (
            SIGNAL_PATH,
            r#"{"signal_type":"BUY","symbol":"AAPL","price":1,"timestamp":"soon"}"#,
            "timestamp",
        ),
        (SIGNAL_PATH, SEED_TRADE, "type"),
        (
            SIGNAL_PATH,
            &format!("[{SEED_SIGNAL}, {{\"signal_type\":\"BUY\",\"price\":1}}]"),
            "[1].symbol",
        ),
        (SIGNAL_PATH, "[]", "(body)"),
        (
            TRADE_PATH,
            r#"{"side":"BUY","symbol":"AAPL","price":1}"#,
            "quantity",
        ),
        (
            TRADE_PATH,
            r#"{"side":"LONG","symbol":"AAPL","quantity":1,"price":1}"#,
            "side",
        ),
        (PORTFOLIO_PATH, r#"{"data":{}}"#, "data"),
        (PORTFOLIO_PATH, r#"{"channel":"portfolio"}"#, "data"),
        (PORTFOLIO_PATH, r#"{"data":{"positions":[]}}"#, "data"),
    ];
    for (path, body, field) in cases {
        let (status, reply) = server.http_post(path, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {reply}"
        );
        assert_eq!(reply["field"], field, "{path} {body}: {reply}");
        assert!(reply["error"].is_string(), "{reply}");
    }
    for path in [SIGNAL_PATH, TRADE_PATH, PORTFOLIO_PATH] {
        let (status, reply) = server.http_post(path, "{not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {reply}");
        assert!(reply["error"].is_string(), "{reply}");
        let (status, _) = server.http(Method::GET, path, None, &[]).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "GET {path}");
    }
    let (status, _) = server
        .http_post("/websocket/broadcast/order", SEED_SIGNAL)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing of any refused body went out (not even the valid first
    // element of the refused array).
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_of_messages_is_published_in_order_with_type_and_timestamp_filled_in() {
    let server = TestServer::start(external).await;
    let mut ws = server.ws_connect("/ws?client_id=listener").await;
    assert_eq!(sync(&mut ws).await, Vec::<Value>::new());

    let body = json!([
        {"signal_type": "BUY", "symbol": "AAPL", "price": 150.25, "quantity": 10, "confidence": 0.85},
        {"signal_type": "SELL", "symbol": "MSFT", "price": 380.5, "timestamp": "2024-12-19T12:00:05Z"},
        signal("TSLA", "BUY", 250.0),
    ]);
    let reply = post_ok(&server, SIGNAL_PATH, &body.to_string()).await;
    assert_eq!(reply["status"], "success", "{reply}");
    assert_eq!(reply["room"], "s004:signals", "{reply}");
    assert_eq!(reply["published"], 3, "{reply}");
    assert!(
        reply["seq"].is_u64() && reply["recipients"].is_u64(),
        "{reply}"
    );

    let got = sync(&mut ws).await;
    assert_eq!(got.len(), 3, "{got:?}");
    // The type comes from the path; a missing timestamp is filled in.
    let first = &got[0];
    assert!(is_rfc3339(&first["timestamp"]), "{first}");
    let mut expected = body[0].clone();
    expected["type"] = json!("signal");
    expected["timestamp"] = first["timestamp"].clone();
    assert_eq!(*first, expected);
    // What was sent is relayed as sent.
    let mut expected = body[1].clone();
    expected["type"] = json!("signal");
    assert_eq!(got[1], expected);
    assert_eq!(got[2], signal("TSLA", "BUY", 250.0));

    // One trade and a portfolio, without `type`, on their own paths.
    let mut trade_body = trade("AAPL", "SELL", 151.0);
    trade_body.as_object_mut().unwrap().remove("type");
    post_ok(&server, TRADE_PATH, &trade_body.to_string()).await;
    let mut portfolio_body = parse(SEED_PORTFOLIO);
    portfolio_body.as_object_mut().unwrap().remove("type");
    post_ok(&server, PORTFOLIO_PATH, &portfolio_body.to_string()).await;
    assert_eq!(
        sync(&mut ws).await,
        vec![trade("AAPL", "SELL", 151.0), parse(SEED_PORTFOLIO)]
    );
}

// ---------------------------------------------------------------------------
// The embedded paper account
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_paper_account_a_silent_client_sees_a_signal_its_trade_and_the_portfolio_holding_it()
 {
    let server = TestServer::start(|c| {
        c.market.simulator = true;
        c.market.update_interval = Seconds::from_secs(1);
        c.market.after_hours_interval = Seconds::from_secs(1);
    })
    .await;
    let mut ws = server.ws_connect("/ws").await;
    // The account trades within about 21 s (its idle rule); the bound only
    // guards against a hang.
    let (signal, trade, portfolio) = within_for(Duration::from_secs(90), "a fill", async {
        let mut last_signal: Option<Value> = None;
        let mut fill: Option<(Value, Value)> = None;
        loop {
            let v = recv_json(&mut ws).await;
            match (kind(&v), &fill) {
                ("signal", None) => last_signal = Some(v),
                ("trade_executed", None) => {
                    let signal = last_signal
                        .clone()
                        .unwrap_or_else(|| panic!("a trade before any signal: {v}"));
                    fill = Some((signal, v));
                }
                ("portfolio_update", Some((signal, trade))) => {
                    return (signal.clone(), trade.clone(), v);
                }
                _ => {}
            }
        }
    })
    .await;

    assert_eq!(
        keys(&signal),
        set(&[
            "type",
            "signal_type",
            "symbol",
            "price",
            "quantity",
            "confidence",
            "timestamp"
        ]),
        "{signal}"
    );
    let confidence = signal["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence), "{signal}");
    assert_eq!(
        keys(&trade),
        set(&["type", "symbol", "side", "quantity", "price", "timestamp"]),
        "{trade}"
    );
    // The trade executes the signal just before it; a fresh account's first
    // fill is a BUY (there are no shorts).
    assert_eq!(trade["symbol"], signal["symbol"], "{signal} {trade}");
    assert_eq!(trade["side"], signal["signal_type"], "{signal} {trade}");
    assert_eq!(trade["price"], signal["price"], "{signal} {trade}");
    assert_eq!(trade["quantity"], signal["quantity"], "{signal} {trade}");
    assert_eq!(trade["side"], "BUY", "{trade}");

    assert_eq!(
        keys(&portfolio),
        set(&["type", "channel", "timestamp", "data"])
    );
    assert_eq!(portfolio["channel"], "portfolio");
    let data = &portfolio["data"];
    assert_eq!(
        keys(data),
        set(&["positions", "total_pnl", "position_count"])
    );
    let symbol = trade["symbol"].as_str().unwrap();
    let position = &data["positions"][symbol];
    assert_eq!(
        keys(position),
        set(&[
            "symbol",
            "quantity",
            "average_price",
            "market_price",
            "unrealized_pnl",
            "unrealized_pnl_pct"
        ]),
        "{portfolio}"
    );
    assert_eq!(position["symbol"], symbol, "{portfolio}");
    assert_eq!(position["quantity"], trade["quantity"], "{portfolio}");
    assert_eq!(position["average_price"], trade["price"], "{portfolio}");
    assert_eq!(
        data["position_count"],
        data["positions"].as_object().unwrap().len(),
        "{portfolio}"
    );
}

// ---------------------------------------------------------------------------
// The seed's JavaScript client, in Node
// ---------------------------------------------------------------------------

/// A roomcast server on a listener of the test's choosing (so a second
/// one can take over the first's port), configured by [`external`].
struct PortServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), roomcast::ConfigError>>,
}

impl PortServer {
    async fn start(addr: SocketAddr) -> PortServer {
        let listener = within("bind", TcpListener::bind(addr))
            .await
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let mut config = Config {
            bind: listener.local_addr().unwrap(),
            ..Config::default()
        };
        config.market.simulator = false;
        external(&mut config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(roomcast::run(listener, config, async move {
            let _ = stopped.await;
        }));
        PortServer { stop, task }
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        within_for(Duration::from_secs(20), "the drain", self.task)
            .await
            .expect("roomcast::run panicked")
            .expect("roomcast::run failed");
    }
}

async fn post_to(addr: SocketAddr, path: &str, body: &str) {
    let (status, reply) = HttpClient::connect(addr).await.post(path, body).await;
    assert_eq!(status, StatusCode::OK, "POST {path}: {reply}");
}

/// Reads the client's lines until one is `line`; none may be a server error.
async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, line: &str, bound: Duration) {
    within_for(bound, line, async {
        loop {
            let next = lines
                .next_line()
                .await
                .expect("read the client's output")
                .unwrap_or_else(|| panic!("the client exited before logging {line:?}"));
            assert!(
                !next.starts_with("Server error:"),
                "the client logged {next:?}"
            );
            if next == line {
                return;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed004_javascript_client_logs_all_four_streams_and_reconnects() {
    let Some(flags) = common::node::websocket_flags().await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the seed 004 JavaScript client test: no `node` with a global WebSocket"
        );
        eprintln!(
            "note: skipping the_seed004_javascript_client_logs_all_four_streams_and_reconnects: \
             no `node` with a global WebSocket (install Node >= 20: Debian's nodejs package)"
        );
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = port.local_addr().unwrap();
    drop(port);
    let first = PortServer::start(addr).await;
    post_to(addr, PRICE_PATH, SEED_PRICE_BODY).await;
    post_to(addr, PORTFOLIO_PATH, SEED_PORTFOLIO).await;

    let harness = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/seed004_trading_client.js"
    );
    let mut child = Command::new("node")
        .args(&flags)
        .arg(harness)
        .arg(format!("ws://{addr}/ws"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    expect_line(&mut lines, "WebSocket connected", TIMEOUT).await;
    // The greeting after the hold window: it is subscribed.
    expect_line(&mut lines, "Portfolio: 1 positions, P&L: $12.5", TIMEOUT).await;
    expect_line(&mut lines, "AAPL: $150.25 (+1.69%)", TIMEOUT).await;
    post_to(addr, SIGNAL_PATH, SEED_SIGNAL).await;
    expect_line(
        &mut lines,
        "Signal: BUY AAPL @ $150.25 (confidence: 0.85)",
        TIMEOUT,
    )
    .await;
    post_to(addr, TRADE_PATH, SEED_TRADE).await;
    expect_line(&mut lines, "Trade: BUY 10 AAPL @ $150.25", TIMEOUT).await;

    // The server goes away (its drain closes the socket with 1001), and
    // another takes its port: the client reconnects after its 5 s delay.
    first.shutdown().await;
    expect_line(&mut lines, "WebSocket disconnected", TIMEOUT).await;
    let second = PortServer::start(addr).await;
    post_to(
        addr,
        PORTFOLIO_PATH,
        &json!({"data": {"positions": {}, "total_pnl": 0, "position_count": 0}}).to_string(),
    )
    .await;
    expect_line(&mut lines, "WebSocket connected", Duration::from_secs(30)).await;
    expect_line(&mut lines, "Portfolio: 0 positions, P&L: $0", TIMEOUT).await;

    child.kill().await.expect("kill node");
    second.shutdown().await;
}
