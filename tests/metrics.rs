//! `GET /metrics` on a fresh node: every metric described (`# HELP`) and
//! every counter listed from the start, each labelled family with every
//! label, at 0; and `roomcast_errors_total` counting bad requests, not
//! requests for paths or methods that do not exist.
//!
//! Metrics are process-wide: no test in this binary makes a WebSocket
//! session close, a limit fire or a room retire, so those families stay at 0
//! whatever order the tests run in; only the second test makes errors.

mod common;

use common::{TestServer, prometheus_value};
use hyper::{Method, StatusCode};

/// `name{label="value"}`'s sample in `text`, `None` when not listed.
fn labelled(text: &str, name: &str, label: &str, value: &str) -> Option<f64> {
    let sample = format!("{name}{{{label}=\"{value}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&sample)?.trim().parse().ok())
}

/// Whether the unlabelled sample `name` is listed at all.
fn listed(text: &str, name: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[tokio::test]
async fn a_fresh_node_describes_every_metric_and_lists_every_counter_at_zero() {
    let server = TestServer::start(|_| {}).await;
    let (status, text) = server.http_get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);

    let types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(types.len() >= 25, "too few metrics listed:\n{text}");
    for name in &types {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} ")) && l.len() > 8 + name.len()),
            "{name} has no # HELP line:\n{text}"
        );
    }

    for name in [
        "roomcast_errors_total",
        "roomcast_accept_errors_total",
        "roomcast_tls_handshake_failures_total",
        "roomcast_tls_reloads_total",
        "roomcast_tls_reload_failures_total",
        "roomcast_slow_consumer_closes_total",
        "roomcast_frames_dropped_total",
        "roomcast_bus_gaps_total",
        "roomcast_modeldata_failures_total",
        "roomcast_auth_refused_total",
    ] {
        assert!(listed(&text, name), "{name} not listed:\n{text}");
    }
    // Counters nothing in this binary moves are listed at exactly 0.
    for name in [
        "roomcast_accept_errors_total",
        "roomcast_tls_handshake_failures_total",
        "roomcast_tls_reload_failures_total",
        "roomcast_slow_consumer_closes_total",
        "roomcast_bus_gaps_total",
    ] {
        assert_eq!(prometheus_value(&text, name), 0.0, "{name}");
    }
    for limit in [
        "header_timeout",
        "header_size",
        "body_timeout",
        "body_size",
        "keepalive_timeout",
        "connections",
        "peer_connections",
        "peer_connect_rate",
        "message_size",
        "message_timeout",
        "message_rate",
        "control_rate",
        "subscriptions",
        "rooms",
        "alerts",
    ] {
        assert_eq!(
            labelled(&text, "roomcast_limit_hits_total", "limit", limit),
            Some(0.0),
            "limit {limit}:\n{text}"
        );
    }
    for reason in [
        "normal",
        "going_away",
        "protocol_error",
        "invalid_payload",
        "message_timeout",
        "message_too_big",
        "internal_error",
        "idle_timeout",
        "token_expired",
        "forbidden",
        "unknown_stream",
        "slow_consumer",
        "rate_limited",
    ] {
        assert_eq!(
            labelled(&text, "roomcast_session_closes_total", "reason", reason),
            Some(0.0),
            "close reason {reason}:\n{text}"
        );
    }
    for reason in ["idle", "evicted"] {
        assert_eq!(
            labelled(&text, "roomcast_rooms_retired_total", "reason", reason),
            Some(0.0),
            "retire reason {reason}:\n{text}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_and_methods_are_not_errors_but_bad_json_is() {
    let server = TestServer::start(|_| {}).await;
    let errors = || async {
        let (_, text) = server.http_get_text("/metrics").await;
        assert!(listed(&text, "roomcast_errors_total"), "{text}");
        prometheus_value(&text, "roomcast_errors_total")
    };
    let before = errors().await;

    let (status, _) = server.http_get("/no/such/path").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .http(Method::PUT, "/api/ws/broadcast/price", Some("{}"), &[])
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        errors().await,
        before,
        "a 404 or 405 moved the errors counter"
    );

    let (status, _) = server
        .http_post("/api/ws/broadcast/price", "{not json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(errors().await, before + 1.0, "bad JSON did not count");
    server.shutdown().await.unwrap();
}
