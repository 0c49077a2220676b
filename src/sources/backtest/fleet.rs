//! The run registry's fleet half: in fleet mode every run is also a Redis
//! hash `P:bt:<id>` (owner node, origin, status, progress, heartbeat,
//! result), so any node can answer for any run: whether an id exists (a
//! stream of a run started elsewhere is served, with its full replay, from
//! the run room's Redis stream), its status, and a cancel (a flag the owner
//! reads when it renews). Ids are claimed atomically, so they are unique
//! across both seeds and every node. The owner renews each run's heartbeat
//! every third of the lease; when a heartbeat is older than the lease, any
//! node marks the run failed (one wins, by script) and publishes its
//! terminal error, "Backtest node lost". Hashes expire with the retention.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::ConnectionManager;
use serde_json::Value;

use crate::bus::redis::with_timeout;
use crate::catalog::RoomName;

/// Redis's own clock in ms, so heartbeats compare across nodes whatever
/// their clocks say.
const NOW_LUA: &str =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n";

/// Claim a new run. KEYS: run, active set. ARGV: node, origin, TTL ms, id,
/// the rooms its end goes to if it is lost (comma-separated), external (`1`/`0`).
const CLAIM_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'origin', ARGV[2], 'status', 'pending',
  'progress', '0', 'heartbeat', now, 'ends', ARGV[5], 'external', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"#;

/// Give back a claim no run came of. KEYS: run, active set. ARGV: node, id.
const RELEASE_LUA: &str = r#"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'status') == 'pending' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"#;

/// Renew a run's heartbeat. KEYS: run. ARGV: node, status, progress, TTL ms.
/// Returns -1 when the run is no longer this node's to run (marked lost),
/// 1 when a cancel was asked, else 0.
const RENEW_LUA: &str = r#"
local owner = redis.call('HGET', KEYS[1], 'owner')
local status = redis.call('HGET', KEYS[1], 'status')
if owner ~= ARGV[1] or status == 'failed' or status == 'completed' or status == 'cancelled' then
  return -1
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'progress', ARGV[3], 'heartbeat', now)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 1 end
return 0
"#;

/// Record a run's end, if it is still this node's. KEYS: run, active set.
/// ARGV: node, status, result JSON, retention ms, id, progress. Returns 1
/// when recorded, 0 when another node had ended it (lost).
const FINISH_LUA: &str = r#"
local status = redis.call('HGET', KEYS[1], 'status')
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or status == 'failed' or status == 'completed' or status == 'cancelled' then
  redis.call('SREM', KEYS[2], ARGV[5])
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'result', ARGV[3], 'progress', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SREM', KEYS[2], ARGV[5])
return 1
"#;

/// Ask a run's owner to cancel it. KEYS: run. Returns 0 unknown, 2 ended,
/// 3 published by an external engine, 1 asked.
const CANCEL_LUA: &str = r#"
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status == 'failed' or status == 'completed' or status == 'cancelled' then return 2 end
if redis.call('HGET', KEYS[1], 'external') == '1' then return 3 end
redis.call('HSET', KEYS[1], 'cancel', '1')
return 1
"#;

/// Mark a run lost if its heartbeat is older than the lease. KEYS: run,
/// active set. ARGV: lease ms, retention ms, id, node, error JSON.
/// Returns the rooms its end goes to (`ends`) when this call marked it (the
/// caller publishes its end), else false.
const ORPHAN_LUA: &str = r#"
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'failed' or status == 'completed' or status == 'cancelled' then
  redis.call('SREM', KEYS[2], ARGV[3])
  return false
