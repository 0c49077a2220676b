//! The slow-consumer policy with real sockets: a client that stops reading is
//! closed with 4008 on an ordered stream (patterns) while the others get every
//! message in order, and conflated (never closed) on a price stream.
//!
//! The slow clients use a 4 KiB socket receive buffer so the server's side
//! backs up after a modest number of messages; the tests publish until the
//! server reports the effect (a recipient fewer, or conflated frames) rather
//! than guessing a count or waiting for time to pass.

mod common;

use common::*;
use hyper::StatusCode;
use roomcast::seconds::Seconds;
use serde_json::Value;

/// A slow client here does not read, so it cannot answer pings: the
/// heartbeat must not close it before the policy under test shows, however
/// long a loaded machine takes to fill its socket buffers.
fn patient(c: &mut roomcast::Config, outbox_capacity: usize) {
    c.ws.outbox_capacity = outbox_capacity;
    c.ws.heartbeat_timeout = Seconds::from_secs(3600);
}

/// Upper bound on publishes before the effect must have shown.
const MAX_PUBLISHES: usize = 50_000;

/// `#000042 xxxx…`: the publish index, padded to the seed's 1 KiB message cap.
fn indexed_message(i: usize) -> String {
    let mut m = format!("#{i:06} ");
    m.push_str(&"x".repeat(1000 - m.len()));
    m
}

fn index_of(alert: &Value) -> usize {
    assert_eq!(alert["type"], "pattern_alert", "{alert}");
    alert["message"].as_str().unwrap()[1..7].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_on_ordered_stream_is_closed_with_4008_while_reader_gets_every_alert() {
    let server = TestServer::start(|c| patient(c, 16)).await;

    let mut slow = server.ws_connect_small_rcvbuf("/api/ws").await;
    assert_eq!(recv_json(&mut slow).await["type"], "connection");
    subscribe(&mut slow, "patterns", None).await;

    let mut fast = server.connect_001().await;
    subscribe(&mut fast, "patterns", None).await;
    // The reading client consumes concurrently, until the "DONE" marker.
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let v = recv_json(&mut fast).await;
            if v["pattern_type"] == "DONE" {
                return (seen, fast);
            }
            seen.push(index_of(&v));
        }
    });

    let mut http = server.http_client().await;
    let mut published = 0;
    let mut closed_at = None;
    while published < MAX_PUBLISHES {
        let (status, report) = http
            .post(
                "/api/ws/broadcast/pattern",
                &pattern_body("AAPL", &indexed_message(published)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        published += 1;
        match report["recipients"].as_u64() {
            Some(2) => {}
            Some(1) if closed_at.is_none() => closed_at = Some(published),
            Some(1) => {}
            _ => panic!("unexpected report {report}"),
        }
        // A few more after the close show the stream goes on for the others.
        if closed_at.is_some_and(|at| published >= at + 20) {
            break;
        }
    }
    let closed_at = closed_at.expect("the slow consumer was never closed");
    let mut done = pattern_body("AAPL", "done");
    done = done.replace("\"VCP\"", "\"DONE\"");
    let (status, _) = http.post("/api/ws/broadcast/pattern", &done).await;
    assert_eq!(status, StatusCode::OK);

    // The reading client got every alert, in order.
    let (seen, _fast) = within("the reading client", reader)
        .await
        .expect("reader task");
    assert_eq!(seen, (0..published).collect::<Vec<_>>());

    // The slow client, reading at last: a prefix of the stream, then 4008.
    let closed = recv_close_collect(&mut slow).await;
    assert_eq!(closed.code, 4008, "{}", closed.reason);
    assert!(closed.reason.contains("slow consumer"), "{}", closed.reason);
    let got: Vec<usize> = closed
        .texts
        .iter()
        .map(|t| index_of(&serde_json::from_str(t).unwrap()))
        .collect();
    assert_eq!(got, (0..got.len()).collect::<Vec<_>>(), "in order, no gaps");
    assert!(got.len() < closed_at, "{} >= {closed_at}", got.len());

    let (_, stats) = server.http_get("/api/ws/stats").await;
    assert_eq!(stats["pattern_subscribers"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_on_price_stream_is_conflated_not_closed() {
    let server = TestServer::start(|c| patient(c, 16)).await;
    let mut slow = server.ws_connect_small_rcvbuf("/api/ws").await;
    assert_eq!(recv_json(&mut slow).await["type"], "connection");
    subscribe(&mut slow, "ticker", Some("AAPL")).await;

    let mut http = server.http_client().await;
    let conflated = |text: &str| prometheus_value(text, "roomcast_frames_conflated_total");
    let (_, metrics) = http.get_text("/metrics").await;
    let baseline = conflated(&metrics);

    // Rising prices until the server has conflated a good number of frames
    // for this client (this test is the only conflation in this binary).
    let price = |i: usize| 100.0 + i as f64 / 100.0;
    let mut published = 0;
    loop {
        assert!(published < MAX_PUBLISHES, "no conflation observed");
        let (status, report) = http
            .post(
                "/api/ws/broadcast/price",
                &price_body("AAPL", price(published)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["recipients"], 1, "never dropped: {report}");
        published += 1;
        if published % 50 == 0 {
            let (_, metrics) = http.get_text("/metrics").await;
            if conflated(&metrics) >= baseline + 100.0 {
                break;
            }
        }
    }
    let last = 9999.99;
    publish_price(&server, "AAPL", last).await;

    // Reading again: increasing prices, fewer than published, ending with the last.
    let mut received = 0;
    let mut previous = 0.0;
    loop {
        let v = recv_json(&mut slow).await;
        assert_eq!(v["type"], "price_update", "{v}");
        assert_eq!(v["ticker"], "AAPL", "{v}");
        let p = v["price"].as_f64().unwrap();
        assert!(p > previous, "out of order: {p} after {previous}");
        previous = p;
        received += 1;
        if p == last {
            break;
        }
    }
    assert!(
        received < published + 1,
        "conflation skipped stale prices: {received} of {}",
        published + 1
    );
    // Still connected.
    ping_pong(&mut slow).await;
}
