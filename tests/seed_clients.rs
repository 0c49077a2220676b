//! Seed 001's own client shape, in Python with the `websockets` package, against
//! the real server: connect with `?user_id=user123`, subscribe exactly as the
//! seed's JSON shows, and receive the price the seed's curl example publishes.
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

async fn python_has_websockets() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_python_client_receives_curl_published_price() {
    if !python_has_websockets().await {
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