end
local heartbeat = tonumber(redis.call('HGET', KEYS[1], 'heartbeat') or '0')
if now - heartbeat < tonumber(ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'status', 'failed', 'lost_by', ARGV[4], 'result', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
return redis.call('HGET', KEYS[1], 'ends') or ''
"#;

/// A script that reads Redis's clock first.
fn timed(body: &str) -> Script {
    Script::new(&format!("{NOW_LUA}{body}"))
}

/// Whether this node may still act as the owner of its runs: in a fleet,
/// only while its last renewal round (as sent) is younger than two thirds
/// of the lease, so no other node can have declared its runs lost; a
/// stalled node's drivers wait at the fence instead of publishing after
/// another node ended their runs. Always open on an embedded node.
#[derive(Debug)]
pub struct Fence {
    /// Reference point of `renewed_ms`.
    base: Instant,
    /// When the last fully answered renewal round was sent (ms after `base`).
    renewed_ms: AtomicU64,
    /// How long a renewal keeps the fence open (`None`: always open).
    window: Option<Duration>,
}

impl Fence {
    /// A fence that never closes (embedded mode).
    pub fn open() -> Arc<Self> {
        Arc::new(Fence {
            base: Instant::now(),
            renewed_ms: AtomicU64::new(0),
            window: None,
        })
    }

    /// A fence for `lease`, open as if just renewed.
    pub fn for_lease(lease: Duration) -> Arc<Self> {
        Arc::new(Fence {
            base: Instant::now(),
            renewed_ms: AtomicU64::new(0),
            window: Some(lease * 2 / 3),
        })
    }

    /// A renewal round sent at `sent` was answered.
    pub fn renewed(&self, sent: Instant) {
        let ms = sent.saturating_duration_since(self.base).as_millis() as u64;
        self.renewed_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Whether this node may publish as its runs' owner now.
    pub fn is_open(&self) -> bool {
        self.is_open_at(Instant::now())
    }

    /// Whether it may at `now`.
    fn is_open_at(&self, now: Instant) -> bool {
        self.window.is_none_or(|window| {
            let renewed = Duration::from_millis(self.renewed_ms.load(Ordering::Relaxed));
            now.saturating_duration_since(self.base)
                .saturating_sub(renewed)
                < window
        })
    }
}

/// A run as the fleet registry describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRun {
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Percent done at the last heartbeat.
    pub progress: f64,
    /// `seed002` or `seed003`.
    pub origin: String,
    /// The node running it.
    pub owner: String,
    /// Seed 002's terminal data, once ended.
    pub result: Option<Value>,
}

/// What asking another node's run to cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCancel {
    /// No such run.
    Unknown,
    /// It has ended.
    Ended,
    /// An external engine publishes it; only it can end it.
    External,
    /// Its owner will end it at its next renewal.
    Asked,
}

/// What a renewal learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Carry on.
    Held,
    /// A cancel was asked on some node.
    Cancel,
    /// Another node marked the run lost: stop without a word.
    Lost,
    /// Redis did not answer; try again at the next renewal.
    Unknown,
}

/// The fleet registry on Redis.
#[derive(Debug, Clone)]
pub struct FleetRuns {
    /// Commands (cheap clone of the multiplexed connection).
    conn: ConnectionManager,
    /// `<prefix>:bt:`, before a run id.
    run_prefix: String,
    /// The set of unfinished runs' ids, swept for lost owners.
    active_key: String,
    /// This node's name (the owner field of its runs).
    node: String,
    /// How long a run outlives its owner's last heartbeat (`ROOMCAST_LEASE_TTL`).
    pub lease: Duration,
    /// How long a finished run's hash stays (`ROOMCAST_BACKTEST_RETENTION`).
    retention: Duration,
}

