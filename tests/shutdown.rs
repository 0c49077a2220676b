//! Graceful drain: triggering shutdown tells every connected client to
//! reconnect (close 1001) and `roomcast::run` returns.

mod common;

use common::*;
use hyper::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_clients_with_1001_and_run_returns() {
    let server = TestServer::start(|_| {}).await;
    let addr = server.addr;
    let mut idle = server.connect_001().await;
    let mut subscribed = server.connect_001().await;
    subscribe(&mut subscribed, "ticker", Some("AAPL")).await;
    publish_price(&server, "AAPL", 150.25).await;
    // A message queued before the drain is delivered before the close.
    let update = recv_json(&mut subscribed).await;
    assert_eq!(update["type"], "price_update");
    let (status, _) = server.http_get("/ready").await;
    assert_eq!(status, StatusCode::OK);

    let run = tokio::spawn(server.shutdown());

    for ws in [&mut idle, &mut subscribed] {
        let (code, reason) = recv_close(ws).await;
        assert_eq!(code, 1001, "{reason}");
        assert!(reason.contains("reconnect"), "{reason}");
    }
    let result = within("roomcast::run to return", run)
        .await
        .expect("shutdown task");
    assert!(result.is_ok(), "{result:?}");

    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_no_clients_returns_promptly() {
    let server = TestServer::start(|_| {}).await;
    let (status, _) = server.http_get("/health").await;
    assert_eq!(status, StatusCode::OK);
    within("roomcast::run to return", server.shutdown())
        .await
        .expect("run returns Ok");
}
