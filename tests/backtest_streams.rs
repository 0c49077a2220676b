//! Backtest runs end to end with real clients (spec §2, §3, §6): seed 003's
//! `POST /api/backtesting/start` and its per-run stream
//! `/api/ws/stream/backtest/{id}` (connected, the whole run replayed to late
//! viewers byte for byte, the stream's ordering rules, 4004 for unknown ids,
//! 400 for malformed ones, pause/resume, `GET /api/ws/stream/status`);
//! seed 002's topics on `/ws` and `POST /api/v1/backtest/run` (exact control
//! replies, `{type,data}` events, `log_entry` lines, `?wait=true`); and what
//! both share: request checks, duplicate ids, cancel, the queue and its
//! 503, the drain, the slow-consumer close of a viewer that never reads,
//! and the per-run event cap.
//!
//! Mid-run moments are reached without sleeping: the seed 003 `pause`
//! control holds a run (its `pause_ack` proves the run had not ended), slow
//! paces are combined with awaiting specific events, and a queued run is
//! held pending behind a paused one.
//!
//! Two tests pin bugs these tests found, since fixed: a trade opened and
//! closed on the same bar streamed its exit before its entry, and a paced
//! run that fell behind its schedule burst without yielding, overflowing
//! the outbox of a client that reads.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The run message types of a seed 003 backtest stream.
const RUN_TYPES_003: [&str; 6] = [
    "progress", "equity", "trade", "metrics", "complete", "error",
];

/// The run event types of seed 002's `backtest` topic.
const RUN_TYPES_002: [&str; 5] = [
    "backtest_start",
    "backtest_progress",
    "log_entry",
    "backtest_complete",
    "backtest_error",
];

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A seed 002 start body for `id` over `symbol`/`timeframe` and the range.
fn body_002(id: &str, symbol: &str, timeframe: &str, start: &str, end: &str) -> String {
    json!({
        "mode": "Spiced",
        "symbol": symbol,
        "timeframe": timeframe,
        "start_date": start,
        "end_date": end,
        "backtest_id": id,
    })
    .to_string()
}

/// A seed 003 start body over `symbol`, `timeframes` and the range.
fn body_003(symbol: &str, timeframes: &[&str], start: &str, end: &str) -> String {
    json!({
        "name": "Test Backtest",
        "symbol": symbol,
        "timeframes": timeframes,
        "start_date": start,
        "end_date": end,
        "initial_capital": 10000,
        "strategy_ids": ["strategy1"],
        "risk_per_trade": 0.02,
    })
    .to_string()
}

/// `POST /api/backtesting/start[query]` with `body`; checks the 202; the run's id.
async fn start_003(server: &TestServer, query: &str, body: &str) -> String {
    let (status, response) = server
        .http_post(&format!("/api/backtesting/start{query}"), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{response}");
    response["backtest_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no backtest_id: {response}"))
        .to_string()
}

/// `POST /api/v1/backtest/run` with `body`; checks the 202.
async fn start_002(server: &TestServer, body: &str) -> Value {
    let (status, response) = server.http_post("/api/v1/backtest/run", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{response}");
    response
}

/// `GET /api/v1/backtest/{id}`'s `status`.
async fn run_status(server: &TestServer, id: &str) -> String {
    let (status, body) = server.http_get(&format!("/api/v1/backtest/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["status"].as_str().expect("status").to_string()
}

/// Checks a seed 003 `connected` greeting for run `id`.
fn assert_connected(text: &str, id: &str) {
    let v = parse(text);
    assert_eq!(keys(&v), key_set(&["type", "timestamp", "data"]), "{v}");
    assert_eq!(v["type"], "connected", "{v}");
    assert!(is_rfc3339(&v["timestamp"]), "{v}");
    assert_eq!(
        v["data"],
        json!({"backtest_id": id, "message": "Connected to backtest stream"}),
        "{v}"
    );
}

/// Opens the seed 003 stream of run `id` and consumes its `connected`.
async fn open_stream(server: &TestServer, id: &str) -> Ws {
    let mut ws = server
        .ws_connect(&format!("/api/ws/stream/backtest/{id}"))
        .await;
    assert_connected(&recv_text(&mut ws).await, id);
    ws
}

/// Only a message's `type`: cheap enough for a reader that must keep up
/// with a fast run in a debug build.
#[derive(serde::Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: String,
}

fn type_of(text: &str) -> String {
    serde_json::from_str::<Kind>(text)
        .unwrap_or_else(|e| panic!("no type ({e}): {text}"))
        .kind
}

fn is_terminal_003(text: &str) -> bool {
    matches!(type_of(text).as_str(), "complete" | "error")
}

/// Reads seed 003 run messages into `into` until one satisfies `stop`
/// (included); any other message type fails the test, except the control
/// reply `ack`, which ends the read (not included).
async fn read_003_until<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    into: &mut Vec<String>,
    ack: Option<&str>,
    mut stop: impl FnMut(&str) -> bool,
) {
    // Each message is awaited within the helpers' bound; a long run is not.
    loop {
        let text = recv_text(ws).await;
        let kind = type_of(&text);
        if ack == Some(kind.as_str()) {
            return;
        }
        assert!(
            RUN_TYPES_003.contains(&kind.as_str()),
            "not a run message: {text}"
        );
        let done = stop(&text);
        into.push(text);
        if done {
            return;
        }
    }
}

/// Reads a seed 003 stream's run messages up to its terminal one.
async fn read_run_003<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> Vec<String> {
    let mut run = Vec::new();
    read_003_until(ws, &mut run, None, is_terminal_003).await;
    run
}

/// What a whole seed 003 run showed, once checked against the stream rules.
struct Run003 {
    messages: Vec<Value>,
    exits: Vec<Value>,
    /// Trades whose exit came before their entry (checked by its own test).
    exits_before_entries: Vec<String>,
    progress: Vec<f64>,
    metrics_events: usize,
}

/// Checks a seed 003 run's messages against §3.1–3.3: the envelope, progress
/// never decreasing and at most 100, one entry and at most one exit per
/// trade, the entry first (also on its own in
/// `each_trades_entry_precedes_its_exit_even_when_it_closes_on_its_entry_bar`),
/// no `backtest_id` on trades, equity time never decreasing, the terminal
/// message last.
fn check_run_003(texts: &[String], id: &str) -> Run003 {
    assert!(!texts.is_empty(), "no run messages");
    let messages: Vec<Value> = texts.iter().map(|t| parse(t)).collect();
    let mut progress = Vec::new();
    let mut exits = Vec::new();
    // trade_id → (index of its entry, index of its exit).
    let mut trades: HashMap<String, (Option<usize>, Option<usize>)> = HashMap::new();
    let mut last_equity_time = String::new();
    let mut metrics_events = 0;
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(keys(m), key_set(&["type", "timestamp", "data"]), "{m}");
        assert!(is_rfc3339(&m["timestamp"]), "{m}");
        let data = &m["data"];
        assert!(data.is_object(), "{m}");
        let kind = m["type"].as_str().expect("type");
        let last = i + 1 == messages.len();
        match kind {
            "progress" => {
                assert_eq!(data["backtest_id"], id, "{m}");
                let p = data["progress"].as_f64().expect("progress");
                assert!((0.0..=100.0).contains(&p), "{m}");
                if let Some(before) = progress.last() {
                    assert!(p >= *before, "progress went back from {before}: {m}");
                }
                assert!(is_rfc3339(&data["current_time"]), "{m}");
                progress.push(p);
            }
            "equity" => {
                assert_eq!(data["backtest_id"], id, "{m}");
                let time = data["time"].as_str().expect("time").to_string();
                assert!(time >= last_equity_time, "equity time went back: {m}");
                last_equity_time = time;
                assert!(data["drawdown"].as_f64().expect("drawdown") <= 0.0, "{m}");
            }
            "metrics" => {
                assert_eq!(data["backtest_id"], id, "{m}");
                metrics_events += 1;
            }
            "trade" => {
                assert!(
                    data.get("backtest_id").is_none(),
                    "trades carry no backtest_id: {m}"
                );
                let trade_id = data["trade_id"].as_str().expect("trade_id").to_string();
                let (entry, exit) = trades.entry(trade_id).or_default();
                match data["event"].as_str() {
                    Some("entry") => {
                        assert!(entry.replace(i).is_none(), "a second entry: {m}");
                    }
                    Some("exit") => {
                        assert!(exit.replace(i).is_none(), "a second exit: {m}");
                        exits.push(data.clone());
                    }
                    _ => panic!("trade without entry/exit event: {m}"),
                }
            }
            "complete" => {
                assert!(last, "complete is not the last message: {m}");
                assert_eq!(data["backtest_id"], id, "{m}");
            }
            "error" => {
                assert!(last, "error is not the last message: {m}");
                assert_eq!(keys(data), key_set(&["error", "details"]), "{m}");
            }
            other => panic!("unexpected run message type {other}: {m}"),
        }
    }
    let mut exits_before_entries: Vec<String> = Vec::new();
    for (trade_id, (entry, exit)) in &trades {
        let entry = entry.unwrap_or_else(|| panic!("{trade_id}: an exit without an entry"));
        if exit.is_some_and(|exit| exit < entry) {
            exits_before_entries.push(trade_id.clone());
        }
    }
    exits_before_entries.sort();
    assert!(
        exits_before_entries.is_empty(),
        "exits streamed before their entries: {exits_before_entries:?}"
    );
    Run003 {
        messages,
        exits,
        exits_before_entries,
        progress,
        metrics_events,
    }
}

