//! The embedded market simulator, sped up: consistent `price_update`s for a
//! subscribed ticker and the current `market_status` for its subscribers.

mod common;

use common::*;
use roomcast::seconds::Seconds;
use serde_json::Value;

fn fast_simulator(c: &mut roomcast::Config) {
    c.market.simulator = true;
    c.market.update_interval = Seconds::from_secs_f64(0.05);
    c.market.after_hours_interval = Seconds::from_secs_f64(0.05);
    c.market.symbols = vec!["AAPL".into(), "BTC-USD".into()];
}

fn check_price_update(v: &Value, ticker: &str) {
    assert_eq!(v["type"], "price_update", "{v}");
    assert_eq!(v["ticker"], ticker, "{v}");
    let num = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {v}"))
    };
    let (price, high, low, open) = (num("price"), num("high"), num("low"), num("open"));
    assert!(price > 0.0, "{v}");
    assert!(low <= price && price <= high, "low <= price <= high: {v}");
    assert!(low <= open && open <= high, "low <= open <= high: {v}");
    num("change");
    num("change_percent");
    assert!(num("volume") >= 0.0, "{v}");
    assert!(v.get("open_price").is_none(), "{v}");
    let ts = v["timestamp"].as_str().expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339 timestamp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticker_subscriber_gets_consistent_simulated_price_updates() {
    let server = TestServer::start(fast_simulator).await;
    let mut ws = server.connect_001().await;
    let history = subscribe(&mut ws, "ticker", Some("AAPL")).await.unwrap();
    for old in history["messages"].as_array().unwrap() {
        check_price_update(old, "AAPL");
    }
    let mut last_volume = 0.0;
    for _ in 0..5 {
        let v = recv_json(&mut ws).await;
        check_price_update(&v, "AAPL");
        let volume = v["volume"].as_f64().unwrap();
        assert!(volume >= last_volume, "volume accumulates: {v}");
        last_volume = volume;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_status_subscriber_gets_the_current_status() {
    let server = TestServer::start(fast_simulator).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "market_status", None).await;
    // Either replayed on subscribe or published live by the simulator's first tick.
    let v = recv_json(&mut ws).await;
    assert_eq!(v["type"], "market_status", "{v}");
    match v["status"].as_str() {
        Some("open") => {
            assert!(v["next_close"].is_string(), "{v}");
            assert!(v["next_open"].is_null(), "{v}");
        }
        Some("closed") => {
            assert!(v["next_open"].is_string(), "{v}");
            assert!(v["next_close"].is_null(), "{v}");
        }
        _ => panic!("status must be open or closed: {v}"),
    }
    for k in ["next_open", "next_close", "timestamp"] {
        if let Some(ts) = v[k].as_str() {
            chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339 timestamp");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypto_symbol_ticks_for_its_subscriber() {
    let server = TestServer::start(fast_simulator).await;
    let mut ws = server.connect_001().await;
    subscribe(&mut ws, "ticker", Some("BTC-USD")).await;
    // Crypto ticks around the clock.
    for _ in 0..3 {
        check_price_update(&recv_json(&mut ws).await, "BTC-USD");
    }
    let (_, stats) = server.http_get("/api/ws/stats").await;
    assert_eq!(stats["ticker_subscriptions"]["BTC-USD"], 1, "{stats}");
}
