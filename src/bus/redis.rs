//! Fleet bus on Redis (`REDIS_URL`): any node publishes, every node with
//! members delivers, in one order, with no silent loss.
//!
//! A publish is one Lua script, atomic in Redis: it numbers the event in its
//! room (`INCR`), appends it to the room's stream (`XADD … MAXLEN ~`, the
//! fleet-wide history, with the room's epoch), and `PUBLISH`es
//! `seq:epoch:json` on the room's channel. Each node subscribes only to the
//! channels of rooms with local members (hinted by the room registry, applied
//! in batches) and delivers each message once, in `seq` order: a message past
//! a gap first pulls the missing events from the stream; after a reconnect
//! every room is caught up from the stream the same way. Events the stream no
//! longer holds are delivered with the gap counted and logged, never silently.
//!
//! Redis keys, for room `R` and prefix `P` (`ROOMCAST_REDIS_PREFIX`):
//! `P:seq:R` (counter), `P:epoch:R` (53-bit lineage id, new when Redis lost
//! the room), `P:h:R` (stream, entry id `<seq>-0`, fields `e` epoch and `d`
//! JSON), channel `P:r:R`; all expire after `ROOMCAST_REDIS_KEY_TTL` idle.
//! The lease of a producer is `P:lease:<name>` (see [`super::lease`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use rand::Rng;
use redis::aio::ConnectionManager;
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Client, Script};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

use super::{BusError, Lease};
use crate::catalog::{Family, FleetStream, GreetingPolicy, RoomName};
use crate::frame;
use crate::protocol::Event;
use crate::rooms::room::new_epoch;
use crate::rooms::{Head, PublishReport, Remote, Rooms};
use crate::telemetry::metrics;

/// Bound on one Redis command: a publish answers 503 within it when Redis is
/// down or frozen, instead of hanging.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscriber pings Redis on its pub/sub connection, to notice
/// a frozen server or a silently dead connection.
const PING_INTERVAL: Duration = Duration::from_secs(2);
/// First reconnect delay; doubles up to [`MAX_BACKOFF`], ±20 % jitter.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest a resuming member waits for this node's copy of a room to reach
/// its `seq` before it is greeted with what the room has.
const RESUME_WAIT: Duration = Duration::from_secs(5);
/// Stream entries read per round trip when catching up.
const CATCH_UP_PAGE: usize = 500;

/// Seed 001's Redis channels: JSON in the shape of the WebSocket messages,
/// published by existing producers; the ingest lease holder feeds them in.
pub const INGEST_CHANNELS: [&str; 4] = [
    "price_updates",
    "pattern_alerts",
    "alert_triggers",
    "market_status",
];

/// `INCR` the room's seq, keep its epoch, `XADD` to its stream, `PUBLISH`.
/// KEYS: seq, epoch, stream, channel. ARGV: json, fresh epoch, stream length,
/// key TTL in ms, trimming (`~` approximate, `=` exact). Returns `{seq,
/// epoch, receivers}`.
const PUBLISH_LUA: &str = r#"
local seq = redis.call('INCR', KEYS[1])
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[2], epoch)
end
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if last[1] then
  local last_seq = tonumber(string.match(last[1][1], '^(%d+)'))
  if last_seq >= seq then
    seq = last_seq + 1
    redis.call('SET', KEYS[1], seq)
  end
end
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[5], ARGV[3], seq .. '-0', 'e', epoch, 'd', ARGV[1])
local receivers = redis.call('PUBLISH', KEYS[4], seq .. ':' .. epoch .. ':' .. ARGV[1])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
return {seq, tonumber(epoch), receivers}
"#;

/// Settings of the Redis bus.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`.
    pub url: String,
    /// Prefix of every key and channel.
    pub prefix: String,
    /// Events each room's stream keeps (approximately, at least this many).
    pub stream_len: usize,
    /// Idle time after which a room's keys expire.
    pub key_ttl: Duration,
}

