//! A fleet for the multi-node tests: a private `redis-server` on a free port
//! (no persistence, so a restart comes back empty) that can be stopped,
//! restarted, frozen with SIGSTOP and thawed; and roomcast nodes as real
//! processes of the built binary, each on its own port, killable with
//! `kill -9`. Everything dies with the test process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use super::process::{free_port, prepare, signal, spawn, wait_bounded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TIMEOUT;

/// The status of `GET path`, or `None` when the node does not answer within
/// a few seconds (down, frozen, starting).
pub async fn status_of(addr: SocketAddr, path: &str) -> Option<StatusCode> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        let code: u16 = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
        StatusCode::from_u16(code).ok()
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .ok()
        .flatten()
}

/// Interval between readiness polls.
const POLL: Duration = Duration::from_millis(20);

/// A private Redis.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The server, while running.
    child: Option<Child>,
    /// Its certificate, key and CA files when it serves TLS only (`rediss://`).
    tls: Option<[PathBuf; 3]>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            tls: None,
        };
        server.launch();
        server
    }

    /// Starts `redis-server` serving TLS only (no plain port), with the PEM
    /// chain `cert`, its `key`, and `ca` (clients are not asked for
    /// certificates).
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            tls: Some([cert.into(), key.into(), ca.into()]),
        };
        server.launch();
        server
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("redis-server");
        let port = self.port.to_string();
        match &self.tls {
            None => {
                cmd.args(["--port", &port]);
            }
            Some([cert, key, ca]) => {
                cmd.args(["--port", "0", "--tls-port", &port])
                    .arg("--tls-cert-file")
                    .arg(cert)
                    .arg("--tls-key-file")
                    .arg(key)
                    .arg("--tls-ca-cert-file")
                    .arg(ca)
                    .args(["--tls-auth-clients", "no"]);
            }
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        prepare(&mut cmd, None);
        let child = spawn(cmd).unwrap_or_else(|e| {
            panic!("starting redis-server: {e} (install it: apt-get install redis-server)")
        });
        self.child = Some(child);
        let deadline = Instant::now() + TIMEOUT;
        while self.ping().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(POLL);
        }
    }

    /// A synchronous command on a fresh connection.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let client = match &self.tls {
            None => redis::Client::open(self.url())?,
            Some([_, _, ca]) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(ca).expect("reading the CA file")),
                },
            )?,
        };
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }

    fn ping(&self) -> redis::RedisResult<String> {
        self.cmd(&["PING"])
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            wait_bounded(&mut child, TIMEOUT);
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGSTOP);
        }
    }

    /// Resumes a frozen server.
    pub fn thaw(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGCONT);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.thaw();
        self.stop();
    }
}

/// A roomcast node: the real binary, as its own process.
pub struct Node {
    /// Where it serves.
    pub addr: SocketAddr,
    /// Its `ROOMCAST_NODE_ID`.
    pub id: String,
    /// Its Redis, kept so [`Node::restart`] starts the same node again.
    redis_url: String,
    /// Its extra environment, kept for [`Node::restart`].
    env: Vec<(String, String)>,
    /// The process, until killed.
    child: Option<Child>,
}

impl Node {
    /// Starts a node on Redis `redis` with extra environment `env`, and waits
    /// until `/health` answers.
    pub async fn start(redis: &RedisServer, id: &str, env: &[(&str, &str)]) -> Node {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut node = Node {
            addr,
            id: id.to_string(),
            redis_url: redis.url(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        node.spawn().await;
        node
    }

    /// Starts a killed node again on the same address, Redis, id and
    /// environment: with [`Node::kill`], what a client sees of a crashed and
    /// restarted server. Waits until `/health` answers.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.id);
        self.spawn().await;
    }

    /// Starts the process on `self.addr` and waits for `/health`.
    async fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_roomcast"));
        cmd.env_clear()
            .env("ROOMCAST_BIND", self.addr.to_string())
            .env("REDIS_URL", &self.redis_url)
            .env("ROOMCAST_NODE_ID", &self.id)
            .env("ROOMCAST_SIMULATOR", "false")
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        prepare(&mut cmd, None);
        self.child = Some(spawn(cmd).expect("starting roomcast"));
        self.wait_for("/health", StatusCode::OK).await;
    }

    /// Polls `GET path` until it answers `status`.
    pub async fn wait_for(&self, path: &str, status: StatusCode) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if status_of(self.addr, path).await == Some(status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never answered {path} with {status}",
                self.id
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// `ws://addr{path}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Opens a WebSocket to `path` on this node.
    pub async fn ws_connect(&self, path: &str) -> super::Ws {
        let (ws, _) = super::within(
            "websocket connect",
            tokio_tungstenite::connect_async(self.ws_url(path)),
        )
        .await
        .unwrap_or_else(|e| panic!("websocket connect to {} {path} failed: {e}", self.id));
        ws
    }

    /// Its process id while it runs (for a test program that signals it itself).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the node with SIGKILL (no drain).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            wait_bounded(&mut child, TIMEOUT);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