impl FleetRuns {
    /// The registry under key prefix `prefix`, as node `node`.
    pub fn new(
        conn: ConnectionManager,
        prefix: &str,
        node: String,
        lease: Duration,
        retention: Duration,
    ) -> Self {
        FleetRuns {
            conn,
            run_prefix: format!("{prefix}:bt:"),
            active_key: format!("{prefix}:bts:active"),
            node,
            lease,
            retention,
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How long an unfinished run's hash outlives its last heartbeat: well
    /// past the lease, so a dead owner's run is still there to be marked
    /// lost (and its end published); at most the retention after that.
    fn active_ttl_ms(&self) -> u64 {
        (self.lease + self.retention).as_millis() as u64
    }

    fn key(&self, id: &str) -> String {
        format!("{}{id}", self.run_prefix)
    }

    /// Claims `id` for a new run on this node; false when it exists.
    /// `ends` are the rooms its end goes to should another node have to end
    /// it; `external` when an external engine publishes it.
    pub async fn claim(
        &self,
        id: &str,
        origin: &str,
        ends: &[RoomName],
        external: bool,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let ends: Vec<&str> = ends.iter().map(RoomName::as_str).collect();
        let claimed: i64 = with_timeout(
            timed(CLAIM_LUA)
                .key(self.key(id))
                .key(&self.active_key)
                .arg(&self.node)
                .arg(origin)
                .arg(self.active_ttl_ms())
                .arg(id)
                .arg(ends.join(","))
                .arg(if external { "1" } else { "0" })
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(claimed == 1)
    }

    /// Gives back a claim of this node's that no run came of.
    pub async fn release(&self, id: &str) {
        let mut conn = self.conn.clone();
        let released: redis::RedisResult<i64> = with_timeout(
            Script::new(RELEASE_LUA)
                .key(self.key(id))
                .key(&self.active_key)
                .arg(&self.node)
                .arg(id)
                .invoke_async(&mut conn),
        )
        .await;
        if let Err(e) = released {
            tracing::warn!(backtest_id = id, error = %e, "unused backtest id not released; it expires with the lease");
        }
    }

    /// Renews one of this node's runs.
    pub async fn renew(&self, id: &str, status: &str, progress: f64) -> Renewal {
        let mut conn = self.conn.clone();
        let renewed: redis::RedisResult<i64> = with_timeout(
            timed(RENEW_LUA)
                .key(self.key(id))
                .arg(&self.node)
                .arg(status)
                .arg(progress)
                .arg(self.active_ttl_ms())
                .invoke_async(&mut conn),
        )
        .await;
        match renewed {
            Ok(-1) => Renewal::Lost,
            Ok(1) => Renewal::Cancel,
            Ok(_) => Renewal::Held,
            Err(e) => {
                tracing::warn!(backtest_id = id, error = %e, "backtest heartbeat not renewed");
                Renewal::Unknown
            }
        }
    }

    /// Records a run's end with its terminal data: `Ok(false)` when another
    /// node had already ended it (lost), an error when Redis did not answer
    /// (try again: until recorded, the run could be declared lost).
    pub async fn finish(
        &self,
        id: &str,
        status: &str,
        progress: f64,
        result: &Value,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let done: i64 = with_timeout(
            Script::new(FINISH_LUA)
                .key(self.key(id))
                .key(&self.active_key)
                .arg(&self.node)
                .arg(status)
                .arg(result.to_string())
                .arg(self.retention.as_millis() as u64)
                .arg(id)
                .arg(progress)
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(done == 1)
    }

    /// The run `id` anywhere in the fleet.
    pub async fn lookup(&self, id: &str) -> redis::RedisResult<Option<RemoteRun>> {
        let mut conn = self.conn.clone();
        let fields: std::collections::HashMap<String, String> = with_timeout(
            redis::cmd("HGETALL")
                .arg(self.key(id))
                .query_async(&mut conn),
        )
        .await?;
        let Some(status) = fields.get("status") else {
            return Ok(None);
        };
        Ok(Some(RemoteRun {
            status: status.clone(),
            progress: fields
                .get("progress")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0.0),
            origin: fields.get("origin").cloned().unwrap_or_default(),
            owner: fields.get("owner").cloned().unwrap_or_default(),
            result: fields
                .get("result")
                .and_then(|r| serde_json::from_str(r).ok()),
        }))
    }

    /// Asks the owner of `id` to cancel it.
    pub async fn cancel(&self, id: &str) -> redis::RedisResult<RemoteCancel> {
        let mut conn = self.conn.clone();
        let asked: i64 = with_timeout(
            Script::new(CANCEL_LUA)
                .key(self.key(id))
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(match asked {
            0 => RemoteCancel::Unknown,
            2 => RemoteCancel::Ended,
            3 => RemoteCancel::External,
            _ => RemoteCancel::Asked,
        })
    }

    /// The unfinished runs of the fleet, for the lost-owner sweep.
    pub async fn active(&self) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.conn.clone();
        with_timeout(
            redis::cmd("SMEMBERS")
                .arg(&self.active_key)
                .query_async(&mut conn),
        )
        .await
    }

    /// Marks `id` lost if its owner stopped renewing; when this node marked
    /// it, the rooms its end goes to (this node publishes it), with `error`
    /// as its result.
    pub async fn mark_lost(
        &self,
        id: &str,
        error: &Value,
    ) -> redis::RedisResult<Option<Vec<RoomName>>> {
        let mut conn = self.conn.clone();
        let marked: Option<String> = with_timeout(
            timed(ORPHAN_LUA)
                .key(self.key(id))
                .key(&self.active_key)
                .arg(self.lease.as_millis() as u64)
                .arg(self.retention.as_millis() as u64)
                .arg(id)
                .arg(&self.node)
                .arg(error.to_string())
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(marked.map(|ends| ends.split(',').filter_map(RoomName::from_wire).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_closes_two_thirds_of_a_lease_after_the_last_answered_renewal() {
        let fence = Fence::for_lease(Duration::from_secs(3));
        let at = |ms| fence.base + Duration::from_millis(ms);
        assert!(fence.is_open_at(at(1_999)));
        assert!(
            !fence.is_open_at(at(2_000)),
            "no renewal for 2/3 of the lease"
        );
        fence.renewed(at(1_500));
        assert!(fence.is_open_at(at(3_499)));
        assert!(!fence.is_open_at(at(3_500)));
        // An older round answered late does not reopen it.
        fence.renewed(at(1_000));
        assert!(!fence.is_open_at(at(3_500)));
        assert!(Fence::open().is_open_at(at(1_000_000)));
    }
}