/// Checks a completed run's ending (exits, progress 100.0, equity, metrics,
/// complete) and that its trades add up to `complete.metrics`; the metrics.
fn check_completed_003(run: &Run003) -> Value {
    let n = run.messages.len();
    assert!(n >= 4, "too short a run");
    let tail: Vec<&str> = run.messages[n - 4..]
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(tail, ["progress", "equity", "metrics", "complete"]);
    assert_eq!(
        run.messages[n - 4]["data"]["progress"].as_f64(),
        Some(100.0)
    );
    assert_eq!(run.progress.last().copied(), Some(100.0));
    // Exactly 100.0 only once, at the end.
    assert_eq!(run.progress.iter().filter(|p| **p == 100.0).count(), 1);
    // Every exit (positions still open close at the end) precedes the last progress.
    let last_exit = run
        .messages
        .iter()
        .rposition(|m| m["type"] == "trade" && m["data"]["event"] == "exit");
    if let Some(at) = last_exit {
        assert!(at < n - 4, "an exit after the final progress");
    }
    let metrics = run.messages[n - 1]["data"]["metrics"].clone();
    assert_eq!(keys(&metrics), key_set(&COMPLETE_METRICS_KEYS), "{metrics}");
    let total = metrics["total_trades"].as_u64().expect("total_trades") as usize;
    let winning = metrics["winning_trades"].as_u64().expect("winning_trades") as usize;
    let losing = metrics["losing_trades"].as_u64().expect("losing_trades") as usize;
    assert_eq!(run.exits.len(), total, "exits vs total_trades");
    let won = run
        .exits
        .iter()
        .filter(|e| e["pnl"].as_f64().expect("pnl") > 0.0)
        .count();
    assert_eq!(won, winning, "exits with pnl > 0 vs winning_trades");
    assert_eq!(winning + losing, total, "{metrics}");
    let win_rate = metrics["win_rate"].as_f64().expect("win_rate");
    assert!((0.0..=1.0).contains(&win_rate), "a fraction: {metrics}");
    assert!(metrics["max_drawdown"].as_f64().expect("max_drawdown") <= 0.0);
    metrics
}

/// Subscribes a `/ws` connection to `topic` and checks the exact confirmation.
async fn subscribe_002<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    topic: &str,
) {
    send_json(ws, &json!({"action": "subscribe", "topic": topic})).await;
    let confirmation = recv_json(ws).await;
    assert_eq!(
        confirmation,
        json!({"type": "subscription_confirmed", "topic": topic})
    );
}

/// Sends seed 002's `{"action":"ping"}`; the next message must be exactly `{"type":"pong"}`.
async fn ping_002<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    send_json(ws, &json!({"action": "ping"})).await;
    assert_eq!(recv_json(ws).await, json!({"type": "pong"}));
}

/// Opens a `/ws` connection subscribed to `backtest`.
async fn subscriber_002(server: &TestServer) -> Ws {
    let mut ws = server.ws_connect("/ws").await;
    subscribe_002(&mut ws, "backtest").await;
    ws
}

/// Checks a seed 002 topic event's shape: exactly `{type, data}`, with
/// `data.backtest_id` and `data.timestamp`.
fn check_topic_event(v: &Value) {
    assert_eq!(keys(v), key_set(&["type", "data"]), "{v}");
    let kind = v["type"].as_str().expect("type");
    assert!(RUN_TYPES_002.contains(&kind), "not a run event: {v}");
    assert!(v["data"]["backtest_id"].is_string(), "{v}");
    assert!(is_rfc3339(&v["data"]["timestamp"]), "{v}");
}