/// State shared by the publishing side and the subscriber task.
pub struct RedisBus {
    /// Settings.
    config: RedisConfig,
    /// Commands (publish script, stream reads); reconnects by itself.
    commands: ConnectionManager,
    /// To open the pub/sub connection.
    client: Client,
    /// The publish script (sent by hash, loaded on first use).
    script: Script,
    /// The node's rooms.
    rooms: Arc<Rooms>,
    /// Room membership hints from the registry; taken by the subscriber task.
    hints: Mutex<Option<UnboundedReceiver<RoomName>>>,
    /// Whether the last command succeeded.
    commands_ok: AtomicBool,
    /// Whether the subscriber is connected and caught up.
    subscribed: AtomicBool,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("config", &self.config)
            .field("commands_ok", &self.commands_ok)
            .field("subscribed", &self.subscribed)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// One event as it travels on a room channel: `seq:epoch:json`.
fn parse_message(payload: &[u8]) -> Option<(u64, u64, &[u8])> {
    let mut parts = payload.splitn(3, |&b| b == b':');
    let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let epoch = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    Some((seq, epoch, parts.next()?))
}

impl RedisBus {
    /// A bus for `config`; connects lazily (Redis down at start is not fatal:
    /// the node serves, `/ready` says false, publishes get 503).
    pub fn new(
        config: RedisConfig,
        rooms: Arc<Rooms>,
        hints: UnboundedReceiver<RoomName>,
    ) -> Result<Self, BusError> {
        let client = Client::open(config.url.as_str()).map_err(unavailable)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(MAX_BACKOFF);
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(unavailable)?;
        Ok(RedisBus {
            config,
            commands,
            client,
            script: Script::new(PUBLISH_LUA),
            rooms,
            hints: Mutex::new(Some(hints)),
            commands_ok: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
        })
    }

    fn key(&self, kind: &str, room: &str) -> String {
        format!("{}:{kind}:{room}", self.config.prefix)
    }

    /// The key of a named lease.
    pub fn lease_key(&self, name: &str) -> String {
        self.key("lease", name)
    }

    /// The node's rooms.
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// A handle for commands (cheap clone of the multiplexed connection).
    pub fn commands(&self) -> ConnectionManager {
        self.commands.clone()
    }

    /// Whether publishing and delivering work right now.
    pub fn is_ready(&self) -> bool {
        self.commands_ok.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }

    fn command_result<T>(&self, result: redis::RedisResult<T>) -> Result<T, BusError> {
        self.commands_ok.store(result.is_ok(), Ordering::Relaxed);
        result.map_err(unavailable)
    }

    /// Publishes through Redis: numbered, stored in the room's stream, sent to
    /// every node subscribed to the room (this one included, which delivers
    /// it when it comes back, in the room's order). `recipients` in the
    /// report is the number of nodes that received it.
    pub async fn publish(&self, event: &Event) -> Result<PublishReport, BusError> {
        // The canonical JSON, framed once: the frame's payload is what Redis gets.
        let json = frame::payload(&event.canonical_frame());
        let room = event.room();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.key("seq", room.as_str()))
            .key(self.key("epoch", room.as_str()))
            .key(self.key("h", room.as_str()))
            .key(self.key("r", room.as_str()))
            .arg(&json[..])
            .arg(new_epoch())
            // The room's policy bounds its stream: approximately (cheap) for
            // a ring, exactly one entry for a room whose history is its latest snapshot.
            .arg(match room.policy().fleet_stream {
                FleetStream::Ring => self.config.stream_len,
                FleetStream::Latest => 1,
            })
            .arg(self.config.key_ttl.as_millis() as u64)
            .arg(match room.policy().fleet_stream {
                FleetStream::Ring => "~",
                FleetStream::Latest => "=",
            });
        let mut conn = self.commands.clone();
        let result = with_timeout(invocation.invoke_async(&mut conn)).await;
        let (seq, _epoch, receivers): (u64, u64, u64) = self.command_result(result)?;
        metrics().bus_published.increment(1);
        Ok(PublishReport {
            seq,
            recipients: receivers as usize,
            ..PublishReport::default()
        })
    }

