//! A newcomer's first hour, with the real binary: the start-up log says the
//! mode, the modeldata source, TLS and the URLs to try (and never a
//! password); logs written to a file are plain text, or one JSON object per
//! line; a bad environment value names the variable; `localhost:PORT` binds;
//! an unreachable Redis is logged at start and makes `/ready` 503 naming
//! Redis while `/health` stays 200.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{free_port, prepare, spawn, wait_bounded};
use common::*;
use hyper::StatusCode;
use serde_json::Value;

/// A password put in the URLs; it must never reach the log.
const PASSWORD: &str = "s3cr3t-first-hour";

/// A log file of this test process.
fn log_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roomcast-first-hour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.log"))
}

/// The binary with a clean environment, the simulator off, its stdout (the
/// log) in `log`.
fn command(log: &PathBuf, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roomcast"));
    cmd.env_clear()
        .env("ROOMCAST_SIMULATOR", "false")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::piped());
    prepare(&mut cmd, None);
    cmd
}

/// A running node.
struct Node {
    /// Where it serves (on 127.0.0.1).
    addr: SocketAddr,
    /// The process, killed on drop.
    child: std::process::Child,
    /// Its stdout.
    log: PathBuf,
}

impl Node {
    /// Starts a node bound with `ROOMCAST_BIND=bind` that serves on `addr`.
    async fn start_on(name: &str, addr: SocketAddr, bind: &str, env: &[(&str, &str)]) -> Node {
        let log = log_path(name);
        let mut cmd = command(&log, env);
        cmd.env("ROOMCAST_BIND", bind).stderr(Stdio::inherit());
        let child = spawn(cmd).expect("starting roomcast");
        within("the node to listen", async {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        Node { addr, child, log }
    }

    /// Starts a node on a free port of 127.0.0.1.
    async fn start(name: &str, env: &[(&str, &str)]) -> Node {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Node::start_on(name, addr, &addr.to_string(), env).await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// The log once it holds `text` (the node logs after it listens).
    async fn log_with(&self, text: &str) -> String {
        within(&format!("{text:?} in the log"), async {
            loop {
                let log = self.log();
                if log.contains(text) {
                    return log;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let mut http = HttpClient::connect(self.addr).await;
        let response = http.request_full(hyper::Method::GET, path, None, &[]).await;
        (response.status, response.json())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line of `log` holding `text`.
fn line_with<'a>(log: &'a str, text: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{log}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_log_says_mode_source_tls_and_urls_and_never_a_password() {
    let embedded = Node::start("embedded", &[]).await;
    let log = embedded.log_with("roomcast started").await;
    let line = line_with(&log, "roomcast started");
    let addr = embedded.addr;
    for expected in [
        "mode=embedded".to_string(),
        "modeldata=embedded simulator".to_string(),
        "tls=\"off\"".to_string(),
        format!("dashboard=http://{addr}/ "),
        format!("docs=http://{addr}/docs"),
        format!("websocket=ws://{addr}/api/ws"),
        format!("health=http://{addr}/health"),
        format!("metrics=http://{addr}/metrics"),
    ] {
        assert!(line.contains(&expected), "{expected:?} missing: {line}");
    }
    assert_eq!(log.matches("roomcast started").count(), 1, "said once");

    // Nothing listens on either port: the node still starts and says where
    // they are, without the user's password.
    let redis_port = free_port();
    let pg_port = free_port();
    let redis_url = format!("redis://roomcast:{PASSWORD}@127.0.0.1:{redis_port}/2");
    let database_url = format!("postgres://bob:{PASSWORD}@127.0.0.1:{pg_port}/trading");
    let fleet = Node::start(
        "fleet",
        &[
            ("REDIS_URL", &redis_url),
            ("DATABASE_URL", &database_url),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    let log = fleet.log_with("roomcast started").await;
    let line = line_with(&log, "roomcast started");
    assert!(
        line.contains(&format!("mode=fleet (Redis 127.0.0.1:{redis_port}/2)")),
        "{line}"
    );
    assert!(
        line.contains(&format!("modeldata=PostgreSQL 127.0.0.1:{pg_port}/trading")),
        "{line}"
    );
    // Wait for the Redis failure too, so the check below covers it.
    let log = fleet.log_with("Redis unreachable").await;
    assert!(
        !log.contains(PASSWORD),
        "a password reached the log:\n{log}"
    );
    let (_, ready) = fleet.get("/ready").await;
    assert!(!ready.to_string().contains(PASSWORD), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_written_to_a_file_carry_no_colour_codes() {
    let node = Node::start("plain", &[]).await;
    let log = node.log_with("roomcast started").await;
    assert!(!log.contains("\x1b["), "ANSI codes in a file:\n{log:?}");
    assert!(
        line_with(&log, "roomcast started").contains(" INFO "),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let node = Node::start("json", &[("ROOMCAST_LOG_FORMAT", "json")]).await;
    let log = node.log_with("roomcast started").await;
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.iter().all(Value::is_object), "{log}");
    let started = lines
        .iter()
        .find(|l| l["fields"]["message"] == "roomcast started")
        .expect("the start-up line");
    assert_eq!(started["level"], "INFO");
    assert_eq!(
        started["fields"]["health"],
        format!("http://{}/health", node.addr)
    );
}

/// Runs the binary with `env` and `args`, expecting it to refuse to start:
/// its exit status and stderr.
fn refused(name: &str, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = command(&log_path(name), env);
    cmd.args(args);
    let mut child = spawn(cmd).expect("starting roomcast");
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    let _ = child.kill();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let status = status.expect("roomcast did not exit");
    assert!(!status.success(), "{name}: started: {stderr}");
    stderr
}

#[test]
fn a_bad_environment_value_names_the_variable_and_a_bad_flag_the_flag() {
    let err = refused("max-env", &[("WEBSOCKET_MAX_CONNECTIONS", "abc")], &[]);
    assert!(
        err.contains("invalid value 'abc' for WEBSOCKET_MAX_CONNECTIONS: "),
        "{err}"
    );
    assert!(!err.contains("--max-connections"), "{err}");

    let err = refused("max-flag", &[], &["--max-connections", "abc"]);
    assert!(err.contains("--max-connections"), "{err}");

    let err = refused("bind-env", &[("ROOMCAST_BIND", "example.com:8000")], &[]);
    assert!(err.contains("ROOMCAST_BIND"), "{err}");
    assert!(err.contains("IP:PORT"), "{err}");

    let err = refused("format-env", &[("ROOMCAST_LOG_FORMAT", "xml")], &[]);
    assert!(err.contains("ROOMCAST_LOG_FORMAT"), "{err}");
    assert!(err.contains("text, json"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_port_binds_on_127_0_0_1() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let node = Node::start_on("localhost", addr, &format!("localhost:{port}"), &[]).await;
    let (status, _) = node.get("/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_logged_at_start_and_makes_ready_503_naming_it() {
    let redis_port = free_port();
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let node = Node::start("redis-down", &[("REDIS_URL", &redis_url)]).await;
    let log = node.log_with("Redis unreachable").await;
    let line = line_with(&log, "Redis unreachable");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{redis_port}")), "{line}");
    let (status, ready) = node.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    let reason = ready["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("Redis"), "{ready}");
    assert!(
        reason.contains(&format!("127.0.0.1:{redis_port}")),
        "{ready}"
    );
    let (status, health) = node.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
}
