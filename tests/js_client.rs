//! The JavaScript client (`clients/js/`) in Node, against real roomcast
//! servers: this test starts them, hands their addresses to Node's test
//! runner in environment variables (`clients/js/test/*.test.mjs`), and fails
//! with Node's whole report when any JavaScript test fails.
//!
//! One in-process server (history of [`HISTORY`] messages per room) serves
//! the single-node cases: prices in seq order, resume after a dropped
//! connection, gaps, heartbeats, staleness, unsubscribe, `close()`. A fleet
//! of three roomcast processes on a private `redis-server` serves the
//! failover cases, where the JavaScript tests kill (SIGKILL) the node their
//! client is on, then drain (SIGTERM) the next one, while they publish
//! through a surviving node.
//!
//! Node needs a `WebSocket`: Node >= 22, Node 20-21 with
//! `--experimental-websocket` (picked here), or for an older Node the `ws`
//! package installed in `clients/js` (`npm ci`; tests/run.sh does it).
//! Without any of them the tests are skipped with a note, except in CI (`CI`
//! set), where they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::fleet::{Node, RedisServer};
use common::*;
use tokio::process::Command;

/// Messages each room of the single server retains: small, so a gap is cheap to provoke.
const HISTORY: usize = 8;

/// Bound on one run of Node's test runner (every case waits at most 15 s for any one event).
const NODE_RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// `clients/js/test/<name>`.
fn js_test(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clients/js/test")
        .join(name)
}

/// The flags that give this machine's Node a WebSocket: none from Node 22,
/// `--experimental-websocket` on Node 20 and 21, and none for an older Node
/// when the `ws` package is installed in `clients/js` (`npm ci` there, as
/// tests/run.sh does for such a Node; the tests fall back to it). `None`
/// without Node or without any of those; in CI that is a failure: the job
/// must run these tests.
async fn node_websocket_flags(test: &str) -> Option<Vec<&'static str>> {
    if let Some(flags) = common::node::websocket_flags().await {
        return Some(flags);
    }
    let node_runs = common::node::runs().await;
    let ws_package =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js/node_modules/ws/package.json");
    if node_runs && ws_package.exists() {
        return Some(vec![]);
    }
    let why = "no `node` with a WebSocket (install Node >= 20: Debian's nodejs package; \
               for an older Node, `npm ci` in clients/js installs the `ws` package)";
    assert!(std::env::var_os("CI").is_none(), "{test}: {why}");
    eprintln!("note: skipping {test}: {why}");
    None
}

/// Runs Node's test runner on `files` with `env`, and fails with its report
/// (stdout and stderr) unless every test passed.
async fn run_node_tests(flags: &[&str], files: &[PathBuf], env: &[(&str, String)]) {
    let child = Command::new("node")
        .args(flags)
        .args(["--test", "--test-reporter=spec"])
        .args(files)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let output = tokio::time::timeout(NODE_RUN_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("node --test did not finish within {NODE_RUN_TIMEOUT:?}"))
        .expect("node --test");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "node --test failed:\n{report}");
    // Each file ran, and at least one test of it passed (a file that failed to
    // load would have failed the run; one whose tests were all skipped would not).
    assert!(
        report.contains("ℹ fail 0")
            && report.contains("ℹ skipped 0")
            && !report.contains("ℹ pass 0"),
        "{report}"
    );
    eprintln!("{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_client_receives_resumes_and_reports_gaps_against_one_server() {
    let test = "the_javascript_client_receives_resumes_and_reports_gaps_against_one_server";
    let Some(flags) = node_websocket_flags(test).await else {
        return;
    };
    let server = TestServer::start(|config| config.rooms.history_size = HISTORY).await;
    run_node_tests(
        &flags,
        &[js_test("unit.test.mjs"), js_test("server.test.mjs")],
        &[
            ("ROOMCAST_WS_URL", server.ws_url("/v1/ws")),
            ("ROOMCAST_HTTP_URL", format!("http://{}", server.addr)),
            ("ROOMCAST_TEST_HISTORY", HISTORY.to_string()),
        ],
    )
    .await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_client_fails_over_to_another_node_when_its_node_is_killed_or_drains() {
    let test = "the_javascript_client_fails_over_to_another_node_when_its_node_is_killed_or_drains";
    let Some(flags) = node_websocket_flags(test).await else {
        return;
    };
    let redis = RedisServer::start();
    let nodes = [
        Node::start(&redis, "js-a", &[]).await,
        Node::start(&redis, "js-b", &[]).await,
        Node::start(&redis, "js-c", &[]).await,
    ];
    let joined =
        |part: &dyn Fn(&Node) -> String| nodes.iter().map(part).collect::<Vec<_>>().join(",");
    run_node_tests(
        &flags,
        &[js_test("fleet.test.mjs")],
        &[
            ("ROOMCAST_FLEET_WS_URLS", joined(&|n| n.ws_url("/v1/ws"))),
            (
                "ROOMCAST_FLEET_HTTP_URLS",
                joined(&|n| format!("http://{}", n.addr)),
            ),
            (
                "ROOMCAST_FLEET_PIDS",
                joined(&|n| n.pid().expect("running").to_string()),
            ),
            ("ROOMCAST_FLEET_NODE_IDS", joined(&|n| n.id.clone())),
        ],
    )
    .await;
    // The JavaScript tests killed the first node (the second may still be
    // finishing its drain); the third served to the end.
    assert_eq!(
        fleet::status_of(nodes[0].addr, "/health").await,
        None,
        "js-a still answers"
    );
    assert_eq!(
        fleet::status_of(nodes[2].addr, "/health").await,
        Some(hyper::StatusCode::OK)
    );
}
