//! Seed 001's browser side over plain HTTP: `/dashboard` and the files it
//! loads are served from the binary with the right `Content-Type`, a strong
//! `ETag` (and 304 on `If-None-Match`), `Cache-Control` (pages revalidate,
//! scripts and styles are reused for an hour), and gzip when the client
//! accepts it. What the page does in a browser: tests/browser.rs.

mod common;

use std::io::Read;

use common::*;
use flate2::read::GzDecoder;
use hyper::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG};
use hyper::{Method, StatusCode};

/// Each path of seed 001's browser side, with the type and caching it must have.
const SEED001_WEB: [(&str, &str, &str); 4] = [
    ("/dashboard", "text/html; charset=utf-8", "no-cache"),
    (
        "/static/js/websocket-client.js",
        "text/javascript; charset=utf-8",
        "public, max-age=3600",
    ),
    (
        "/static/js/realtime-dashboard.js",
        "text/javascript; charset=utf-8",
        "public, max-age=3600",
    ),
    (
        "/static/css/realtime.css",
        "text/css; charset=utf-8",
        "public, max-age=3600",
    ),
];

#[tokio::test]
async fn dashboard_files_have_their_type_tag_cache_policy_and_revalidate_to_304() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.http_client().await;
    for (path, content_type, cache) in SEED001_WEB {
        let first = client.request_full(Method::GET, path, None, &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{path}");
        assert_eq!(first.headers[CONTENT_TYPE], content_type, "{path}");
        assert_eq!(first.headers[CACHE_CONTROL], cache, "{path}");
        assert!(first.headers.get(CONTENT_ENCODING).is_none(), "{path}");
        assert!(!first.body.is_empty(), "{path}");
        let tag = first.headers[ETAG].to_str().expect("ASCII tag").to_string();
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2,
            "{path}: {tag}"
        );

        let again = client
            .request_full(Method::GET, path, None, &[("if-none-match", &tag)])
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty(), "{path}");
        assert_eq!(again.headers[ETAG], tag.as_str(), "{path}");

        let other = client
            .request_full(Method::GET, path, None, &[("if-none-match", "\"stale\"")])
            .await;
        assert_eq!(other.status, StatusCode::OK, "{path}");
        assert_eq!(other.body, first.body, "{path}");
    }
}

#[tokio::test]
async fn head_answers_with_the_get_headers_and_no_body() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.http_client().await;
    for path in ["/", "/static/js/roomcast-client.js", "/openapi.json"] {
        let get = client.request_full(Method::GET, path, None, &[]).await;
        let head = client.request_full(Method::HEAD, path, None, &[]).await;
        assert_eq!(head.status, StatusCode::OK, "{path}");
        assert!(head.body.is_empty(), "{path}: HEAD carried a body");
        assert!(!get.body.is_empty(), "{path}");
        for name in [ETAG, CONTENT_TYPE, CACHE_CONTROL] {
            assert_eq!(
                head.headers.get(&name),
                get.headers.get(&name),
                "{path}: {name}"
            );
        }
    }
    // A path that answers GET lists HEAD too when another method is refused.
    let refused = client
        .request_full(Method::DELETE, "/openapi.json", None, &[])
        .await;
    assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.headers[hyper::header::ALLOW], "GET, HEAD");
}

#[tokio::test]
async fn dashboard_files_are_gzipped_only_for_clients_that_accept_it() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.http_client().await;
    for (path, content_type, _) in SEED001_WEB {
        let plain = client.request_full(Method::GET, path, None, &[]).await;
        let gzipped = client
            .request_full(
                Method::GET,
                path,
                None,
                &[("accept-encoding", "gzip, deflate, br")],
            )
            .await;
        assert_eq!(gzipped.status, StatusCode::OK, "{path}");
        assert_eq!(gzipped.headers[CONTENT_ENCODING], "gzip", "{path}");
        assert_eq!(gzipped.headers[CONTENT_TYPE], content_type, "{path}");
        assert_eq!(gzipped.headers[ETAG], plain.headers[ETAG], "{path}");
        assert!(gzipped.body.len() < plain.body.len(), "{path}");
        let mut unpacked = Vec::new();
        GzDecoder::new(&gzipped.body[..])
            .read_to_end(&mut unpacked)
            .unwrap_or_else(|e| panic!("{path}: not gzip: {e}"));
        assert_eq!(unpacked, plain.body, "{path}");

        let refused = client
            .request_full(
                Method::GET,
                path,
                None,
                &[("accept-encoding", "gzip;q=0, br")],
            )
            .await;
        assert!(refused.headers.get(CONTENT_ENCODING).is_none(), "{path}");
        assert_eq!(refused.body, plain.body, "{path}");
    }
}

#[tokio::test]
async fn dashboard_page_loads_the_seed_files_and_has_the_live_indicator() {
    let server = TestServer::start(|_| {}).await;
    let (status, page) = server.http_get_text("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    for needed in [
        r#"src="/static/js/websocket-client.js""#,
        r#"src="/static/js/realtime-dashboard.js""#,
        r#"href="/static/css/realtime.css""#,
        r#"id="connection-status""#,
    ] {
        assert!(page.contains(needed), "the page lacks {needed}");
    }
    for ticker in ["AAPL", "MSFT", "TSLA", "NVDA"] {
        assert!(
            page.contains(&format!(r#"data-ticker="{ticker}""#)),
            "no {ticker} in the default watchlist"
        );
    }
    let (status, client) = server.http_get_text("/static/js/websocket-client.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(client.contains("window") && client.contains("module.exports"));
    assert_eq!(
        server.http_get_text("/static/js/nope.js").await.0,
        StatusCode::NOT_FOUND
    );
}
