//! The seeds' own clients, in Python with the `websockets` package, against
//! the real server. Seed 001: connect with `?user_id=user123`, subscribe exactly as the
//! seed's JSON shows, and receive the price the seed's curl example publishes.
//! Seed 003: its Python client verbatim, on its own curl example's run. Seed 002:
//! a UI following its connection flow to `backtest_complete`.
//! Skipped (with a note) when `python3 -c "import websockets"` fails; the CI
//! script installs `websockets`.

mod common;

use std::process::Stdio;

use common::*;
use hyper::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const CLIENT: &str = r#"
import asyncio, json, sys
import websockets

async def main(url):
    async with websockets.connect(url) as ws:
        # Seed 001, "Subscribe to Ticker", verbatim.
        await ws.send(json.dumps({
            "type": "subscribe",
            "channel": "ticker",
            "ticker": "AAPL"
        }))
        async for raw in ws:
            message = json.loads(raw)
            print(json.dumps(message), flush=True)
            if message.get("type") == "price_update":
                return

asyncio.run(main(sys.argv[1]))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_python_client_receives_curl_published_price() {
    if !python::has_websockets().await {
        eprintln!(
            "note: skipping seed_python_client_receives_curl_published_price: \
             `python3 -c \"import websockets\"` failed (pip install websockets)"
        );
        return;
    }
    let server = TestServer::start(|_| {}).await;
    let script =
        std::env::temp_dir().join(format!("roomcast_seed001_client_{}.py", std::process::id()));
    std::fs::write(&script, CLIENT).expect("write client script");

    let mut child = Command::new("python3")
        .arg(&script)
        .arg(server.ws_url("/api/ws?user_id=user123"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python3");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = within("a line from the Python client", lines.next_line())
            .await
            .expect("read stdout")
            .expect("the Python client exited early");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };

    let ack = next().await;
    assert_eq!(ack["type"], "connection", "{ack}");
    assert!(
        ack["connection_id"]
            .as_str()
            .unwrap()
            .starts_with("user123_")
    );
    let sub = next().await;
    assert_eq!(sub["type"], "subscription", "{sub}");
    assert_eq!(sub["ticker"], "AAPL", "{sub}");
    // The history follows the confirmation: the client is now a member.
    assert_eq!(next().await["type"], "history");

    let (status, report) = server
        .http_post("/api/ws/broadcast/price", SEED_PRICE_BODY)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let update = next().await;
    assert_eq!(update["type"], "price_update", "{update}");
    assert_eq!(update["ticker"], "AAPL");
    assert_eq!(update["price"], 150.25);
    assert_eq!(update["open"], 149.0);

    let status = within("the Python client to exit", child.wait())
        .await
        .expect("wait");
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_file(&script);
}

/// Seed 003's Python client (seed 003, "Python" under its client examples),
/// verbatim: only the authority (`localhost:8000`) and the run id in the
/// last line are replaced with the test server's and the started run's.
const SEED003_CLIENT: &str = r#"
import asyncio
import json
import websockets

async def stream_backtest(backtest_id: str):
    uri = f"ws://localhost:8000/api/ws/stream/backtest/{backtest_id}"
    
    async with websockets.connect(uri) as ws:
        async for message in ws:
            data = json.loads(message)
            
            if data['type'] == 'progress':
                print(f"Progress: {data['data']['progress']:.1f}%")
            elif data['type'] == 'trade':
                print(f"Trade {data['data']['event']}: {data['data']['trade_id']}")
            elif data['type'] == 'complete':
                print("Backtest complete!")
                print(json.dumps(data['data']['metrics'], indent=2))
                break

# Run
asyncio.run(stream_backtest('backtest_20240211_123456'))
"#;

/// Seed 003's curl example body ("Start a Backtest"), verbatim.
const SEED003_START_BODY: &str = r#"{
    "name": "Test Backtest",
    "symbol": "BTC-USD",
    "timeframes": ["4H", "1H", "15M"],
    "start_date": "2024-01-01",
    "end_date": "2024-01-31",
    "initial_capital": 10000,
    "strategy_ids": ["strategy1"],
    "risk_per_trade": 0.02
  }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003s_python_client_verbatim_streams_the_seeds_example_backtest_to_its_metrics() {
    if !python::has_websockets().await {
        eprintln!(
            "note: skipping the seed 003 client test: `python3 -c \"import websockets\"` failed"
        );
        return;
    }
    // The default pace: the run takes about 1.5 s; the client connects after
    // the POST answered and gets the run from its start (replay), then live.
    let server = TestServer::start(|_| {}).await;
    let (status, started) = server
        .http_post("/api/backtesting/start", SEED003_START_BODY)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["backtest_id"].as_str().unwrap();
    let client = SEED003_CLIENT
        .replace("localhost:8000", &server.addr.to_string())
        .replace("backtest_20240211_123456", id);
    let stdout = python::run(&client, &[]).await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"Progress: 0.0%"), "{stdout}");
    assert!(lines.contains(&"Trade entry: trade_1"), "{stdout}");
    assert!(lines.contains(&"Trade exit: trade_1"), "{stdout}");
    let complete = lines
        .iter()
        .position(|l| *l == "Backtest complete!")
        .expect("complete");
    assert_eq!(lines[complete - 1], "Progress: 100.0%", "{stdout}");
    let metrics: Value =
        serde_json::from_str(&lines[complete + 1..].join("\n")).expect("metrics JSON");
    let exits = lines
        .iter()
        .filter(|l| l.starts_with("Trade exit: "))
        .count();
    assert_eq!(metrics["total_trades"], exits as u64, "{metrics}");
    assert!(
        exits >= 1,
        "the seed's example request yields at least one closed trade"
    );
    for key in COMPLETE_METRICS_KEYS {
        assert!(metrics.get(key).is_some(), "{key} missing: {metrics}");
    }
}

