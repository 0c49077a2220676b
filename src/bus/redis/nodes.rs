//! The fleet's node table (`P:nodes:all`): every node writes its heartbeat
//! there (which also tells whether Redis answers, for `/ready`) and reads
//! everyone's for the cluster totals of the status endpoints.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use super::{DOWN_REPORT_EVERY, PING_INTERVAL, RedisBus, with_timeout};
use crate::bus::BusError;
use crate::catalog::RoomKind;
use crate::dialect::DialectKind;

/// Health of the command connection and this node's heartbeat: every
/// [`PING_INTERVAL`] the node writes its figures into the fleet's node
/// table, so `/ready` turns false when Redis is down even if nobody
/// publishes, and every node can report cluster totals. A failure is logged
/// at once (at start too: a mistyped `REDIS_URL` must not pass unseen), then
/// every [`DOWN_REPORT_EVERY`] while it lasts, with how long.
pub struct NodeHealth<F> {
    /// The bus whose connection it checks and whose rooms it counts.
    bus: Arc<RedisBus>,
    /// This node's name: its field in the node table.
    node: String,
    /// Counts this node's sessions (the session registry is above the bus).
    connections: F,
}

impl<F: Fn() -> usize> NodeHealth<F> {
    /// The health check of `node` on `bus`; `connections` counts its sessions.
    pub fn new(bus: Arc<RedisBus>, node: String, connections: F) -> Self {
        NodeHealth {
            bus,
            node,
            connections,
        }
    }

