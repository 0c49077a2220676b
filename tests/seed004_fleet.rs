//! Seed 004's producers in a fleet, with real processes: roomcast nodes
//! (the built binary) on a private `redis-server`. One node (the holder of
//! the `trading` lease) batches prices for the whole fleet: prices
//! published on any node, symbol sets narrowed on any node, one batch per
//! interval for every client. The paper-trading account lives in Redis:
//! when its node dies, another node continues the same account (positions,
//! cash, order ids) without executing anything twice, and a restarted
//! fleet continues it too.
//!
//! The account tests hold the trading lease for a made-up node until every
//! client is connected (the nodes never take a lease someone holds), so the
//! clients see every execution from the account's first, and rebuild the
//! account from them: every portfolio a client gets, and the account stored
//! in Redis, must be the executions it saw. The one allowance: a leader
//! killed between storing a fill and publishing it leaves a fill no client
//! was told of (stored first, so nothing executes twice). The tests kill
//! between fills, which makes this rare, and when it happens count it from
//! the account the dead leader left.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use common::fleet::{Node, RedisServer};
use common::*;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

/// The fleet's Redis prefix (not the default, so the keys below follow it).
const PREFIX: &str = "rc004";
/// The `trading` lease.
const LEASE_KEY: &str = "rc004:lease:trading";
/// The paper account's state.
const ACCOUNT_KEY: &str = "rc004:paper:account";
/// The paper account's starting cash.
const CASH: f64 = 100_000.0;
/// Bound on waiting for an execution: the account's idle rule fills at
/// least every ~21 s; this is a failure guard, not a timing assertion.
const ACTIVITY: Duration = Duration::from_secs(90);
/// Bound on a lease changing hands (its TTL is 2 s): a failure guard.
const LEASE_WAIT: Duration = Duration::from_secs(20);
/// Between polls of Redis or a status.
const POLL: Duration = Duration::from_millis(50);

/// Nodes for the price batcher tests: no paper account, fast batches.
const BATCH_ENV: [(&str, &str); 4] = [
    ("ROOMCAST_PAPER_TRADING", "false"),
    ("WEBSOCKET_PRICE_UPDATE_INTERVAL", "0.3"),
    ("ROOMCAST_LEASE_TTL", "2"),
    ("ROOMCAST_REDIS_PREFIX", PREFIX),
];

/// Nodes for the account tests: the simulator ticking every second (on
/// the node holding its lease), the account on, short lease and intervals.
const TRADING_ENV: [(&str, &str); 8] = [
    ("ROOMCAST_SIMULATOR", "true"),
    ("REALTIME_UPDATE_INTERVAL", "1"),
    ("REALTIME_AFTER_HOURS_INTERVAL", "1"),
    ("ROOMCAST_LEASE_TTL", "2"),
    ("WEBSOCKET_PRICE_UPDATE_INTERVAL", "1"),
    ("WEBSOCKET_PORTFOLIO_UPDATE_INTERVAL", "1"),
    ("ROOMCAST_PAPER_CASH", "100000"),
    ("ROOMCAST_REDIS_PREFIX", PREFIX),
];

async fn start(redis: &RedisServer, id: &str, env: &[(&str, &str)]) -> Node {
    let node = Node::start(redis, id, env).await;
    node.wait_for("/ready", StatusCode::OK).await;
    node
}

/// Polls `probe` until it yields, failing with `what` after `limit`.
async fn poll<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// The node holding the `trading` lease, if any.
fn lease_holder(redis: &RedisServer) -> Option<String> {
    redis.cmd::<Option<String>>(&["GET", LEASE_KEY]).ok()?
}