    /// Reads the room's stream after `after` (exclusive), at most `count` entries:
    /// `(seq, epoch, json)` in order.
    async fn read_stream(
        &self,
        room: &RoomName,
        after: u64,
        count: usize,
    ) -> Result<Vec<StreamEntry>, BusError> {
        let mut conn = self.commands.clone();
        let reply: redis::RedisResult<StreamRangeReply> = with_timeout(conn.xrange_count(
            self.key("h", room.as_str()),
            format!("({after}-0"),
            "+",
            count,
        ))
        .await;
        Ok(stream_entries(self.command_result(reply)?))
    }

    /// The room's current epoch in Redis (`None`: unknown or no lineage yet).
    async fn epoch_of(&self, room: &RoomName) -> Option<u64> {
        let mut conn = self.commands.clone();
        let epoch: redis::RedisResult<Option<u64>> =
            with_timeout(conn.get(self.key("epoch", room.as_str()))).await;
        epoch.ok().flatten()
    }

    /// Gives a room that is loading its recent history from the stream, so
    /// the members waiting for it are greeted (seed 001's `history`) and
    /// admitted. If the stream cannot be read the room starts empty: members
    /// are not kept waiting on Redis.
    async fn preload(&self, room: &RoomName) {
        let Some(local) = self.rooms.get(room) else {
            return;
        };
        if !local.is_loading() {
            return;
        }
        let count = match room.policy().fleet_stream {
            FleetStream::Ring => self.rooms.history_size_of(room).max(1),
            FleetStream::Latest => 1,
        };
        let mut conn = self.commands.clone();
        // Head and tail read atomically, so the history and the position agree.
        let reply: redis::RedisResult<(Option<u64>, Option<u64>, StreamRangeReply)> = with_timeout(
            redis::pipe()
                .atomic()
                .get(self.key("seq", room.as_str()))
                .get(self.key("epoch", room.as_str()))
                .xrevrange_count(self.key("h", room.as_str()), "+", "-", count)
                .query_async(&mut conn),
        )
        .await;
        let (entries, head) = match self.command_result(reply) {
            Ok((seq, epoch, tail)) => {
                let mut entries = decoded(stream_entries(tail));
                entries.reverse();
                let head = match (epoch, seq) {
                    (Some(epoch), Some(seq)) => Head::Known { epoch, seq },
                    _ => Head::Empty,
                };
                (entries, head)
            }
            Err(e) => {
                tracing::warn!(room = %room, error = %e, "could not load the room's history; starting it empty");
                (Vec::new(), Head::Unknown)
            }
        };
        if room.policy().greeting == GreetingPolicy::Snapshot
            && let Some((_, _, json)) = entries.last()
            && let Some(Event::ModelData(m)) = parse_event(room, json)
            && let Some(snapshot) = m.snapshot
        {
            local.set_snapshot(snapshot);
        }
        local.preload(entries, head);
    }

    /// Delivers one event received from Redis into its local room, pulling any
    /// events it missed from the stream first.
    async fn handle_event(&self, room: &RoomName, seq: u64, epoch: u64, json: &[u8]) {
        let Some(event) = parse_event(room, json) else {
            tracing::warn!(room = %room, "undecodable event on the bus; skipped");
            metrics().error();
            return;
        };
        if !event.room().eq(room) {
            tracing::warn!(room = %room, "event published on another room's channel; skipped");
            return;
        }
        let canonical = frame::text(json);
        if let Some(Remote::Gap { last }) =
            self.rooms.deliver(&event, &canonical, seq, epoch, false)
        {
            match self.head_seq(room).await {
                // A seq Redis never issued would block the room: refuse it.
                Ok(head) if seq > head => {
                    tracing::warn!(room = %room, seq, head, "bus message beyond the room's head; skipped");
                    metrics().error();
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(room = %room, error = %e, "could not check the room's head")
                }
            }
            if let Err(e) = self.fill_gap(room, last, Some(seq)).await {
                tracing::warn!(room = %room, error = %e, "could not read the room's stream to fill a gap");
                metrics().bus_gaps.increment(1);
            }
            self.rooms.deliver(&event, &canonical, seq, epoch, true);
        }
    }