/// Reads the `backtest` topic until run `id`'s terminal event; returns that
/// run's events (those of other runs are skipped, after a shape check).
async fn read_topic_run<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    id: &str,
) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let v = recv_json(ws).await;
        check_topic_event(&v);
        if v["data"]["backtest_id"] != id {
            continue;
        }
        let terminal = matches!(
            v["type"].as_str(),
            Some("backtest_complete" | "backtest_error")
        );
        events.push(v);
        if terminal {
            return events;
        }
    }
}

// ---------------------------------------------------------------------------
// Seed 003: the example, the stream, viewers
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed003_example_streams_its_run_in_order_ending_with_complete_and_at_least_one_trade()
{
    let server = TestServer::start(|_| {}).await;
    let (status, response) = server
        .http_post("/api/backtesting/start", SEED003_EXAMPLE)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{response}");
    assert_eq!(
        keys(&response),
        key_set(&[
            "backtest_id",
            "status",
            "streaming",
            "stream_url",
            "message"
        ]),
        "{response}"
    );
    let id = response["backtest_id"].as_str().expect("id").to_string();
    // backtest_<YYYYMMDD>_<HHMMSS>, possibly suffixed.
    let rest = id.strip_prefix("backtest_").expect("backtest_ prefix");
    let parts: Vec<&str> = rest.split('_').collect();
    assert!(
        (2..=3).contains(&parts.len())
            && parts[0].len() == 8
            && parts[1].len() == 6
            && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "{id}"
    );
    assert_eq!(response["status"], "pending");
    assert_eq!(response["streaming"], true);
    let stream_url = response["stream_url"].as_str().expect("stream_url");
    assert_eq!(
        stream_url,
        format!(
            "ws://127.0.0.1:{}/api/ws/stream/backtest/{id}",
            server.addr.port()
        )
    );
    assert_eq!(
        response["message"],
        "Backtest 'Test Backtest' queued. Connect to WebSocket for real-time updates."
    );

    // The client opens exactly the URL it was given.
    let (mut ws, _) = within(
        "connecting to stream_url",
        tokio_tungstenite::connect_async(stream_url),
    )
    .await
    .expect("stream_url connects");
    assert_connected(&recv_text(&mut ws).await, &id);
    let texts = read_run_003(&mut ws).await;
    let run = check_run_003(&texts, &id);
    let metrics = check_completed_003(&run);
    // Pinned: the seed's example yields at least one closed trade.
    assert!(metrics["total_trades"].as_u64().unwrap() >= 1, "{metrics}");
    assert_eq!(run.progress.first().copied(), Some(0.0));

    // Nothing follows `complete`: the next frame answers our ping.
    let pong = ping_pong(&mut ws).await;
    assert_eq!(
        keys(&pong),
        key_set(&["type", "timestamp", "data"]),
        "{pong}"
    );
    assert_eq!(pong["data"], json!({}));
    assert_eq!(run_status(&server, &id).await, "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trades_entry_precedes_its_exit_even_when_it_closes_on_its_entry_bar() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 0.0).await;
    let id = start_003(&server, "", SEED003_EXAMPLE).await;
    let mut ws = open_stream(&server, &id).await;
    let run = check_run_003(&read_run_003(&mut ws).await, &id);
    check_completed_003(&run);
    // The case in point: the example has a trade that closes on its entry bar.
    assert!(
        run.exits.iter().any(|e| e["entry_time"] == e["exit_time"]),
        "no same-bar trade to check"
    );
    assert_eq!(
        run.exits_before_entries,
        Vec::<String>::new(),
        "trades whose exit was streamed before their entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_viewer_mid_run_gets_connected_then_byte_identical_run_messages() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 2_000.0).await;
    let id = start_003(&server, "", SEED003_EXAMPLE).await;
    let mut a = open_stream(&server, &id).await;
    let mut seen_a = Vec::new();
    // Some progress past the opening one, then hold the run.
    read_003_until(&mut a, &mut seen_a, None, |t| {
        let v = parse(t);
        v["type"] == "progress" && v["data"]["progress"].as_f64().unwrap() > 0.0
    })
    .await;
    send_json(&mut a, &json!({"type": "pause"})).await;
    read_003_until(&mut a, &mut seen_a, Some("pause_ack"), |t| {
        assert!(!is_terminal_003(t), "the run ended before the pause: {t}");
        false
    })
    .await;

    // While it is held: viewer B joins, and the status endpoint counts both.
    let mut b = open_stream(&server, &id).await;
    let (status, body) = server.http_get("/api/ws/stream/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let streams = body["streams"].as_array().expect("streams");
    assert!(
        streams.contains(&json!({"type": "backtest", "id": id, "connections": 2})),
        "{body}"
    );
    let active = &body["active_connections"];
    assert!(active["backtest"].as_u64().unwrap() >= 2, "{body}");
    assert_eq!(
        active["total"].as_u64().unwrap(),
        active["backtest"].as_u64().unwrap()
            + active["live_trading"].as_u64().unwrap()
            + active["market_data"].as_u64().unwrap(),
        "{body}"
    );
    assert_eq!(run_status(&server, &id).await, "running");

    send_json(&mut a, &json!({"type": "resume"})).await;
    read_003_until(&mut a, &mut seen_a, Some("resume_ack"), |t| {
        assert!(!is_terminal_003(t), "the run ended while paused: {t}");
        false
    })
    .await;
    read_003_until(&mut a, &mut seen_a, None, is_terminal_003).await;
    let seen_b = read_run_003(&mut b).await;

    assert_eq!(seen_a.len(), seen_b.len(), "run message counts differ");
    for (i, (x, y)) in seen_a.iter().zip(&seen_b).enumerate() {
        assert_eq!(x, y, "message {i} differs");
    }
    let run = check_run_003(&seen_b, &id);
    check_completed_003(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_is_replayed_whole_to_a_late_viewer_ending_with_complete() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 0.0).await;
    let (status, result) = server
        .http_post(
            "/api/v1/backtest/run?wait=true",
            &body_002("late-viewer", "EURUSD", "H1", "2023-01-01", "2023-03-31"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(run_status(&server, "late-viewer").await, "completed");

    let mut ws = open_stream(&server, "late-viewer").await;
    let texts = read_run_003(&mut ws).await;
    let run = check_run_003(&texts, "late-viewer");
    let metrics = check_completed_003(&run);
    // Whole: from the opening progress, every progress interval, every metrics.
    assert_eq!(run.progress.first().copied(), Some(0.0));
    let bars = result["results"]["bars_processed"].as_u64().expect("bars") as usize;
    let every = roomcast::Config::default().backtest.progress_bars;
    let intervals = (bars - 1) / every;
    assert_eq!(run.progress.len(), intervals + 2, "progress events");
    assert_eq!(run.metrics_events, intervals / 10 + 1, "metrics events");
    assert_eq!(metrics["total_trades"], result["total_trades"]);
    assert_eq!(metrics, {
        let mut r = result["results"].clone();
        let r = r.as_object_mut().unwrap();
        r.remove("initial_balance");
        r.remove("bars_processed");
        Value::Object(r.clone())
    });
    ping_pong(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_backtest_id_is_upgraded_told_and_closed_with_4004() {
    let server = TestServer::start(|_| {}).await;
    let id = "backtest_20240101_000000";
    let mut ws = server
        .ws_connect(&format!("/api/ws/stream/backtest/{id}"))
        .await;
    let closed = recv_close_collect(&mut ws).await;
    assert_eq!(closed.code, 4004, "{}", closed.reason);
    assert_eq!(closed.texts.len(), 2, "{:?}", closed.texts);
    assert_connected(&closed.texts[0], id);
    let error = parse(&closed.texts[1]);
    assert_eq!(
        keys(&error),
        key_set(&["type", "timestamp", "data"]),
        "{error}"
    );
    assert!(is_rfc3339(&error["timestamp"]), "{error}");
    assert_eq!(error["type"], "error");
    assert_eq!(
        error["data"],
        json!({"error": "Backtest not found", "details": {"backtest_id": id}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_backtest_ids_get_400_naming_backtest_id_before_the_upgrade() {
    let server = TestServer::start(|_| {}).await;
    let long = "x".repeat(129);
    for id in ["a%2Fb", long.as_str(), "a%20b"] {
        let (status, body) = server
            .ws_upgrade_refused(&format!("/api/ws/stream/backtest/{id}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}: {body}");
        assert_eq!(body["field"], "backtest_id", "{id}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    // 128 characters is well-formed: upgraded, and unknown.
    let mut ws = server
        .ws_connect(&format!("/api/ws/stream/backtest/{}", "x".repeat(128)))
        .await;
    assert_eq!(recv_close(&mut ws).await.0, 4004);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed003_start_refuses_bad_bodies_naming_the_field_and_stream_false_has_no_url() {
    let server = TestServer::start(|_| {}).await;
    let path = "/api/backtesting/start";
    let example: Value = parse(SEED003_EXAMPLE);
    let with = |key: &str, value: Value| {
        let mut body = example.clone();
        body[key] = value;
        body.to_string()
    };

    let (status, body) = server.http_post(path, "{\"name\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].is_string(), "{body}");

    let mut missing_name = example.clone();
    missing_name.as_object_mut().unwrap().remove("name");
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        (missing_name.to_string(), "name", None),
        (with("name", json!("   ")), "name", None),
        (with("start_date", json!("2024-02-01")), "end_date", None),
        (
            with("strategy_ids", json!(["martingale"])),
            "strategy_ids",
            Some("sma_crossover"),
        ),
        (
            body_003("BTC-USD", &["1M"], "2023-01-01", "2023-12-31"),
            "end_date",
            Some("ROOMCAST_BACKTEST_MAX_BARS"),
        ),
        (with("timeframes", json!(["1W"])), "timeframes", None),
        (with("risk_per_trade", json!(0.5)), "risk_per_trade", None),
    ];
    for (body, field, mentions) in cases {
        let (status, response) = server.http_post(path, &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {response}"
        );
        assert_eq!(response["field"], field, "{body}: {response}");
        let error = response["error"].as_str().expect("error");
        if let Some(text) = mentions {
            assert!(error.contains(text), "{error}");
        }
    }

    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{SEED003_EXAMPLE}",
        SEED003_EXAMPLE.len()
    );
    let response = raw_http(server.addr, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 415"), "{response}");

    // Nothing refused was registered.
    let (_, status_body) = server.http_get("/api/ws/stream/status").await;
    assert_eq!(
        status_body["backtests"],
        json!({"pending": 0, "running": 0, "finished": 0}),
        "{status_body}"
    );

    let (status, response) = server
        .http_post(&format!("{path}?stream=false"), SEED003_EXAMPLE)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{response}");
    assert_eq!(response["streaming"], false, "{response}");
    assert_eq!(response["stream_url"], Value::Null, "{response}");
    assert_eq!(response["status"], "pending", "{response}");
    let id = response["backtest_id"].as_str().expect("id");
    let (status, _) = server.http_get(&format!("/api/v1/backtest/{id}")).await;
    assert_eq!(status, StatusCode::OK);
}

// ---------------------------------------------------------------------------
// Seed 002: /ws topics and its start
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_topic_controls_get_exact_replies_and_bad_input_keeps_the_connection_open() {
    // More messages than the default burst: the rate limit is not under test.
    let server = TestServer::start(|c| c.ws.client_msg_burst = 100).await;
    let mut ws = server.ws_connect("/ws").await;
    subscribe_002(&mut ws, "backtest").await;
    // A repeat is confirmed again.
    subscribe_002(&mut ws, "backtest").await;
    ping_002(&mut ws).await;

    let error_of = |v: &Value| {
        assert_eq!(keys(v), key_set(&["type", "error", "timestamp"]), "{v}");
        assert_eq!(v["type"], "error", "{v}");
        assert!(is_rfc3339(&v["timestamp"]), "{v}");
        v["error"].as_str().unwrap().to_string()
    };
    within("send", ws.send(Message::text("not json")))
        .await
        .expect("send");
    assert_eq!(
        error_of(&recv_json(&mut ws).await),
        "Invalid message format"
    );
    ping_002(&mut ws).await;

    send_json(&mut ws, &json!({"action": "dance"})).await;
    assert_eq!(error_of(&recv_json(&mut ws).await), "Unknown action: dance");
    ping_002(&mut ws).await;

    send_json(&mut ws, &json!({"action": "subscribe"})).await;
    assert_eq!(error_of(&recv_json(&mut ws).await), "Missing 'topic'");
    ping_002(&mut ws).await;

    send_json(
        &mut ws,
        &json!({"action": "subscribe", "topic": "bad topic!"}),
    )
    .await;
    assert_eq!(
        error_of(&recv_json(&mut ws).await),
        "Invalid topic: bad topic!"
    );
    // Still open, still subscribed.
    subscribe_002(&mut ws, "backtest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed002_run_reaches_subscribers_only_as_type_data_events_in_order() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 0.0).await;
    let mut subscriber = subscriber_002(&server).await;
    let mut bystander = server.ws_connect("/ws").await;
    ping_002(&mut bystander).await;

    let response = start_002(
        &server,
        r#"{"mode":"Spiced","symbol":"EURUSD","timeframe":"H1","start_date":"2023-01-01","end_date":"2023-12-31","backtest_id":"my-custom-id"}"#,
    )
    .await;
    assert_eq!(
        response,
        json!({
            "backtest_id": "my-custom-id",
            "status": "pending",
            "topic": "backtest",
            "message": "Backtest queued. Subscribe to topic 'backtest' on /ws for real-time updates.",
        })
    );

    let events = read_topic_run(&mut subscriber, "my-custom-id").await;
    let start = &events[0];
    assert_eq!(start["type"], "backtest_start", "{start}");
    for (key, value) in [
        ("variant", "spiced"),
        ("symbol", "EURUSD"),
        ("timeframe", "H1"),
        ("start_date", "2023-01-01"),
        ("end_date", "2023-12-31"),
    ] {
        assert_eq!(start["data"][key], value, "{start}");
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "backtest_start")
            .count(),
        1
    );

    let mut last_progress: Option<(usize, f64)> = None;
    let mut levels = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        let data = &e["data"];
        match e["type"].as_str().unwrap() {
            "backtest_progress" => {
                let p = data["progress"].as_f64().expect("progress");
                assert!((0.0..=100.0).contains(&p), "{e}");
                if let Some((_, before)) = last_progress {
                    assert!(p >= before, "progress went back from {before}: {e}");
                }
                assert!(data["bars_processed"].is_u64(), "{e}");
                assert!(data["total_bars"].is_u64(), "{e}");
                assert!(data["trades_count"].is_u64(), "{e}");
                assert!(
                    data["current_pnl"].is_f64() || data["current_pnl"].is_i64(),
                    "{e}"
                );
                assert_eq!(data["current_date"].as_str().map(str::len), Some(10), "{e}");
                last_progress = Some((i, p));
            }
            "log_entry" => {
                let level = data["level"].as_str().expect("level");
                assert!(
                    ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level),
                    "{e}"
                );
                levels.insert(level.to_string());
                assert_eq!(data["logger_name"], "backtest.my-custom-id", "{e}");
                for key in ["module", "function", "message"] {
                    assert!(
                        data[key].as_str().is_some_and(|s| !s.is_empty()),
                        "{key}: {e}"
                    );
                }
                assert!(data["line"].is_u64(), "{e}");
            }
            "backtest_start" => assert_eq!(i, 0, "{e}"),
            "backtest_complete" => assert_eq!(i + 1, events.len(), "{e}"),
            _ => panic!("unexpected event {e}"),
        }
    }
    assert!(levels.contains("INFO"), "{levels:?}");
    let (at, p) = last_progress.expect("some progress");
    assert_eq!(p, 100.0);
    let last = &events[at]["data"];
    let total = last["total_bars"].as_u64().unwrap();
    assert_eq!(last["bars_processed"].as_u64(), Some(total), "{last}");
    assert_eq!(
        last["status"],
        format!("Processing bar {total}/{total}"),
        "{last}"
    );
    for e in &events[at + 1..events.len() - 1] {
        assert_eq!(e["type"], "log_entry", "between 100.0 and complete: {e}");
    }

    let complete = &events.last().unwrap()["data"];
    assert_eq!(events.last().unwrap()["type"], "backtest_complete");
    let win_rate = complete["win_rate"].as_f64().expect("win_rate");
    assert!((0.0..=100.0).contains(&win_rate), "percent: {complete}");
    assert!(
        complete["drawdown"].as_f64().expect("drawdown") >= 0.0,
        "{complete}"
    );
    for key in [
        "final_balance",
        "sharpe_ratio",
        "return_pct",
        "duration_seconds",
    ] {
        assert!(complete[key].is_number(), "{key}: {complete}");
    }
    assert!(complete["total_trades"].is_u64(), "{complete}");
    let mut expected = key_set(&COMPLETE_METRICS_KEYS);
    expected.extend(key_set(&[
        "initial_balance",
        "bars_processed",
        "winning_trades",
        "losing_trades",
    ]));
    assert_eq!(keys(&complete["results"]), expected, "{complete}");
    assert_eq!(complete["results"]["bars_processed"].as_u64(), Some(total));
    assert_eq!(
        complete["results"]["initial_balance"].as_f64(),
        Some(10_000.0)
    );

    // Nothing follows the terminal event; the bystander saw none of the run.
    ping_002(&mut subscriber).await;
    ping_002(&mut bystander).await;
    assert_eq!(run_status(&server, "my-custom-id").await, "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_backtest_id_gets_409_and_the_first_run_still_completes() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 2_000.0).await;
    let body = body_002("dup", "EURUSD", "H1", "2023-01-01", "2023-01-31");
    start_002(&server, &body).await;
    let (status, response) = server.http_post("/api/v1/backtest/run", &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{response}");
    assert_eq!(
        response,
        json!({"error": "backtest_id already exists", "field": "backtest_id"})
    );
    let mut ws = open_stream(&server, "dup").await;
    let run = check_run_003(&read_run_003(&mut ws).await, "dup");
    check_completed_003(&run);
    assert_eq!(run_status(&server, "dup").await, "completed");
    // Still refused once finished (retained).
    let (status, _) = server.http_post("/api/v1/backtest/run", &body).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed002_start_refuses_bad_fields_with_422_naming_them_and_get_is_405() {
    let server = TestServer::start(|_| {}).await;
    let path = "/api/v1/backtest/run";
    let good: Value = parse(&body_002(
        "ok-id",
        "EURUSD",
        "H1",
        "2023-01-01",
        "2023-01-31",
    ));
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body.to_string()
    };
    let mut missing_symbol = good.clone();
    missing_symbol.as_object_mut().unwrap().remove("symbol");
    for (body, field) in [
        (with("mode", json!("martingale")), "mode"),
        (with("backtest_id", json!("a/b")), "backtest_id"),
        (with("backtest_id", json!("x".repeat(129))), "backtest_id"),
        (missing_symbol.to_string(), "symbol"),
        (with("timeframe", json!("W1")), "timeframe"),
        (with("end_date", json!("2022-12-31")), "end_date"),
    ] {
        let (status, response) = server.http_post(path, &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {response}"
        );
        assert_eq!(response["field"], field, "{body}: {response}");
    }
    let (status, response) = server.http_post(path, "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");

    let (status, response) = server.http(Method::GET, path, None, &[]).await;
    assert_eq!(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        String::from_utf8_lossy(&response)
    );
    // No refused request left a run behind.
    let (status, _) = server.http_get("/api/v1/backtest/ok-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_true_answers_200_with_the_backtest_complete_data() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 0.0).await;
    let mut subscriber = subscriber_002(&server).await;
    let (status, result) = server
        .http_post(
            "/api/v1/backtest/run?wait=true",
            &body_002("waited", "EURUSD", "D1", "2023-01-01", "2023-12-31"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["backtest_id"], "waited", "{result}");
    assert!(result["final_balance"].is_number(), "{result}");
    // The same data the subscribers got as backtest_complete.
    let events = read_topic_run(&mut subscriber, "waited").await;
    let complete = events.last().unwrap();
    assert_eq!(complete["type"], "backtest_complete", "{complete}");
    assert_eq!(complete["data"], result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_before_the_data_fails_with_insufficient_historical_data_on_both_seeds() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 0.0).await;
    let (status, error) = server
        .http_post(
            "/api/v1/backtest/run?wait=true",
            &body_002("too-early", "EURUSD", "D1", "1999-06-01", "2000-06-01"),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{error}");
    assert_eq!(error["error"], "Insufficient historical data", "{error}");
    assert_eq!(error["backtest_id"], "too-early", "{error}");
    assert!(error["error_details"].is_string(), "{error}");
    assert_eq!(run_status(&server, "too-early").await, "failed");

    let mut ws = open_stream(&server, "too-early").await;
    let texts = read_run_003(&mut ws).await;
    let run = check_run_003(&texts, "too-early");
    let last = run.messages.last().unwrap();
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["data"]["error"], "Insufficient historical data");
    let details = &last["data"]["details"];
    assert_eq!(
        keys(details),
        key_set(&["symbol", "required_start", "available_start"]),
        "{details}"
    );
    assert_eq!(details["symbol"], "EURUSD", "{details}");
    assert!(is_rfc3339(&details["required_start"]), "{details}");
    assert!(
        details["required_start"]
            .as_str()
            .unwrap()
            .starts_with("1999-06-01"),
        "{details}"
    );
    assert!(
        details["available_start"]
            .as_str()
            .is_some_and(|s| s.starts_with("2000-")),
        "{details}"
    );
}

// ---------------------------------------------------------------------------
// Cancel, queue, drain, slow viewers, the event cap
// ---------------------------------------------------------------------------

/// A server running seed 003's example slowly (50 bars/s, progress every 5
/// bars), watched by a seed 002 subscriber and a seed 003 viewer that has
/// seen it under way: the server, the subscriber, the run's id, the viewer
/// and the run messages it has read.
async fn slow_run_watched_by_both_seeds() -> (TestServer, Ws, String, Ws, Vec<String>) {
    let server = TestServer::start(|c| {
        c.backtest.bars_per_sec = 50.0;
        c.backtest.progress_bars = 5;
    })
    .await;
    let subscriber = subscriber_002(&server).await;
    let id = start_003(&server, "", SEED003_EXAMPLE).await;
    let mut viewer = open_stream(&server, &id).await;
    let mut seen = Vec::new();
    read_003_until(&mut viewer, &mut seen, None, |t| type_of(t) == "progress").await;
    (server, subscriber, id, viewer, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_run_ends_it_with_backtest_cancelled_for_every_watcher() {
    let (server, mut subscriber, id, mut viewer, mut seen) = slow_run_watched_by_both_seeds().await;

    let (status, body) = server.http_delete(&format!("/api/backtesting/{id}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    read_003_until(&mut viewer, &mut seen, None, is_terminal_003).await;
    let run = check_run_003(&seen, &id);
    let last = run.messages.last().unwrap();
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(
        last["data"],
        json!({"error": "Backtest cancelled", "details": {"reason": "cancelled"}})
    );
    assert!(
        run.messages.iter().all(|m| m["type"] != "complete"),
        "a cancelled run never completes"
    );
    ping_pong(&mut viewer).await;

    let events = read_topic_run(&mut subscriber, &id).await;
    assert_eq!(events[0]["type"], "backtest_start");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "backtest_error", "{last}");
    assert_eq!(last["data"]["error"], "Backtest cancelled", "{last}");
    ping_002(&mut subscriber).await;

    let (status, body) = server.http_delete(&format!("/api/backtesting/{id}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = server
        .http_delete("/api/backtesting/backtest_19990101_000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(run_status(&server, &id).await, "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_stays_silent_until_cancelled_and_a_full_queue_answers_503() {
    let server = TestServer::start(|c| {
        c.backtest.bars_per_sec = 50.0;
        c.backtest.progress_bars = 5;
        c.backtest.max_concurrent = 1;
        c.backtest.max_queued = 1;
    })
    .await;
    let mut subscriber = subscriber_002(&server).await;
    start_002(
        &server,
        &body_002("first", "EURUSD", "H1", "2023-01-01", "2023-12-31"),
    )
    .await;
    // Its backtest_start is published once it holds the slot.
    let start = recv_json(&mut subscriber).await;
    check_topic_event(&start);
    assert_eq!(start["type"], "backtest_start", "{start}");
    assert_eq!(start["data"]["backtest_id"], "first", "{start}");
    assert_eq!(run_status(&server, "first").await, "running");

    start_002(
        &server,
        &body_002("second", "EURUSD", "H1", "2023-01-01", "2023-12-31"),
    )
    .await;
    assert_eq!(run_status(&server, "second").await, "pending");
    let mut second = open_stream(&server, "second").await;

    let (status, body) = server
        .http_post(
            "/api/v1/backtest/run",
            &body_002("third", "EURUSD", "H1", "2023-01-01", "2023-12-31"),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body, json!({"error": "backtest queue full"}));
    let (status, _) = server
        .http_post("/api/backtesting/start", SEED003_EXAMPLE)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // The first run advances several progress intervals; the second publishes nothing.
    let mut progress_seen = 0;
    within("the first run to advance", async {
        while progress_seen < 3 {
            let v = recv_json(&mut subscriber).await;
            check_topic_event(&v);
            assert_eq!(
                v["data"]["backtest_id"], "first",
                "only the first runs: {v}"
            );
            if v["type"] == "backtest_progress" {
                progress_seen += 1;
            }
        }
    })
    .await;
    assert_eq!(run_status(&server, "second").await, "pending");
    ping_pong(&mut second).await;

    let (status, body) = server.http_delete("/api/v1/backtest/second").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let texts = read_run_003(&mut second).await;
    assert_eq!(
        texts.len(),
        1,
        "a pending run's only message is its error: {texts:?}"
    );
    let error = parse(&texts[0]);
    assert_eq!(
        error["data"],
        json!({"error": "Backtest cancelled", "details": {"reason": "cancelled"}})
    );
    let events = read_topic_run(&mut subscriber, "second").await;
    assert!(
        events.iter().all(|e| e["type"] != "backtest_progress"),
        "the queued run never progressed: {events:?}"
    );
    assert_eq!(events.last().unwrap()["type"], "backtest_error");
    assert_eq!(
        events.last().unwrap()["data"]["error"],
        "Backtest cancelled"
    );
    assert_eq!(run_status(&server, "second").await, "cancelled");
    assert_eq!(run_status(&server, "first").await, "running");

    // The queue has room again.
    start_002(
        &server,
        &body_002("fourth", "EURUSD", "H1", "2023-01-01", "2023-12-31"),
    )
    .await;
    assert_eq!(run_status(&server, "fourth").await, "pending");
    for id in ["first", "fourth"] {
        let (status, body) = server.http_delete(&format!("/api/v1/backtest/{id}")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // Both end with their error, in whichever order the two runs get there.
    let mut ended = BTreeSet::new();
    while ended.len() < 2 {
        let v = recv_json(&mut subscriber).await;
        check_topic_event(&v);
        assert_ne!(v["type"], "backtest_complete", "{v}");
        if v["type"] == "backtest_error" {
            assert_eq!(v["data"]["error"], "Backtest cancelled", "{v}");
            let id = v["data"]["backtest_id"].as_str().unwrap().to_string();
            assert!(ended.insert(id), "a second terminal event: {v}");
        }
    }
    assert_eq!(ended, key_set(&["first", "fourth"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_ends_a_running_run_with_server_shutting_down_before_closing_1001() {
    let (server, mut subscriber, id, mut viewer, mut seen) = slow_run_watched_by_both_seeds().await;
    recv_until(&mut subscriber, |v| v["type"] == "backtest_progress").await;

    let drain = tokio::spawn(server.shutdown());

    let closed = recv_close_collect(&mut viewer).await;
    assert_eq!(closed.code, 1001, "{}", closed.reason);
    seen.extend(closed.texts);
    let run = check_run_003(&seen, &id);
    let last = run.messages.last().unwrap();
    assert_eq!(
        last["data"],
        json!({"error": "Server shutting down", "details": {}}),
        "{last}"
    );

    let closed = recv_close_collect(&mut subscriber).await;
    assert_eq!(closed.code, 1001, "{}", closed.reason);
    let last = parse(closed.texts.last().expect("the run's last event"));
    check_topic_event(&last);
    assert_eq!(last["type"], "backtest_error", "{last}");
    assert_eq!(last["data"]["error"], "Server shutting down", "{last}");
    assert_eq!(last["data"]["backtest_id"], id.as_str(), "{last}");

    let result = within("roomcast::run to return", drain)
        .await
        .expect("drain task");
    assert!(result.is_ok(), "{result:?}");
}

/// Dense events (progress and equity every bar, thousands of frames a
/// second) on a small outbox, with the slot held by a paused silent run so
/// the watched run is still pending when its viewers join.
fn dense_runs(c: &mut roomcast::Config) {
    c.backtest.bars_per_sec = 4_000.0;
    c.backtest.progress_bars = 1;
    c.backtest.max_concurrent = 1;
    c.rooms.run_max_events = 100_000;
    c.ws.outbox_capacity = 32;
    // A client that does not read cannot answer pings either.
    c.ws.heartbeat_timeout = roomcast::seconds::Seconds::from_secs(3600);
}

/// A run that takes the only slot and holds it, paused: the pause is asked
/// for at once, so the run stops after its first chunk, and its first
/// `progress` (published only once it holds the slot) is awaited before
/// anything else is started. Its id and the stream that holds it.
async fn hold_the_slot(server: &TestServer) -> (String, Ws) {
    let blocker = start_003(
        server,
        "",
        &body_003("BTC-USD", &["1M"], "2023-01-01", "2023-10-31"),
    )
    .await;
    let mut control = open_stream(server, &blocker).await;
    send_json(&mut control, &json!({"type": "pause"})).await;
    let mut seen = Vec::new();
    read_003_until(&mut control, &mut seen, Some("pause_ack"), |t| {
        assert!(!is_terminal_003(t), "the blocker ended: {t}");
        false
    })
    .await;
    if !seen.iter().any(|t| type_of(t) == "progress") {
        read_003_until(&mut control, &mut seen, None, |t| type_of(t) == "progress").await;
    }
    (blocker, control)
}

/// The watched dense run: about 14,500 bars, some 31,000 stream messages
/// (several MB, more than any socket buffer holds).
fn dense_body() -> String {
    body_003("BTC-USD", &["15M"], "2023-01-01", "2023-05-31")
}

/// Watches run `id` to its end as a client that reconnects when closed
/// with 4008 (each new connection replays the run so far, then goes on
/// live), so the end is awaited on events whatever the outbox does to a
/// reader (see `a_viewer_that_keeps_reading_a_dense_paced_run_is_never_closed`);
/// the last connection's run messages, the whole run.
async fn watch_to_the_end(server: &TestServer, id: &str) -> Vec<String> {
    'connection: loop {
        let mut ws = server
            .ws_connect(&format!("/api/ws/stream/backtest/{id}"))
            .await;
        let mut run = Vec::new();
        let mut connected = false;
        loop {
            match within("a run message", ws.next()).await {
                Some(Ok(Message::Text(text))) if !connected => {
                    assert_connected(text.as_str(), id);
                    connected = true;
                }
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str().to_owned();
                    assert!(RUN_TYPES_003.contains(&type_of(&text).as_str()), "{text}");
                    let done = is_terminal_003(&text);
                    run.push(text);
                    if done {
                        return run;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) == 4008 => {
                    continue 'connection;
                }
                other => panic!("watching {id}: {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_never_reads_is_closed_with_4008_and_the_run_completes() {
    let server = TestServer::start(dense_runs).await;
    let (blocker, _control) = hold_the_slot(&server).await;
    let id = start_003(&server, "", &dense_body()).await;
    let mut slow = server
        .ws_connect_small_rcvbuf(&format!("/api/ws/stream/backtest/{id}"))
        .await;
    // It joined before the run published anything: all it gets is live.
    assert_eq!(run_status(&server, &id).await, "pending");
    let (status, body) = server
        .http_delete(&format!("/api/backtesting/{blocker}"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let texts = watch_to_the_end(&server, &id).await;
    check_completed_003(&check_run_003(&texts, &id));
    assert_eq!(run_status(&server, &id).await, "completed");

    // Reading at last: what the socket held, then 4008.
    let closed = recv_close_collect(&mut slow).await;
    assert_eq!(closed.code, 4008, "{}", closed.reason);
    assert!(closed.reason.contains("slow consumer"), "{}", closed.reason);
    assert_connected(&closed.texts[0], &id);
    let got = &closed.texts[1..];
    assert!(got.len() < texts.len(), "the slow viewer got the whole run");
    assert_eq!(got, &texts[..got.len()], "a prefix of the run, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_keeps_reading_a_dense_paced_run_is_never_closed() {
    let server = TestServer::start(dense_runs).await;
    let (blocker, _control) = hold_the_slot(&server).await;
    let id = start_003(&server, "", &dense_body()).await;
    let mut reader = open_stream(&server, &id).await;
    let (status, body) = server
        .http_delete(&format!("/api/backtesting/{blocker}"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Fails with "expected a text message, got close 4008" when the bug bites.
    let texts = read_run_003(&mut reader).await;
    check_completed_003(&check_run_003(&texts, &id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_beyond_the_event_cap_ends_with_an_error_and_its_replay_stays_within_the_cap() {
    let server = TestServer::start(|c| {
        c.backtest.bars_per_sec = 0.0;
        c.rooms.run_max_events = 50;
    })
    .await;
    let text = "Backtest produced more than 50 events; narrow the date range";
    let (status, error) = server
        .http_post(
            "/api/v1/backtest/run?wait=true",
            &body_002("capped", "EURUSD", "H1", "2023-01-01", "2023-12-31"),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{error}");
    assert_eq!(error["error"], text, "{error}");
    assert_eq!(run_status(&server, "capped").await, "failed");

    let mut ws = open_stream(&server, "capped").await;
    let texts = read_run_003(&mut ws).await;
    assert!(texts.len() <= 50, "{} run messages", texts.len());
    let run = check_run_003(&texts, "capped");
    // The replay is the run's beginning, not a silently truncated tail.
    assert_eq!(run.messages[0]["type"], "progress");
    assert_eq!(run.progress.first().copied(), Some(0.0));
    assert!(run.progress.iter().all(|p| *p < 100.0));
    let last = run.messages.last().unwrap();
    assert_eq!(
        last["data"],
        json!({"error": text, "details": {}}),
        "{last}"
    );
    ping_pong(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_paused_a_run_resumes_it_when_it_leaves() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 2_000.0).await;
    let id = start_003(&server, "", SEED003_EXAMPLE).await;
    let mut pauser = open_stream(&server, &id).await;
    let mut seen = Vec::new();
    send_json(&mut pauser, &json!({"type": "pause"})).await;
    read_003_until(&mut pauser, &mut seen, Some("pause_ack"), |_| false).await;
    // The run is held; its pauser vanishes without resuming it.
    drop(pauser);
    let mut watcher = open_stream(&server, &id).await;
    let run = check_run_003(&read_run_003(&mut watcher).await, &id);
    check_completed_003(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_runs_id_starts_afresh_and_its_lingering_viewer_gets_nothing_of_the_new_run() {
    let server = TestServer::start(|c| {
        c.backtest.bars_per_sec = 0.0;
        c.backtest.max_runs = 1;
    })
    .await;
    let body = body_002("reused", "EURUSD", "H4", "2023-01-01", "2023-01-31");
    let (status, first) = server
        .http_post("/api/v1/backtest/run?wait=true", &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // A viewer stays on the finished run, as seed 003's clients do.
    let mut lingering = open_stream(&server, "reused").await;
    let first_run = read_run_003(&mut lingering).await;
    // Another run pushes it out of the registry (one finished run kept)...
    let other = body_002("other", "EURUSD", "H4", "2023-01-01", "2023-01-31");
    let (status, _) = server
        .http_post("/api/v1/backtest/run?wait=true", &other)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.http_get("/api/v1/backtest/reused").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // ...so its id is free, and a new run of it is a new stream.
    let again = body_002("reused", "EURUSD", "H4", "2023-02-01", "2023-02-28");
    let (status, second) = server
        .http_post("/api/v1/backtest/run?wait=true", &again)
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let mut fresh = open_stream(&server, "reused").await;
    let second_run = read_run_003(&mut fresh).await;
    assert_ne!(second_run, first_run);
    check_completed_003(&check_run_003(&second_run, "reused"));
    // The lingering viewer saw the end of its run and nothing since.
    send_json(&mut lingering, &json!({"type": "ping"})).await;
    assert_eq!(type_of(&recv_text(&mut lingering).await), "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_date_ranges_are_refused_at_once_naming_the_field() {
    let server = TestServer::start(|_| {}).await;
    for (start, field) in [
        ("-262000-01-01", "start_date"),
        ("1969-12-31", "start_date"),
    ] {
        let body = body_003("AAPL", &["1H"], start, "2024-01-01");
        let (status, refused) = server.http_post("/api/backtesting/start", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["field"], field, "{refused}");
    }
    // 54 years of minutes: refused by the cap without counting them.
    let body = body_003("AAPL", &["1M"], "1970-01-01", "2024-01-01");
    let (status, refused) = server.http_post("/api/backtesting/start", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["field"], "end_date", "{refused}");
    // A symbol that would be a path into the data directory.
    let body = body_003("../../etc", &["1H"], "2024-01-01", "2024-01-31");
    let (status, refused) = server.http_post("/api/backtesting/start", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["field"], "symbol", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_takes_seed_004s_client_id_and_refuses_a_malformed_one_naming_it() {
    // No paper account: a client_id auto-subscribes at once, and nothing
    // (no portfolio) greets it before the pongs.
    let server = TestServer::start(|c| c.trading.paper_trading = false).await;
    for bad in ["a%20b", "x%2Fy", &"c".repeat(129)] {
        let (status, body) = server
            .ws_upgrade_refused(&format!("/ws?client_id={bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["field"], "client_id", "{body}");
    }
    // A good one is accepted, and the connection speaks both families.
    let mut ws = server.ws_connect("/ws?client_id=my-client.1@desk:2").await;
    send_json(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(recv_text(&mut ws).await, r#"{"type":"pong"}"#);
    send_json(&mut ws, &json!({"action": "ping"})).await;
    assert_eq!(recv_text(&mut ws).await, r#"{"type":"pong"}"#);
}
