//! The Python package (`clients/python/`, `roomcast_client`) against a real
//! roomcast: an existing Python engine's run must look, on the wire, exactly
//! like a run roomcast executes. Each test records an embedded run as its
//! viewers see it, has a Python process publish the same run through the
//! package (HTTP transport, the seed's own API), and compares what viewers
//! of the Python run receive. Needs `python3` (no packages: the client is
//! standard library only; it is imported from the repository).

mod common;

use common::*;
use hyper::StatusCode;
use serde_json::{Value, json};

/// Has the Python publisher `script` publish the `recorded` messages as
/// run `id` to `server` (it prints `published` once all are delivered).
async fn replay_in_python(server: &TestServer, script: &str, id: &str, recorded: &[Value]) {
    let path = std::env::temp_dir().join(format!(
        "roomcast_recorded_{}_{id}.json",
        std::process::id()
    ));
    std::fs::write(&path, serde_json::to_vec(recorded).unwrap()).unwrap();
    let base = format!("http://{}", server.addr);
    let out = python::run(script, &[&base, id, path.to_str().unwrap()]).await;
    let _ = std::fs::remove_file(&path);
    assert!(out.contains("published"), "{out}");
}

/// Every message of a seed 003 stream after `connected`, up to its terminal one.
async fn read_stream(server: &TestServer, id: &str) -> Vec<Value> {
    let mut ws = server
        .ws_connect(&format!("/api/ws/stream/backtest/{id}"))
        .await;
    let connected = recv_json(&mut ws).await;
    assert_eq!(connected["type"], "connected", "{connected}");
    let mut messages = Vec::new();
    loop {
        let m = recv_json(&mut ws).await;
        let end = matches!(m["type"].as_str(), Some("complete" | "error"));
        messages.push(m);
        if end {
            return messages;
        }
    }
}

/// `value` with every `backtest_id` member replaced by `id`.
fn with_id(mut value: Value, id: &str) -> Value {
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut)
        && data.contains_key("backtest_id")
    {
        data.insert("backtest_id".into(), json!(id));
    }
    value
}

const SEED003_PUBLISHER: &str = r#"
import json, sys
from roomcast_client import BacktestStreamPublisher, HttpTransport

base, run_id, recorded = sys.argv[1], sys.argv[2], sys.argv[3]
run = BacktestStreamPublisher(run_id, transport=HttpTransport(base))
for m in json.load(open(recorded)):
    t, d = m["type"], dict(m["data"])
    d.pop("backtest_id", None)
    if t == "progress":
        run.progress(d["progress"], d["current_time"], d["metrics"])
    elif t == "trade" and d.pop("event") == "entry":
        run.trade_entry(**d)
    elif t == "trade":
        run.trade_exit(**d)
    elif t == "equity":
        run.equity(d["time"], d["equity"], d["balance"], d["drawdown"])
    elif t == "metrics":
        run.metrics(**d)
    elif t == "complete":
        assert run.complete(d["metrics"]), "complete not delivered"
    elif t == "error":
        assert run.error(d["error"], d["details"]), "error not delivered"