    /// Delivers the room's events after `last` and before `before` (all of
    /// them when `before` is `None`) from its stream; what the stream no
    /// longer holds, or holds undecodable, is counted as a gap.
    async fn fill_gap(
        &self,
        room: &RoomName,
        mut last: u64,
        before: Option<u64>,
    ) -> Result<(), BusError> {
        loop {
            let entries = self.read_stream(room, last, CATCH_UP_PAGE).await?;
            let full = entries.len() == CATCH_UP_PAGE;
            for (seq, body) in entries {
                if before.is_some_and(|b| seq >= b) {
                    return Ok(());
                }
                let event = body
                    .as_ref()
                    .and_then(|(epoch, json)| parse_event(room, json).map(|e| (e, *epoch, json)));
                let Some((event, epoch, json)) = event else {
                    metrics().bus_gaps.increment(1);
                    tracing::warn!(room = %room, seq, "undecodable event in the room's stream; skipped");
                    last = seq;
                    continue;
                };
                let accept = seq > last + 1;
                if accept {
                    metrics().bus_gaps.increment(1);
                    tracing::warn!(room = %room, from = last + 1, to = seq - 1, "events lost from the bus (trimmed from the stream)");
                }
                self.rooms
                    .deliver(&event, &frame::text(json), seq, epoch, accept);
                last = seq;
            }
            if !full {
                if let Some(b) = before
                    && b > last + 1
                {
                    metrics().bus_gaps.increment(1);
                    tracing::warn!(room = %room, from = last + 1, to = b - 1, "events lost from the bus (not in the stream)");
                }
                return Ok(());
            }
        }
    }

    /// The room's last `seq` in Redis.
    async fn head_seq(&self, room: &RoomName) -> Result<u64, BusError> {
        let mut conn = self.commands.clone();
        let seq: redis::RedisResult<Option<u64>> =
            with_timeout(conn.get(self.key("seq", room.as_str()))).await;
        Ok(self.command_result(seq)?.unwrap_or(0))
    }

