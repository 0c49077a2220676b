//! Per-connection and per-node limits: frame size (1009), inbound rate (4029),
//! connection cap (503) and the heartbeat (4000). A bad client never affects
//! the others.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use roomcast::seconds::Seconds;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_client_frame_is_closed_with_1009_and_others_are_unaffected() {
    let server = TestServer::start(|c| c.ws.max_message_size = 1024).await;
    let mut bystander = server.connect_001().await;
    let mut big = server.connect_001().await;

    // A message of exactly the limit is accepted.
    let prefix = r#"{"type":"ping","pad":""#;
    let at_limit = format!("{prefix}{}\"}}", "x".repeat(1024 - prefix.len() - 2));
    assert_eq!(at_limit.len(), 1024);
    big.send(Message::text(at_limit)).await.unwrap();
    assert_eq!(recv_json(&mut big).await["type"], "pong");

    big.send(Message::text("x".repeat(2000))).await.unwrap();
    let (code, reason) = recv_close(&mut big).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("too big"), "{reason}");

    ping_pong(&mut bystander).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_message_over_the_limit_is_closed_with_1009() {
    let server = TestServer::start(|c| c.ws.max_message_size = 1024).await;
    let mut raw = RawWs::connect(server.addr, "/api/ws").await;
    assert_eq!(raw.read_frame().await.opcode, OP_TEXT); // connection ack
    // Three 600-byte fragments: each fits, together they do not.
    raw.send_frame_fin(false, OP_TEXT, &[b' '; 600]).await;
    raw.send_frame_fin(false, 0x0, &[b' '; 600]).await;
    raw.send_frame_fin(true, 0x0, &[b' '; 600]).await;
    let frame = raw.read_frame().await;
    assert_eq!(frame.opcode, OP_CLOSE);
    assert_eq!(
        u16::from_be_bytes([frame.payload[0], frame.payload[1]]),
        1009
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_gets_pongs_then_rate_limit_errors_then_close_4029() {
    let server = TestServer::start(|c| {
        c.ws.client_msg_rate = 10;
        c.ws.client_msg_burst = 10;
        c.ws.client_msg_hard_limit = 20;
    })
    .await;
    let mut bystander = server.connect_001().await;
    let mut ws = server.connect_001().await;
    // 100 pings back to back: queued locally, then written in one go.
    for _ in 0..100 {
        ws.feed(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    }
    // The server may close (and stop reading) before every ping is written.
    let _ = ws.flush().await;

    let closed = recv_close_collect(&mut ws).await;
    assert_eq!(closed.code, 4029, "{closed:?}");
    let replies: Vec<Value> = closed
        .texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let pongs = replies.iter().filter(|v| v["type"] == "pong").count();
    let errors: Vec<&Value> = replies.iter().filter(|v| v["type"] == "error").collect();
    assert_eq!(replies[0]["type"], "pong", "the burst is served first");
    assert!(pongs >= 10, "the burst of 10 is served: {pongs} pongs");
    assert!(
        errors.len() >= 20,
        "each rejected message gets an error: {} errors",
        errors.len()
    );
    for e in &errors {
        assert!(e["message"].as_str().unwrap().contains("Rate limit"), "{e}");
    }
    assert_eq!(pongs + errors.len(), replies.len(), "{replies:?}");
    assert!(replies.len() < 100, "the flood was cut short");

    ping_pong(&mut bystander).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_within_its_burst_is_not_throttled() {
    // Default limits (10/s, burst 10): ten messages are within the burst
    // whatever their timing.
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    for _ in 0..10 {
        ping_pong(&mut ws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_under_a_large_rate_is_never_throttled() {
    let server = TestServer::start(|c| {
        c.ws.client_msg_rate = 100_000;
        c.ws.client_msg_burst = 1_000;
    })
    .await;
    let mut ws = server.connect_001().await;
    for _ in 0..200 {
        ws.feed(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..200 {
        let v = recv_json(&mut ws).await;
        assert_eq!(v["type"], "pong", "reply {i}: {v}");
    }
    ping_pong(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_over_connection_cap_is_refused_with_503_json() {
    let server = TestServer::start(|c| c.ws.max_connections = 2).await;
    let mut a = server.connect_001().await;
    let mut b = server.connect_001().await;

    let (status, body) = server.ws_upgrade_refused("/api/ws").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("connection limit"),
        "{body}"
    );
    assert_eq!(body["max_connections"], 2, "{body}");

    match tokio_tungstenite::connect_async(server.ws_url("/api/ws")).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(other) => panic!("expected an HTTP 503, got {other}"),
        Ok(_) => panic!("a third connection was accepted"),
    }

    // The refused upgrades did not disturb the connected clients, and plain
    // HTTP still works at the cap.
    ping_pong(&mut a).await;
    ping_pong(&mut b).await;
    let (status, _) = server.http_get("/health").await;
    assert_eq!(status, StatusCode::OK);
}

fn heartbeat(c: &mut roomcast::Config) {
    c.ws.heartbeat_timeout = Seconds::from_secs_f64(0.5);
    c.ws.ping_interval = Some(Seconds::from_secs_f64(0.2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_pinged_then_closed_with_4000() {
    let server = TestServer::start(heartbeat).await;
    let mut raw = RawWs::connect(server.addr, "/api/ws").await;
    let ack = raw.read_frame().await;
    assert_eq!(ack.opcode, OP_TEXT);
    let ack: Value = serde_json::from_slice(&ack.payload).unwrap();
    assert_eq!(ack["type"], "connection");

    // Never answer: the server pings, then gives up.
    let mut pings = 0;
    let close = loop {
        let frame = raw.read_frame().await;
        assert!(frame.fin);
        match frame.opcode {
            OP_PING => pings += 1,
            OP_CLOSE => break frame,
            other => panic!("unexpected frame opcode {other}: {frame:?}"),
        }
    };
    assert!(pings >= 1, "the server pinged before closing");
    let code = u16::from_be_bytes([close.payload[0], close.payload[1]]);
    assert_eq!(code, 4000);
    let reason = String::from_utf8_lossy(&close.payload[2..]);
    assert!(reason.contains("heartbeat"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_answering_pings_stays_connected_past_several_timeouts() {
    let server = TestServer::start(heartbeat).await;
    let mut ws = server.connect_001().await;
    // tungstenite answers each ping while we keep reading.
    let mut pings = 0;
    while pings < 5 {
        match within("a server ping", ws.next()).await {
            Some(Ok(Message::Ping(payload))) => {
                assert_eq!(&payload[..], b"roomcast");
                pings += 1;
            }
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    send_json(&mut ws, &json!({"type": "ping"})).await;
    let pong = recv_json(&mut ws).await;
    assert_eq!(pong["type"], "pong", "{pong}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_pinged_once_per_interval_not_every_sweep() {
    let server = TestServer::start(|c| {
        c.ws.heartbeat_timeout = Seconds::from_secs(1);
        c.ws.ping_interval = Some(Seconds::from_secs_f64(0.2));
    })
    .await;
    let mut raw = RawWs::connect(server.addr, "/api/ws").await;
    assert_eq!(raw.read_frame().await.opcode, OP_TEXT); // connection ack
    let mut pings = 0;
    loop {
        let frame = raw.read_frame().await;
        match frame.opcode {
            OP_PING => pings += 1,
            OP_CLOSE => break,
            other => panic!("unexpected frame opcode {other}"),
        }
    }
    // Silent from 0.2 s to 1 s: pings at 0.2, 0.4, 0.6 and 0.8 s at most
    // (the sweep runs every 0.1 s; pinging on every sweep would send 8).
    assert!((1..=4).contains(&pings), "{pings} pings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_is_answered_within_its_budget_then_closed_with_4029() {
    let server = TestServer::start(|c| {
        c.ws.client_msg_rate = 10;
        c.ws.client_msg_burst = 10;
        c.ws.client_msg_hard_limit = 20;
    })
    .await;
    let mut bystander = server.connect_001().await;
    let mut raw = RawWs::connect(server.addr, "/api/ws").await;
    assert_eq!(raw.read_frame().await.opcode, OP_TEXT); // connection ack
    let mut flood = Vec::new();
    for _ in 0..1000 {
        flood.extend(masked_frame(0x80 | OP_PING, b"flood"));
    }
    raw.send_raw(&flood).await;
    let mut pongs = 0;
    let code = loop {
        let frame = raw.read_frame().await;
        match frame.opcode {
            0xA => pongs += 1,
            OP_CLOSE => break u16::from_be_bytes([frame.payload[0], frame.payload[1]]),
            other => panic!("unexpected frame opcode {other}"),
        }
    };
    assert_eq!(code, 4029);
    // The burst, plus what the rate refilled while the flood was read.
    assert!((10..=15).contains(&pongs), "{pongs} pongs for 1000 pings");
    ping_pong(&mut bystander).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_cap_is_counted_and_leaves_other_clients_alone() {
    let server = TestServer::start(|c| c.ws.max_subscriptions = 1).await;
    let before = server.limit_hits("subscriptions").await;
    let mut bystander = server.connect_001().await;
    subscribe(&mut bystander, "ticker", Some("AAPL")).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "patterns", None).await;
    send_json(&mut ws, &json!({"type": "subscribe", "channel": "alerts"})).await;
    let err = recv_json(&mut ws).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("subscription limit"),
        "{err}"
    );
    assert!(server.limit_hits("subscriptions").await > before);
    aapl_still_flows_to(&server, &mut bystander, 101.0).await;
}

/// Publishes AAPL at `price` and checks that `subscriber` gets it next.
async fn aapl_still_flows_to(server: &TestServer, subscriber: &mut Ws, price: f64) {
    publish_price(server, "AAPL", price).await;
    let update = recv_json(subscriber).await;
    assert_eq!(update["price"], price, "{update}");
}

/// `roomcast_rooms_retired_total{reason="evicted"}` now.
async fn rooms_evicted(server: &TestServer) -> f64 {
    let (_, text) = server.http_get_text("/metrics").await;
    prometheus_value(&text, r#"roomcast_rooms_retired_total{reason="evicted"}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_room_cap_idle_rooms_make_way_and_only_a_fully_watched_node_refuses() {
    // The trading producers off: their rooms would take part in the cap.
    let server = TestServer::start(|c| {
        c.rooms.max_rooms = 2;
        c.trading.enabled = false;
        c.trading.paper_trading = false;
        c.trading.market_data = false;
    })
    .await;
    let (limit_before, evicted_before) = (
        server.limit_hits("rooms").await,
        rooms_evicted(&server).await,
    );
    let mut aapl = server.connect_001().await;
    subscribe(&mut aapl, "ticker", Some("AAPL")).await;
    // MSFT fills the cap with a memberless room; TSLA takes its place.
    publish_price(&server, "MSFT", 10.0).await;
    publish_price(&server, "TSLA", 10.0).await;
    assert!(rooms_evicted(&server).await > evicted_before);
    // With both rooms watched, a third is refused, and said so.
    let mut tsla = server.connect_001().await;
    let history = subscribe(&mut tsla, "ticker", Some("TSLA")).await.unwrap();
    assert_eq!(history["messages"][0]["price"], 10.0, "{history}");
    let (status, body) = server
        .http_post("/api/ws/broadcast/price", &price_body("NVDA", 10.0))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("room"), "{body}");
    assert!(server.limit_hits("rooms").await > limit_before);
    // The rooms the node publishes into itself are outside the cap.
    let (status, body) = server
        .http_post(
            "/api/ws/broadcast/pattern",
            &pattern_body("NVDA", "at the cap"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    aapl_still_flows_to(&server, &mut aapl, 102.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memberless_room_is_retired_with_its_history_after_the_idle_ttl() {
    // The trading producers off: the only idle rooms are this test's.
    let server = TestServer::start(|c| {
        c.rooms.idle_ttl = "0.5".parse().unwrap();
        c.trading.enabled = false;
        c.trading.paper_trading = false;
        c.trading.market_data = false;
    })
    .await;
    let idle =
        |text: &str| prometheus_value(text, r#"roomcast_rooms_retired_total{reason="idle"}"#);
    let (_, text) = server.http_get_text("/metrics").await;
    let before = idle(&text);
    let mut watcher = server.connect_001().await;
    subscribe(&mut watcher, "ticker", Some("AAPL")).await;
    publish_price(&server, "AAPL", 1.0).await;
    publish_price(&server, "IDLE", 1.0).await;
    within("the idle room to be retired", async {
        loop {
            let (_, text) = server.http_get_text("/metrics").await;
            if idle(&text) > before {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut late = server.connect_001().await;
    let history = subscribe(&mut late, "ticker", Some("IDLE")).await.unwrap();
    assert_eq!(history["messages"], json!([]), "{history}");
    // The watched room kept its history, however idle.
    let history = subscribe(&mut late, "ticker", Some("AAPL")).await.unwrap();
    assert_eq!(history["messages"][0]["price"], 1.0, "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_cap_answers_429_and_armed_alerts_still_fire() {
    let server = TestServer::start(|c| c.max_alerts = 1).await;
    let before = server.limit_hits("alerts").await;
    let mut subscriber = server.connect_001().await;
    subscribe(&mut subscriber, "alerts", None).await;
    let arm = |price: f64| {
        json!({"ticker": "AAPL", "alert_type": "above", "trigger_price": price}).to_string()
    };
    let (status, body) = server.http_post("/api/alerts", &arm(150.0)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.http_post("/api/alerts", &arm(160.0)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("alert limit"),
        "{body}"
    );
    assert!(server.limit_hits("alerts").await > before);
    publish_price(&server, "AAPL", 151.0).await;
    let trigger = recv_json(&mut subscriber).await;
    assert_eq!(trigger["type"], "alert_trigger", "{trigger}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_size_and_rate_limits_are_counted() {
    let server = TestServer::start(|c| {
        c.ws.max_message_size = 1024;
        c.ws.client_msg_burst = 1;
        c.ws.client_msg_rate = 1;
    })
    .await;
    let (size, rate) = (
        server.limit_hits("message_size").await,
        server.limit_hits("message_rate").await,
    );
    let mut ws = server.connect_001().await;
    ping_pong(&mut ws).await;
    send_json(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut ws).await["type"], "error");
    assert!(server.limit_hits("message_rate").await > rate);
    ws.send(Message::text("x".repeat(2000))).await.unwrap();
    assert_eq!(recv_close(&mut ws).await.0, 1009);
    assert!(server.limit_hits("message_size").await > size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_at_its_connection_cap_refuses_the_next_viewer_with_503() {
    let server = TestServer::start(|c| {
        c.ws.stream_max_connections = 2;
        // Slow, so the run is still going while viewers come and go.
        c.backtest.bars_per_sec = 20.0;
    })
    .await;
    let (status, started) = server
        .http_post(
            "/api/backtesting/start",
            r#"{"name":"cap","symbol":"BTC-USD","start_date":"2024-01-01","end_date":"2024-01-31","strategy_ids":["strategy1"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let path = format!(
        "/api/ws/stream/backtest/{}",
        started["backtest_id"].as_str().unwrap()
    );
    let mut first = server.ws_connect(&path).await;
    assert_eq!(recv_json(&mut first).await["type"], "connected");
    let mut second = server.ws_connect(&path).await;
    assert_eq!(recv_json(&mut second).await["type"], "connected");
    // Both are members once their replay has begun arriving.
    recv_until(&mut second, |m| m["type"] == "progress").await;
    let (status, body) = server.ws_upgrade_refused(&path).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["max_connections"], 2, "{body}");
    // The cap is per stream: another run's viewers are unaffected.
    let (_, other) = server
        .http_post(
            "/api/backtesting/start",
            r#"{"name":"other","symbol":"BTC-USD","start_date":"2024-01-01","end_date":"2024-01-31","strategy_ids":["strategy1"]}"#,
        )
        .await;
    let mut elsewhere = server
        .ws_connect(&format!(
            "/api/ws/stream/backtest/{}",
            other["backtest_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(recv_json(&mut elsewhere).await["type"], "connected");
    // The two admitted viewers are still served.
    recv_until(&mut first, |m| m["type"] == "progress").await;
}
