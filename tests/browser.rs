//! Browser scenarios: roomcast's pages in a real browser. Each test starts
//! a real roomcast (in-process, 127.0.0.1), then runs one scenario script of
//! `tests/browser/` (`node tests/browser/<page>.mjs http://127.0.0.1:PORT`),
//! which drives Debian's headless Chromium through playwright-core
//! (`tests/browser/lib.mjs`) and exits non-zero when a check fails; the test
//! then fails with the script's whole output. A script that needs the test
//! to act prints `@@ <step>` and waits for a one-line reply (the steps a
//! test understands are its own: the dashboard's are `stop-server` and
//! `start-server`; the API docs scenario, `docs.mjs`, has none).
//! Screenshots go to `target/browser-artifacts/`.
//!
//! Needs `/usr/bin/chromium`, `node` and `tests/browser/node_modules`
//! (`tests/run.sh` installs all three: `ensure_browser`). When one is
//! missing the test is skipped with a note, except under CI (`CI` set),
//! where that is a failure: the browser tests must not pass by not running.

mod common;

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use common::fleet::{Node, RedisServer};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Where Debian's `chromium` package puts the browser (the scripts use this path).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The longest a scenario may take between two steps, or to finish: a
/// browser starts in seconds, a reconnect after a restart in a few more.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// `tests/browser/`: the scripts, their package.json and node_modules.
fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `target/browser-artifacts/`, created: where scenarios save screenshots.
fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// What the scenarios need and this machine lacks (empty when all is there).
async fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (Debian's chromium package)"));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if !node.is_ok_and(|status| status.success()) {
        missing.push("node (Debian's nodejs package)".to_string());
    }
    if !scripts_dir()
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push("tests/browser/node_modules (`npm ci` in tests/browser)".to_string());
    }
    missing
}

/// True when the scenario can run. Otherwise: under CI a failure; locally a
/// note on stderr and false (the caller returns, skipped).
async fn browser_available(test: &str) -> bool {
    let missing = missing_prerequisites().await;
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    if std::env::var_os("CI").is_some() {
        panic!("{test}: CI must run the browser tests, but this machine lacks {missing}");
    }
    eprintln!("note: skipping {test}: missing {missing}; ./tests/run.sh installs them");
    false
}

/// A running scenario script: its steps read from stdout, replies written
/// to stdin, everything it printed kept for the failure message.
struct Scenario {
    /// `<page>.mjs`, for messages.
    name: String,
    /// The node process (killed if the test ends early).
    child: Child,
    /// Where replies to steps go; closed at the end so the script sees EOF.
    stdin: Option<ChildStdin>,
    /// The script's stdout, line by line: steps and anything else it prints.
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every line the script printed on either stream, in arrival order.
    transcript: Arc<Mutex<String>>,
    /// Copies stderr into the transcript until the script exits.
    stderr_task: JoinHandle<()>,
}

