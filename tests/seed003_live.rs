//! Seed 003's live-trading and market-data streams end to end with real
//! clients (spec §3.1, §3.4, §3.6, §9.2, §11): `GET
//! /api/ws/stream/live-trading[?symbols=A,B]` fed by the embedded paper
//! account (`order`, `position` open/modify/close, account-wide `pnl` and
//! `risk`), `GET /api/ws/stream/market-data/{symbol}` fed by the chart
//! builder (`candle` per timeframe, `structure`, `pattern`, `confluence`),
//! their greetings for late joiners, the client messages (`ping`, `stop`,
//! anything else), the checks before the upgrade (400 naming the field,
//! 503 at `ROOMCAST_STREAM_MAX_CONNECTIONS`), unknown symbols (4004) and
//! `GET /api/ws/stream/status`.
//!
//! The streams are deterministic: the simulator is off, so every price
//! comes from `POST /api/ws/broadcast/price`. The paper account's EMA
//! crossover (5/20 ticks, both starting at the first price) turns 100, 99,
//! 110 into a BUY at 110 (90 whole shares for the default 10 000 notional)
//! and a following 80 into a SELL closing it; candles follow the prices'
//! own `timestamp`s, so bars open and close where a test puts them.
//!
//! Nothing waits on time. The account trades only once it is open, which
//! its first `pnl`/`risk` shows, so each live test awaits that `risk`
//! before publishing. Absence is proved by order (the account handles
//! prices one at a time, so whatever a price caused comes before what a
//! later price causes) or by a `ping`, whose `pong` follows everything
//! queued before it.

mod common;

use common::*;
use futures_util::SinkExt;
use hyper::StatusCode;
use roomcast::seconds::Seconds;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// `pnl`'s data keys (spec §3.4).
const PNL_KEYS: [&str; 6] = [
    "realized_pnl",
    "unrealized_pnl",
    "total_pnl",
    "daily_pnl",
    "equity",
    "balance",
];

/// `risk`'s data keys (spec §3.4).
const RISK_KEYS: [&str; 7] = [
    "equity",
    "exposure",
    "exposure_percent",
    "open_positions",
    "current_drawdown",
    "max_drawdown",
    "largest_position_percent",
];

/// `candle`'s data keys (spec §3.4).
const CANDLE_KEYS: [&str; 9] = [
    "symbol",
    "timeframe",
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "is_closed",
];

const LIVE_CONNECTED: &str = "Connected to live trading stream";

/// `v` with every number as an `f64`, so `90` and `90.0` compare equal.
fn norm(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().expect("a finite number")),
        Value::Array(items) => Value::Array(items.iter().map(norm).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), norm(v))).collect())
        }
        other => other.clone(),
    }
}

/// Asserts `actual` equals `expected`, numbers compared as `f64`.
#[track_caller]
fn assert_data(actual: &Value, expected: Value) {
    assert_eq!(norm(actual), norm(&expected), "got {actual}");
}

/// A wall-clock or bar timestamp as roomcast writes it: RFC 3339 UTC with
/// milliseconds and `Z`.
fn is_wire_time(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 24 && s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    })
}

/// Checks the seed 003 envelope `{type, timestamp, data}` (nothing else).
#[track_caller]
fn check_envelope(v: &Value) {
    assert_eq!(keys(v), key_set(&["type", "timestamp", "data"]), "{v}");
    assert!(v["type"].is_string(), "{v}");
    assert!(is_wire_time(&v["timestamp"]), "{v}");
    assert!(v["data"].is_object(), "{v}");
}

/// `v`'s `type`.
fn kind(v: &Value) -> &str {
    v["type"].as_str().unwrap_or_default()
}

/// The next message, which must be a well-enveloped `expected`; its `data`.
async fn expect_next(ws: &mut Ws, expected: &str) -> Value {
    let v = recv_json(ws).await;
    check_envelope(&v);
    assert_eq!(kind(&v), expected, "{v}");
    v["data"].clone()
}

/// Reads up to the next `wanted` message; every message before it must be
/// one of `skip`. Returns the `wanted` message whole (envelope checked).
async fn next_of(ws: &mut Ws, wanted: &str, skip: &[&str]) -> Value {
    within(&format!("a {wanted} message"), async {
        loop {
            let v = recv_json(ws).await;
            check_envelope(&v);
            if kind(&v) == wanted {
                return v;
            }
            assert!(
                skip.contains(&kind(&v)),
                "expected {wanted} (skipping {skip:?}), got {v}"
            );
        }
    })
    .await
}

/// Reads up to the next `pnl` (everything before it one of `skip`), which
/// the account's `risk` must follow at once; both `data`s, keys checked.
async fn next_account(ws: &mut Ws, skip: &[&str]) -> (Value, Value) {
    let pnl = next_of(ws, "pnl", skip).await["data"].clone();
    assert_eq!(keys(&pnl), key_set(&PNL_KEYS), "{pnl}");
    let risk = expect_next(ws, "risk").await;
    assert_eq!(keys(&risk), key_set(&RISK_KEYS), "{risk}");
    (pnl, risk)
}