    /// The subscriber: keeps one pub/sub connection, subscribed to the rooms
    /// with local members (and, while this node holds the ingest lease, to
    /// seed 001's channels), reconnecting with backoff until `shutdown`.
    ///
    /// What arrives on seed 001's channels goes to `ingest_tx` (the ingest
    /// source publishes it); they are subscribed while `ingest` is held.
    pub async fn run_subscriber(
        self: Arc<Self>,
        ingest: Arc<Lease>,
        ingest_tx: mpsc::Sender<(String, Bytes)>,
        shutdown: CancellationToken,
    ) {
        let Some(mut hints) = self.hints.lock().take() else {
            return;
        };
        let mut backoff = MIN_BACKOFF;
        let room_prefix = format!("{}:r:", self.config.prefix);
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = tokio::time::timeout(COMMAND_TIMEOUT, self.client.get_async_pubsub()) => c,
            };
            let pubsub = match connected {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "redis pub/sub connect failed");
                    self.subscribed.store(false, Ordering::Relaxed);
                    backoff = self.backoff(backoff, &mut hints, &shutdown).await;
                    continue;
                }
                Err(_) => {
                    tracing::debug!("redis pub/sub connect timed out");
                    backoff = self.backoff(backoff, &mut hints, &shutdown).await;
                    continue;
                }
            };
            let (mut sink, mut stream) = pubsub.split();
            // Everything with members now, plus hints that arrive meanwhile.
            while hints.try_recv().is_ok() {}
            let mut subscribed: HashSet<RoomName> = self
                .rooms
                .member_counts()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            let channels: Vec<String> = subscribed
                .iter()
                .map(|r| self.key("r", r.as_str()))
                .collect();
            if !channels.is_empty()
                && let Err(e) = with_timeout(sink.subscribe(&channels)).await
            {
                tracing::warn!(error = %e, "redis subscribe failed");
                backoff = self.backoff(backoff, &mut hints, &shutdown).await;
                continue;
            }
            let mut ingesting = false;
            // New rooms load their history; the others catch up on what was
            // published while this node was not listening.
            let mut caught_up = true;
            for room in &subscribed {
                self.preload(room).await;
                if let Some((epoch, last)) = self.rooms.get(room).and_then(|r| r.resume_point()) {
                    // A new lineage (Redis lost the room) numbers from 1 again:
                    // read its stream from the start.
                    let after = if self.epoch_of(room).await == Some(epoch) {
                        last
                    } else {
                        0
                    };
                    if let Err(e) = self.fill_gap(room, after, None).await {
                        tracing::warn!(room = %room, error = %e, "catch-up failed; reconnecting");
                        caught_up = false;
                        break;
                    }
                }
            }
            if !caught_up {
                backoff = self.backoff(backoff, &mut hints, &shutdown).await;
                continue;
            }
            self.subscribed.store(true, Ordering::Relaxed);
            tracing::info!(rooms = subscribed.len(), "redis bus subscribed");
            backoff = MIN_BACKOFF;
            let mut ping = tokio::time::interval(PING_INTERVAL);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let reason = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    message = stream.next() => {
                        let Some(message) = message else { break "connection closed" };
                        let channel = message.get_channel_name();
                        if let Some(room) = channel.strip_prefix(room_prefix.as_str()) {
                            let Some((seq, epoch, json)) = parse_message(message.get_payload_bytes()) else {
                                tracing::warn!(channel, "malformed bus message; skipped");
                                continue;
                            };
                            let Some(room) = RoomName::from_wire(room) else {
                                tracing::warn!(channel, "bus message for a room no catalog row names; skipped");
                                continue;
                            };
                            self.handle_event(&room, seq, epoch, json).await;
                        } else if INGEST_CHANNELS.contains(&channel) {
                            // Published by its own task: a slow Redis must not stall delivery.
                            let item = (channel.to_string(), Bytes::copy_from_slice(message.get_payload_bytes()));
                            if ingest_tx.try_send(item).is_err() {
                                tracing::warn!(channel, "ingest queue full; message dropped");
                                metrics().error();
                            }
                        }
                    }
                    Some(first) = hints.recv() => {
                        // Batch every pending hint into one SUBSCRIBE and one UNSUBSCRIBE.
                        let mut changed = HashSet::from([first]);
                        while let Ok(more) = hints.try_recv() {
                            changed.insert(more);
                        }
                        let (mut add, mut remove, mut added) = (Vec::new(), Vec::new(), Vec::new());
                        for room in changed {
                            let wanted = self.rooms.has_members(&room);
                            if wanted {
                                // Also a room re-created while still subscribed needs its history.
                                if subscribed.insert(room.clone()) {
                                    add.push(self.key("r", room.as_str()));
                                }
                                added.push(room);
                            } else if !wanted && subscribed.remove(&room) {
                                remove.push(self.key("r", room.as_str()));
                            }
                        }
                        if !add.is_empty() && let Err(e) = with_timeout(sink.subscribe(&add)).await {
                            break if e.is_timeout() { "subscribe timed out" } else { "subscribe failed" };
                        }
                        for room in &added {
                            self.preload(room).await;
                        }
                        if !remove.is_empty() && let Err(e) = with_timeout(sink.unsubscribe(&remove)).await {
                            break if e.is_timeout() { "unsubscribe timed out" } else { "unsubscribe failed" };
                        }
                    }
                    _ = ping.tick() => {
                        // Resuming members whose seq the room never reached.
                        self.rooms.admit_overdue(RESUME_WAIT);
                        if with_timeout(sink.ping::<redis::Value>()).await.is_err() {
                            break "ping failed";
                        }
                        let ingest_now = ingest.is_held();
                        if ingest_now != ingesting {
                            let r = if ingest_now {
                                with_timeout(sink.subscribe(&INGEST_CHANNELS[..])).await
                            } else {
                                with_timeout(sink.unsubscribe(&INGEST_CHANNELS[..])).await
                            };
                            if r.is_err() {
                                break "ingest subscribe failed";
                            }
                            ingesting = ingest_now;
                        }
                    }
                }
            };
            self.subscribed.store(false, Ordering::Relaxed);
            tracing::warn!(reason, "redis pub/sub connection lost; reconnecting");
            backoff = self.backoff(backoff, &mut hints, &shutdown).await;
        }
    }

    /// Health of the command connection and this node's heartbeat: every
    /// [`PING_INTERVAL`] the node writes its figures into the fleet's node
    /// table (so `/ready` turns false when Redis is down even if nobody
    /// publishes, and every node can report cluster totals).
    /// `node` is this node's name; `connections` counts its sessions.
    pub async fn run_health(
        self: Arc<Self>,
        node: String,
        connections: impl Fn() -> usize,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(PING_INTERVAL);
        let key = self.key("nodes", "all");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let mut conn = self.commands.clone();
                    let _: redis::RedisResult<i64> = with_timeout(conn.hdel(&key, &node)).await;
                    return;
                }
                _ = tick.tick() => {}
            }
            let heartbeat = NodeStatus {
                node: node.clone(),
                connections: connections(),
                rooms: self.rooms.len(),
                subscriptions: self.rooms.member_counts().iter().map(|(_, n)| n).sum(),
                at_ms: chrono::Utc::now().timestamp_millis(),
            };
            let json = serde_json::to_string(&heartbeat).unwrap_or_default();
            let mut conn = self.commands.clone();
            let written: redis::RedisResult<i64> = with_timeout(conn.hset(&key, &node, json)).await;
            let ok = written.is_ok();
            if ok != self.commands_ok.swap(ok, Ordering::Relaxed) {
                if ok {
                    tracing::info!("redis reachable");
                } else {
                    tracing::warn!("redis unreachable");
                }
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

/// One stream entry: its `seq` (from the id) and, when well-formed, its
/// epoch and JSON.
type StreamEntry = (u64, Option<(u64, Bytes)>);

/// The entries of a stream reply, in its order; ids that are not `<seq>-0`
/// are skipped (not roomcast's).
fn stream_entries(reply: StreamRangeReply) -> Vec<StreamEntry> {
    reply
        .ids
        .into_iter()
        .filter_map(|entry| {
            let seq = entry.id.split('-').next()?.parse().ok()?;
            let body = (|| {
                let epoch: u64 = entry.get::<String>("e")?.parse().ok()?;
                let data: Vec<u8> = entry.get("d")?;
                Some((epoch, Bytes::from(data)))
            })();
            Some((seq, body))
        })
        .collect()
}

/// The well-formed entries as `(seq, epoch, json)`.
fn decoded(entries: Vec<StreamEntry>) -> Vec<(u64, u64, Bytes)> {
    entries
        .into_iter()
        .filter_map(|(seq, body)| body.map(|(epoch, json)| (seq, epoch, json)))
        .collect()
}

/// Parses an event's canonical JSON received for `room`, as its catalog
/// family reads it.
fn parse_event(room: &RoomName, json: &[u8]) -> Option<Event> {
    match room.policy().family {
        Family::Market => serde_json::from_slice(json).ok(),
        Family::ModelData => crate::protocol::modeldata::event_from_wire(room.clone(), json),
    }
}

/// Bounds a Redis call by [`COMMAND_TIMEOUT`]; running out is an I/O timeout.
pub async fn with_timeout<T>(
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            )))
        })
}

impl RedisBus {
    /// Waits `delay` ±20 % (or until shutdown) while the pub/sub connection
    /// is down, and returns the next delay. Rooms created meanwhile still
    /// load their history (or start empty when Redis is unreachable), so their
    /// members are never kept waiting on Redis; on reconnect they are
    /// subscribed and caught up like every other room.
    async fn backoff(
        &self,
        delay: Duration,
        hints: &mut UnboundedReceiver<RoomName>,
        shutdown: &CancellationToken,
    ) -> Duration {
        let jittered = delay.mul_f64(rand::rng().random_range(0.8..1.2));
        let deadline = tokio::time::Instant::now() + jittered;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(deadline) => break,
                Some(room) = hints.recv() => self.preload(&room).await,
            }
        }
        (delay * 2).min(MAX_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_split_into_seq_epoch_and_json() {
        assert_eq!(
            parse_message(b"12:345:{\"a\":\"b:c\"}"),
            Some((12, 345, &b"{\"a\":\"b:c\"}"[..]))
        );
        assert_eq!(parse_message(b"x:1:{}"), None);
        assert_eq!(parse_message(b"1:2"), None);
    }
}
