//! Browser tests: real pages of a real roomcast, in Debian's Chromium driven
//! by `playwright-core` (`tests/browser/*.mjs`, run with Node). Each script
//! prints one `RESULT <json>` line that the test checks; a step that does not
//! happen fails the script, naming the step. Skipped, with a note, when Node,
//! Chromium or the npm packages are missing (`tests/run.sh` installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::TestServer;
use common::fleet::{Node, RedisServer};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// How long one script may run: a page, a backtest and a node restart.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// `tests/browser/<name>`.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(name)
}

/// Where screenshots go: `target/browser-artifacts/`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    std::fs::create_dir_all(&dir).expect("creating target/browser-artifacts");
    dir
}

/// Why the browser tests cannot run here, if they cannot.
fn missing_browser() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium}"));
    }
    if !script("node_modules/playwright-core").exists() {
        return Some(
            "no tests/browser/node_modules/playwright-core (npm ci in tests/browser)".into(),
        );
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("no `node`".into());
    }
    None
}

/// A running `tests/browser/<name>` script.
struct Script {
    /// Its name, for messages.
    name: String,
    /// The process (killed if the test ends first).
    child: tokio::process::Child,
    /// Its stdout, line by line.
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Script {
    /// Starts `node tests/browser/<name> args…`.
    fn start(name: &str, args: &[String]) -> Script {
        let mut child = Command::new("node")
            .arg(script(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Script {
            name: name.to_string(),
            child,
            lines,
        }
    }

    /// Waits for the line `expected`, failing on any other line or the end.
    async fn expect_line(&mut self, expected: &str) {
        let line = tokio::time::timeout(SCRIPT_TIMEOUT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: no line within {SCRIPT_TIMEOUT:?}", self.name))
            .expect("reading the script's stdout");
        match line {
            Some(line) if line == expected => {}
            Some(line) => panic!("{}: expected {expected:?}, got {line:?}", self.name),
            None => {
                let stderr = self.stderr().await;
                panic!("{}: ended before {expected:?}:\n{stderr}", self.name)
            }
        }
    }

    /// Its `RESULT` line, once it has exited successfully; panics with its
    /// stderr otherwise.
    async fn result(mut self) -> Value {
        let run = async {
            let mut result = None;
            while let Some(line) = self.lines.next_line().await.expect("reading stdout") {
                if let Some(json) = line.strip_prefix("RESULT ") {
                    result = Some(serde_json::from_str::<Value>(json).expect("RESULT is JSON"));
                }
            }
            let status = self.child.wait().await.expect("waiting for node");
            match result {
                Some(result) if status.success() => result,
                _ => {
                    let stderr = self.stderr().await;
                    panic!("{} failed ({status}):\n{stderr}", self.name)
                }
            }
        };
        tokio::time::timeout(SCRIPT_TIMEOUT, run)
            .await
            .unwrap_or_else(|_| panic!("script did not finish within {SCRIPT_TIMEOUT:?}"))
    }

    /// What it wrote to stderr (after it ended).
    async fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        }
        text
    }
}

/// The strings of a JSON array.
fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_every_stream_live_and_escapes_what_producers_send() {
    if let Some(why) = missing_browser() {
        eprintln!("note: skipping the dashboard browser test: {why}");
        return;
    }
    // No paper account: the portfolio panel shows its empty state until the
    // test publishes one, as an external trading system would.
    let server = TestServer::start(|config| config.trading.paper_trading = false).await;
    let shot = artifacts().join("dashboard-index.png");
    let _ = std::fs::remove_file(&shot);
    let result = Script::start(
        "index.mjs",
        &[
            "live".into(),
            format!("http://{}", server.addr),
            shot.display().to_string(),
        ],
    )
    .result()
    .await;

    for (panel, state) in [
        ("prices", "live"),
        ("alerts", "live"),
        ("modeldata", "live"),
        ("portfolio", "live"),
        ("fleet", "live"),
        ("backtest", "idle"),
    ] {
        assert_eq!(result["states"][panel], state, "{panel}: {result}");
    }
    assert_eq!(result["aapl_price"], "151.25", "{result}");
    // The default watchlist plus the symbol the test added, kept by the page.
    assert_eq!(result["price_rows"], 7, "{result}");
    assert!(strings(&result["watchlist"]).contains(&"AMZN"), "{result}");
    // A producer's markup is shown as text, never run.
    let alert = result["alert_text"].as_str().unwrap();
    assert!(alert.contains("<img src=x"), "{alert}");
    assert_eq!(result["alert_images"], 0);
    assert_eq!(result["pwned"], false);
    assert_eq!(result["patterns"], 1, "{result}");
    // The alert armed then deleted in the page is gone; the second stays.
    assert_eq!(strings(&result["armed_tickers"]), ["AAPL"], "{result}");
    assert_eq!(result["positions"], 1, "{result}");
    assert_eq!(result["executions"], 1, "{result}");
    assert!(result["backtest_trades"].as_u64().unwrap() > 0, "{result}");
    assert!(result["backtest_log"].as_u64().unwrap() > 0, "{result}");
    assert!(result["models"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(result["banner_hidden"], true, "{result}");
    assert_eq!(result["console_errors"], serde_json::json!([]), "{result}");
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_reconnects_to_a_restarted_node_and_resumes_without_duplicates() {
    if let Some(why) = missing_browser() {
        eprintln!("note: skipping the dashboard restart test: {why}");
        return;
    }
    let redis = RedisServer::start();
    let env = [("ROOMCAST_PAPER_TRADING", "false")];
    let mut node = Node::start(&redis, "dash-a", &env).await;
    let other = Node::start(&redis, "dash-b", &env).await;
    let mut script = Script::start(
        "index.mjs",
        &[
            "restart".into(),
            format!("http://{}", node.addr),
            format!("http://{}", other.addr),
        ],
    );
    script.expect_line("RESTART").await;
    // Same port, same Redis: what a crashed and restarted server looks like.
    node.restart().await;
    let result = script.result().await;

    let states = strings(&result["states"]);
    assert!(states.contains(&"reconnecting"), "{result}");
    assert_eq!(states.last(), Some(&"open"), "{result}");
    assert!(result["reconnects"].as_u64().unwrap() >= 1, "{result}");
    // Every alert once, in order: the two from before, the one published on
    // the other node while this one was down (replayed on resume), and the
    // one after.
    assert_eq!(
        strings(&result["alert_messages"]),
        [
            "after restart",
            "during restart",
            "before restart 2",
            "before restart 1"
        ],
        "{result}"
    );
    let mut seqs: Vec<u64> = strings(&result["alert_seqs"])
        .iter()
        .map(|s| s.parse().expect("a seq"))
        .collect();
    seqs.reverse();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // The resume said nothing was lost.
    let alerts: Vec<&Value> = result["resumed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["room"] == "alerts")
        .collect();
    assert_eq!(alerts.len(), 1, "{result}");
    assert_eq!(alerts[0]["recovered"], true, "{result}");
    assert_eq!(result["panel_states"]["prices"], "live", "{result}");
    assert_eq!(result["console_errors"], serde_json::json!([]), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_an_admin_refusal_and_works_once_the_key_is_entered() {
    if let Some(why) = missing_browser() {
        eprintln!("note: skipping the dashboard refusal test: {why}");
        return;
    }
    const KEY: &str = "dashboard-key-0123456789";
    let server =
        TestServer::start(|config| config.access.api_keys = Some(KEY.parse().unwrap())).await;
    let result = Script::start(
        "index.mjs",
        &[
            "refusal".into(),
            format!("http://{}", server.addr),
            KEY.into(),
        ],
    )
    .result()
    .await;
    assert_eq!(result["refused_status"], "401", "{result}");
    assert!(
        result["refused_text"]
            .as_str()
            .unwrap()
            .contains("needs an API key"),
        "{result}"
    );
    assert_eq!(result["key_in_session"], true, "{result}");
    assert_eq!(result["key_in_local"], false, "{result}");
    assert_eq!(strings(&result["armed"]), ["AAPL"], "{result}");
    assert_eq!(result["console_errors"], serde_json::json!([]), "{result}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_raises_the_not_ready_banner_with_its_reason_when_redis_goes() {
    if let Some(why) = missing_browser() {
        eprintln!("note: skipping the dashboard readiness test: {why}");
        return;
    }
    let mut redis = RedisServer::start();
    let node = Node::start(&redis, "dash-ready", &[("ROOMCAST_PAPER_TRADING", "false")]).await;
    let mut script = Script::start(
        "index.mjs",
        &["not-ready".into(), format!("http://{}", node.addr)],
    );
    script.expect_line("STOP_REDIS").await;
    redis.stop();
    let result = script.result().await;
    assert_eq!(result["banner_hidden_before"], true, "{result}");
    assert_eq!(result["readiness"], "false", "{result}");
    let reason = result["banner_reason"].as_str().unwrap();
    assert!(
        !reason.is_empty() && reason != "no reason given",
        "{result}"
    );
    assert!(
        result["banner_text"].as_str().unwrap().contains(reason),
        "{result}"
    );
    assert_eq!(result["console_errors"], serde_json::json!([]), "{result}");
}
