//! User price alerts: `POST/GET /api/alerts`, `DELETE /api/alerts/{id}`, and
//! their `alert_trigger`s in the `alerts` room when a published price crosses.

mod common;

use common::*;
use hyper::StatusCode;
use serde_json::{Value, json};

async fn create_alert(server: &TestServer, ticker: &str, kind: &str, trigger: f64) -> Value {
    let (status, v) = server
        .http_post(
            "/api/alerts",
            &json!({"ticker": ticker, "alert_type": kind, "trigger_price": trigger}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "created", "{v}");
    v["alert"].clone()
}

/// Publishes an `alert_trigger` marker directly; the next alert a subscriber
/// sees must be this one if nothing else was triggered before it.
async fn publish_marker(server: &TestServer, message: &str) {
    let (status, v) = server
        .http_post("/api/ws/broadcast/alert", &alert_body("MARK", message))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_price_triggers_exactly_one_alert_trigger() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "alerts", None).await;

    let alert = create_alert(&server, "aapl", "above", 150.0).await;
    assert_eq!(alert["ticker"], "AAPL", "{alert}");
    assert_eq!(alert["alert_type"], "above", "{alert}");
    assert_eq!(alert["trigger_price"], 150.0, "{alert}");
    assert!(alert["id"].is_u64(), "{alert}");

    publish_price(&server, "AAPL", 149.0).await; // below: nothing
    publish_price(&server, "AAPL", 150.25).await; // crosses
    let trigger = recv_json(&mut ws).await;
    assert_eq!(trigger["type"], "alert_trigger", "{trigger}");
    assert_eq!(trigger["ticker"], "AAPL");
    assert_eq!(trigger["alert_type"], "above");
    assert_eq!(trigger["trigger_price"], 150.0);
    assert_eq!(trigger["current_price"], 150.25);
    assert!(trigger["message"].as_str().unwrap().contains("150.25"));

    // The alert fired once and is gone: a further crossing triggers nothing.
    publish_price(&server, "AAPL", 151.0).await;
    publish_marker(&server, "marker").await;
    let next = recv_json(&mut ws).await;
    assert_eq!(next["message"], "marker", "{next}");

    let (status, list) = server.http_get("/api/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 0, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakout_alert_fires_on_upward_cross_with_seed_message() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "alerts", None).await;
    create_alert(&server, "AAPL", "breakout", 150.0).await;
    create_alert(&server, "TSLA", "below", 200.0).await;

    publish_price(&server, "AAPL", 149.0).await;
    publish_price(&server, "AAPL", 150.25).await;
    let trigger = recv_json(&mut ws).await;
    assert_eq!(trigger["type"], "alert_trigger", "{trigger}");
    assert_eq!(trigger["alert_type"], "breakout");
    assert_eq!(
        trigger["message"],
        "AAPL breaking out at $150.25 (target: $150.00)"
    );

    publish_price(&server, "TSLA", 199.5).await;
    let trigger = recv_json(&mut ws).await;
    assert_eq!(trigger["ticker"], "TSLA", "{trigger}");
    assert_eq!(trigger["alert_type"], "below");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_listed_and_deleted() {
    let server = TestServer::start(|_| {}).await;
    let a = create_alert(&server, "AAPL", "above", 150.0).await;
    let b = create_alert(&server, "MSFT", "below", 400.0).await;

    let (status, list) = server.http_get("/api/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 2, "{list}");
    let ids: Vec<u64> = list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![a["id"].as_u64().unwrap(), b["id"].as_u64().unwrap()]
    );

    let (status, v) = server
        .http_delete(&format!("/api/alerts/{}", a["id"]))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "deleted", "{v}");
    let (_, list) = server.http_get("/api/alerts").await;
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["alerts"][0]["ticker"], "MSFT", "{list}");

    // Deleting again, or an id that never existed: 404.
    let (status, v) = server
        .http_delete(&format!("/api/alerts/{}", a["id"]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v["error"].is_string());
    let (status, _) = server.http_delete("/api/alerts/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A non-numeric id: 400.
    let (status, v) = server.http_delete("/api/alerts/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_alert_does_not_fire() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "alerts", None).await;
    let alert = create_alert(&server, "AAPL", "above", 100.0).await;
    let (status, _) = server
        .http_delete(&format!("/api/alerts/{}", alert["id"]))
        .await;
    assert_eq!(status, StatusCode::OK);
    publish_price(&server, "AAPL", 200.0).await;
    publish_marker(&server, "marker").await;
    assert_eq!(recv_json(&mut ws).await["message"], "marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_alerts_far_beyond_the_outbox_reaches_every_reader_that_keeps_up() {
    const CAPACITY: usize = 16;
    const ALERTS: usize = 20 * CAPACITY;
    let server = TestServer::start(|c| c.ws.outbox_capacity = CAPACITY).await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut ws = server.connect_001().await;
        subscribe(&mut ws, "alerts", None).await;
        readers.push(ws);
    }
    let mut http = server.http_client().await;
    for i in 0..ALERTS {
        let body =
            json!({"ticker": "AAPL", "alert_type": "above", "trigger_price": 100.0 + i as f64});
        let (status, v) = http.post("/api/alerts", &body.to_string()).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, report) = http
        .post("/api/ws/broadcast/price", &price_body("AAPL", 1000.0))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["alerts"],
        json!({"fired": ALERTS, "published": ALERTS, "rearmed": 0}),
        "{report}"
    );
    for ws in &mut readers {
        let mut triggers: Vec<f64> = Vec::new();
        for _ in 0..ALERTS {
            let trigger = recv_json(ws).await;
            assert_eq!(trigger["type"], "alert_trigger", "{trigger}");
            triggers.push(trigger["trigger_price"].as_f64().unwrap());
        }
        // Every alert, once, in the order they were armed.
        let armed: Vec<f64> = (0..ALERTS).map(|i| 100.0 + i as f64).collect();
        assert_eq!(triggers, armed);
        // Still connected.
        ping_pong(ws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_below_zero_fires_on_a_negative_price() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "alerts", None).await;
    create_alert(&server, "CL=F", "below", -10.0).await;
    publish_price(&server, "CL=F", 0.0).await; // not yet
    publish_price(&server, "CL=F", -37.63).await;
    let trigger = recv_json(&mut ws).await;
    assert_eq!(trigger["trigger_price"], -10.0, "{trigger}");
    assert_eq!(trigger["current_price"], -37.63, "{trigger}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_alert_bodies_are_422_naming_the_field() {
    let server = TestServer::start(|_| {}).await;
    for (body, field) in [
        (
            json!({"ticker": "AAPL", "alert_type": "sideways", "trigger_price": 1.0}),
            "alert_type",
        ),
        (
            json!({"ticker": "AAPL", "alert_type": 3, "trigger_price": 1.0}),
            "alert_type",
        ),
        (
            json!({"ticker": "AAPL", "alert_type": "above", "trigger_price": "5"}),
            "trigger_price",
        ),
        (
            json!({"ticker": "AAPL", "alert_type": "above"}),
            "trigger_price",
        ),
        (
            json!({"ticker": "A B", "alert_type": "above", "trigger_price": 1.0}),
            "ticker",
        ),
    ] {
        let (status, v) = server.http_post("/api/alerts", &body.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert_eq!(v["field"], field, "{body} → {v}");
    }
    let (status, _) = server.http_post("/api/alerts", "{oops").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, list) = server.http_get("/api/alerts").await;
    assert_eq!(list["count"], 0, "nothing was armed: {list}");
}