/// A seed 002 UI's flow (seed 002, "Connection Flow" and the sequence
/// diagram), in Python: connect to `/ws`, subscribe to `backtest`, POST the
/// run, read events until `backtest_complete`; prints each event's type.
const SEED002_CLIENT: &str = r#"
import asyncio, json, sys, urllib.request
import websockets

async def main(base):
    async with websockets.connect(f"ws://{base}/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "topic": "backtest"}))
        print(await ws.recv(), flush=True)
        body = {"mode": "vanilla", "symbol": "EURUSD", "timeframe": "H1",
                "start_date": "2023-01-01", "end_date": "2023-03-31", "backtest_id": "my-custom-id"}
        request = urllib.request.Request(f"http://{base}/api/v1/backtest/run", method="POST",
            data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        answer = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(request).read()))
        print(json.dumps(answer), flush=True)
        async for message in ws:
            event = json.loads(message)
            print(json.dumps(event), flush=True)
            if event["type"] in ("backtest_complete", "backtest_error"):
                break

asyncio.run(main(sys.argv[1]))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_002_ui_subscribes_posts_a_run_and_follows_it_to_backtest_complete() {
    if !python::has_websockets().await {
        eprintln!(
            "note: skipping the seed 002 client test: `python3 -c \"import websockets\"` failed"
        );
        return;
    }
    let server = TestServer::start(|_| {}).await;
    let stdout = python::run(SEED002_CLIENT, &[&server.addr.to_string()]).await;
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        lines[0],
        serde_json::json!({"type": "subscription_confirmed", "topic": "backtest"})
    );
    assert_eq!(lines[1]["backtest_id"], "my-custom-id");
    assert_eq!(lines[1]["status"], "pending");
    let events = &lines[2..];
    assert_eq!(events[0]["type"], "backtest_start", "{}", events[0]);
    assert_eq!(events[0]["data"]["variant"], "vanilla");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "backtest_complete", "{last}");
    assert!(
        events
            .iter()
            .all(|e| e["data"]["backtest_id"] == "my-custom-id")
    );
    assert!(events.iter().any(|e| e["type"] == "log_entry"));
    let progress: Vec<f64> = events
        .iter()
        .filter(|e| e["type"] == "backtest_progress")
        .map(|e| e["data"]["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100.0));
}
