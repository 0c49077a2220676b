//! Leases: in fleet mode a producer that feeds rooms (the market simulator,
//! the ingestion of seed 001's Redis channels) must run on exactly one node.
//! Each node tries to take `P:lease:<name>` (`SET NX PX`); the holder renews
//! it every third of the TTL with a compare-and-extend script and releases it
//! on shutdown. A node produces only until 90 % of the TTL after its last
//! successful renewal was sent, so even a stalled holder stops before Redis
//! can give the lease to another node; when the holder dies, another node
//! takes over within the TTL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::redis::with_timeout;

/// Take the lease if free, extend it if ours. KEYS: lease. ARGV: node, TTL ms.
const ACQUIRE_LUA: &str = r#"
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Drop the lease if ours. KEYS: lease. ARGV: node.
const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// One named lease as seen from this node.
#[derive(Debug)]
pub struct Lease {
    /// What it elects, for logs (`simulator`, `ingest`).
    name: &'static str,
    /// Its Redis key.
    key: String,
    /// This node's id, the value written to the key.
    node: String,
    /// Time a holder that stops renewing keeps it.
    ttl: Duration,
    /// Whether this node held it at the last check.
    held: AtomicBool,
    /// Reference point of `valid_until_ms`.
    base: Instant,
    /// Until when (ms after `base`) this node may act as the holder: 90 % of
    /// the TTL after the last successful renewal was *sent*, so it stops
    /// before Redis could hand the lease to another node, even if it stalls.
    valid_until_ms: AtomicU64,
    /// The command connection it is taken and renewed on.
    conn: ConnectionManager,
}

impl Lease {
    /// A lease not held yet.
    pub fn new(
        name: &'static str,
        key: String,
        node: String,
        ttl: Duration,
        conn: ConnectionManager,
    ) -> Self {
        Lease {
            name,
            key,
            node,
            ttl,
            conn,
            held: AtomicBool::new(false),
            base: Instant::now(),
            valid_until_ms: AtomicU64::new(0),
        }
    }

    /// Whether this node may produce now.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
            && (self.base.elapsed().as_millis() as u64)
                < self.valid_until_ms.load(Ordering::Relaxed)
    }

    /// Takes and renews the lease until `shutdown`, then releases it.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut conn = self.conn.clone();
        let ttl_ms = self.ttl.as_millis() as u64;
        loop {
            let sent_ms = self.base.elapsed().as_millis() as u64;
            let held = acquire(&mut conn, &self.key, &self.node, self.ttl).await;
            if held {
                self.valid_until_ms
                    .store(sent_ms + ttl_ms * 9 / 10, Ordering::Relaxed);
            }
            if held != self.held.swap(held, Ordering::Relaxed) {
                if held {
                    tracing::info!(lease = self.name, node = %self.node, "lease taken: producing on this node");
                } else {
                    tracing::info!(
                        lease = self.name,
                        "lease lost or not available: not producing on this node"
                    );
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.ttl / 3) => {}
            }
        }
        if self.held.swap(false, Ordering::Relaxed) {
            release(&mut conn, &self.key, &self.node).await;
            tracing::info!(lease = self.name, "lease released");
        }
    }
}

/// Takes `key` for `node` if free, extends it if `node` holds it; true when
/// `node` holds it for `ttl` from now.
pub async fn acquire(conn: &mut ConnectionManager, key: &str, node: &str, ttl: Duration) -> bool {
    let script = Script::new(ACQUIRE_LUA);
    let mut invocation = script.prepare_invoke();
    invocation.key(key).arg(node).arg(ttl.as_millis() as u64);
    matches!(
        with_timeout(invocation.invoke_async::<i64>(conn)).await,
        Ok(1)
    )
}

/// Drops `key` if `node` holds it.
pub async fn release(conn: &mut ConnectionManager, key: &str, node: &str) {
    let script = Script::new(RELEASE_LUA);
    let mut invocation = script.prepare_invoke();
    invocation.key(key).arg(node);
    let _ = with_timeout(invocation.invoke_async::<i64>(conn)).await;
}
