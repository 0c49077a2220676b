//! Seed 001's HTTP side: the four broadcast endpoints, their validation, the
//! stats endpoint, and the operational endpoints (`/health`, `/ready`, `/metrics`).

mod common;

use common::*;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

async fn assert_422(server: &TestServer, path: &str, body: &str, field: &str) -> Value {
    let (status, v) = server.http_post(path, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
    assert_eq!(v["field"], field, "{body} → {v}");
    assert!(v["error"].is_string(), "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_curl_price_body_delivers_price_update_with_open_not_open_price() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "ticker", Some("AAPL")).await;

    let (status, report) = server
        .http_post("/api/ws/broadcast/price", SEED_PRICE_BODY)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "success", "{report}");
    assert_eq!(report["recipients"], 1, "{report}");

    let update = recv_json(&mut ws).await;
    assert_eq!(update["type"], "price_update", "{update}");
    assert_eq!(update["ticker"], "AAPL");
    assert_eq!(update["price"], 150.25);
    assert_eq!(update["change"], 2.5);
    assert_eq!(update["change_percent"], 1.69);
    assert_eq!(update["volume"].as_u64(), Some(75_000_000), "{update}");
    assert_eq!(update["high"], 151.0);
    assert_eq!(update["low"], 148.5);
    assert_eq!(update["open"], 149.0);
    assert!(update.get("open_price").is_none(), "{update}");
    assert!(update["timestamp"].is_string(), "{update}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_broadcast_delivers_pattern_alert_to_patterns_subscriber() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "patterns", None).await;
    let body = r#"{
        "ticker": "AAPL",
        "pattern_type": "VCP",
        "score": 8.5,
        "entry_price": 150.50,
        "stop_price": 145.00,
        "target_price": 165.00,
        "risk_reward_ratio": 2.64,
        "message": "VCP pattern detected with high score",
        "timestamp": "2025-11-18T10:30:00Z"
    }"#;
    let (status, report) = server.http_post("/api/ws/broadcast/pattern", body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let alert = recv_json(&mut ws).await;
    assert_eq!(
        alert,
        json!({
            "type": "pattern_alert",
            "ticker": "AAPL",
            "pattern_type": "VCP",
            "score": 8.5,
            "entry_price": 150.5,
            "stop_price": 145.0,
            "target_price": 165.0,
            "risk_reward_ratio": 2.64,
            "message": "VCP pattern detected with high score",
            "timestamp": "2025-11-18T10:30:00Z"
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_broadcast_delivers_alert_trigger_to_alerts_subscriber() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "alerts", None).await;
    let body = r#"{
        "ticker": "AAPL",
        "alert_type": "breakout",
        "trigger_price": 150.00,
        "current_price": 150.25,
        "message": "AAPL breaking out at $150.25 (target: $150.00)"
    }"#;
    let (status, report) = server.http_post("/api/ws/broadcast/alert", body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let alert = recv_json(&mut ws).await;
    assert_eq!(alert["type"], "alert_trigger", "{alert}");
    assert_eq!(alert["ticker"], "AAPL");
    assert_eq!(alert["alert_type"], "breakout");
    assert_eq!(alert["trigger_price"], 150.0);
    assert_eq!(alert["current_price"], 150.25);
    assert_eq!(
        alert["message"],
        "AAPL breaking out at $150.25 (target: $150.00)"
    );
    assert!(alert["timestamp"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_status_broadcast_delivers_market_status_to_subscriber() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "market_status", None).await;
    let body = r#"{
        "status": "open",
        "next_open": null,
        "next_close": "2025-11-18T21:00:00Z",
        "timestamp": "2025-11-18T14:30:00Z"
    }"#;
    let (status, report) = server
        .http_post("/api/ws/broadcast/market_status", body)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let msg = recv_json(&mut ws).await;
    assert_eq!(
        msg,
        json!({
            "type": "market_status",
            "status": "open",
            "next_open": null,
            "next_close": "2025-11-18T21:00:00Z",
            "timestamp": "2025-11-18T14:30:00Z"
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_only_their_own_room() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "alerts", None).await;
    // Other rooms' events are published first; the next message must be the alert.
    publish_price(&server, "AAPL", 1.0).await;
    let (status, _) = server
        .http_post("/api/ws/broadcast/pattern", &pattern_body("AAPL", "p"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .http_post("/api/ws/broadcast/alert", &alert_body("AAPL", "only me"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let next = recv_json(&mut ws).await;
    assert_eq!(next["type"], "alert_trigger", "{next}");
    assert_eq!(next["message"], "only me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_body_is_400_with_error() {
    let server = TestServer::start(|_| {}).await;
    for path in [
        "/api/ws/broadcast/price",
        "/api/ws/broadcast/pattern",
        "/api/ws/broadcast/alert",
        "/api/ws/broadcast/market_status",
    ] {
        let (status, v) = server.http_post(path, "{nope").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} → {v}");
        assert!(v["error"].as_str().unwrap().contains("JSON"), "{v}");
    }
    let (status, _) = server
        .http_post(
            "/api/ws/broadcast/price",
            r#"{"ticker":"AAPL","price":1} trailing"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_price_is_422_naming_price() {
    let server = TestServer::start(|_| {}).await;
    let v = assert_422(
        &server,
        "/api/ws/broadcast/price",
        r#"{"ticker":"AAPL"}"#,
        "price",
    )
    .await;
    assert!(v["error"].as_str().unwrap().contains("price"), "{v}");
    assert_422(
        &server,
        "/api/ws/broadcast/pattern",
        r#"{"ticker":"AAPL","pattern_type":"VCP","score":1,"entry_price":2,"stop_price":1}"#,
        "target_price",
    )
    .await;
    assert_422(
        &server,
        "/api/ws/broadcast/market_status",
        r#"{"next_open":null}"#,
        "status",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_type_is_422_naming_the_field() {
    let server = TestServer::start(|_| {}).await;
    assert_422(
        &server,
        "/api/ws/broadcast/price",
        r#"{"ticker":"AAPL","price":"150.25"}"#,
        "price",
    )
    .await;
    assert_422(
        &server,
        "/api/ws/broadcast/price",
        r#"{"ticker":"AAPL","price":150.25,"volume":"lots"}"#,
        "volume",
    )
    .await;
    assert_422(
        &server,
        "/api/ws/broadcast/alert",
        r#"{"ticker":7,"alert_type":"above","trigger_price":1,"current_price":2}"#,
        "ticker",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_values_are_422_and_nothing_is_published() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "ticker", Some("AAPL")).await;
    let price = "/api/ws/broadcast/price";
    assert_422(&server, price, r#"{"ticker":"AAPL","price":"10"}"#, "price").await;
    assert_422(&server, price, r#"{"ticker":"AAPL","price":null}"#, "price").await;
    assert_422(&server, price, r#"{"ticker":"A B","price":1}"#, "ticker").await;
    assert_422(
        &server,
        price,
        r#"{"ticker":"AAPL","price":10,"high":9,"low":11}"#,
        "low",
    )
    .await;
    assert_422(
        &server,
        price,
        r#"{"ticker":"AAPL","price":10,"timestamp":"yesterday"}"#,
        "timestamp",
    )
    .await;
    // None of the above reached the subscriber: the next message is this one.
    publish_price(&server, "AAPL", 42.0).await;
    let next = recv_json(&mut ws).await;
    assert_eq!(next["price"], 42.0, "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_negative_prices_are_delivered_as_markets_print_them() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "ticker", Some("CL=F")).await;
    // WTI crude, 2020-04-20.
    let body = r#"{"ticker":"CL=F","price":-37.63,"change":-55.9,"change_percent":-305.97,"high":17.85,"low":-40.32,"open_price":17.73,"timestamp":"2020-04-20T18:30:00-04:00"}"#;
    let (status, report) = server.http_post("/api/ws/broadcast/price", body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let update = recv_json(&mut ws).await;
    assert_eq!(update["price"], -37.63, "{update}");
    assert_eq!(update["low"], -40.32, "{update}");
    assert_eq!(update["timestamp"], "2020-04-20T18:30:00-04:00", "{update}");
    publish_price(&server, "CL=F", 0.0).await;
    assert_eq!(recv_json(&mut ws).await["price"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413() {
    let server = TestServer::start(|c| c.http.max_body_size = 128).await;
    let before = server.limit_hits("body_size").await;
    let body = pattern_body("AAPL", &"x".repeat(1000));
    let (status, v) = server.http_post("/api/ws/broadcast/pattern", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("128"), "{v}");
    assert!(server.limit_hits("body_size").await > before);
    // A small body still works.
    let (status, _) = server
        .http_post("/api/ws/broadcast/price", &price_body("AAPL", 1.0))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_404_json_and_wrong_method_is_405_json() {
    let server = TestServer::start(|_| {}).await;
    let (status, v) = server.http_get("/no/such/path").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v["error"].is_string(), "{v}");
    let (status, v) = server
        .http_post("/api/ws/broadcast/volume", &price_body("AAPL", 1.0))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    let (status, v) = server.http_get("/api/ws/broadcast/price").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("GET"), "{v}");
    let (status, body) = server
        .http(Method::DELETE, "/api/ws/stats", None, &[])
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(json_body(&body)["error"].is_string());
    let (status, v) = server.http_post("/health", "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_sends_byte_identical_text_to_every_subscriber() {
    let server = TestServer::start(|_| {}).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut ws = server.connect_001().await;
        subscribe(&mut ws, "ticker", Some("AAPL")).await;
        clients.push(ws);
    }
    let (status, report) = server
        .http_post("/api/ws/broadcast/price", SEED_PRICE_BODY)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["recipients"], 4, "{report}");
    let mut texts = Vec::new();
    for ws in &mut clients {
        texts.push(recv_text(ws).await);
    }
    assert!(texts.iter().all(|t| t == &texts[0]), "{texts:?}");
    let v: Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(v["type"], "price_update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_reflect_connected_and_subscribed_clients() {
    let server = TestServer::start(|_| {}).await;
    let mut a = server.connect_001().await;
    subscribe(&mut a, "ticker", Some("AAPL")).await;
    subscribe(&mut a, "patterns", None).await;
    let mut b = server.connect_001().await;
    subscribe(&mut b, "ticker", Some("AAPL")).await;
    subscribe(&mut b, "alerts", None).await;
    subscribe(&mut b, "market_status", None).await;
    let mut c = server.connect_001().await;
    subscribe(&mut c, "ticker", Some("TSLA")).await;
    subscribe(&mut c, "alerts", None).await;

    let (status, stats) = server.http_get("/api/ws/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["active_connections"], 3, "{stats}");
    assert_eq!(
        stats["ticker_subscriptions"],
        json!({"AAPL": 2, "TSLA": 1}),
        "{stats}"
    );
    assert_eq!(stats["pattern_subscribers"], 1, "{stats}");
    assert_eq!(stats["alert_subscribers"], 2, "{stats}");
    assert_eq!(stats["market_status_subscribers"], 1, "{stats}");
    // Process-wide counters: other tests in this binary add to them.
    assert!(stats["total_connections"].as_u64().unwrap() >= 3, "{stats}");
    assert!(stats["messages_received"].as_u64().unwrap() >= 7, "{stats}");
    assert!(stats["messages_sent"].as_u64().unwrap() >= 3 + 7, "{stats}");
    assert!(stats["errors"].is_u64(), "{stats}");
    assert!(stats["uptime"].is_u64(), "{stats}");

    // Unsubscribing is reflected at once (the confirmation follows the change).
    send_json(
        &mut b,
        &json!({"type": "unsubscribe", "channel": "ticker", "ticker": "AAPL"}),
    )
    .await;
    assert_eq!(recv_json(&mut b).await["action"], "unsubscribed");
    let (_, stats) = server.http_get("/api/ws/stats").await;
    assert_eq!(stats["ticker_subscriptions"]["AAPL"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready_are_200() {
    let server = TestServer::start(|_| {}).await;
    let (status, v) = server.http_get("/health").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ok", "{v}");
    let (status, v) = server.http_get("/ready").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["ready"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_connections_frames_and_fanout_histogram() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "ticker", Some("AAPL")).await;
    publish_price(&server, "AAPL", 10.0).await;
    recv_json(&mut ws).await;
    let (status, text) = server.http_get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for series in [
        "roomcast_connections",
        "roomcast_frames_sent_total",
        "roomcast_fanout_duration_seconds_bucket",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(prometheus_value(&text, "roomcast_frames_sent_total") >= 3.0);
}
