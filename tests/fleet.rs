//! Fleet mode with real processes: three roomcast nodes (the built binary)
//! on a private `redis-server`; clients spread across nodes; publishes on one
//! node delivered on all; a node killed with SIGKILL and its client resuming
//! on another; Redis restarted empty, frozen, or its pub/sub connections
//! killed — every client gets every message or an explicit gap.

mod common;

use common::fleet::{Node, RedisServer};
use common::*;
use hyper::StatusCode;
use serde_json::{Value, json};

async fn fleet(redis: &RedisServer, n: usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let node = Node::start(redis, &format!("node{i}"), &[]).await;
        node.wait_for("/ready", StatusCode::OK).await;
        nodes.push(node);
    }
    nodes
}

async fn connect(node: &Node, path: &str) -> Ws {
    node.ws_connect(path).await
}

/// A native client subscribed to `rooms` (plain subscribe), after `welcome`
/// and one `subscribed` per room.
async fn native(node: &Node, rooms: Value) -> Ws {
    let mut ws = connect(node, "/v1/ws").await;
    assert_eq!(recv_json(&mut ws).await["type"], "welcome");
    let n = rooms.as_array().unwrap().len();
    send_json(&mut ws, &json!({"type": "subscribe", "rooms": rooms})).await;
    for _ in 0..n {
        let sub = recv_json(&mut ws).await;
        assert_eq!(sub["type"], "subscribed", "{sub}");
    }
    ws
}

async fn publish(node: &Node, ticker: &str, price: f64) -> (StatusCode, Value) {
    let mut client = HttpClient::connect(node.addr).await;
    client
        .post("/api/ws/broadcast/price", &price_body(ticker, price))
        .await
}

/// The next `n` native `message`s (skipping nothing else: a `gap` fails).
async fn messages(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = recv_json(ws).await;
        assert_eq!(m["type"], "message", "{m}");
        out.push(m);
    }
    out
}

fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_any_node_reaches_every_subscriber_on_every_node_once_in_order() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 3).await;
    let mut natives = Vec::new();
    let mut seeds = Vec::new();
    for node in &nodes {
        natives.push(native(node, json!(["ticker:AAPL"])).await);
        let mut ws = connect(node, "/api/ws").await;
        recv_json(&mut ws).await;
        subscribe(&mut ws, "ticker", Some("AAPL")).await;
        seeds.push(ws);
    }
    for i in 0..30 {
        let (status, body) = publish(&nodes[i % 3], "AAPL", 100.0 + i as f64).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["seq"], i as u64 + 1);
    }
    for ws in &mut natives {
        let got = messages(ws, 30).await;
        assert_eq!(seqs(&got), (1..=30).collect::<Vec<_>>());
        let prices: Vec<f64> = got
            .iter()
            .map(|m| m["data"]["price"].as_f64().unwrap())
            .collect();
        assert_eq!(
            prices,
            (0..30).map(|i| 100.0 + i as f64).collect::<Vec<_>>()
        );
        assert!(got.iter().all(|m| m["room"] == "ticker:AAPL"));
    }
    for ws in &mut seeds {
        for i in 0..30 {
            let m = recv_json(ws).await;
            assert_eq!(m["type"], "price_update");
            assert_eq!(m["price"], 100.0 + i as f64);
        }
    }
    // Nothing more is queued: a ping is answered next (no duplicates).
    for ws in &mut seeds {
        ping_pong(ws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_history_replays_on_whichever_node_a_client_lands() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 2).await;
    for i in 0..5 {
        publish(&nodes[0], "MSFT", 200.0 + i as f64).await;
    }
    let mut ws = connect(&nodes[1], "/api/ws").await;
    recv_json(&mut ws).await;
    let history = subscribe(&mut ws, "ticker", Some("MSFT")).await.unwrap();
    let prices: Vec<f64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["price"].as_f64().unwrap())
        .collect();
    assert_eq!(prices, [200.0, 201.0, 202.0, 203.0, 204.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_killed_node_resumes_on_another_without_loss_or_duplicates() {
    let redis = RedisServer::start();
    let mut nodes = fleet(&redis, 3).await;
    let mut ws = native(&nodes[0], json!(["patterns", "ticker:TSLA"])).await;
    for i in 0..5 {
        publish(&nodes[1], "TSLA", 300.0 + i as f64).await;
    }
    let got = messages(&mut ws, 5).await;
    let (last, epoch) = (got[4]["seq"].as_u64().unwrap(), got[4]["epoch"].clone());
    assert_eq!(last, 5);

    nodes[0].kill();
    // Published while the client is away.
    for i in 5..10 {
        publish(&nodes[1], "TSLA", 300.0 + i as f64).await;
    }
    let mut ws = connect(&nodes[2], "/v1/ws").await;
    assert_eq!(recv_json(&mut ws).await["node"], "node2");
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "rooms": [{"room": "ticker:TSLA", "seq": last, "epoch": epoch}]}),
    )
    .await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    assert_eq!(sub["recovered"], true, "{sub}");
    assert_eq!(sub["replayed"], 5);
    let replayed = messages(&mut ws, 5).await;
    assert_eq!(seqs(&replayed), [6, 7, 8, 9, 10]);
    publish(&nodes[1], "TSLA", 400.0).await;
    let live = messages(&mut ws, 1).await;
    assert_eq!(seqs(&live), [11]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_gives_subscribers_an_explicit_gap_not_silence() {
    let mut redis = RedisServer::start();
    let nodes = fleet(&redis, 2).await;
    let mut ws = native(&nodes[1], json!(["ticker:NVDA"])).await;
    for i in 0..3 {
        publish(&nodes[0], "NVDA", 500.0 + i as f64).await;
    }
    let before = messages(&mut ws, 3).await;
    let old_epoch = before[0]["epoch"].as_u64().unwrap();

    redis.stop();
    // Publishing while Redis is down is refused, not lost silently.
    let (status, body) = publish(&nodes[0], "NVDA", 1.0).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    nodes[0]
        .wait_for("/ready", StatusCode::SERVICE_UNAVAILABLE)
        .await;

    redis.restart();
    // Publish as soon as the publishing node is back, whether or not the
    // subscriber's node has resubscribed yet (then it catches up).
    nodes[0].wait_for("/ready", StatusCode::OK).await;
    for p in [600.0, 601.0, 602.0] {
        let (status, body) = publish(&nodes[0], "NVDA", p).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let gap = recv_json(&mut ws).await;
    assert_eq!(gap["type"], "gap", "{gap}");
    assert_eq!(gap["reason"], "epoch");
    let after = messages(&mut ws, 3).await;
    assert_eq!(seqs(&after), [1, 2, 3]);
    assert_eq!(after[0]["data"]["price"], 600.0);
    assert_ne!(after[0]["epoch"].as_u64().unwrap(), old_epoch);
    // The connection stayed open throughout.
    send_json(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut ws).await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_pubsub_connections_are_caught_up_from_the_stream() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 2).await;
    let mut ws = native(&nodes[1], json!(["ticker:AMZN"])).await;
    publish(&nodes[0], "AMZN", 1.0).await;
    assert_eq!(seqs(&messages(&mut ws, 1).await), [1]);
    let killed: i64 = redis.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]).unwrap();
    // node1's subscriber (node0 subscribes to nothing, so it is not a pub/sub client).
    assert!(killed >= 1, "killed {killed} pub/sub connections");
    // Published while node1 may be resubscribing.
    for i in 2..=6 {
        let (status, _) = publish(&nodes[0], "AMZN", i as f64).await;
        assert_eq!(status, StatusCode::OK);
    }
    let got = messages(&mut ws, 5).await;
    assert_eq!(seqs(&got), [2, 3, 4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_turns_publish_into_503_and_ready_false_then_recovers() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 1).await;
    let mut ws = native(&nodes[0], json!(["alerts", "ticker:META"])).await;
    redis.freeze();
    let (status, body) = publish(&nodes[0], "META", 1.0).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );
    nodes[0]
        .wait_for("/ready", StatusCode::SERVICE_UNAVAILABLE)
        .await;
    redis.thaw();
    nodes[0].wait_for("/ready", StatusCode::OK).await;
    let (status, _) = publish(&nodes[0], "META", 2.0).await;
    assert_eq!(status, StatusCode::OK);
    let m = messages(&mut ws, 1).await;
    assert_eq!(m[0]["data"]["price"], 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_runs_on_one_node_and_moves_when_that_node_dies() {
    let redis = RedisServer::start();
    let env = [
        ("ROOMCAST_SIMULATOR", "true"),
        ("ROOMCAST_SYMBOLS", "BTC-USD"),
        ("REALTIME_UPDATE_INTERVAL", "0.05"),
        ("ROOMCAST_LEASE_TTL", "1"),
    ];
    let mut nodes = [
        Node::start(&redis, "sim-a", &env).await,
        Node::start(&redis, "sim-b", &env).await,
    ];
    let lease_holder = || redis.cmd::<Option<String>>(&["GET", "roomcast:lease:simulator"]);
    let holder = within("a lease holder", async {
        loop {
            if let Ok(Some(h)) = lease_holder() {
                return h;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let held = nodes
        .iter()
        .position(|n| n.id == holder)
        .expect("holder is a node");
    let other = 1 - held;
    // One producer: a client on the other node sees one gap-free sequence.
    let mut ws = native(&nodes[other], json!(["ticker:BTC-USD"])).await;
    let s = seqs(&messages(&mut ws, 20).await);
    assert!(s.windows(2).all(|w| w[1] == w[0] + 1), "{s:?}");
    // Only the holder publishes (Redis numbers every publish, so the
    // sequence alone would not show a second producer).
    let published = |node: &Node| {
        let addr = node.addr;
        async move {
            let mut client = HttpClient::connect(addr).await;
            let (_, text) = client.get_text("/metrics").await;
            prometheus_value(&text, "roomcast_bus_published_total")
        }
    };
    assert!(published(&nodes[held]).await >= 20.0);
    assert_eq!(published(&nodes[other]).await, 0.0);

    nodes[held].kill();
    let successor = nodes[other].id.clone();
    within("the other node to take the lease", async {
        while lease_holder().ok().flatten().as_deref() != Some(successor.as_str()) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // The stream goes on from the new holder, in the same sequence.
    let more = seqs(&messages(&mut ws, 5).await);
    assert!(more.windows(2).all(|w| w[1] == w[0] + 1), "{more:?}");
    assert!(more[0] > *s.last().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_reports_cluster_totals_alongside_its_own() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 3).await;
    let _a = native(&nodes[0], json!(["patterns"])).await;
    let _b = native(&nodes[1], json!(["patterns"])).await;
    let _c = native(&nodes[1], json!(["alerts"])).await;
    // Heartbeats land every 2 s: wait for the totals to include the clients.
    let stats = within("cluster totals", async {
        loop {
            let mut client = HttpClient::connect(nodes[2].addr).await;
            let (status, text) = client.get_text("/api/ws/stats").await;
            assert_eq!(status, StatusCode::OK);
            let stats: Value = serde_json::from_str(&text).unwrap();
            if stats["cluster"]["active_connections"] == 3 {
                return stats;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(stats["active_connections"], 0, "node2's own figure");
    assert_eq!(stats["cluster"]["nodes"], 3);
    assert_eq!(stats["cluster"]["subscriptions"], 3);
    assert_eq!(stats["cluster"]["node"], "node2");
    let members: Vec<&str> = stats["cluster"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["node"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["node0", "node1", "node2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_redis_channels_feed_the_fleet_through_one_node() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 2).await;
    let mut ws = native(&nodes[1], json!(["ticker:AAPL", "alerts"])).await;
    // The ingest lease holder subscribes to the seed's channels: wait for it.
    within("a node subscribed to price_updates", async {
        loop {
            let subs: Vec<redis::Value> =
                redis.cmd(&["PUBSUB", "NUMSUB", "price_updates"]).unwrap();
            if matches!(subs.get(1), Some(redis::Value::Int(n)) if *n >= 1) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    // An existing producer's message, as the seed describes it (no `type`).
    let receivers: i64 = redis
        .cmd(&["PUBLISH", "price_updates", r#"{"ticker":"AAPL","price":150.25,"change":1.0,"change_percent":0.5,"volume":100,"high":151,"low":149,"open":150,"timestamp":"2025-11-18T10:30:00Z"}"#])
        .unwrap();
    assert_eq!(receivers, 1, "exactly one node ingests");
    let m = messages(&mut ws, 1).await;
    assert_eq!(m[0]["data"]["type"], "price_update");
    assert_eq!(m[0]["data"]["price"], 150.25);
    assert_eq!(m[0]["seq"], 1);
    // Malformed input is skipped; the next message still goes through.
    let _: i64 = redis
        .cmd(&["PUBLISH", "alert_triggers", "{not json"])
        .unwrap();
    let _: i64 = redis
        .cmd(&["PUBLISH", "alert_triggers", r#"{"ticker":"AAPL","alert_type":"above","trigger_price":150,"current_price":150.25,"message":"AAPL above 150","timestamp":"2025-11-18T10:30:00Z"}"#])
        .unwrap();
    let m = messages(&mut ws, 1).await;
    assert_eq!(m[0]["room"], "alerts");
    assert_eq!(m[0]["data"]["message"], "AAPL above 150");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_with_no_history_yet_misses_nothing_across_a_pubsub_kill() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 2).await;
    // A brand-new room: nothing was ever published to it.
    let mut ws = native(&nodes[1], json!(["ticker:NEW"])).await;
    let _: i64 = redis.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]).unwrap();
    for p in 1..=3 {
        let (status, _) = publish(&nodes[0], "NEW", p as f64).await;
        assert_eq!(status, StatusCode::OK);
    }
    let got = messages(&mut ws, 3).await;
    assert_eq!(seqs(&got), [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_a_new_room_while_redis_is_down_is_answered_then_served_on_recovery() {
    let mut redis = RedisServer::start();
    let nodes = fleet(&redis, 2).await;
    redis.stop();
    nodes[1]
        .wait_for("/ready", StatusCode::SERVICE_UNAVAILABLE)
        .await;
    // Not kept waiting on Redis: the subscription is confirmed.
    let mut ws = native(&nodes[1], json!(["ticker:IBM"])).await;
    redis.restart();
    for node in &nodes {
        node.wait_for("/ready", StatusCode::OK).await;
    }
    let (status, body) = publish(&nodes[0], "IBM", 1.0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = messages(&mut ws, 1).await;
    assert_eq!(seqs(&got), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_samples_each_modeldata_feed_for_the_whole_fleet() {
    let redis = RedisServer::start();
    // Each node's embedded store has its own random models: identical bytes
    // on both nodes can only come from one sampler.
    let env = [
        ("MODELDATA_INTERVAL_SECS", "0.3"),
        ("ROOMCAST_LEASE_TTL", "1"),
    ];
    let mut nodes = [
        Node::start(&redis, "md-a", &env).await,
        Node::start(&redis, "md-b", &env).await,
    ];
    for node in &nodes {
        node.wait_for("/ready", StatusCode::OK).await;
    }
    let mut a = connect(&nodes[0], "/ws/modeldata-stream").await;
    let mut b = connect(&nodes[1], "/ws/modeldata-stream").await;
    assert_eq!(recv_json(&mut a).await["type"], "initial_modeldata");
    assert_eq!(recv_json(&mut b).await["type"], "initial_modeldata");
    let ua = [recv_text(&mut a).await, recv_text(&mut a).await];
    let ub = [recv_text(&mut b).await, recv_text(&mut b).await];
    assert!(ua[1].contains("\"type\":\"modeldata_update\""));
    assert!(
        ua.iter().any(|u| ub.contains(u)),
        "the nodes sent different updates"
    );

    // The leader dies: the other node takes the feed over within the lease.
    let leader: String = redis
        .cmd::<Option<String>>(&["GET", "roomcast:lease:room:modeldata"])
        .unwrap()
        .expect("a leader");
    let (dead, alive) = if leader == "md-a" { (0, 1) } else { (1, 0) };
    nodes[dead].kill();
    let ws = if alive == 0 { &mut a } else { &mut b };
    let successor = nodes[alive].id.clone();
    within("the other node to lead the feed", async {
        loop {
            let m = recv_json(ws).await;
            assert!(
                m["type"] == "modeldata_update" || m["type"] == "modeldata_status",
                "{m}"
            );
            let holder = redis
                .cmd::<Option<String>>(&["GET", "roomcast:lease:room:modeldata"])
                .unwrap();
            if holder.as_deref() == Some(successor.as_str()) && m["type"] == "modeldata_update" {
                return;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_subscribes_to_a_room_only_while_it_has_members_there() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 1).await;
    let subscribers = |channel: &str| -> i64 {
        let reply: Vec<redis::Value> = redis.cmd(&["PUBSUB", "NUMSUB", channel]).unwrap();
        match reply.get(1) {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("unexpected NUMSUB reply {other:?}"),
        }
    };
    let until = |channel: &'static str, want: i64| {
        let subscribers = &subscribers;
        async move {
            within("the node's subscription to change", async {
                while subscribers(channel) != want {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await
        }
    };
    assert_eq!(subscribers("roomcast:r:ticker:GOOGL"), 0);
    let mut first = native(&nodes[0], json!(["ticker:GOOGL"])).await;
    let mut second = native(&nodes[0], json!(["ticker:GOOGL"])).await;
    until("roomcast:r:ticker:GOOGL", 1).await;
    send_json(
        &mut first,
        &json!({"type": "unsubscribe", "rooms": ["ticker:GOOGL"]}),
    )
    .await;
    assert_eq!(recv_json(&mut first).await["type"], "unsubscribed");
    // One member left: still subscribed, once, and still delivering.
    publish(&nodes[0], "GOOGL", 1.0).await;
    assert_eq!(seqs(&messages(&mut second, 1).await), [1]);
    assert_eq!(subscribers("roomcast:r:ticker:GOOGL"), 1);
    drop(second.close(None).await);
    until("roomcast:r:ticker:GOOGL", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_bogus_bus_messages_are_skipped_and_the_room_goes_on() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 1).await;
    let mut ws = native(&nodes[0], json!(["ticker:BOG"])).await;
    publish(&nodes[0], "BOG", 1.0).await;
    let first = messages(&mut ws, 1).await;
    let epoch = first[0]["epoch"].as_u64().unwrap().to_string();
    let event = r#"{"type":"price_update","ticker":"BOG","price":9,"change":0,"change_percent":0,"volume":0,"high":9,"low":9,"open":9,"timestamp":"2025-11-18T10:30:00.000Z"}"#;
    for bad in [
        "not a bus message".to_string(),
        format!("2:{epoch}:{{not json"),
        // A seq Redis never issued: it must not block the room.
        format!("999999:{epoch}:{event}"),
    ] {
        let _: i64 = redis
            .cmd(&["PUBLISH", "roomcast:r:ticker:BOG", &bad])
            .unwrap();
    }
    publish(&nodes[0], "BOG", 2.0).await;
    let next = messages(&mut ws, 1).await;
    assert_eq!(seqs(&next), [2]);
    assert_eq!(next[0]["data"]["price"], 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_armed_on_one_node_is_seen_everywhere_and_fires_once_for_prices_through_others() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 3).await;
    let mut subscribers = Vec::new();
    for node in &nodes {
        let mut ws = connect(node, "/api/ws").await;
        recv_json(&mut ws).await;
        subscribe(&mut ws, "alerts", None).await;
        subscribers.push(ws);
    }
    let arm = |kind: &str, price: f64| {
        json!({"ticker": "AAPL", "alert_type": kind, "trigger_price": price}).to_string()
    };
    let mut first = HttpClient::connect(nodes[0].addr).await;
    let (status, armed) = first.post("/api/alerts", &arm("above", 150.0)).await;
    assert_eq!(status, StatusCode::CREATED, "{armed}");
    let (status, other) = first.post("/api/alerts", &arm("below", 10.0)).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    // Listed through every node.
    for node in &nodes {
        let mut http = HttpClient::connect(node.addr).await;
        let (_, list) = http
            .request(hyper::Method::GET, "/api/alerts", None, &[])
            .await;
        assert_eq!(json_body(&list)["count"], 2, "{}", node.id);
    }
    // Deleted through another node.
    let mut third = HttpClient::connect(nodes[2].addr).await;
    let path = format!("/api/alerts/{}", other["alert"]["id"]);
    let (status, _) = third.request(hyper::Method::DELETE, &path, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    // Two crossing prices at once, through the other two nodes: one fires it.
    let (one, two) = tokio::join!(
        publish(&nodes[1], "AAPL", 151.0),
        publish(&nodes[2], "AAPL", 152.0)
    );
    assert_eq!(one.0, StatusCode::OK, "{}", one.1);
    assert_eq!(two.0, StatusCode::OK, "{}", two.1);
    let fired: u64 = [&one.1, &two.1]
        .iter()
        .map(|body| body["alerts"]["fired"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(fired, 1, "{} / {}", one.1, two.1);
    let (status, _) = first
        .post("/api/ws/broadcast/alert", &alert_body("MARK", "marker"))
        .await;
    assert_eq!(status, StatusCode::OK);
    for ws in &mut subscribers {
        let trigger = recv_json(ws).await;
        assert_eq!(trigger["type"], "alert_trigger", "{trigger}");
        assert_eq!(trigger["trigger_price"], 150.0, "{trigger}");
        assert_eq!(trigger["alert_type"], "above", "{trigger}");
        // Exactly once: the marker comes next.
        assert_eq!(recv_json(ws).await["message"], "marker");
    }
    let (_, list) = first
        .request(hyper::Method::GET, "/api/alerts", None, &[])
        .await;
    assert_eq!(json_body(&list)["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_alert_cap_holds_fleet_wide_and_frees_as_alerts_are_deleted_or_fire() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let env = [("ROOMCAST_MAX_ALERTS_PER_USER", "2")];
        let node = Node::start(&redis, &format!("node{i}"), &env).await;
        node.wait_for("/ready", StatusCode::OK).await;
        nodes.push(node);
    }
    let arm = |user: Option<&str>, price: f64| {
        let mut body = json!({"ticker": "AAPL", "alert_type": "above", "trigger_price": price});
        if let Some(user) = user {
            body["user_id"] = json!(user);
        }
        body.to_string()
    };
    let mut first = HttpClient::connect(nodes[0].addr).await;
    let mut second = HttpClient::connect(nodes[1].addr).await;
    let (status, alice) = first.post("/api/alerts", &arm(Some("alice"), 200.0)).await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    let (status, v) = second.post("/api/alerts", &arm(Some("alice"), 300.0)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // A third through either node is refused; a user whose name extends
    // alice's, another user and alerts without a user are counted apart.
    for http in [&mut first, &mut second] {
        let (status, v) = http.post("/api/alerts", &arm(Some("alice"), 400.0)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
        assert!(v["error"].as_str().unwrap().contains("alert limit"), "{v}");
    }
    for user in [Some("alice2"), Some("bob"), None, None] {
        let (status, v) = second.post("/api/alerts", &arm(user, 500.0)).await;
        assert_eq!(status, StatusCode::CREATED, "{user:?}: {v}");
    }
    let (status, v) = first.post("/api/alerts", &arm(None, 500.0)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    // Deleting one through the other node gives alice room for one more.
    let path = format!("/api/alerts/{}", alice["alert"]["id"]);
    let (status, _) = second
        .request(hyper::Method::DELETE, &path, None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = first.post("/api/alerts", &arm(Some("alice"), 1000.0)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // A price that fires both of alice's alerts frees both.
    let (status, report) = publish(&nodes[1], "AAPL", 350.0).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["alerts"]["fired"], 1, "{report}");
    let (status, report) = publish(&nodes[1], "AAPL", 1000.0).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    for price in [2000.0, 3000.0] {
        let (status, v) = second.post("/api/alerts", &arm(Some("alice"), price)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    // Pages through any node, by id.
    let (_, page) = first
        .request(
            hyper::Method::GET,
            "/api/alerts?limit=1&offset=1",
            None,
            &[],
        )
        .await;
    let page = json_body(&page);
    assert_eq!(page["total"], 2, "{page}");
    assert_eq!(page["count"], 1, "{page}");
    assert_eq!(page["alerts"][0]["trigger_price"], 3000.0, "{page}");
    assert_eq!(page["next_offset"], Value::Null, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_burst_far_beyond_the_outbox_reaches_readers_on_every_node_that_keep_up() {
    const CAPACITY: usize = 16;
    const ALERTS: usize = 20 * CAPACITY;
    let redis = RedisServer::start();
    let capacity = CAPACITY.to_string();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let env = [("ROOMCAST_OUTBOX_CAPACITY", capacity.as_str())];
        let node = Node::start(&redis, &format!("node{i}"), &env).await;
        node.wait_for("/ready", StatusCode::OK).await;
        nodes.push(node);
    }
    let mut readers = Vec::new();
    for node in &nodes {
        let mut ws = connect(node, "/api/ws").await;
        recv_json(&mut ws).await;
        subscribe(&mut ws, "alerts", None).await;
        readers.push(ws);
    }
    let mut http = HttpClient::connect(nodes[0].addr).await;
    for i in 0..ALERTS {
        let body =
            json!({"ticker": "AAPL", "alert_type": "above", "trigger_price": 100.0 + i as f64});
        let (status, v) = http.post("/api/alerts", &body.to_string()).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, report) = publish(&nodes[1], "AAPL", 1000.0).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["alerts"],
        json!({"fired": ALERTS, "published": ALERTS, "rearmed": 0}),
        "{report}"
    );
    let armed: Vec<f64> = (0..ALERTS).map(|i| 100.0 + i as f64).collect();
    for ws in &mut readers {
        let mut triggers = Vec::new();
        for _ in 0..ALERTS {
            let trigger = recv_json(ws).await;
            assert_eq!(trigger["type"], "alert_trigger", "{trigger}");
            triggers.push(trigger["trigger_price"].as_f64().unwrap());
        }
        // Every alert once, in the order armed; the reader is still connected.
        assert_eq!(triggers, armed);
        ping_pong(ws).await;
    }
}

/// Appends event `seq` of `room` to the fleet's stream and channel, as a
/// publishing node's script does (`P:h:R` entry `<seq>-0` with `e` and
/// `d`, then `seq:epoch:json` on `P:r:R`).
fn bus_publish(redis: &RedisServer, room: &str, seq: u64, epoch: &str, json: &str, live: bool) {
    let id = format!("{seq}-0");
    let _: String = redis
        .cmd(&[
            "XADD",
            &format!("roomcast:h:{room}"),
            &id,
            "e",
            epoch,
            "d",
            json,
        ])
        .unwrap();
    let _: () = redis
        .cmd(&["SET", &format!("roomcast:seq:{room}"), &seq.to_string()])
        .unwrap();
    if live {
        let message = format!("{seq}:{epoch}:{json}");
        let _: i64 = redis
            .cmd(&["PUBLISH", &format!("roomcast:r:{room}"), &message])
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_run_is_read_from_the_bus_by_its_family_and_replayed_whole_on_any_node() {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 1).await;
    let room = "backtest:bt-fleet";
    let epoch = "77";
    let _: () = redis
        .cmd(&["SET", &format!("roomcast:epoch:{room}"), epoch])
        .unwrap();
    let event = |n: u64| {
        format!(
            r#"{{"type":"progress","timestamp":"2026-01-01T00:00:00.000Z","data":{{"n":{n}}}}}"#
        )
    };
    // More events than a ring room keeps (ROOMCAST_HISTORY_SIZE, 100) and
    // than one page of the stream (500): a run room's joiner gets the whole
    // run. The last carries a snapshot, in its bus form.
    const RUN: u64 = 1_100;
    let last = event(RUN);
    let with_snapshot = format!(
        r#"{},"snapshot":[{{"state":1}}]}}"#,
        &last[..last.len() - 1]
    );
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut pipe = redis::pipe();
    for n in 1..=RUN {
        let json = if n == RUN {
            with_snapshot.clone()
        } else {
            event(n)
        };
        pipe.cmd("XADD")
            .arg(format!("roomcast:h:{room}"))
            .arg(format!("{n}-0"))
            .arg("e")
            .arg(epoch)
            .arg("d")
            .arg(json)
            .ignore();
    }
    pipe.cmd("SET")
        .arg(format!("roomcast:seq:{room}"))
        .arg(RUN)
        .ignore();
    let () = pipe.query(&mut conn).unwrap();
    let mut ws = connect(&nodes[0], "/v1/ws").await;
    assert_eq!(recv_json(&mut ws).await["type"], "welcome");
    let subscribe = json!({"type": "subscribe", "rooms": [{"room": room, "seq": 0}]});
    send_json(&mut ws, &subscribe).await;
    let subscribed = recv_json(&mut ws).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    let replay = messages(&mut ws, RUN as usize).await;
    assert_eq!(seqs(&replay), (1..=RUN).collect::<Vec<_>>());
    // Replayed as the canonical event: the bus form's snapshot stays on the bus.
    assert_eq!(
        replay[RUN as usize - 1]["data"],
        serde_json::from_str::<Value>(&event(RUN)).unwrap()
    );
    // Seed 001's `price_update` on the run's channel is not a neutral event:
    // skipped, not delivered as a price. The next well-formed event follows.
    let price = r#"{"type":"price_update","ticker":"A","price":1,"change":0,"change_percent":0,"volume":0,"high":1,"low":1,"open":1,"timestamp":"t"}"#;
    let message = format!("{}:{epoch}:{price}", RUN + 1);
    let _: i64 = redis
        .cmd(&["PUBLISH", &format!("roomcast:r:{room}"), &message])
        .unwrap();
    bus_publish(&redis, room, RUN + 1, epoch, &event(RUN + 1), true);
    let live = messages(&mut ws, 1).await;
    assert_eq!(seqs(&live), [RUN + 1]);
    assert_eq!(live[0]["data"]["type"], "progress");
    assert_eq!(live[0]["data"]["data"]["n"], RUN + 1);
}