assert run.sink.last_error is None, run.sink.last_error
run.close()
print("published")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_engines_seed003_run_looks_on_the_wire_exactly_like_an_embedded_one() {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 0.0).await;
    let (status, started) = server
        .http_post(
            "/api/backtesting/start",
            r#"{"name":"Embedded","symbol":"BTC-USD","timeframes":["4H","1H","15M"],
                "start_date":"2024-01-01","end_date":"2024-01-15","strategy_ids":["strategy1"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let embedded_id = started["backtest_id"].as_str().unwrap().to_string();
    let embedded = read_stream(&server, &embedded_id).await;
    assert!(
        embedded.iter().any(|m| m["type"] == "trade"),
        "the run traded"
    );

    replay_in_python(&server, SEED003_PUBLISHER, "py-run-1", &embedded).await;

    // A viewer of the Python run gets the same messages: same types, same
    // data, member for member (only the run's id and wall clocks differ).
    let published = read_stream(&server, "py-run-1").await;
    assert_eq!(published.len(), embedded.len());
    for (p, e) in published.iter().zip(&embedded) {
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(p), keys(e), "envelope of {p}");
        assert!(p["timestamp"].as_str().unwrap().ends_with('Z'), "{p}");
        assert_eq!(p["type"], e["type"]);
        assert_eq!(
            with_id(p.clone(), "x")["data"],
            with_id(e.clone(), "x")["data"],
            "data of {p}"
        );
    }
    // The run is registered and ended like an embedded one: status, and
    // nothing may follow its terminal event.
    let (_, run) = server.http_get("/api/v1/backtest/py-run-1").await;
    assert_eq!(run["status"], "completed", "{run}");
    let (status, refused) = server
        .http_post(
            "/api/ws/stream/backtest/py-run-1/events",
            r#"{"type":"progress","data":{"progress":100}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    server.shutdown().await.unwrap();
}

const SEED002_PUBLISHER: &str = r#"
import asyncio, json, logging, sys
from roomcast_client import HttpTransport, setup_backtest_logging

base, run_id, recorded = sys.argv[1], sys.argv[2], sys.argv[3]

async def main():
    logger, streamer = setup_backtest_logging(run_id, transport=HttpTransport(base))
    for m in json.load(open(recorded)):
        t, d = m["type"], dict(m["data"])
        if t == "backtest_start":
            await streamer.start(d["variant"], d["symbol"], d["timeframe"], d["start_date"], d["end_date"])
        elif t == "backtest_progress":
            await streamer.update_progress(d["progress"], d["status"], d["bars_processed"],
                d["total_bars"], d["current_date"], d["trades_count"], d["current_pnl"])
        elif t == "log_entry":
            logger.log(logging.getLevelName(d["level"]), d["message"])
        elif t == "backtest_complete":
            await streamer.complete(d["final_balance"], d["total_trades"], d["win_rate"],
                d["sharpe_ratio"], d["drawdown"], d["return_pct"], d["results"])
        elif t == "backtest_error":
            await streamer.error(d["error"], d["error_details"])
    assert streamer.sink.last_error is None, streamer.sink.last_error
    print("published")

asyncio.run(main())
"#;

/// The events of run `id` on a `/ws` subscriber, up to its terminal one.
async fn read_topic(ws: &mut Ws, id: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let m = recv_json(ws).await;
        if m["data"]["backtest_id"] != id {
            continue;
        }
        let end = matches!(
            m["type"].as_str(),
            Some("backtest_complete" | "backtest_error")
        );
        events.push(m);
        if end {
            return events;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_engines_seed002_run_and_its_log_records_reach_topic_subscribers_in_the_seeds_shapes()
 {
    let server = TestServer::start(|c| c.backtest.bars_per_sec = 0.0).await;
    let mut ws = server.ws_connect("/ws").await;
    send_json(
        &mut ws,
        &json!({"action": "subscribe", "topic": "backtest"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut ws).await,
        json!({"type": "subscription_confirmed", "topic": "backtest"})
    );
    let (status, body) = server
        .http_post(
            "/api/v1/backtest/run",
            r#"{"mode":"vanilla","symbol":"EURUSD","timeframe":"H4","start_date":"2023-01-01",
                "end_date":"2023-03-31","backtest_id":"embedded-002"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let embedded = read_topic(&mut ws, "embedded-002").await;
    assert!(embedded.iter().any(|m| m["type"] == "log_entry"));

    replay_in_python(&server, SEED002_PUBLISHER, "python-002", &embedded).await;

    let published = read_topic(&mut ws, "python-002").await;
    assert_eq!(published.len(), embedded.len());
    for (p, e) in published.iter().zip(&embedded) {
        // `{type, data}`, no top-level timestamp, as the seed sends.
        assert_eq!(p.as_object().unwrap().len(), 2, "{p}");
        assert_eq!(p["type"], e["type"]);
        let (pd, ed) = (
            p["data"].as_object().unwrap(),
            e["data"].as_object().unwrap(),
        );
        let mut pk: Vec<_> = pd.keys().collect();
        let mut ek: Vec<_> = ed.keys().collect();
        pk.sort();
        ek.sort();
        assert_eq!(pk, ek, "data members of {p}");
        for key in pd.keys() {
            match key.as_str() {
                // Where and when the Python code ran, and its wall-clock duration.
                "timestamp" | "module" | "function" | "line" | "duration_seconds" => {
                    assert_eq!(
                        std::mem::discriminant(&pd[key]),
                        std::mem::discriminant(&ed[key]),
                        "{key} of {p}"
                    )
                }
                "backtest_id" => assert_eq!(pd[key], "python-002"),
                "logger_name" => assert_eq!(pd[key], "backtest.python-002"),
                _ => assert_eq!(pd[key], ed[key], "{key} of {p}"),
            }
        }
    }
    server.shutdown().await.unwrap();
}

const ODD_VALUES: &str = r#"
import sys
from roomcast_client import BacktestStreamPublisher, HttpTransport

run = BacktestStreamPublisher("py-odd-values", transport=HttpTransport(sys.argv[1]))
try:
    import numpy
    trades = numpy.int64(3)
except ImportError:
    trades = 3
run.metrics(trades, 2, 0.6667, float("inf"), float("nan"), -0.05)
assert run.complete({"total_trades": trades, "sharpe_ratio": float("nan")}), "complete not delivered"
assert run.sink.last_error is None, run.sink.last_error
print("published")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_json_cannot_carry_reach_viewers_as_null_and_the_run_still_ends() {
    let server = TestServer::start(|_| {}).await;
    let out = python::run(ODD_VALUES, &[&format!("http://{}", server.addr)]).await;
    assert!(out.contains("published"), "{out}");
    let run = read_stream(&server, "py-odd-values").await;
    assert_eq!(run.len(), 2, "{run:?}");
    let metrics = &run[0]["data"];
    assert_eq!(metrics["total_trades"], 3);
    assert_eq!(metrics["profit_factor"], Value::Null);
    assert_eq!(metrics["sharpe_ratio"], Value::Null);
    assert_eq!(run[1]["type"], "complete");
    assert_eq!(run[1]["data"]["metrics"]["sharpe_ratio"], Value::Null);
}