/// Waits until a node not in `except` holds the trading lease; its id.
async fn lease_taken(redis: &RedisServer, except: &[&str]) -> String {
    let deadline = Instant::now() + LEASE_WAIT;
    loop {
        let value = redis.cmd::<Option<String>>(&["GET", LEASE_KEY]);
        if let Ok(Some(holder)) = &value
            && holder != "test-hold"
            && !except.contains(&holder.as_str())
        {
            return holder.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no node took the trading lease within {LEASE_WAIT:?} (the key reads {value:?})"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Keeps the trading lease from every node (a holder that is no node).
fn hold_trading(redis: &RedisServer) {
    redis
        .cmd::<()>(&["SET", LEASE_KEY, "test-hold"])
        .expect("SET the lease");
}

/// Frees the trading lease for the nodes.
fn release_trading(redis: &RedisServer) {
    redis.cmd::<()>(&["DEL", LEASE_KEY]).expect("DEL the lease");
}

/// The stored account, if any.
fn stored_account(redis: &RedisServer) -> Option<Value> {
    let json: Option<String> = redis.cmd(&["GET", ACCOUNT_KEY]).expect("GET the account");
    json.map(|json| serde_json::from_str(&json).expect("the stored account is JSON"))
}

fn last_order_id(account: &Value) -> u64 {
    account["last_order_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no last_order_id: {account}"))
}

fn f(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// `GET /websocket/status` of `node`.
async fn ws_status(node: &Node) -> Value {
    let mut client = HttpClient::connect(node.addr).await;
    let (status, body) = client
        .request(Method::GET, "/websocket/status", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    json_body(&body)
}

/// `stream_health.<stream>.started_at` of `node` (`None` while it does not run).
async fn started_at(node: &Node, stream: &str) -> Option<String> {
    let status = ws_status(node).await;
    let health = &status["stream_health"][stream];
    assert!(health.get("started_at").is_some(), "{status}");
    health["started_at"].as_str().map(str::to_string)
}

/// `roomcast_bus_published_total` of `node`.
async fn published(node: &Node) -> f64 {
    let mut client = HttpClient::connect(node.addr).await;
    let (_, text) = client.get_text("/metrics").await;
    prometheus_value(&text, "roomcast_bus_published_total")
}

async fn publish(node: &Node, body: &str) {
    let mut client = HttpClient::connect(node.addr).await;
    let (status, reply) = client.post("/api/ws/broadcast/price", body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

/// A batch's symbols, sorted.
fn batch_symbols(batch: &Value) -> Vec<String> {
    batch["symbols"]
        .as_object()
        .unwrap_or_else(|| panic!("a batch without symbols: {batch}"))
        .keys()
        .cloned()
        .collect()
}

fn timestamp(message: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = message["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("no timestamp: {message}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("timestamp {text:?} is not RFC 3339 ({e})"))
        .to_utc()
}

/// Fails unless every batch of `batches` is a new one: strictly later
/// timestamps, so no batch reached the client twice (as a greeting and
/// again live, or by two paths). A second batcher would stamp its own
/// batches; the tests catch it by the publish counter of the node that
/// must not batch.
fn assert_each_batch_once(who: &str, batches: &[Value]) {
    let stamps: Vec<_> = batches.iter().map(timestamp).collect();
    for (i, pair) in stamps.windows(2).enumerate() {
        assert!(
            pair[0] < pair[1],
            "{who} got batch {} at {} after one at {}: a batch arrived twice or out of order\n{:#?}",
            i + 1,
            pair[1],
            pair[0],
            batches.iter().map(|b| &b["timestamp"]).collect::<Vec<_>>()
        );
    }
}

/// The next `price_update` (other messages skipped).
async fn next_batch(ws: &mut Ws) -> Value {
    recv_until(ws, |m| m["type"] == "price_update").await
}

/// Two batching nodes: (holder of the trading lease, the other), once the
/// holder's batcher runs.
async fn batching_fleet(redis: &RedisServer) -> (Node, Node) {
    let first = start(redis, "batch-a", &BATCH_ENV).await;
    let second = start(redis, "batch-b", &BATCH_ENV).await;
    let holder = lease_taken(redis, &[]).await;
    let (holder, other) = if holder == first.id {
        (first, second)
    } else {
        assert_eq!(holder, second.id, "the lease holder is one of the nodes");
        (second, first)
    };
    poll("the holder's price batcher to start", TIMEOUT, || {
        started_at(&holder, "price_updates")
    })
    .await;
    (holder, other)
}

/// Seed 001's example price, as its batch entry must read.
fn seed_price_entry() -> Value {
    json!({"price": 150.25, "change": 2.5, "change_pct": 1.69, "volume": 75000000,
           "high": 151.0, "low": 148.5, "open": 149.0, "close": 150.25})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_batches_prices_for_the_whole_fleet() {
    let redis = RedisServer::start();
    let (a, b) = batching_fleet(&redis).await;
    assert_eq!(
        started_at(&b, "price_updates").await,
        None,
        "only the lease holder runs the batcher"
    );
    // Prices published on B, which does not batch.
    publish(&b, SEED_PRICE_BODY).await;
    publish(&b, &price_body("MSFT", 420.5)).await;

    // A client of A, auto-subscribed to all symbols, gets them in its batches.
    let mut on_a = a.ws_connect("/ws?client_id=fleet-a").await;
    let mut all = Vec::new();
    while all.len() < 8 {
        let batch = next_batch(&mut on_a).await;
        assert_eq!(
            batch.as_object().unwrap().len(),
            3,
            "type, symbols, timestamp: {batch}"
        );
        let both = batch_symbols(&batch) == ["AAPL", "MSFT"];
        if both || !all.is_empty() {
            assert!(both, "a batch lost a symbol: {batch}");
            assert_eq!(batch["symbols"]["AAPL"], seed_price_entry(), "{batch}");
            assert_eq!(batch["symbols"]["MSFT"]["price"], 420.5, "{batch}");
        }
        all.push(batch);
    }
    assert_each_batch_once("the client of A", &all);

    // A client of B narrowed to AAPL: after its subscribe (and the pong that
    // follows it), every batch holds AAPL alone.
    let mut on_b = b.ws_connect("/ws?client_id=fleet-b").await;
    send_json(
        &mut on_b,
        &json!({"type": "subscribe", "channel": "price_updates", "symbols": ["AAPL"]}),
    )
    .await;
    send_json(&mut on_b, &json!({"type": "ping"})).await;
    let mut narrowed = Vec::new();
    loop {
        let m = recv_json(&mut on_b).await;
        match m["type"].as_str() {
            Some("pong") => break,
            Some("price_update") if batch_symbols(&m) == ["AAPL"] => narrowed.push(m),
            Some("price_update") => {
                assert_eq!(batch_symbols(&m), ["AAPL", "MSFT"], "{m}")
            }
            Some("error") => panic!("the subscribe was refused: {m}"),
            _ => {}
        }
    }
    while narrowed.len() < 8 {
        let batch = next_batch(&mut on_b).await;
        assert_eq!(
            batch_symbols(&batch),
            ["AAPL"],
            "a batch after narrowing to AAPL: {batch}"
        );
        assert_eq!(batch["symbols"]["AAPL"], seed_price_entry(), "{batch}");
        narrowed.push(batch);
    }
    assert_each_batch_once("the narrowed client of B", &narrowed);

    // B published the two prices and nothing else: no batch of its own.
    assert_eq!(published(&b).await, 2.0, "B published only its two prices");
    assert_eq!(
        started_at(&b, "price_updates").await,
        None,
        "B never batched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_price_batches_go_on_from_a_surviving_node_when_the_batching_node_dies() {
    let redis = RedisServer::start();
    let (mut a, b) = batching_fleet(&redis).await;
    // Prices published on A, so only Redis has them for B.
    publish(&a, SEED_PRICE_BODY).await;
    publish(&a, &price_body("MSFT", 420.5)).await;
    let mut on_b = b.ws_connect("/ws?client_id=fleet-b").await;
    send_json(
        &mut on_b,
        &json!({"type": "subscribe", "channel": "price_updates", "symbols": ["AAPL"]}),
    )
    .await;
    // Batches for the narrowed set hold AAPL alone; all symbols', both.
    let mut narrowed = Vec::new();
    while narrowed.len() < 3 {
        let batch = next_batch(&mut on_b).await;
        if batch_symbols(&batch) == ["AAPL"] {
            narrowed.push(batch);
        }
    }
    a.kill();
    assert_eq!(lease_taken(&redis, &[&a.id]).await, b.id);
    poll("B's price batcher to start", TIMEOUT, || {
        started_at(&b, "price_updates")
    })
    .await;
    // B batches now, from the price A published (read back from Redis).
    let published_before = published(&b).await;
    for _ in 0..5 {
        let batch = next_batch(&mut on_b).await;
        assert_eq!(batch_symbols(&batch), ["AAPL"], "{batch}");
        assert_eq!(batch["symbols"]["AAPL"], seed_price_entry(), "{batch}");
        narrowed.push(batch);
    }
    assert_each_batch_once("the narrowed client of B", &narrowed);
    assert!(
        published(&b).await > published_before,
        "the batches come from B"
    );
}

/// One `trade_executed` as a client saw it.
#[derive(Debug, Clone, PartialEq)]
struct Trade {
    symbol: String,
    side: String,
    quantity: f64,
    price: f64,
}

/// The account as rebuilt from the executions a client saw.
#[derive(Debug, Clone)]
struct Ledger {
    cash: f64,
    realized_pnl: f64,
    /// Quantity and average price by symbol.
    positions: BTreeMap<String, (f64, f64)>,
    /// The order id of the last execution seen.
    orders: u64,
}

impl Ledger {
    fn fresh() -> Self {
        Ledger {
            cash: CASH,
            realized_pnl: 0.0,
            positions: BTreeMap::new(),
            orders: 0,
        }
    }

    /// The stored account, as the starting point.
    fn from_account(account: &Value) -> Self {
        let positions = account["positions"]
            .as_object()
            .unwrap_or_else(|| panic!("no positions: {account}"))
            .iter()
            .map(|(symbol, p)| (symbol.clone(), (f(&p["quantity"]), f(&p["average_price"]))))
            .collect();
        Ledger {
            cash: f(&account["cash"]),
            realized_pnl: f(&account["realized_pnl"]),
            positions,
            orders: last_order_id(account),
        }
    }

    fn apply(&mut self, trade: &Trade) {
        self.orders += 1;
        match trade.side.as_str() {
            "BUY" => {
                let cost = trade.quantity * trade.price;
                self.cash -= cost;
                let (quantity, average) = self
                    .positions
                    .entry(trade.symbol.clone())
                    .or_insert((0.0, 0.0));
                let total = *quantity + trade.quantity;
                *average = (*average * *quantity + cost) / total;
                *quantity = total;
                assert!(
                    self.cash >= -1e-6,
                    "a BUY beyond the cash: {trade:?} leaves {}",
                    self.cash
                );
            }
            "SELL" => {
                let Some((quantity, average)) = self.positions.remove(&trade.symbol) else {
                    panic!("a SELL of a position the account does not hold: {trade:?}");
                };
                assert!(
                    (quantity - trade.quantity).abs() < 1e-6,
                    "a SELL closes the whole position of {quantity}: {trade:?}"
                );
                self.cash += trade.quantity * trade.price;
                self.realized_pnl += (trade.price - average) * quantity;
            }
            other => panic!("side {other:?}: {trade:?}"),
        }
    }

    /// Fails unless the stored account is this ledger: cash, realised pnl,
    /// positions, and cash + positions at average price = starting cash +
    /// realised pnl.
    fn assert_is(&self, account: &Value, when: &str) {
        assert_eq!(
            last_order_id(account),
            self.orders,
            "{when}: order ids: {account}"
        );
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(1.0);
        assert!(
            close(f(&account["cash"]), self.cash),
            "{when}: the stored cash is not the fills' ({}): {account}",
            self.cash
        );
        assert!(
            close(f(&account["realized_pnl"]), self.realized_pnl),
            "{when}: the stored realised pnl is not the fills' ({}): {account}",
            self.realized_pnl
        );
        let stored = Ledger::from_account(account);
        assert_eq!(
            stored.positions.keys().collect::<Vec<_>>(),
            self.positions.keys().collect::<Vec<_>>(),
            "{when}: positions: {account}"
        );
        for (symbol, (quantity, average)) in &self.positions {
            let (q, avg) = stored.positions[symbol];
            assert!(
                close(q, *quantity) && close(avg, *average),
                "{when}: {symbol} stored as {q} at {avg}, the fills make {quantity} at {average}"
            );
        }
        let basis: f64 = stored.positions.values().map(|(q, avg)| q * avg).sum();
        assert!(
            close(stored.cash + basis, CASH + stored.realized_pnl),
            "{when}: cash {} + positions at cost {basis} != starting cash + realised pnl {}",
            stored.cash,
            stored.realized_pnl
        );
    }

    /// Whether a `portfolio_update` shows this ledger's positions (and a
    /// `total_pnl` of its realised pnl plus the positions' unrealised).
    fn check_shown(&self, update: &Value) -> Result<(), String> {
        let data = &update["data"];
        let Some(positions) = data["positions"].as_object() else {
            return Err(format!("no positions: {update}"));
        };
        if !positions.keys().eq(self.positions.keys()) {
            return Err(format!(
                "the portfolio's positions are not the executions' ({:?}): {update}",
                self.positions
            ));
        }
        if data["position_count"] != positions.len() {
            return Err(format!("position_count is not the positions': {update}"));
        }
        let mut unrealized = 0.0;
        for (symbol, (quantity, average)) in &self.positions {
            let shown = &positions[symbol];
            if shown["symbol"] != symbol.as_str()
                || (f(&shown["quantity"]) - quantity).abs() >= 1e-4
                || (f(&shown["average_price"]) - average).abs() >= 1e-4 + 1e-9 * average
            {
                return Err(format!(
                    "{symbol} shown as {shown}, the executions make {quantity} at {average}"
                ));
            }
            unrealized += f(&shown["unrealized_pnl"]);
        }
        let tolerance = 0.01 * (positions.len() as f64 + 1.0);
        if (f(&data["total_pnl"]) - (self.realized_pnl + unrealized)).abs() > tolerance {
            return Err(format!(
                "total_pnl is not realised ({}) + unrealised ({unrealized}): {update}",
                self.realized_pnl
            ));
        }
        Ok(())
    }
}

/// A kill: when it happened, and the account the dead leader left in Redis.
struct Kill {
    at: chrono::DateTime<chrono::Utc>,
    left: Value,
    /// Whether the client watched the dead leader (its messages are
    /// checked); otherwise they are the dead fleet's retained greetings.
    watched: bool,
}

/// A `/ws` client watching the account: every execution and portfolio it
/// gets is checked against the ledger of the executions before it.
struct Watcher {
    ws: Ws,
    who: String,
    ledger: Ledger,
    trades: Vec<Trade>,
    /// Positions that must stay in every portfolio until a SELL of them.
    kept: BTreeSet<String>,
    /// Symbols traded since the last [`Watcher::mark`].
    touched: BTreeSet<String>,
    /// The highest stored `last_order_id` read so far.
    stored_orders: u64,
    /// Whether a `portfolio_update` came after the last execution (the
    /// end of its fill: signal, execution, portfolio).
    fill_done: bool,
    /// Portfolios with no execution before them (periodic ones).
    quiet: usize,
    /// A kill whose dead leader's messages may still be arriving: they
    /// precede the first message stamped after it.
    kill: Option<Kill>,
    /// Fills a killed leader stored but never announced.
    unannounced: u64,
    /// The last messages (type and timestamp), for failure messages.
    recent: Vec<String>,
}

impl Watcher {
    /// Connects to `node`'s `/ws`: auto-subscribed to every channel at once.
    async fn connect(node: &Node, ledger: Ledger) -> Watcher {
        let ws = node
            .ws_connect(&format!("/ws?client_id=watch-{}", node.id))
            .await;
        Watcher {
            ws,
            who: format!("the client of {}", node.id),
            stored_orders: ledger.orders,
            ledger,
            trades: Vec::new(),
            kept: BTreeSet::new(),
            touched: BTreeSet::new(),
            fill_done: true,
            quiet: 0,
            kill: None,
            unannounced: 0,
            recent: Vec::new(),
        }
    }

    /// Fails with `problem` and the last messages.
    fn fail(&self, problem: &str) -> ! {
        panic!(
            "{}: {problem}\nlast messages:\n{}",
            self.who,
            self.recent.join("\n")
        )
    }

    /// Reads and checks one message.
    async fn next(&mut self) {
        let m = recv_json(&mut self.ws).await;
        if self.recent.len() == 30 {
            self.recent.remove(0);
        }
        let summary = match m["type"].as_str() {
            Some("trade_executed") => format!("{} {} {}", m["side"], m["symbol"], m["quantity"]),
            Some("portfolio_update") => m["data"]["positions"]
                .as_object()
                .map(|p| format!("{:?}", p.keys().collect::<Vec<_>>()))
                .unwrap_or_default(),
            _ => String::new(),
        };
        self.recent
            .push(format!("{} {} {summary}", m["timestamp"], m["type"]));
        if let Some(kill) = &self.kill {
            if timestamp(&m) >= kill.at {
                let kill = self.kill.take().expect("a kill");
                self.take_over(&kill.left);
            } else if !kill.watched {
                return;
            }
        }
        match m["type"].as_str() {
            Some("trade_executed") => {
                let keys: BTreeSet<&str> = m.as_object().unwrap().keys().map(|k| &**k).collect();
                assert_eq!(
                    keys,
                    BTreeSet::from(["type", "symbol", "side", "quantity", "price", "timestamp"]),
                    "{m}"
                );
                let trade = Trade {
                    symbol: m["symbol"].as_str().unwrap().to_string(),
                    side: m["side"].as_str().unwrap().to_string(),
                    quantity: f(&m["quantity"]),
                    price: f(&m["price"]),
                };
                self.ledger.apply(&trade);
                if trade.side == "SELL" {
                    self.kept.remove(&trade.symbol);
                }
                self.touched.insert(trade.symbol.clone());
                self.trades.push(trade);
                self.fill_done = false;
            }
            Some("portfolio_update") => {
                assert_eq!(m["channel"], "portfolio", "{m}");
                for symbol in &self.kept {
                    if m["data"]["positions"].get(symbol).is_none() {
                        self.fail(&format!(
                            "{symbol}, held before the handover and never sold, is gone from {m}"
                        ));
                    }
                }
                if let Err(problem) = self.ledger.check_shown(&m) {
                    self.fail(&problem);
                }
                if self.fill_done {
                    self.quiet += 1;
                }
                self.fill_done = true;
            }
            Some("error") => self.fail(&m.to_string()),
            _ => {}
        }
    }

    /// The first message of the new leader: every message of the killed
    /// one is in. A leader killed between storing a fill and publishing it
    /// leaves a fill in the account that was never announced (the store
    /// comes first, so nothing executes twice): the ledger takes the
    /// account it left, and the positions that fill changed count as
    /// traded.
    fn take_over(&mut self, left: &Value) {
        let stored = last_order_id(left);
        if self.ledger.orders > stored {
            self.fail(&format!(
                "saw {} executions, the killed leader stored {stored}: {left}",
                self.ledger.orders
            ));
        }
        if self.ledger.orders == stored {
            return;
        }
        let account = Ledger::from_account(left);
        eprintln!(
            "{}: the killed leader stored {} fill(s) it never announced",
            self.who,
            stored - self.ledger.orders
        );
        for symbol in account.positions.keys().chain(self.ledger.positions.keys()) {
            if account.positions.get(symbol) != self.ledger.positions.get(symbol) {
                self.touched.insert(symbol.clone());
            }
        }
        self.kept
            .retain(|symbol| account.positions.contains_key(symbol));
        self.unannounced += stored - self.ledger.orders;
        self.ledger = account;
    }

    /// Reads until `done`, failing after `limit`.
    async fn until(&mut self, what: &str, limit: Duration, done: impl Fn(&Watcher) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "{what}: not within {limit:?} ({} executions seen)",
                    self.ledger.orders
                ));
            }
            self.next().await;
        }
    }

    /// Reads until the client has seen every execution the stored account
    /// holds, each with the portfolio that ends its fill, and returns that
    /// account. Every read checks that the stored order ids never go back
    /// and that the client never saw more executions than the account holds
    /// (an execution published twice, or published and not stored).
    async fn settle(&mut self, redis: &RedisServer) -> Value {
        let deadline = Instant::now() + ACTIVITY;
        loop {
            let seen = self.ledger.orders;
            let account = stored_account(redis).unwrap_or_else(|| self.fail("no stored account"));
            let stored = last_order_id(&account);
            if stored < self.stored_orders {
                self.fail(&format!(
                    "the stored last_order_id went back from {} to {stored}",
                    self.stored_orders
                ));
            }
            self.stored_orders = stored;
            if seen > stored {
                self.fail(&format!(
                    "saw executions up to order {seen}, the stored account holds {stored}: \
                     an execution was published twice or without being stored"
                ));
            }
            if seen == stored && self.fill_done {
                self.ledger.assert_is(&account, &self.who);
                return account;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "the stored account holds {stored} executions, the client saw {seen}"
                ));
            }
            self.next().await;
        }
    }

    /// Settles at a quiet moment, holding a position: after a new
    /// execution, and then a portfolio with no execution before it (the
    /// account between two fills, so a kill now is unlikely to cut one).
    async fn settle_holding(&mut self, redis: &RedisServer) -> Value {
        let deadline = Instant::now() + ACTIVITY;
        loop {
            let orders = self.ledger.orders;
            self.until("an execution", ACTIVITY, |w| w.ledger.orders > orders)
                .await;
            self.settle(redis).await;
            let quiet = self.quiet;
            self.until("a portfolio after the fills", ACTIVITY, |w| w.quiet > quiet)
                .await;
            let account = self.settle(redis).await;
            if !self.ledger.positions.is_empty() {
                return account;
            }
            if Instant::now() >= deadline {
                self.fail("the account never held a position");
            }
        }
    }

    /// From now on, every portfolio must show the positions held now
    /// unless a SELL of them is seen; and `touched` starts afresh.
    fn mark(&mut self) {
        self.kept = self.ledger.positions.keys().cloned().collect();
        self.touched.clear();
    }
}

/// Fails unless every position of `before` that no execution touched
/// since is in `after` unchanged: the same position id, quantity, average
/// price and opening time (its market price moves with the ticks).
fn assert_untouched_positions_kept(before: &Value, after: &Value, touched: &BTreeSet<String>) {
    for (symbol, position) in before["positions"].as_object().unwrap() {
        if touched.contains(symbol) {
            continue;
        }
        for key in ["position_id", "quantity", "average_price", "opened_at_ms"] {
            assert_eq!(
                after["positions"][symbol][key], position[key],
                "{symbol}'s {key} changed without an execution\nbefore: {before}\nafter: {after}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_stream_hands_the_account_over_without_duplicate_executions() {
    let redis = RedisServer::start();
    hold_trading(&redis);
    let mut nodes = Vec::new();
    for id in ["trade-a", "trade-b", "trade-c"] {
        nodes.push(start(&redis, id, &TRADING_ENV).await);
    }
    // A client on every node, connected before the account's first fill.
    let mut watchers = Vec::new();
    for node in &nodes {
        watchers.push(Watcher::connect(node, Ledger::fresh()).await);
    }
    release_trading(&redis);
    let holder = lease_taken(&redis, &[]).await;
    let held = nodes
        .iter()
        .position(|n| n.id == holder)
        .expect("the holder is a node");
    poll("the holder's account to start", TIMEOUT, || {
        started_at(&nodes[held], "trades")
    })
    .await;
    for (i, node) in nodes.iter().enumerate() {
        if i != held {
            assert_eq!(
                started_at(node, "trades").await,
                None,
                "{} runs no account",
                node.id
            );
        }
    }
    drop(watchers.remove(held));
    let mut watcher = watchers.remove(0);
    let mut other = watchers.remove(0);

    // The account trades; the client has seen all of it, and it holds a position.
    let before = watcher.settle_holding(&redis).await;
    let announced_before = watcher.trades.len();
    watcher.mark();
    let at = chrono::Utc::now();
    nodes[held].kill();
    let left = stored_account(&redis).expect("the account is in Redis");
    assert!(last_order_id(&left) >= last_order_id(&before));
    for w in [&mut watcher, &mut other] {
        w.kill = Some(Kill {
            at,
            left: left.clone(),
            watched: true,
        });
    }

    // Another node takes the lease and continues the same account.
    let successor = lease_taken(&redis, &[&holder]).await;
    let next = nodes
        .iter()
        .position(|n| n.id == successor)
        .expect("the successor is a node");
    poll("the successor's account to start", TIMEOUT, || {
        started_at(&nodes[next], "trades")
    })
    .await;
    watcher
        .until("an execution after the handover", ACTIVITY, |w| {
            w.kill.is_none() && w.ledger.orders > last_order_id(&left)
        })
        .await;
    let after = watcher.settle(&redis).await;
    assert!(last_order_id(&after) > last_order_id(&left));
    assert_eq!(
        (watcher.trades.len() - announced_before) as u64 + watcher.unannounced,
        last_order_id(&after) - last_order_id(&before),
        "the executions between the reads are the order ids between them"
    );
    assert!(after["last_position_id"].as_u64() >= before["last_position_id"].as_u64());
    assert_untouched_positions_kept(&before, &after, &watcher.touched);

    // A client of the third node saw the same executions, once each.
    let seen = watcher.trades.len();
    other
        .until("the same executions", ACTIVITY, |w| w.trades.len() >= seen)
        .await;
    assert_eq!(other.trades[..seen], watcher.trades[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_survives_a_restart_of_the_whole_fleet() {
    let redis = RedisServer::start();
    hold_trading(&redis);
    let ids = ["restart-a", "restart-b"];
    let mut nodes = Vec::new();
    for id in ids {
        nodes.push(start(&redis, id, &TRADING_ENV).await);
    }
    let mut watcher = Watcher::connect(&nodes[0], Ledger::fresh()).await;
    release_trading(&redis);
    let settled = watcher.settle_holding(&redis).await;
    // The trading node first, so it is not left trading alone.
    let holder = lease_holder(&redis);
    nodes.sort_by_key(|n| Some(&n.id) != holder.as_ref());
    let at = chrono::Utc::now();
    for node in &mut nodes {
        node.kill();
    }
    drop((watcher, nodes));
    // What the dead fleet left (at least what the client saw settled).
    let before = stored_account(&redis).expect("the account is in Redis");
    assert!(last_order_id(&before) >= last_order_id(&settled));

    // The same nodes again; trading resumes once a client watches.
    hold_trading(&redis);
    let mut nodes = Vec::new();
    for id in ids {
        nodes.push(start(&redis, id, &TRADING_ENV).await);
    }
    let mut watcher = Watcher::connect(&nodes[1], Ledger::from_account(&before)).await;
    watcher.kill = Some(Kill {
        at,
        left: before.clone(),
        watched: false,
    });
    watcher.mark();
    release_trading(&redis);
    watcher
        .until("an execution after the restart", ACTIVITY, |w| {
            w.kill.is_none() && w.ledger.orders > last_order_id(&before)
        })
        .await;
    let after = watcher.settle(&redis).await;
    assert!(after["last_position_id"].as_u64() >= before["last_position_id"].as_u64());
    assert_untouched_positions_kept(&before, &after, &watcher.touched);
}
