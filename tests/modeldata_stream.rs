//! Seed 000 over the embedded store (no database): `/ws/modeldata-stream`
//! and `GET /ws/status`, against a real server with real WebSocket clients.

mod common;

use common::*;
use futures_util::SinkExt;
use hyper::StatusCode;
use roomcast::seconds::Seconds;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A server whose embedded store has `models` simulated models and whose feeds
/// broadcast every `interval` seconds.
async fn server(models: usize, interval: f64) -> TestServer {
    TestServer::start(|c| {
        c.modeldata.sim_models = models;
        c.modeldata.interval = Seconds::from_secs_f64(interval);
        c.market.sim_seed = Some(42);
    })
    .await
}

/// Polls `GET /ws/status` until `pred` holds (the server updates it when a
/// session ends, which a client cannot observe directly).
async fn status_until(server: &TestServer, pred: impl Fn(&Value) -> bool) -> Value {
    within("GET /ws/status to match", async {
        loop {
            let (status, body) = server.http_get("/ws/status").await;
            assert_eq!(status, StatusCode::OK);
            if pred(&body) {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
}

fn group_names(message: &Value) -> Vec<String> {
    message["data"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn initial_modeldata_arrives_on_connect_with_the_first_five_groups() {
    let server = server(7, 60.0).await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    let initial = recv_json(&mut ws).await;
    assert_eq!(initial["type"], "initial_modeldata", "{initial}");
    assert_eq!(initial["total_groups"], 5);
    assert_eq!(
        group_names(&initial),
        [
            "AI_Model_Alpha",
            "AI_Model_Beta",
            "AI_Model_Delta",
            "AI_Model_Epsilon",
            "AI_Model_Eta"
        ]
    );
    let group = &initial["data"]["AI_Model_Alpha"];
    assert_eq!(group["display_name"], "AI_Model_Alpha");
    assert_eq!(group["total_points"], 500);
    let points = group["data_points"].as_array().unwrap();
    assert_eq!(points.len(), 500);
    for key in [
        "id",
        "display_name",
        "account_value",
        "return_value",
        "total_pnl",
        "fees",
        "trades",
        "created_at",
    ] {
        assert!(
            points[0].get(key).is_some(),
            "point lacks {key}: {}",
            points[0]
        );
    }
    assert_eq!(group["latest_timestamp"], points[499]["created_at"]);
    let times: Vec<&str> = points
        .iter()
        .map(|p| p["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "points out of order");
    assert!(
        times[0].ends_with('Z') && times[0].len() == 24,
        "{}",
        times[0]
    );
}

#[tokio::test]
async fn updates_carry_every_group_each_interval() {
    let server = server(7, 0.2).await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    assert_eq!(recv_json(&mut ws).await["type"], "initial_modeldata");
    let update = recv_json(&mut ws).await;
    assert_eq!(update["type"], "modeldata_update", "{update}");
    assert_eq!(update["total_groups"], 7);
    assert_eq!(group_names(&update).len(), 7);
    let next = recv_json(&mut ws).await;
    assert_eq!(next["type"], "modeldata_update");
    assert!(next["timestamp"].as_str() > update["timestamp"].as_str());
}

#[tokio::test]
async fn a_client_message_gets_an_echo_and_the_stream_goes_on() {
    let server = server(2, 60.0).await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    assert_eq!(recv_json(&mut ws).await["type"], "initial_modeldata");
    ws.send(Message::text("hello {not json")).await.unwrap();
    let echo = recv_json(&mut ws).await;
    assert_eq!(echo["type"], "echo");
    assert_eq!(echo["message"], "hello {not json");
    assert!(echo["timestamp"].is_string());
}

#[tokio::test]
async fn options_select_points_sampler_and_time_range() {
    let server = server(2, 60.0).await;
    let mut ws = server
        .ws_connect("/ws/modeldata-stream?points=40&sampler=lttb")
        .await;
    let initial = recv_json(&mut ws).await;
    let points = initial["data"]["AI_Model_Alpha"]["data_points"]
        .as_array()
        .unwrap();
    assert_eq!(points.len(), 40);
    let latest = initial["data"]["AI_Model_Alpha"]["latest_timestamp"]
        .as_str()
        .unwrap()
        .to_string();

    // Only the last few rows: the embedded models write one row per 5 s.
    let from =
        chrono::DateTime::parse_from_rfc3339(&latest).unwrap() - chrono::Duration::seconds(20);
    let path = format!(
        "/ws/modeldata-stream?from={}",
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut ws = server.ws_connect(&path).await;
    let initial = recv_json(&mut ws).await;
    let group = &initial["data"]["AI_Model_Alpha"];
    let n = group["total_points"].as_u64().unwrap();
    assert!((4..=5).contains(&n), "{n} rows in the last 20 s");
    let first = group["data_points"][0]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(first).unwrap() >= from,
        "{first}"
    );
}

#[tokio::test]
async fn bad_query_parameters_get_400_naming_the_parameter() {
    let server = server(2, 60.0).await;
    for (query, name) in [
        ("points=1", "points"),
        ("points=999999", "points"),
        ("sampler=fancy", "sampler"),
        ("from=yesterday", "from"),
        ("from=2025-10-25&to=2025-10-24", "to"),
        ("limit=5", "limit"),
    ] {
        let (status, body) = server
            .ws_upgrade_refused(&format!("/ws/modeldata-stream?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(name), "{query}: {error}");
    }
}

#[tokio::test]
async fn ws_status_counts_connections_and_stops_the_broadcast_when_the_last_leaves() {
    let server = server(2, 60.0).await;
    let body = status_until(&server, |_| true).await;
    assert_eq!(body["modeldata_stream_connections"], 0);
    assert_eq!(body["modeldata_stream_task_running"], false);
    assert_eq!(
        body["broadcast_intervals"]["modeldata_updates"],
        "60 seconds"
    );

    let mut a = server.ws_connect("/ws/modeldata-stream").await;
    let mut b = server.ws_connect("/ws/modeldata-stream").await;
    recv_json(&mut a).await;
    recv_json(&mut b).await;
    let body = status_until(&server, |b| b["modeldata_stream_task_running"] == true).await;
    assert_eq!(body["modeldata_stream_connections"], 2);
    assert_eq!(body["modeldata"]["feeds"][0]["room"], "modeldata");
    assert_eq!(body["modeldata"]["feeds"][0]["connections"], 2);

    a.close(None).await.unwrap();
    b.close(None).await.unwrap();
    let body = status_until(&server, |b| b["modeldata_stream_connections"] == 0).await;
    let body = if body["modeldata_stream_task_running"] == true {
        status_until(&server, |b| b["modeldata_stream_task_running"] == false).await
    } else {
        body
    };
    assert_eq!(body["modeldata"]["feeds"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn connections_with_equal_options_share_one_feed_and_its_bytes() {
    let server = server(3, 0.3).await;
    let mut a = server.ws_connect("/ws/modeldata-stream?points=100").await;
    let mut b = server.ws_connect("/ws/modeldata-stream?points=100").await;
    recv_json(&mut a).await;
    recv_json(&mut b).await;
    let body = status_until(&server, |b| b["modeldata_stream_connections"] == 2).await;
    assert_eq!(body["modeldata"]["feeds"].as_array().unwrap().len(), 1);
    // The same update, serialised once, reaches both byte for byte (b may
    // have joined one round later, so look at two updates of each).
    let ua = [recv_text(&mut a).await, recv_text(&mut a).await];
    let ub = [recv_text(&mut b).await, recv_text(&mut b).await];
    assert!(ua[1].contains("\"type\":\"modeldata_update\""));
    assert!(ua.iter().any(|u| ub.contains(u)), "no update in common");
}

#[tokio::test]
async fn distinct_option_sets_beyond_the_cap_are_refused_with_503() {
    let server = TestServer::start(|c| {
        c.modeldata.sim_models = 2;
        c.modeldata.max_feeds = 1;
    })
    .await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    recv_json(&mut ws).await;
    let (status, body) = server
        .ws_upgrade_refused("/ws/modeldata-stream?points=10")
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"].as_str().unwrap().contains("option sets"),
        "{body}"
    );
    // The default feed still takes connections.
    let mut again = server.ws_connect("/ws/modeldata-stream").await;
    assert_eq!(recv_json(&mut again).await["type"], "initial_modeldata");
}

#[tokio::test]
async fn embedded_store_reports_ready_without_a_database() {
    let server = server(2, 60.0).await;
    let (status, body) = server.http_get("/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["modeldata"]["source"], "memory");
    assert_eq!(body["modeldata"]["ready"], true);
}

#[tokio::test]
async fn every_connection_starts_with_initial_modeldata_even_when_reconnecting_at_once() {
    // Short interval: reconnects land while rounds are in flight and while the
    // previous connection's feed is being torn down.
    let server = server(2, 0.05).await;
    for _ in 0..15 {
        let mut ws = server.ws_connect("/ws/modeldata-stream?points=20").await;
        let first = recv_json(&mut ws).await;
        assert_eq!(first["type"], "initial_modeldata", "{first}");
        ws.close(None).await.unwrap();
    }
}
