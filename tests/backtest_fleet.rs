//! Backtest runs in a fleet, with real processes: roomcast nodes (the built
//! binary) on a private `redis-server`. A run started on one node streams
//! from any other with its full replay; ids are unique fleet-wide; a cancel
//! on any node reaches the run's owner; the stream status counts viewers on
//! every node; and when the node running a run dies, another node ends the
//! run with its terminal error within the lease.

mod common;

use common::fleet::{Node, RedisServer};
use common::*;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

/// Nodes with a short lease and a slow pace, so a run is still running
/// while the test acts on it.
async fn node(redis: &RedisServer, id: &str, bars_per_sec: &str) -> Node {
    let node = Node::start(
        redis,
        id,
        &[
            ("ROOMCAST_LEASE_TTL", "2"),
            ("ROOMCAST_BACKTEST_BARS_PER_SEC", bars_per_sec),
        ],
    )
    .await;
    node.wait_for("/ready", StatusCode::OK).await;
    node
}

async fn request(
    node: &Node,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut client = HttpClient::connect(node.addr).await;
    let (status, body) = client.request(method, path, body, &[]).await;
    (status, json_body(&body))
}

async fn connect(node: &Node, path: &str) -> Ws {
    node.ws_connect(path).await
}

/// Starts seed 003's example run on `node`; its id.
async fn start_003(node: &Node, end_date: &str) -> String {
    let body = format!(
        r#"{{"name":"Fleet","symbol":"BTC-USD","timeframes":["4H","1H","15M"],
            "start_date":"2024-01-01","end_date":"{end_date}","strategy_ids":["strategy1"]}}"#
    );
    let (status, started) =
        request(node, Method::POST, "/api/backtesting/start", Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let url = started["stream_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("ws://{}/", node.addr)), "{url}");
    started["backtest_id"].as_str().unwrap().to_string()
}

/// A run started on `owner` (seed 003's example, to `end_date`), watched
/// from `watcher` until it is under way: the run's id and the viewer.
async fn watched_run(owner: &Node, watcher: &Node, end_date: &str) -> (String, Ws) {
    let id = start_003(owner, end_date).await;
    let mut viewer = connect(watcher, &format!("/api/ws/stream/backtest/{id}")).await;
    assert_eq!(recv_json(&mut viewer).await["type"], "connected");
    recv_until(&mut viewer, |m| m["type"] == "progress").await;
    (id, viewer)
}

/// Reads a seed 003 stream to its terminal message; every message after `connected`.
async fn to_the_end(ws: &mut Ws) -> Vec<Value> {
    let connected = recv_json(ws).await;
    assert_eq!(connected["type"], "connected", "{connected}");
    let mut out = Vec::new();
    loop {
        let m = recv_json(ws).await;
        let end = matches!(m["type"].as_str(), Some("complete" | "error"));
        out.push(m);
        if end {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_on_one_node_streams_whole_from_another_and_ids_are_fleet_wide() {
    let redis = RedisServer::start();
    let a = node(&redis, "bt-a", "4000").await;
    let b = node(&redis, "bt-b", "4000").await;
    let id = start_003(&a, "2024-01-10").await;
    // A viewer on each node: the same messages, in the same order.
    let mut on_a = connect(&a, &format!("/api/ws/stream/backtest/{id}")).await;
    let mut on_b = connect(&b, &format!("/api/ws/stream/backtest/{id}")).await;
    let seen_a = to_the_end(&mut on_a).await;
    let seen_b = to_the_end(&mut on_b).await;
    assert_eq!(seen_b.last().unwrap()["type"], "complete");
    assert_eq!(seen_a, seen_b);
    // A late viewer on B, after the end, gets the whole run again.
    let mut late = connect(&b, &format!("/api/ws/stream/backtest/{id}")).await;
    assert_eq!(to_the_end(&mut late).await, seen_a);
    // Either node knows the run and its result.
    let (status, run) = request(&b, Method::GET, &format!("/api/v1/backtest/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["node"], "bt-a", "{run}");
    // A custom id is unique across nodes and both seeds.
    let body = r#"{"mode":"vanilla","symbol":"EURUSD","timeframe":"H4","start_date":"2023-01-01",
                   "end_date":"2023-01-31","backtest_id":"fleet-unique"}"#;
    let (status, _) = request(&a, Method::POST, "/api/v1/backtest/run", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, refused) = request(&b, Method::POST, "/api/v1/backtest/run", Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["field"], "backtest_id");
    // An id nobody started is unknown on every node: 4004 after the error.
    let mut unknown = connect(&b, "/api/ws/stream/backtest/never-started").await;
    assert_eq!(recv_json(&mut unknown).await["type"], "connected");
    let error = recv_json(&mut unknown).await;
    assert_eq!(error["data"]["error"], "Backtest not found", "{error}");
    assert_eq!(recv_close(&mut unknown).await.0, 4004);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_any_node_ends_the_run_for_every_viewer_and_viewers_count_fleet_wide() {
    let redis = RedisServer::start();
    let a = node(&redis, "bt-c", "50").await;
    let b = node(&redis, "bt-d", "50").await;
    // The run is under way on A, watched on B.
    let (id, mut on_b) = watched_run(&a, &b, "2024-01-31").await;
    // A's status counts B's viewer (from B's heartbeat).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, status) = request(&a, Method::GET, "/api/ws/stream/status", None).await;
        let streams = status["streams"].as_array().cloned().unwrap_or_default();
        if streams
            .iter()
            .any(|s| s["id"] == id.as_str() && s["connections"] == 1)
        {
            assert_eq!(status["active_connections"]["backtest"], 1, "{status}");
            assert_eq!(status["active_connections"]["total"], 1, "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B's viewer never counted on A: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Cancel on B; A owns the run and ends it.
    let (status, body) = request(&b, Method::DELETE, &format!("/api/backtesting/{id}"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let end = recv_until(&mut on_b, |m| {
        m["type"] == "error" || m["type"] == "complete"
    })
    .await;
    assert_eq!(end["data"]["error"], "Backtest cancelled", "{end}");
    assert_eq!(end["data"]["details"]["reason"], "cancelled", "{end}");
    // Nothing follows the terminal event: the next frame is our pong.
    send_json(&mut on_b, &json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut on_b).await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_node_running_a_run_dies_another_node_ends_it_within_the_lease() {
    let redis = RedisServer::start();
    let mut a = node(&redis, "bt-e", "50").await;
    let b = node(&redis, "bt-f", "50").await;
    // The run is under way on A, watched on B.
    let (id, mut on_b) = watched_run(&a, &b, "2024-01-31").await;
    let mut topic = connect(&b, "/ws").await;
    send_json(
        &mut topic,
        &json!({"action": "subscribe", "topic": "backtest"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut topic).await["type"],
        "subscription_confirmed"
    );
    a.kill();
    let end = recv_until(&mut on_b, |m| {
        m["type"] == "error" || m["type"] == "complete"
    })
    .await;
    assert_eq!(end["data"]["error"], "Backtest node lost", "{end}");
    let lost = recv_until(&mut topic, |m| {
        m["data"]["backtest_id"] == id.as_str() && m["type"] == "backtest_error"
    })
    .await;
    assert_eq!(lost["data"]["error"], "Backtest node lost", "{lost}");
    let (_, run) = request(&b, Method::GET, &format!("/api/v1/backtest/{id}"), None).await;
    assert_eq!(run["status"], "failed", "{run}");
}

const REDIS_PUBLISHER: &str = r#"
import asyncio, logging, sys
from roomcast_client import BacktestStreamPublisher, RedisTransport, setup_backtest_logging

url = sys.argv[1]
transport = RedisTransport(url)

run = BacktestStreamPublisher("py-redis-003", transport=transport)
metrics = {"balance": 10000.0, "open_positions": 0, "total_trades": 0, "winning_trades": 0,
           "win_rate": 0.0, "max_drawdown": 0.0}
run.progress(0.0, "2024-01-01T00:00:00Z", metrics)
run.trade_entry("trade_1", "BTC-USD", "long", 42000.0, "2024-01-01T01:00:00Z", 0.1, 41500.0,
                [42500.0, 43000.0, 43500.0], {"decision": "enter_long", "confidence": 0.7, "rationale": "test"})
run.trade_exit("trade_1", "BTC-USD", "long", 42000.0, "2024-01-01T01:00:00Z", 42500.0,
               "2024-01-01T03:00:00Z", "take_profit_1", 49.66, 1.18, 60.0, -10.0)
run.progress(100.0, "2024-01-01T04:00:00Z", metrics)
assert run.complete({"total_trades": 1, "winning_trades": 1}), "complete not delivered"
assert run.sink.last_error is None, run.sink.last_error

async def seed002():
    logger, streamer = setup_backtest_logging("py-redis-002", transport=transport)
    await streamer.start("vanilla", "EURUSD", "H1", "2023-01-01", "2023-01-31")
    logger.warning("Data gap")
    await streamer.update_progress(100.0, "Processing bar 10/10", 10, 10, "2023-01-31", 0, 0.0)
    await streamer.complete(10000.0, 0, 0.0, 0.0, 0.0, 0.0)
    assert streamer.sink.last_error is None, streamer.sink.last_error

asyncio.run(seed002())
print("published")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_engine_publishing_through_the_fleets_redis_reaches_viewers_on_every_node() {
    let redis = RedisServer::start();
    let a = node(&redis, "bt-g", "4000").await;
    let b = node(&redis, "bt-h", "4000").await;
    // One node holds the ingest lease and listens on the backtest channels.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let subs: Vec<redis::Value> = redis
            .cmd(&["PUBSUB", "NUMSUB", "backtest_stream_events"])
            .unwrap();
        if subs.get(1) == Some(&redis::Value::Int(1)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no node ingests");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut topic = connect(&a, "/ws").await;
    send_json(
        &mut topic,
        &json!({"action": "subscribe", "topic": "backtest"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut topic).await["type"],
        "subscription_confirmed"
    );

    let out = python::run(REDIS_PUBLISHER, &[&redis.url()]).await;
    assert!(out.contains("published"), "{out}");

    // Seed 003: a viewer on either node gets the run, replayed in order.
    for node in [&a, &b] {
        let mut viewer = connect(node, "/api/ws/stream/backtest/py-redis-003").await;
        let run = to_the_end(&mut viewer).await;
        let kinds: Vec<&str> = run.iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["progress", "trade", "trade", "progress", "complete"]
        );
        assert_eq!(run[2]["data"]["pnl"], 49.66);
        assert_eq!(run[4]["data"]["backtest_id"], "py-redis-003");
        // The routing member stays out of the seed's message.
        assert!(run[1].get("backtest_id").is_none(), "{}", run[1]);
    }
    // Seed 002: the subscriber gets the run's events in order, `{type,data}` only.
    let mut kinds = Vec::new();
    loop {
        let m = recv_json(&mut topic).await;
        assert_eq!(m["data"]["backtest_id"], "py-redis-002", "{m}");
        assert_eq!(m.as_object().unwrap().len(), 2, "{m}");
        kinds.push(m["type"].as_str().unwrap().to_string());
        if m["type"] == "backtest_complete" {
            break;
        }
        if m["type"] == "log_entry" {
            assert_eq!(m["data"]["level"], "WARNING");
            assert_eq!(m["data"]["logger_name"], "backtest.py-redis-002");
        }
    }
    assert_eq!(
        kinds,
        [
            "backtest_start",
            "log_entry",
            "backtest_progress",
            "backtest_complete"
        ]
    );
    let (_, run) = request(&b, Method::GET, "/api/v1/backtest/py-redis-002", None).await;
    assert_eq!(run["status"], "completed", "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_redis_stalls_past_the_lease_ends_exactly_once_and_nothing_follows() {
    let redis = RedisServer::start();
    let a = node(&redis, "bt-i", "50").await;
    let b = node(&redis, "bt-j", "50").await;
    // The run is under way on A, watched on B.
    let (_, mut on_b) = watched_run(&a, &b, "2024-01-05").await;
    // Redis stops answering long enough for the owner's heartbeat to lapse:
    // the owner's readiness says so once its health check has failed.
    redis.freeze();
    a.wait_for("/ready", StatusCode::SERVICE_UNAVAILABLE).await;
    b.wait_for("/ready", StatusCode::SERVICE_UNAVAILABLE).await;
    redis.thaw();
    // Either the owner renews first and the run completes, or another node
    // declares it lost first and the owner stops without a word: one end.
    let mut last_progress = 0.0;
    let end = loop {
        let m = recv_json(&mut on_b).await;
        match m["type"].as_str() {
            Some("complete" | "error") => break m,
            Some("progress") => {
                let p = m["data"]["progress"].as_f64().unwrap();
                assert!(p >= last_progress, "progress went back: {m}");
                last_progress = p;
            }
            _ => {}
        }
    };
    if end["type"] == "error" {
        assert_eq!(end["data"]["error"], "Backtest node lost", "{end}");
    }
    eprintln!("the stalled run ended with {}", end["type"]);
    // Nothing follows the end, from either node: the next frame is our pong,
    // also after the owner's next renewal round.
    a.wait_for("/ready", StatusCode::OK).await;
    send_json(&mut on_b, &json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut on_b).await["type"], "pong");
}