/// Sends `{"type":"ping"}` and reads up to the `pong` (exact), returning the
/// messages before it.
async fn ping_barrier(ws: &mut Ws) -> Vec<Value> {
    send_json(ws, &json!({"type": "ping"})).await;
    let mut before = Vec::new();
    within("a pong", async {
        loop {
            let v = recv_json(ws).await;
            check_envelope(&v);
            if kind(&v) == "pong" {
                assert_eq!(v["data"], json!({}), "{v}");
                return;
            }
            before.push(v);
        }
    })
    .await;
    before
}

/// Opens the live-trading stream with `query` (e.g. `?symbols=MSFT`) and
/// reads its first message, which must be `connected`; returns its data.
async fn open_live(server: &TestServer, query: &str) -> (Ws, Value) {
    let mut ws = server
        .ws_connect(&format!("/api/ws/stream/live-trading{query}"))
        .await;
    let connected = expect_next(&mut ws, "connected").await;
    (ws, connected)
}

/// The `connected` data of a live stream with `stream_id` and `symbols`.
fn live_connected(stream_id: &str, symbols: &[&str]) -> Value {
    json!({"stream_id": stream_id, "symbols": symbols, "message": LIVE_CONNECTED})
}

/// Opens the market-data stream of `segment` and checks its `connected`
/// names `symbol`.
async fn open_market(server: &TestServer, segment: &str, symbol: &str) -> Ws {
    let mut ws = server
        .ws_connect(&format!("/api/ws/stream/market-data/{segment}"))
        .await;
    let connected = expect_next(&mut ws, "connected").await;
    assert_eq!(
        connected,
        json!({"symbol": symbol, "message": format!("Connected to market data stream for {symbol}")})
    );
    ws
}

/// An "all" live client that has seen the account open (its first `risk`):
/// from then on the account trades every price.
async fn account_open(server: &TestServer) -> Ws {
    let (mut ws, connected) = open_live(server, "").await;
    assert_eq!(connected, live_connected("all", &[]));
    let (pnl, risk) = next_account(&mut ws, &[]).await;
    // A fresh account: the default 100 000 cash, nothing traded.
    assert_data(
        &pnl,
        json!({"realized_pnl": 0, "unrealized_pnl": 0, "total_pnl": 0, "daily_pnl": 0,
               "equity": 100000, "balance": 100000}),
    );
    assert_data(
        &risk,
        json!({"equity": 100000, "exposure": 0, "exposure_percent": 0, "open_positions": 0,
               "current_drawdown": 0, "max_drawdown": 0, "largest_position_percent": 0}),
    );
    ws
}

/// Publishes `prices` of `ticker` in turn (seed 001's price body).
async fn publish_prices(server: &TestServer, ticker: &str, prices: &[f64]) {
    for &price in prices {
        publish_price(server, ticker, price).await;
    }
}

/// Publishes `ticker` at `price` with the day's accumulated `volume`, as of `timestamp`.
async fn publish_tick(server: &TestServer, ticker: &str, price: f64, volume: f64, timestamp: &str) {
    let body = json!({"ticker": ticker, "price": price, "volume": volume, "timestamp": timestamp});
    let (status, response) = server
        .http_post("/api/ws/broadcast/price", &body.to_string())
        .await;
    assert_eq!(status, StatusCode::OK, "{response}");
}

/// 2024-01-02 10:`minute`:`second` UTC, as a price's timestamp.
fn at(minute: u32, second: u32) -> String {
    format!("2024-01-02T10:{minute:02}:{second:02}Z")
}

/// The same instant as a bar time on the wire.
fn bar(minute: u32) -> String {
    format!("2024-01-02T10:{minute:02}:00.000Z")
}

/// A `position`'s data without its `opened_at` (and `closed_at`), which are
/// checked for form and returned.
fn split_times(mut position: Value) -> (Value, String, Option<String>) {
    let map = position.as_object_mut().expect("position data");
    let opened = map.remove("opened_at").expect("opened_at");
    assert!(is_wire_time(&opened), "opened_at {opened}");
    let closed = map.remove("closed_at").map(|c| {
        assert!(is_wire_time(&c), "closed_at {c}");
        c.as_str().unwrap().to_string()
    });
    (position, opened.as_str().unwrap().to_string(), closed)
}

/// An open (or modified) long position's data, less its times.
fn position_data(event: &str, id: u32, symbol: &str, qty: f64, entry: f64, current: f64) -> Value {
    let unrealized = (current - entry) * qty;
    let percent = ((current / entry - 1.0) * 100.0 * 100.0).round() / 100.0;
    json!({
        "event": event, "position_id": format!("pos_{id}"), "symbol": symbol,
        "direction": "long", "quantity": qty, "entry_price": entry, "current_price": current,
        "stop_loss": null, "take_profit_levels": [],
        "unrealized_pnl": unrealized, "unrealized_pnl_percent": percent,
    })
}

/// A filled market order's data.
fn order_data(order: u32, position: u32, symbol: &str, side: &str, qty: f64, price: f64) -> Value {
    json!({
        "order_id": format!("ord_{order}"), "position_id": format!("pos_{position}"),
        "symbol": symbol, "side": side, "type": "market", "quantity": qty, "price": price,
        "status": "filled", "filled_quantity": qty, "average_fill_price": price,
    })
}