    /// Writes the heartbeat until `shutdown`, then removes it.
    pub async fn run(self, shutdown: CancellationToken) {
        let NodeHealth {
            bus,
            node,
            connections,
        } = self;
        let mut tick = tokio::time::interval(PING_INTERVAL);
        let key = bus.key("nodes", "all");
        let mut outage = Outage::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let mut conn = bus.commands.clone();
                    let _: redis::RedisResult<i64> = with_timeout(conn.hdel(&key, &node)).await;
                    return;
                }
                _ = tick.tick() => {}
            }
            let heartbeat = NodeStatus {
                node: node.clone(),
                connections: connections(),
                rooms: bus.rooms.len(),
                subscriptions: bus.rooms.member_counts().iter().map(|(_, n)| n).sum(),
                streams: bus
                    .rooms
                    .member_counts_of(RoomKind::Backtest, DialectKind::Seed003)
                    .into_iter()
                    .map(|(room, n)| (room.as_str().to_string(), n))
                    .collect(),
                at_ms: chrono::Utc::now().timestamp_millis(),
            };
            let json = serde_json::to_string(&heartbeat).unwrap_or_default();
            let mut conn = bus.commands.clone();
            let written: redis::RedisResult<i64> = with_timeout(conn.hset(&key, &node, json)).await;
            bus.commands_ok.store(written.is_ok(), Ordering::Relaxed);
            let redis = bus.target();
            match written {
                Ok(_) => {
                    *bus.down.lock() = None;
                    match outage.observe(Instant::now(), true) {
                        Report::FirstAnswer => tracing::info!(%redis, "Redis reachable"),
                        Report::Recovered(down) => {
                            tracing::info!(%redis, down_for_secs = down.as_secs(), "Redis reachable again")
                        }
                        _ => {}
                    }
                }
                Err(e) => {
                    *bus.down.lock() = Some(e.to_string());
                    match outage.observe(Instant::now(), false) {
                        Report::Down => {
                            tracing::error!(%redis, error = %e, "Redis unreachable: the node accepts clients but delivers nothing until it answers (check REDIS_URL); /ready answers 503")
                        }
                        Report::StillDown(down) => {
                            tracing::error!(%redis, error = %e, down_for_secs = down.as_secs(), "Redis still unreachable")
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// What one heartbeat's result calls for in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// Nothing new.
    Quiet,
    /// Redis answered for the first time since start.
    FirstAnswer,
    /// An outage began (at start too: a mistyped `REDIS_URL`).
    Down,
    /// The outage goes on, this long so far ([`DOWN_REPORT_EVERY`] since
    /// it was last said).
    StillDown(Duration),
    /// Redis answers again after an outage this long.
    Recovered(Duration),
}

/// What the health check knows of the current outage, to log it at once
/// and then at intervals instead of every [`PING_INTERVAL`].
#[derive(Debug, Default)]
struct Outage {
    /// When the current outage began (`None` while Redis answers).
    since: Option<Instant>,
    /// When it was last logged.
    reported: Option<Instant>,
    /// Whether Redis has answered since start (the first answer is logged).
    answered: bool,
}

impl Outage {
    /// Takes one heartbeat's result at `now`: whether Redis `answered`.
    fn observe(&mut self, now: Instant, answered: bool) -> Report {
        if answered {
            self.reported = None;
            let first = !std::mem::replace(&mut self.answered, true);
            return match self.since.take() {
                Some(since) => Report::Recovered(now.duration_since(since)),
                None if first => Report::FirstAnswer,
                None => Report::Quiet,
            };
        }
        match (self.since, self.reported) {
            (Some(since), Some(reported)) if now.duration_since(reported) >= DOWN_REPORT_EVERY => {
                self.reported = Some(now);
                Report::StillDown(now.duration_since(since))
            }
            (Some(_), _) => Report::Quiet,
            (None, _) => {
                self.since = Some(now);
                self.reported = Some(now);
                Report::Down
            }
        }
    }
}

/// One node's heartbeat in the fleet's node table (`P:nodes:all`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeStatus {
    /// `ROOMCAST_NODE_ID`.
    pub node: String,
    /// Open WebSocket sessions.
    pub connections: usize,
    /// Rooms on the node.
    pub rooms: usize,
    /// Room memberships on the node.
    pub subscriptions: usize,
    /// Seed 003 backtest streams watched on the node: run room and
    /// viewers (the fleet-wide `GET /api/ws/stream/status`).
    #[serde(default)]
    pub streams: Vec<(String, usize)>,
    /// When it was written (Unix ms).
    pub at_ms: i64,
}

/// A node silent for this long is no longer counted (and is removed).
const NODE_STALE_MS: i64 = 10_000;

impl RedisBus {
    /// The live nodes of the fleet, by name; stale entries are removed.
    pub async fn cluster(&self) -> Result<Vec<NodeStatus>, BusError> {
        let key = self.key("nodes", "all");
        let mut conn = self.commands.clone();
        let all: std::collections::HashMap<String, String> =
            self.command_result(with_timeout(conn.hgetall(&key)).await)?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut nodes = Vec::new();
        let mut stale = Vec::new();
        for (name, json) in all {
            match serde_json::from_str::<NodeStatus>(&json) {
                Ok(status) if now - status.at_ms <= NODE_STALE_MS => nodes.push(status),
                _ => stale.push(name),
            }
        }
        if !stale.is_empty() {
            let _: redis::RedisResult<i64> = with_timeout(conn.hdel(&key, stale)).await;
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_said_at_once_then_every_interval_then_its_end() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut outage = Outage::default();
        assert_eq!(
            outage.observe(at(0), false),
            Report::Down,
            "unreachable at start"
        );
        assert_eq!(outage.observe(at(2), false), Report::Quiet);
        assert_eq!(outage.observe(at(29), false), Report::Quiet);
        assert_eq!(
            outage.observe(at(30), false),
            Report::StillDown(Duration::from_secs(30))
        );
        assert_eq!(outage.observe(at(32), false), Report::Quiet);
        assert_eq!(
            outage.observe(at(60), false),
            Report::StillDown(Duration::from_secs(60))
        );
        assert_eq!(
            outage.observe(at(61), true),
            Report::Recovered(Duration::from_secs(61))
        );
        assert_eq!(outage.observe(at(63), true), Report::Quiet);
        assert_eq!(outage.observe(at(65), false), Report::Down, "a new outage");
    }

    #[test]
    fn the_first_answer_is_said_once() {
        let t0 = Instant::now();
        let mut outage = Outage::default();
        assert_eq!(outage.observe(t0, true), Report::FirstAnswer);
        assert_eq!(outage.observe(t0, true), Report::Quiet);
    }
}
