//! The native protocol v1 (`/v1/ws`) on one node: many rooms per subscribe,
//! messages naming room, seq and epoch, resume from a seq with `recovered`,
//! and clear `error` codes for bad input.

mod common;

use common::*;
use serde_json::{Value, json};

async fn native(server: &TestServer) -> Ws {
    let mut ws = server.ws_connect("/v1/ws").await;
    let welcome = recv_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["protocol"], "roomcast.v1");
    ws
}

async fn expect_error(ws: &mut Ws, message: Value, code: &str) -> Value {
    send_json(ws, &message).await;
    let e = recv_json(ws).await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], code, "{e}");
    assert!(!e["message"].as_str().unwrap().is_empty());
    e
}

#[tokio::test]
async fn one_subscribe_joins_many_rooms_and_messages_name_room_seq_and_epoch() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = native(&server).await;
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "rooms": ["ticker:aapl", "patterns", "alerts"]}),
    )
    .await;
    let mut rooms = Vec::new();
    for _ in 0..3 {
        let sub = recv_json(&mut ws).await;
        assert_eq!(sub["type"], "subscribed", "{sub}");
        assert!(sub["epoch"].is_u64() && sub["seq"].is_u64());
        rooms.push(sub["room"].as_str().unwrap().to_string());
    }
    assert_eq!(rooms, ["ticker:AAPL", "patterns", "alerts"]);
    publish_price(&server, "AAPL", 150.25).await;
    let m = recv_json(&mut ws).await;
    assert_eq!(m["type"], "message");
    assert_eq!(m["room"], "ticker:AAPL");
    assert_eq!(m["seq"], 1);
    assert!(m["epoch"].is_u64());
    assert_eq!(m["data"]["type"], "price_update");
    assert_eq!(m["data"]["price"], 150.25);
}

#[tokio::test]
async fn resuming_from_a_seq_replays_what_was_missed_in_order() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = native(&server).await;
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "rooms": ["ticker:MSFT"]}),
    )
    .await;
    let sub = recv_json(&mut ws).await;
    let epoch = sub["epoch"].clone();
    publish_price(&server, "MSFT", 1.0).await;
    let first = recv_json(&mut ws).await;
    assert_eq!(first["seq"], 1);
    drop(ws);
    for p in [2.0, 3.0, 4.0] {
        publish_price(&server, "MSFT", p).await;
    }
    let mut ws = native(&server).await;
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "rooms": [{"room": "ticker:MSFT", "seq": 1, "epoch": epoch}]}),
    )
    .await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["recovered"], true, "{sub}");
    assert_eq!(sub["replayed"], 3);
    for (seq, price) in [(2, 2.0), (3, 3.0), (4, 4.0)] {
        let m = recv_json(&mut ws).await;
        assert_eq!(
            (m["seq"].as_u64(), m["data"]["price"].as_f64()),
            (Some(seq), Some(price))
        );
    }
    publish_price(&server, "MSFT", 5.0).await;
    assert_eq!(recv_json(&mut ws).await["seq"], 5);
}

#[tokio::test]
async fn resuming_past_the_history_says_not_recovered_with_the_gap() {
    let server = TestServer::start(|c| c.rooms.history_size = 3).await;
    for p in 1..=6 {
        publish_price(&server, "TSLA", p as f64).await;
    }
    let mut ws = native(&server).await;
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "rooms": [{"room": "ticker:TSLA", "seq": 1}]}),
    )
    .await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["recovered"], false, "{sub}");
    assert_eq!(sub["reason"], "trimmed");
    assert_eq!(sub["gap"], json!({"from": 2, "to": 3}));
    let seqs: Vec<u64> = [
        recv_json(&mut ws).await,
        recv_json(&mut ws).await,
        recv_json(&mut ws).await,
    ]
    .iter()
    .map(|m| m["seq"].as_u64().unwrap())
    .collect();
    assert_eq!(seqs, [4, 5, 6]);
    // A seq from another lineage is not trusted.
    let mut other = native(&server).await;
    send_json(
        &mut other,
        &json!({"type": "subscribe", "rooms": [{"room": "ticker:TSLA", "seq": 5, "epoch": 1}]}),
    )
    .await;
    let sub = recv_json(&mut other).await;
    assert_eq!(sub["recovered"], false);
    assert_eq!(sub["reason"], "epoch");
}

#[tokio::test]
async fn bad_input_gets_error_codes_and_the_connection_stays_open() {
    // More messages than the default burst of 10: not a rate-limit test.
    let server = TestServer::start(|c| c.ws.client_msg_burst = 100).await;
    let mut ws = native(&server).await;
    ws_send_text(&mut ws, "{not json").await;
    let e = recv_json(&mut ws).await;
    assert_eq!(e["code"], "invalid_json", "{e}");
    expect_error(&mut ws, json!({"rooms": []}), "bad_message").await;
    expect_error(&mut ws, json!({"type": "dance"}), "unknown_type").await;
    expect_error(
        &mut ws,
        json!({"type": "subscribe", "rooms": "patterns"}),
        "bad_message",
    )
    .await;
    let e = expect_error(
        &mut ws,
        json!({"type": "subscribe", "rooms": ["nowhere"]}),
        "bad_room",
    )
    .await;
    assert_eq!(e["room"], "nowhere");
    expect_error(
        &mut ws,
        json!({"type": "subscribe", "rooms": [{"room": "patterns", "seq": -1}]}),
        "bad_room",
    )
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("ticker:T{i}")).collect();
    expect_error(
        &mut ws,
        json!({"type": "subscribe", "rooms": many}),
        "bad_message",
    )
    .await;
    // Still served.
    send_json(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut ws).await["type"], "pong");
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "rooms": ["patterns"]}),
    )
    .await;
    assert_eq!(recv_json(&mut ws).await["type"], "subscribed");
    expect_error(
        &mut ws,
        json!({"type": "subscribe", "rooms": ["patterns"]}),
        "already_subscribed",
    )
    .await;
    send_json(
        &mut ws,
        &json!({"type": "unsubscribe", "rooms": ["patterns"]}),
    )
    .await;
    let u = recv_json(&mut ws).await;
    assert_eq!(u["type"], "unsubscribed");
    assert_eq!(u["was_subscribed"], true);
}

async fn ws_send_text(ws: &mut Ws, text: &str) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(text))
        .await
        .unwrap();
}