/// A candle's data.
fn candle(symbol: &str, tf: &str, minute: u32, ohlc: [f64; 4], volume: f64, closed: bool) -> Value {
    json!({
        "symbol": symbol, "timeframe": tf, "time": bar(minute),
        "open": ohlc[0], "high": ohlc[1], "low": ohlc[2], "close": ohlc[3],
        "volume": volume, "is_closed": closed,
    })
}

/// The next message must be a `candle` equal to `expected`.
async fn expect_candle(ws: &mut Ws, expected: Value) {
    let data = expect_next(ws, "candle").await;
    assert_eq!(keys(&data), key_set(&CANDLE_KEYS), "{data}");
    assert_data(&data, expected);
}

/// Waits until `GET /api/ws/stream/status` satisfies `pred` (a closed
/// connection is counted off when the server has dropped it).
async fn status_until(server: &TestServer, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    within(what, async {
        loop {
            let (status, body) = server.http_get("/api/ws/stream/status").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if pred(&body) {
                return body;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// Sends `stop`; expects `stop_ack` with `data`, then close 1000.
async fn stop(ws: &mut Ws, data: Value) {
    send_json(ws, &json!({"type": "stop"})).await;
    let closed = recv_close_collect(ws).await;
    assert_eq!(closed.code, 1000, "{closed:?}");
    let texts: Vec<Value> = closed
        .texts
        .iter()
        .map(|t| serde_json::from_str(t).expect("JSON"))
        .collect();
    let ack = texts
        .last()
        .unwrap_or_else(|| panic!("no stop_ack: {closed:?}"));
    check_envelope(ack);
    assert_eq!(kind(ack), "stop_ack", "{ack}");
    assert_eq!(ack["data"], data);
}

fn interval(c: &mut roomcast::Config, secs: f64) {
    c.trading.portfolio_interval = Seconds::from_secs_f64(secs);
}

// ---------------------------------------------------------------------------
// Live trading
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_says_connected_then_streams_a_buy_as_order_and_position_open_its_marks_and_the_closing_sell()
 {
    let server = TestServer::start(|c| interval(c, 1.0)).await;
    let mut ws = account_open(&server).await;

    publish_prices(&server, "AAPL", &[100.0, 99.0, 110.0]).await;
    let order = next_of(&mut ws, "order", &["pnl", "risk"]).await;
    assert_data(&order["data"], order_data(1, 1, "AAPL", "buy", 90.0, 110.0));
    // The position follows its order at once.
    let (open, opened_at, closed_at) = split_times(expect_next(&mut ws, "position").await);
    assert_data(&open, position_data("open", 1, "AAPL", 90.0, 110.0, 110.0));
    assert_eq!(closed_at, None);

    // A new price without a crossover: the next interval marks the position.
    publish_prices(&server, "AAPL", &[112.0]).await;
    let modify = next_of(&mut ws, "position", &["pnl", "risk"]).await;
    let (modify, modify_opened, _) = split_times(modify["data"].clone());
    assert_data(
        &modify,
        position_data("modify", 1, "AAPL", 90.0, 110.0, 112.0),
    );
    assert_eq!(modify_opened, opened_at);
    let (pnl, risk) = next_account(&mut ws, &[]).await;
    let daily = pnl["daily_pnl"].clone();
    assert!(daily.is_number(), "{pnl}");
    assert_data(
        &pnl,
        json!({"realized_pnl": 0, "unrealized_pnl": 180, "total_pnl": 180, "daily_pnl": daily,
               "equity": 100180, "balance": 90100}),
    );
    assert_data(
        &risk,
        json!({"equity": 100180, "exposure": 10080, "exposure_percent": 10.06, "open_positions": 1,
               "current_drawdown": 0, "max_drawdown": 0, "largest_position_percent": 10.06}),
    );

    // A falling price crosses down: the account sells the whole position.
    publish_prices(&server, "AAPL", &[80.0]).await;
    let order = next_of(&mut ws, "order", &["pnl", "risk"]).await;
    assert_data(&order["data"], order_data(2, 1, "AAPL", "sell", 90.0, 80.0));
    let close = recv_json(&mut ws).await;
    check_envelope(&close);
    assert_eq!(kind(&close), "position", "{close}");
    let (closed, close_opened, closed_at) = split_times(close["data"].clone());
    assert_eq!(close_opened, opened_at);
    assert_eq!(closed_at.as_deref(), close["timestamp"].as_str());
    let mut expected = position_data("close", 1, "AAPL", 90.0, 110.0, 80.0);
    expected["unrealized_pnl"] = json!(0);
    expected["unrealized_pnl_percent"] = json!(0);
    expected["exit_price"] = json!(80);
    expected["realized_pnl"] = json!(-2700);
    assert_data(&closed, expected);

    let (pnl, risk) = next_account(&mut ws, &[]).await;
    let daily = pnl["daily_pnl"].clone();
    assert_data(
        &pnl,
        json!({"realized_pnl": -2700, "unrealized_pnl": 0, "total_pnl": -2700, "daily_pnl": daily,
               "equity": 97300, "balance": 97300}),
    );
    // 97 300 against the 100 180 peak.
    assert_data(
        &risk,
        json!({"equity": 97300, "exposure": 0, "exposure_percent": 0, "open_positions": 0,
               "current_drawdown": -0.0287, "max_drawdown": -0.0287, "largest_position_percent": 0}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbol_filtered_live_client_gets_only_its_symbols_orders_and_positions_but_account_wide_pnl_and_risk()
 {
    let server = TestServer::start(|c| interval(c, 1.0)).await;
    let mut all = account_open(&server).await;
    let (mut msft, connected) = open_live(&server, "?symbols=msft").await;
    assert_eq!(connected, live_connected("MSFT", &["MSFT"]));

    // AAPL fills first, then MSFT; then AAPL closes, then MSFT.
    publish_prices(&server, "AAPL", &[100.0, 99.0, 110.0]).await;
    publish_prices(&server, "MSFT", &[400.0, 396.0, 440.0]).await;
    publish_prices(&server, "AAPL", &[80.0]).await;
    publish_prices(&server, "MSFT", &[320.0]).await;

    // The "all" client sees every fill, in the order the prices came.
    let mut orders = Vec::new();
    while orders.len() < 4 {
        let v = next_of(&mut all, "order", &["pnl", "risk", "position"]).await;
        orders.push(v["data"].clone());
    }
    assert_data(
        &json!(orders),
        json!([
            order_data(1, 1, "AAPL", "buy", 90.0, 110.0),
            order_data(2, 2, "MSFT", "buy", 22.0, 440.0),
            order_data(3, 1, "AAPL", "sell", 90.0, 80.0),
            order_data(4, 2, "MSFT", "sell", 22.0, 320.0),
        ]),
    );

    // The MSFT client: only MSFT's order and position, each time; AAPL's
    // came first and would have come before them.
    let skip = ["pnl", "risk"];
    let order = next_of(&mut msft, "order", &skip).await;
    assert_data(&order["data"], order_data(2, 2, "MSFT", "buy", 22.0, 440.0));
    let (open, _, _) = split_times(expect_next(&mut msft, "position").await);
    assert_data(&open, position_data("open", 2, "MSFT", 22.0, 440.0, 440.0));
    let order = next_of(&mut msft, "order", &skip).await;
    assert_data(
        &order["data"],
        order_data(4, 2, "MSFT", "sell", 22.0, 320.0),
    );
    let close = expect_next(&mut msft, "position").await;
    assert_eq!(close["event"], "close", "{close}");
    assert_eq!(close["symbol"], "MSFT", "{close}");
    assert_data(&close["realized_pnl"], json!(-2640));
    // The account-wide pnl and risk: both symbols' losses (-2700 - 2640).
    let (pnl, risk) = next_account(&mut msft, &[]).await;
    assert_data(&pnl["realized_pnl"], json!(-5340));
    assert_data(&pnl["balance"], json!(94660));
    assert_data(&risk["open_positions"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_symbol_filters_are_canonicalised_and_a_bad_symbol_is_refused_with_400_naming_symbols()
{
    let server = TestServer::start(|_| {}).await;
    for (query, stream_id, symbols) in [
        ("?symbols=,AAPL,", "AAPL", vec!["AAPL"]),
        ("?symbols=msft,aapl,MSFT", "AAPL,MSFT", vec!["AAPL", "MSFT"]),
        (
            "?symbols=btc-usd%2C%20brk.b",
            "BRK.B,BTC-USD",
            vec!["BRK.B", "BTC-USD"],
        ),
        ("?symbols=", "all", vec![]),
        ("?symbols=,", "all", vec![]),
        ("", "all", vec![]),
    ] {
        let (_ws, connected) = open_live(&server, query).await;
        assert_eq!(connected, live_connected(stream_id, &symbols), "{query}");
    }
    let long = "X".repeat(17);
    for query in [
        "?symbols=bad$".to_string(),
        "?symbols=AAPL,a%20b".to_string(),
        format!("?symbols={long}"),
        "?symbols=AAPL,%3Bdrop".to_string(),
    ] {
        let (status, body) = server
            .ws_upgrade_refused(&format!("/api/ws/stream/live-trading{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["field"], "symbols", "{query}: {body}");
        assert!(body["error"].is_string(), "{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_live_joiner_is_greeted_with_the_open_positions_in_its_filter_then_pnl_and_risk_before_new_events()
 {
    // One interval an hour: after the account's opening pnl and risk, only
    // fills are published.
    let server = TestServer::start(|c| interval(c, 3600.0)).await;
    let mut first = account_open(&server).await;
    publish_prices(&server, "AAPL", &[100.0, 99.0, 110.0]).await;
    expect_next(&mut first, "order").await;
    let live_open = expect_next(&mut first, "position").await;
    // A fill is followed by the account it leaves.
    expect_next(&mut first, "pnl").await;
    expect_next(&mut first, "risk").await;

    // Joining now: connected, the open position, pnl, risk.
    let (mut late, connected) = open_live(&server, "").await;
    assert_eq!(connected, live_connected("all", &[]));
    let greeted = expect_next(&mut late, "position").await;
    assert_eq!(
        greeted, live_open,
        "the greeting's position is the one opened"
    );
    let (opened, _, _) = split_times(greeted);
    assert_data(
        &opened,
        position_data("open", 1, "AAPL", 90.0, 110.0, 110.0),
    );
    let (_pnl, _risk) = next_account(&mut late, &[]).await;
    // Then, and only then, what happens next: MSFT's fill.
    publish_prices(&server, "MSFT", &[400.0, 396.0, 440.0]).await;
    let order = expect_next(&mut late, "order").await;
    assert_data(&order, order_data(2, 2, "MSFT", "buy", 22.0, 440.0));
    let position = expect_next(&mut late, "position").await;
    assert_eq!(position["position_id"], "pos_2", "{position}");

    // A filter joins each symbol's positions, in symbol order, then the account.
    let (mut both, connected) = open_live(&server, "?symbols=msft,aapl").await;
    assert_eq!(connected, live_connected("AAPL,MSFT", &["AAPL", "MSFT"]));
    let aapl = expect_next(&mut both, "position").await;
    assert_eq!(
        (&aapl["symbol"], &aapl["event"]),
        (&json!("AAPL"), &json!("open"))
    );
    let msft = expect_next(&mut both, "position").await;
    assert_eq!(
        (&msft["symbol"], &msft["event"]),
        (&json!("MSFT"), &json!("open"))
    );
    next_account(&mut both, &[]).await;
    assert_eq!(ping_barrier(&mut both).await, Vec::<Value>::new());

    // Symbols nobody trades: connected, then only the account.
    let (mut none, connected) = open_live(&server, "?symbols=TSLA").await;
    assert_eq!(connected, live_connected("TSLA", &["TSLA"]));
    next_account(&mut none, &[]).await;
    assert_eq!(ping_barrier(&mut none).await, Vec::<Value>::new());

    // A closed position is not greeted any more.
    publish_prices(&server, "AAPL", &[80.0]).await;
    for expected in ["order", "position", "pnl", "risk", "order"] {
        expect_next(&mut first, expected).await;
    }
    let close = expect_next(&mut first, "position").await;
    assert_eq!(close["event"], "close", "{close}");
    let (mut after, _) = open_live(&server, "").await;
    let only = expect_next(&mut after, "position").await;
    assert_eq!(only["symbol"], "MSFT", "{only}");
    next_account(&mut after, &[]).await;
    assert_eq!(ping_barrier(&mut after).await, Vec::<Value>::new());
    let (mut aapl_only, _) = open_live(&server, "?symbols=AAPL").await;
    next_account(&mut aapl_only, &[]).await;
    assert_eq!(ping_barrier(&mut aapl_only).await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_live_joiners_greeting_pnl_and_risk_agree_with_the_positions_it_is_greeted_with() {
    let server = TestServer::start(|c| interval(c, 3600.0)).await;
    let mut first = account_open(&server).await;
    publish_prices(&server, "AAPL", &[100.0, 99.0, 110.0]).await;
    expect_next(&mut first, "order").await;
    expect_next(&mut first, "position").await;

    let (mut late, _) = open_live(&server, "").await;
    let greeted = expect_next(&mut late, "position").await;
    assert_eq!(greeted["event"], "open", "{greeted}");
    let (pnl, risk) = next_account(&mut late, &[]).await;
    // Spec §9.2: "the current pnl and risk"; §3.4: "so it sees the account at once".
    assert_data(&risk["open_positions"], json!(1));
    assert_data(&risk["exposure"], json!(9900));
    assert_data(&pnl["balance"], json!(90100));
}

// ---------------------------------------------------------------------------
// Market data
// ---------------------------------------------------------------------------

fn one_and_five_minutes(c: &mut roomcast::Config) {
    c.trading.market_data_timeframes = "1M,5M".into();
    interval(c, 3600.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_greets_with_the_forming_candles_then_streams_one_candle_per_timeframe_per_price()
 {
    let server = TestServer::start(one_and_five_minutes).await;
    drop(account_open(&server).await);
    publish_tick(&server, "AAPL", 100.0, 1000.0, &at(0, 5)).await;

    // Lower case is normalised. The first price's candles come first, as
    // the greeting or live (whichever the join met): either way, once.
    let mut ws = open_market(&server, "aapl", "AAPL").await;
    expect_candle(&mut ws, candle("AAPL", "1M", 0, [100.0; 4], 0.0, false)).await;
    expect_candle(&mut ws, candle("AAPL", "5M", 0, [100.0; 4], 0.0, false)).await;

    // Each price: one forming candle per timeframe; volume is what the
    // day's total grew by.
    publish_tick(&server, "AAPL", 101.0, 1500.0, &at(0, 20)).await;
    let ohlc = [100.0, 101.0, 100.0, 101.0];
    expect_candle(&mut ws, candle("AAPL", "1M", 0, ohlc, 500.0, false)).await;
    expect_candle(&mut ws, candle("AAPL", "5M", 0, ohlc, 500.0, false)).await;
    publish_tick(&server, "AAPL", 99.0, 1700.0, &at(0, 40)).await;
    let ohlc = [100.0, 101.0, 99.0, 99.0];
    expect_candle(&mut ws, candle("AAPL", "1M", 0, ohlc, 700.0, false)).await;
    expect_candle(&mut ws, candle("AAPL", "5M", 0, ohlc, 700.0, false)).await;

    // The next minute closes the 1M bar: its closed candle first, then the
    // forming ones, then the closed bar's confluence.
    publish_tick(&server, "AAPL", 102.0, 2000.0, &at(1, 10)).await;
    expect_candle(&mut ws, candle("AAPL", "1M", 0, ohlc, 700.0, true)).await;
    let forming_1m = candle("AAPL", "1M", 1, [102.0; 4], 300.0, false);
    let forming_5m = candle("AAPL", "5M", 0, [100.0, 102.0, 99.0, 102.0], 1000.0, false);
    expect_candle(&mut ws, forming_1m.clone()).await;
    expect_candle(&mut ws, forming_5m.clone()).await;
    let confluence = expect_next(&mut ws, "confluence").await;
    // Of three factors (the two candles, the structure) only the 5M candle
    // agrees: below 0.6, neutral.
    let expected_confluence = json!({"symbol": "AAPL", "score": 0.33, "direction": "neutral",
                                     "factors": ["5M candle up"]});
    assert_data(&confluence, expected_confluence.clone());
    assert_eq!(ping_barrier(&mut ws).await, Vec::<Value>::new());

    // A late joiner: connected, each timeframe's forming candle, the latest
    // confluence; nothing more.
    let mut late = open_market(&server, "AAPL", "AAPL").await;
    expect_candle(&mut late, forming_1m).await;
    expect_candle(&mut late, forming_5m).await;
    assert_data(
        &expect_next(&mut late, "confluence").await,
        expected_confluence,
    );
    assert_eq!(ping_barrier(&mut late).await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_structure_reports_a_swing_high_and_its_break_and_late_joiners_get_the_latest() {
    let server = TestServer::start(|c| {
        c.trading.market_data_timeframes = "1M".into();
        interval(c, 3600.0);
    })
    .await;
    drop(account_open(&server).await);
    publish_tick(&server, "NVDA", 100.0, 0.0, &at(0, 10)).await;
    let mut ws = open_market(&server, "NVDA", "NVDA").await;
    expect_candle(&mut ws, candle("NVDA", "1M", 0, [100.0; 4], 0.0, false)).await;

    // One price a minute: 102, 106, 102, 100, each closing the bar before.
    for (minute, price) in [(1, 102.0), (2, 106.0), (3, 102.0), (4, 100.0)] {
        publish_tick(&server, "NVDA", price, 0.0, &at(minute, 10)).await;
        let closed = expect_next(&mut ws, "candle").await;
        assert_eq!(closed["is_closed"], true, "{closed}");
        expect_candle(
            &mut ws,
            candle("NVDA", "1M", minute, [price; 4], 0.0, false),
        )
        .await;
        // No swing yet (the structure stays ranging, unreported).
        expect_next(&mut ws, "confluence").await;
    }
    // The fifth closed bar makes the 106 bar a swing high (two lower bars each side).
    publish_tick(&server, "NVDA", 99.0, 0.0, &at(5, 10)).await;
    expect_candle(&mut ws, candle("NVDA", "1M", 4, [100.0; 4], 0.0, true)).await;
    expect_candle(&mut ws, candle("NVDA", "1M", 5, [99.0; 4], 0.0, false)).await;
    let structure = expect_next(&mut ws, "structure").await;
    let swing = json!({"symbol": "NVDA", "timeframe": "1M", "trend": "ranging",
                       "last_swing_high": {"price": 106.0, "time": bar(2)},
                       "last_swing_low": null, "break_of_structure": false});
    assert_data(&structure, swing.clone());
    let confluence = expect_next(&mut ws, "confluence").await;
    assert_eq!(
        keys(&confluence),
        key_set(&["symbol", "score", "direction", "factors"])
    );

    // A late joiner gets the forming candle, the structure, the confluence.
    let mut late = open_market(&server, "NVDA", "NVDA").await;
    expect_candle(&mut late, candle("NVDA", "1M", 5, [99.0; 4], 0.0, false)).await;
    assert_data(&expect_next(&mut late, "structure").await, swing.clone());
    assert_data(&expect_next(&mut late, "confluence").await, confluence);
    assert_eq!(ping_barrier(&mut late).await, Vec::<Value>::new());

    // A bar closing above the swing high breaks structure.
    publish_tick(&server, "NVDA", 107.0, 0.0, &at(5, 40)).await;
    expect_candle(
        &mut ws,
        candle("NVDA", "1M", 5, [99.0, 107.0, 99.0, 107.0], 0.0, false),
    )
    .await;
    publish_tick(&server, "NVDA", 107.0, 0.0, &at(6, 10)).await;
    let broken = next_of(&mut ws, "structure", &["candle"]).await["data"].clone();
    let mut expected = swing;
    expected["break_of_structure"] = json!(true);
    assert_data(&broken, expected);
    let confluence = expect_next(&mut ws, "confluence").await;
    assert!(
        confluence["factors"]
            .as_array()
            .unwrap()
            .contains(&json!("break above swing high")),
        "{confluence}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakout_on_closed_bars_streams_a_pattern_that_late_joiners_are_not_replayed() {
    let server = TestServer::start(one_and_five_minutes).await;
    drop(account_open(&server).await);
    // Twenty one-minute bars alternating 100/101 on 1 000 shares each, then
    // a close at 110 on 5 000: a volume-confirmed breakout above 101.
    publish_tick(&server, "AMD", 100.0, 1000.0, &at(0, 10)).await;
    let mut ws = open_market(&server, "AMD", "AMD").await;
    for minute in 1..20u32 {
        let price = if minute % 2 == 0 { 100.0 } else { 101.0 };
        publish_tick(
            &server,
            "AMD",
            price,
            f64::from(minute + 1) * 1000.0,
            &at(minute, 10),
        )
        .await;
    }
    publish_tick(&server, "AMD", 110.0, 25_000.0, &at(20, 10)).await;
    publish_tick(&server, "AMD", 110.0, 25_000.0, &at(21, 10)).await;
    let pattern = next_of(&mut ws, "pattern", &["candle", "confluence", "structure"]).await;
    let pattern = pattern["data"].clone();
    assert_eq!(
        keys(&pattern),
        key_set(&[
            "symbol",
            "pattern_type",
            "score",
            "entry_price",
            "stop_price",
            "target_price",
            "risk_reward_ratio",
            "message",
            "timeframe",
        ]),
        "{pattern}"
    );
    assert_eq!(pattern["symbol"], "AMD");
    assert_eq!(pattern["pattern_type"], "BREAKOUT", "{pattern}");
    assert_eq!(pattern["timeframe"], "1M", "{pattern}");
    assert_data(&pattern["entry_price"], json!(101));
    assert_data(&pattern["stop_price"], json!(100));
    assert_data(&pattern["target_price"], json!(103));
    assert_data(&pattern["risk_reward_ratio"], json!(2));
    assert!(pattern["message"].is_string(), "{pattern}");
    // The closed bar's confluence follows it.
    expect_next(&mut ws, "confluence").await;

    // No pattern replay for a late joiner.
    let mut late = open_market(&server, "AMD", "AMD").await;
    let greeting = ping_barrier(&mut late).await;
    let kinds: Vec<&str> = greeting.iter().map(kind).collect();
    assert_eq!(kinds, ["candle", "candle", "confluence"], "{greeting:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_for_a_symbol_nobody_publishes_is_told_unknown_symbol_and_closed_with_4004() {
    let server = TestServer::start(one_and_five_minutes).await;
    let mut ws = server.ws_connect("/api/ws/stream/market-data/nope").await;
    let closed = recv_close_collect(&mut ws).await;
    assert_eq!(closed.code, 4004, "{closed:?}");
    assert_eq!(closed.texts.len(), 2, "{closed:?}");
    let connected: Value = serde_json::from_str(&closed.texts[0]).unwrap();
    check_envelope(&connected);
    assert_eq!(
        connected["data"],
        json!({"symbol": "NOPE", "message": "Connected to market data stream for NOPE"})
    );
    let error: Value = serde_json::from_str(&closed.texts[1]).unwrap();
    check_envelope(&error);
    assert_eq!(kind(&error), "error", "{error}");
    assert_eq!(error["data"]["error"], "Unknown symbol", "{error}");
    assert_eq!(error["data"]["details"]["symbol"], "NOPE", "{error}");

    // Once it is published, the same symbol streams.
    drop(account_open(&server).await);
    publish_tick(&server, "NOPE", 5.0, 0.0, &at(0, 0)).await;
    let mut ws = open_market(&server, "NOPE", "NOPE").await;
    expect_candle(&mut ws, candle("NOPE", "1M", 0, [5.0; 4], 0.0, false)).await;
    // An unknown viewer was never counted.
    let (_, status) = server.http_get("/api/ws/stream/status").await;
    assert_eq!(status["active_connections"]["market_data"], 1, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_market_data_symbols_get_400_naming_symbol_before_the_upgrade() {
    let server = TestServer::start(|_| {}).await;
    let long = "X".repeat(17);
    for segment in ["a%20b", "bad$", long.as_str(), "%3B", "a%2Cb"] {
        let (status, body) = server
            .ws_upgrade_refused(&format!("/api/ws/stream/market-data/{segment}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{segment}: {body}");
        assert_eq!(body["field"], "symbol", "{segment}: {body}");
        assert!(body["error"].is_string(), "{segment}: {body}");
    }
}

// ---------------------------------------------------------------------------
// Status, client messages, the cap
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_status_counts_live_clients_by_filter_and_market_clients_by_symbol() {
    let server = TestServer::start(|c| interval(c, 3600.0)).await;
    let mut all = account_open(&server).await;
    let (mut filtered, _) = open_live(&server, "?symbols=msft,aapl").await;
    publish_price(&server, "BTC-USD", 42000.0).await;
    let mut market = open_market(&server, "btc-usd", "BTC-USD").await;
    // Its pong proves it has joined its room.
    ping_barrier(&mut market).await;

    let (status, body) = server.http_get("/api/ws/stream/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(is_wire_time(&body["timestamp"]), "{body}");
    assert_eq!(
        body["active_connections"],
        json!({"backtest": 0, "live_trading": 2, "market_data": 1, "total": 3}),
        "{body}"
    );
    assert_eq!(
        body["streams"],
        json!([
            {"type": "live_trading", "id": "AAPL,MSFT", "connections": 1},
            {"type": "live_trading", "id": "all", "connections": 1},
            {"type": "market_data", "id": "BTC-USD", "connections": 1},
        ]),
        "{body}"
    );

    // A second viewer of a stream is counted on it.
    let (_again, _) = open_live(&server, "?symbols=AAPL,MSFT").await;
    let body = status_until(&server, "two AAPL,MSFT viewers", |b| {
        b["active_connections"]["live_trading"] == 3
    })
    .await;
    assert!(
        body["streams"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "live_trading", "id": "AAPL,MSFT", "connections": 2})),
        "{body}"
    );

    // Leaving clients are counted off.
    stop(&mut market, json!({"symbol": "BTC-USD"})).await;
    stop(&mut filtered, json!({"stream_id": "AAPL,MSFT"})).await;
    stop(&mut all, json!({"stream_id": "all"})).await;
    let body = status_until(&server, "the stopped clients counted off", |b| {
        b["active_connections"]["total"] == 1
    })
    .await;
    assert_eq!(
        body["streams"],
        json!([{"type": "live_trading", "id": "AAPL,MSFT", "connections": 1}]),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_market_streams_answer_ping_with_pong_stop_with_stop_ack_and_anything_else_with_invalid_message()
 {
    let server = TestServer::start(|c| interval(c, 3600.0)).await;
    let invalid = json!({"error": "Invalid message", "details": {"expected": ["ping", "stop"]}});
    let mut live = account_open(&server).await;
    publish_price(&server, "AAPL", 150.0).await;
    let mut market = open_market(&server, "AAPL", "AAPL").await;
    // The greeting (or the price, live): one candle per default timeframe.
    for timeframe in ["1M", "5M", "15M", "1H", "4H"] {
        assert_eq!(
            expect_next(&mut market, "candle").await["timeframe"],
            timeframe
        );
    }

    for ws in [&mut live, &mut market] {
        assert_eq!(ping_barrier(ws).await, Vec::<Value>::new());
        for message in [
            json!({"type": "subscribe", "symbol": "AAPL"}).to_string(),
            json!({"type": "pause"}).to_string(),
            json!({"action": "ping"}).to_string(),
            "not json".to_string(),
        ] {
            within("send", ws.send(Message::text(message.clone())))
                .await
                .unwrap();
            let error = expect_next(ws, "error").await;
            assert_eq!(error, invalid, "{message}");
        }
        // Still open.
        assert_eq!(ping_barrier(ws).await, Vec::<Value>::new());
    }
    stop(&mut live, json!({"stream_id": "all"})).await;
    stop(&mut market, json!({"symbol": "AAPL"})).await;
    let (mut filtered, _) = open_live(&server, "?symbols=MSFT,AAPL").await;
    next_account(&mut filtered, &[]).await;
    stop(&mut filtered, json!({"stream_id": "AAPL,MSFT"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_stream_cap_a_second_client_on_the_same_live_filter_or_market_symbol_gets_503() {
    let server = TestServer::start(|c| {
        c.ws.stream_max_connections = 1;
        interval(c, 3600.0);
    })
    .await;
    let (mut aapl, _) = open_live(&server, "?symbols=AAPL").await;
    for query in ["?symbols=AAPL", "?symbols=aapl,", "?symbols=,AAPL,aapl"] {
        let (status, body) = server
            .ws_upgrade_refused(&format!("/api/ws/stream/live-trading{query}"))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{query}: {body}");
        assert_eq!(body["max_connections"], 1, "{query}: {body}");
    }
    // Other filters are other streams.
    let (_all, connected) = open_live(&server, "").await;
    assert_eq!(connected["stream_id"], "all");
    let (_pair, connected) = open_live(&server, "?symbols=AAPL,MSFT").await;
    assert_eq!(connected["stream_id"], "AAPL,MSFT");

    publish_price(&server, "AAPL", 150.0).await;
    publish_price(&server, "MSFT", 400.0).await;
    let mut market = open_market(&server, "AAPL", "AAPL").await;
    ping_barrier(&mut market).await;
    for segment in ["AAPL", "aapl"] {
        let (status, body) = server
            .ws_upgrade_refused(&format!("/api/ws/stream/market-data/{segment}"))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{segment}: {body}");
        assert_eq!(body["max_connections"], 1, "{segment}: {body}");
    }
    let _msft = open_market(&server, "MSFT", "MSFT").await;

    // A viewer that leaves frees its stream's slot.
    stop(&mut aapl, json!({"stream_id": "AAPL"})).await;
    stop(&mut market, json!({"symbol": "AAPL"})).await;
    status_until(&server, "the AAPL viewers counted off", |b| {
        !b["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "AAPL")
    })
    .await;
    let (_aapl, connected) = open_live(&server, "?symbols=AAPL").await;
    assert_eq!(connected["stream_id"], "AAPL");
    let _market = open_market(&server, "AAPL", "AAPL").await;
}