impl Scenario {
    /// Starts `node tests/browser/<name>.mjs <base_url>`.
    fn start(name: &str, base_url: &str) -> Scenario {
        let script = scripts_dir().join(format!("{name}.mjs"));
        let mut child = Command::new("node")
            .arg(&script)
            .arg(base_url)
            .current_dir(scripts_dir())
            .env("ROOMCAST_ARTIFACTS", artifacts_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node {}: {e}", script.display()));
        let transcript = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_task = tokio::spawn({
            let transcript = Arc::clone(&transcript);
            async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut transcript = transcript.lock();
                    transcript.push_str(&line);
                    transcript.push('\n');
                }
            }
        });
        Scenario {
            name: format!("{name}.mjs"),
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().expect("piped stdout")).lines(),
            child,
            transcript,
            stderr_task,
        }
    }

    /// The next step the script asks for (`@@ <step>`), or None once it has
    /// closed its stdout (it is finishing).
    async fn next_step(&mut self) -> Option<String> {
        loop {
            let line = tokio::time::timeout(STEP_TIMEOUT, self.stdout.next_line()).await;
            let line = match line {
                Ok(Ok(line)) => line?,
                Ok(Err(e)) => self.fail(&format!("reading its stdout: {e}")),
                Err(_) => self.fail(&format!("no step or exit within {STEP_TIMEOUT:?}")),
            };
            if let Some(step) = line.strip_prefix("@@ ") {
                return Some(step.to_string());
            }
            let mut transcript = self.transcript.lock();
            transcript.push_str(&line);
            transcript.push('\n');
        }
    }

    /// Answers the step the script is waiting on.
    async fn reply(&mut self, answer: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open until finish");
        let written = async {
            stdin.write_all(format!("{answer}\n").as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(e) = written.await {
            self.fail(&format!("replying {answer:?}: {e}"));
        }
    }

    /// Waits for the script to exit; fails with its output unless it passed.
    async fn finish(mut self) {
        if let Some(step) = self.next_step().await {
            self.fail(&format!(
                "asked for step {step:?} after the test's last one"
            ));
        }
        self.stdin.take();
        let status: ExitStatus = match tokio::time::timeout(STEP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => self.fail(&format!("waiting for it: {e}")),
            Err(_) => self.fail("did not exit"),
        };
        let _ = tokio::time::timeout(STEP_TIMEOUT, &mut self.stderr_task).await;
        if !status.success() {
            self.fail(&format!("exited with {status}"));
        }
        eprintln!("{}", self.transcript.lock());
    }

    /// Fails the test with the script's output so far.
    fn fail(&self, why: &str) -> ! {
        panic!(
            "browser scenario {} failed: {why}\n--- its output ---\n{}",
            self.name,
            self.transcript.lock()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_goes_live_shows_http_prices_and_resubscribes_after_a_restart() {
    if !browser_available("dashboard_goes_live_shows_http_prices_and_resubscribes_after_a_restart")
        .await
    {
        return;
    }
    let server = TestServer::start(|_| {}).await;
    let addr = server.addr;
    let mut server = Some(server);
    let mut scenario = Scenario::start("dashboard", &format!("http://{addr}"));
    let mut restarted = false;
    while let Some(step) = scenario.next_step().await {
        match step.as_str() {
            "stop-server" => {
                let running = server.take().expect("a server to stop");
                running.shutdown().await.expect("the server stops cleanly");
                scenario.reply("stopped").await;
            }
            "start-server" => {
                assert!(server.is_none(), "start-server while one runs");
                server = Some(TestServer::start_at(addr, |_| {}).await);
                restarted = true;
                scenario.reply("started").await;
            }
            other => scenario.fail(&format!("unknown step {other:?}")),
        }
    }
    scenario.finish().await;
    assert!(restarted, "the scenario never restarted the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_backs_off_throttles_conflates_batches_and_cleans_up() {
    if !browser_available("websocket_client_backs_off_throttles_conflates_batches_and_cleans_up")
        .await
    {
        return;
    }
    play_on_a_fresh_node("websocket-client").await;
}

/// Plays scenario `script`, which asks the test to do nothing, against a
/// fresh in-process node with the default configuration.
async fn play_on_a_fresh_node(script: &str) {
    let server = TestServer::start(|_| {}).await;
    let mut scenario = Scenario::start(script, &format!("http://{}", server.addr));
    if let Some(step) = scenario.next_step().await {
        scenario.fail(&format!("unknown step {step:?}"));
    }
    scenario.finish().await;
}

// ---------------------------------------------------------------------------
// The dashboard at `/` (tests/browser/index.mjs): the script asks for its
// scenario, may ask the test to act, and ends with `result <json>`.
// ---------------------------------------------------------------------------

/// Plays dashboard scenario `name` against `base_url`: answers `scenario`,
/// hands every other step to `act` (which returns the reply), and returns
/// the scenario's result once the script has passed.
async fn dashboard_scenario<F>(base_url: &str, name: &str, mut act: F) -> Value
where
    F: AsyncFnMut(&str) -> String,
{
    let mut scenario = Scenario::start("index", base_url);
    let mut result = None;
    while let Some(step) = scenario.next_step().await {
        if step == "scenario" {
            scenario.reply(name).await;
        } else if let Some(json) = step.strip_prefix("result ") {
            match serde_json::from_str::<Value>(json) {
                Ok(value) => result = Some(value),
                Err(e) => scenario.fail(&format!("its result is not JSON: {e}")),
            }
            scenario.reply("ok").await;
        } else {
            let answer = act(&step).await;
            scenario.reply(&answer).await;
        }
    }
    scenario.finish().await;
    result.expect("the scenario passed without a result")
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
    if !browser_available("dashboard_shows_every_stream_live_and_escapes_what_producers_send").await
    {
        return;
    }
    // No paper account: the portfolio panel shows its empty state until the
    // test publishes one, as an external trading system would.
    let server = TestServer::start(|config| config.trading.paper_trading = false).await;
    let shot = artifacts_dir().join("dashboard-index.png");
    let _ = std::fs::remove_file(&shot);
    let result = dashboard_scenario(&format!("http://{}", server.addr), "live", async |step| {
        panic!("unexpected step {step:?}")
    })
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
    // The default watchlist plus the symbol the page added, kept by the page.
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
    if !browser_available("dashboard_reconnects_to_a_restarted_node_and_resumes_without_duplicates")
        .await
    {
        return;
    }
    let redis = RedisServer::start();
    let env = [("ROOMCAST_PAPER_TRADING", "false")];
    let mut node = Node::start(&redis, "dash-a", &env).await;
    let other = Node::start(&redis, "dash-b", &env).await;
    let base_url = format!("http://{}", node.addr);
    let mut restarted = false;
    let result = dashboard_scenario(&base_url, "restart", async |step| match step {
        "kill-node" => {
            // SIGKILL: what a crashed server looks like.
            node.kill();
            format!("http://{}", other.addr)
        }
        "start-node" => {
            // Same port, same Redis.
            node.start_again().await;
            restarted = true;
            "started".to_string()
        }
        other => panic!("unexpected step {other:?}"),
    })
    .await;
    assert!(restarted, "the scenario never restarted the node");

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
    if !browser_available("dashboard_shows_an_admin_refusal_and_works_once_the_key_is_entered")
        .await
    {
        return;
    }
    const KEY: &str = "dashboard-key-0123456789";
    let server =
        TestServer::start(|config| config.access.api_keys = Some(KEY.parse().unwrap())).await;
    let result = dashboard_scenario(
        &format!("http://{}", server.addr),
        "refusal",
        async |step| {
            assert_eq!(step, "api-key");
            KEY.to_string()
        },
    )
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
    if !browser_available("dashboard_raises_the_not_ready_banner_with_its_reason_when_redis_goes")
        .await
    {
        return;
    }
    let mut redis = RedisServer::start();
    let node = Node::start(&redis, "dash-ready", &[("ROOMCAST_PAPER_TRADING", "false")]).await;
    let result = dashboard_scenario(
        &format!("http://{}", node.addr),
        "not-ready",
        async |step| {
            assert_eq!(step, "stop-redis");
            redis.stop();
            "stopped".to_string()
        },
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_docs_render_every_operation_in_swagger_ui_and_redoc_without_leaving_the_node() {
    if !browser_available(
        "api_docs_render_every_operation_in_swagger_ui_and_redoc_without_leaving_the_node",
    )
    .await
    {
        return;
    }
    play_on_a_fresh_node("docs").await;
}
