//! TLS to Redis (`docs/tls.md`): a private `redis-server` serving TLS only
//! (`--port 0 --tls-port`), with a certificate from a CA the test makes; a
//! two-node fleet of real roomcast processes publishing and delivering
//! through it over `rediss://` with `ROOMCAST_REDIS_CA_FILE`, and a node
//! that does not trust the CA refusing the connection.

mod common;

use common::fleet::{Node, RedisServer};
use common::tls::{LOOPBACK, TestCa, replace};
use common::{HttpClient, TestServer, price_body, recv_json, send_json};
use hyper::StatusCode;
use serde_json::json;

/// A TLS-only Redis whose certificate `ca` signed; the CA file's path.
fn tls_redis(ca: &TestCa) -> (RedisServer, std::path::PathBuf) {
    let (chain, key, _) = ca.server_pem(&LOOPBACK);
    let cert_path = ca.dir.join("redis.crt");
    let key_path = ca.dir.join("redis.key");
    replace(&cert_path, chain.as_bytes());
    replace(&key_path, key.as_bytes());
    let ca_file = ca.write_ca("ca.pem");
    (
        RedisServer::start_tls(&cert_path, &key_path, &ca_file),
        ca_file,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_node_fleet_publishes_and_delivers_over_rediss() {
    let ca = TestCa::new("redis");
    let (redis, ca_file) = tls_redis(&ca);
    assert!(redis.url().starts_with("rediss://"));
    let env = [("ROOMCAST_REDIS_CA_FILE", ca_file.to_str().unwrap())];
    let a = Node::start(&redis, "tls-a", &env).await;
    let b = Node::start(&redis, "tls-b", &env).await;
    a.wait_for("/ready", StatusCode::OK).await;
    b.wait_for("/ready", StatusCode::OK).await;

    let mut ws = b.ws_connect("/v1/ws").await;
    assert_eq!(recv_json(&mut ws).await["type"], "welcome");
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "rooms": ["ticker:NVDA"]}),
    )
    .await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["type"], "subscribed", "{sub}");

    let mut client = HttpClient::connect(a.addr).await;
    let (status, body) = client
        .post("/api/ws/broadcast/price", &price_body("NVDA", 880.5))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let message = recv_json(&mut ws).await;
    assert_eq!(message["type"], "message", "{message}");
    assert_eq!(message["data"]["price"], 880.5, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_trust_the_redis_certificate_refuses_it() {
    let ca = TestCa::new("redis-trusted");
    let (redis, _) = tls_redis(&ca);
    let other = TestCa::new("redis-other");
    let wrong = other.write_ca("other.pem");
    let url = redis.url();
    let server = TestServer::start(move |c| {
        c.fleet.redis_url = Some(url);
        c.fleet.redis_ca_file = Some(wrong);
    })
    .await;
    let (status, body) = server
        .http_post("/api/ws/broadcast/price", &price_body("NVDA", 1.0))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("UnknownIssuer"),
        "{body}"
    );
    let (status, _) = server.http_get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    server.shutdown().await.unwrap();

    // The same server with the right CA: the refusal was the certificate.
    let (url, right) = (redis.url(), ca.write_ca("right.pem"));
    let server = TestServer::start(move |c| {
        c.fleet.redis_url = Some(url);
        c.fleet.redis_ca_file = Some(right);
    })
    .await;
    let (status, body) = server
        .http_post("/api/ws/broadcast/price", &price_body("NVDA", 1.0))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.shutdown().await.unwrap();
}
