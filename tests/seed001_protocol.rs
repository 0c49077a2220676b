//! Seed 001's WebSocket protocol on `/api/ws`, end to end with real clients.

mod common;

use common::*;
use futures_util::SinkExt;
use hyper::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};

fn is_rfc3339(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_ack_carries_user_prefixed_id_and_timestamp() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws_connect("/api/ws?user_id=user123").await;
    let ack = recv_json(&mut ws).await;
    assert_eq!(ack["type"], "connection", "{ack}");
    assert_eq!(ack["status"], "connected", "{ack}");
    let id = ack["connection_id"].as_str().expect("connection_id");
    assert!(id.starts_with("user123_"), "{id}");
    assert!(id.len() > "user123_".len(), "{id}");
    assert!(is_rfc3339(&ack["timestamp"]), "{ack}");

    // Two connections of the same user get different ids.
    let mut other = server.ws_connect("/api/ws?user_id=user123").await;
    let ack2 = recv_json(&mut other).await;
    assert_ne!(ack2["connection_id"], ack["connection_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticker_subscribe_confirms_then_replays_capped_history_oldest_first() {
    let server = TestServer::start(|c| c.rooms.history_size = 3).await;
    for price in [101.0, 102.0, 103.0, 104.0, 105.0] {
        publish_price(&server, "AAPL", price).await;
    }
    let mut ws = server.connect_001().await;
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "channel": "ticker", "ticker": "AAPL"}),
    )
    .await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["type"], "subscription", "{sub}");
    assert_eq!(sub["action"], "subscribed", "{sub}");
    assert_eq!(sub["ticker"], "AAPL", "{sub}");
    assert!(is_rfc3339(&sub["timestamp"]), "{sub}");

    let history = recv_json(&mut ws).await;
    assert_eq!(history["type"], "history", "{history}");
    assert_eq!(history["ticker"], "AAPL", "{history}");
    assert!(is_rfc3339(&history["timestamp"]), "{history}");
    let messages = history["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3, "history is capped at history_size");
    let prices: Vec<f64> = messages
        .iter()
        .map(|m| {
            assert_eq!(m["type"], "price_update", "{m}");
            assert_eq!(m["ticker"], "AAPL", "{m}");
            m["price"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(
        prices,
        vec![103.0, 104.0, 105.0],
        "the latest, oldest first"
    );

    // Live updates follow the replay.
    publish_price(&server, "AAPL", 106.0).await;
    let live = recv_json(&mut ws).await;
    assert_eq!(live["type"], "price_update");
    assert_eq!(live["price"], 106.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticker_subscribe_without_prior_prices_sends_empty_history() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    let history = subscribe(&mut ws, "ticker", Some("MSFT")).await.unwrap();
    assert_eq!(history["ticker"], "MSFT");
    assert_eq!(history["messages"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_alerts_and_market_status_subscriptions_are_confirmed() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    for channel in ["patterns", "alerts", "market_status"] {
        send_json(&mut ws, &json!({"type": "subscribe", "channel": channel})).await;
        let sub = recv_json(&mut ws).await;
        assert_eq!(sub["type"], "subscription", "{sub}");
        assert_eq!(sub["action"], "subscribed", "{sub}");
        assert_eq!(sub["channel"], channel, "{sub}");
        assert!(sub.get("ticker").is_none(), "{sub}");
        assert!(is_rfc3339(&sub["timestamp"]), "{sub}");
    }
    // Subscribing again is confirmed again, not an error.
    send_json(&mut ws, &json!({"type": "subscribe", "channel": "alerts"})).await;
    let again = recv_json(&mut ws).await;
    assert_eq!(again["type"], "subscription", "{again}");
    assert_eq!(again["action"], "subscribed", "{again}");
    ping_pong(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_status_subscriber_gets_the_current_status_on_subscribe() {
    let server = TestServer::start(|_| {}).await;
    let (status, _) = server
        .http_post(
            "/api/ws/broadcast/market_status",
            r#"{"status":"closed","next_open":"2025-11-19T14:30:00Z","next_close":null}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "market_status", None).await;
    let current = recv_json(&mut ws).await;
    assert_eq!(current["type"], "market_status", "{current}");
    assert_eq!(current["status"], "closed", "{current}");
    assert_eq!(current["next_open"], "2025-11-19T14:30:00Z", "{current}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_confirms_and_stops_deliveries() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "ticker", Some("AAPL")).await;
    subscribe(&mut ws, "ticker", Some("MSFT")).await;

    send_json(
        &mut ws,
        &json!({"type": "unsubscribe", "channel": "ticker", "ticker": "AAPL"}),
    )
    .await;
    let unsub = recv_json(&mut ws).await;
    assert_eq!(unsub["type"], "subscription", "{unsub}");
    assert_eq!(unsub["action"], "unsubscribed", "{unsub}");
    assert_eq!(unsub["ticker"], "AAPL", "{unsub}");

    // AAPL is published first; the next message must be MSFT's.
    let report = publish_price(&server, "AAPL", 150.0).await;
    assert_eq!(report["recipients"], 0, "{report}");
    publish_price(&server, "MSFT", 420.0).await;
    let next = recv_json(&mut ws).await;
    assert_eq!(next["type"], "price_update", "{next}");
    assert_eq!(next["ticker"], "MSFT", "{next}");

    // Unsubscribing from a channel one is not in is still confirmed.
    send_json(
        &mut ws,
        &json!({"type": "unsubscribe", "channel": "patterns"}),
    )
    .await;
    let unsub = recv_json(&mut ws).await;
    assert_eq!(unsub["action"], "unsubscribed", "{unsub}");
    assert_eq!(unsub["channel"], "patterns", "{unsub}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_pong_with_timestamp() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    let pong = ping_pong(&mut ws).await;
    assert!(is_rfc3339(&pong["timestamp"]), "{pong}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type_gets_error_and_connection_stays_open() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    send_json(&mut ws, &json!({"type": "invalid"})).await;
    let err = recv_json(&mut ws).await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["message"], "Unknown message type: invalid", "{err}");
    assert!(is_rfc3339(&err["timestamp"]), "{err}");
    ping_pong(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_gets_error_and_connection_stays_open() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    ws.send(Message::text("{not json")).await.unwrap();
    let err = recv_json(&mut ws).await;
    assert_eq!(err["type"], "error", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("Invalid JSON"),
        "{err}"
    );
    // Other bad shapes get errors too, each one reply.
    for (bad, expect) in [
        (json!([1, 2]), "expected a JSON object"),
        (json!({"channel": "patterns"}), "Missing message type"),
        (json!({"type": "subscribe"}), "Missing 'channel'"),
        (
            json!({"type": "subscribe", "channel": "news"}),
            "Unknown channel",
        ),
        (
            json!({"type": "subscribe", "channel": "ticker"}),
            "Missing 'ticker'",
        ),
        (
            json!({"type": "subscribe", "channel": "ticker", "ticker": "A B"}),
            "Invalid ticker",
        ),
    ] {
        send_json(&mut ws, &bad).await;
        let err = recv_json(&mut ws).await;
        assert_eq!(err["type"], "error", "{bad} → {err}");
        assert!(
            err["message"].as_str().unwrap().contains(expect),
            "{bad} → {err}"
        );
    }
    ping_pong(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowercase_ticker_is_normalised() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "channel": "ticker", "ticker": "aapl"}),
    )
    .await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["ticker"], "AAPL", "{sub}");
    let history = recv_json(&mut ws).await;
    assert_eq!(history["ticker"], "AAPL", "{history}");

    // A publish naming the ticker in lower case reaches the same room.
    publish_price(&server, "aapl", 150.0).await;
    let update = recv_json(&mut ws).await;
    assert_eq!(update["type"], "price_update", "{update}");
    assert_eq!(update["ticker"], "AAPL", "{update}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_user_id_is_refused_with_400_on_upgrade() {
    let server = TestServer::start(|_| {}).await;
    let err = tokio_tungstenite::connect_async(server.ws_url("/api/ws?user_id=a%20b"))
        .await
        .expect_err("the upgrade must be refused");
    match err {
        tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST)
        }
        other => panic!("expected an HTTP error response, got {other}"),
    }
    let (status, body) = server.ws_upgrade_refused("/api/ws?user_id=a%20b").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("user_id"),
        "{body}"
    );
    // A valid one still works.
    let mut ws = server.ws_connect("/api/ws?user_id=a.b-c_d@e").await;
    assert_eq!(recv_json(&mut ws).await["type"], "connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_subscription_over_cap_of_two_gets_subscription_limit_error() {
    let server = TestServer::start(|c| c.ws.max_subscriptions = 2).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "ticker", Some("AAPL")).await;
    subscribe(&mut ws, "patterns", None).await;
    send_json(&mut ws, &json!({"type": "subscribe", "channel": "alerts"})).await;
    let err = recv_json(&mut ws).await;
    assert_eq!(err["type"], "error", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("subscription limit"),
        "{err}"
    );
    // The connection stays usable, and a freed slot can be reused.
    ping_pong(&mut ws).await;
    send_json(
        &mut ws,
        &json!({"type": "unsubscribe", "channel": "patterns"}),
    )
    .await;
    assert_eq!(recv_json(&mut ws).await["action"], "unsubscribed");
    subscribe(&mut ws, "alerts", None).await;
}
