//! Fleet bus on Redis (`REDIS_URL`): any node publishes, every node with
//! members delivers, in one order, with no silent loss.
//!
//! A publish is one Lua script, atomic in Redis: it numbers the event in its
//! room (`INCRBY`), appends it to the room's stream (`XADD … MAXLEN ~`, the
//! fleet-wide history, with the room's epoch), and `PUBLISH`es
//! `seq:epoch:json` on the room's channel; a batch of one room's events
//! (an alert burst) is one script and one message, `first-last:epoch:[json,…]`. Each node subscribes only to the
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
//!
//! A `rediss://` URL connects over TLS (rustls), the server's certificate
//! verified against the system's trust store or, for a private CA,
//! `ROOMCAST_REDIS_CA_FILE` (`docs/tls.md`).
//!
//! The bus is one type, [`RedisBus`], in four files: this one is the
//! transport (connections, the publish script, settings), `subscriber` the
//! pub/sub loop, `catch_up` loading and gap filling from the streams, `nodes`
//! the fleet's node table.

mod catch_up;
mod latest;
mod nodes;
mod subscriber;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use redis::{Client, Script};
use tokio::sync::mpsc::UnboundedReceiver;

pub use nodes::{NodeHealth, NodeStatus};
pub use subscriber::{INGEST_CHANNELS, Subscriber};

use super::BusError;
use crate::catalog::{FleetStream, Retention, RoomName};

use crate::protocol::Event;
use crate::rooms::room::new_epoch;
use crate::rooms::{PublishReport, Rooms};
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
/// While Redis stays unreachable, how often the node says so again (with
/// how long it has lasted), so an operator reading the log at any moment
/// sees it.
const DOWN_REPORT_EVERY: Duration = Duration::from_secs(30);
/// Most events one publish script carries: a burst of alert triggers is
/// sent in scripts of this many, bounding one script's run time in Redis and
/// one pub/sub message's size (about 250 KB of triggers).
pub const MAX_BATCH: usize = 1_000;
/// Stream entries read per round trip when catching up.
const CATCH_UP_PAGE: usize = 500;

/// Numbers `n` events of one room (`INCRBY`), keeps its epoch, `XADD`s each
/// to its stream and `PUBLISH`es them as one message: `seq:epoch:json` for
/// one event, `first-last:epoch:[json,…]` for a batch, so a burst reaches
/// each subscribing node (and each member's outbox) as one unit.
/// KEYS: seq, epoch, stream, channel. ARGV: fresh epoch, stream length, key
/// TTL in ms, trimming (`~` approximate, `=` exact), then the events' JSON.
/// Returns `{first seq, epoch, receivers}`.
const PUBLISH_LUA: &str = r#"
local n = #ARGV - 4
local last = redis.call('INCRBY', KEYS[1], n)
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
end
local newest = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if newest[1] then
  local newest_seq = tonumber(string.match(newest[1][1], '^(%d+)'))
  if newest_seq > last - n then
    last = newest_seq + n
    redis.call('SET', KEYS[1], last)
  end
end
local first = last - n + 1
for i = 1, n do
  redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[4], ARGV[2], (first + i - 1) .. '-0', 'e', epoch, 'd', ARGV[4 + i])
end
local message
if n == 1 then
  message = first .. ':' .. epoch .. ':' .. ARGV[5]
else
  message = first .. '-' .. last .. ':' .. epoch .. ':[' .. table.concat(ARGV, ',', 5) .. ']'
end
local receivers = redis.call('PUBLISH', KEYS[4], message)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return {first, tonumber(epoch), receivers}
"#;

/// Settings of the Redis bus.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`.
    pub url: String,
    /// CA certificates (PEM) a `rediss://` server must chain to, instead of
    /// the system's (`ROOMCAST_REDIS_CA_FILE`).
    pub ca_file: Option<std::path::PathBuf>,
    /// Prefix of every key and channel.
    pub prefix: String,
    /// Events each room's stream keeps (approximately, at least this many).
    pub stream_len: usize,
    /// Idle time after which a room's keys expire.
    pub key_ttl: Duration,
    /// How long a run room's keys outlive its last publish
    /// (`ROOMCAST_BACKTEST_RETENTION`, capped by `key_ttl`).
    pub run_ttl: Duration,
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
    /// The last heartbeat's failure while Redis is unreachable (`None` once
    /// it answers), so `/ready` can say why the node is not ready.
    down: Mutex<Option<String>>,
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

/// A Redis failure as the bus reports it (HTTP 503).
pub(crate) fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

impl RedisBus {
    /// A bus for `config`; connects lazily (Redis down at start is not fatal:
    /// the node serves, `/ready` says false, publishes get 503).
    pub fn new(
        config: RedisConfig,
        rooms: Arc<Rooms>,
        hints: UnboundedReceiver<RoomName>,
    ) -> Result<Self, BusError> {
        let client = match &config.ca_file {
            None => Client::open(config.url.as_str()),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                Client::build_with_tls(config.url.as_str(), certificates)
            }
        }
        .map_err(unavailable)?;
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
            down: Mutex::new(None),
        })
    }

    /// The key `P:<kind>:<name>`.
    pub(crate) fn key(&self, kind: &str, room: &str) -> String {
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

    /// Where Redis is, for logs and `/ready`: `host:port/db` (or the socket
    /// path), never the user or password of `REDIS_URL`.
    pub fn target(&self) -> String {
        let info = self.client.get_connection_info();
        format!("{}/{}", info.addr(), info.redis_settings().db())
    }

    /// Why the bus is not ready (`None` when it is), naming Redis and where
    /// it is, for `/ready`.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.is_ready() {
            return None;
        }
        let target = self.target();
        Some(match self.down.lock().clone() {
            Some(error) => format!("Redis unreachable at {target}: {error}"),
            None if !self.commands_ok.load(Ordering::Relaxed) => {
                format!("Redis at {target} has not answered yet")
            }
            None => format!("Redis pub/sub at {target} not subscribed yet"),
        })
    }

    fn command_result<T>(&self, result: redis::RedisResult<T>) -> Result<T, BusError> {
        self.commands_ok.store(result.is_ok(), Ordering::Relaxed);
        result.map_err(unavailable)
    }

    /// How long the room's keys outlive its last publish: the run's own TTL
    /// for a run room (a finished run is replayable that long, fleet-wide
    /// as on one node), `ROOMCAST_REDIS_KEY_TTL` otherwise.
    fn key_ttl_of(&self, room: &RoomName) -> Duration {
        match room.policy().retention {
            Retention::Run => self.config.run_ttl.min(self.config.key_ttl),
            Retention::Ring
            | Retention::Latest
            | Retention::Snapshot
            | Retention::State
            | Retention::None => self.config.key_ttl,
        }
    }

    /// Publishes through Redis: numbered, stored in the room's stream, sent to
    /// every node subscribed to the room (this one included, which delivers
    /// it when it comes back, in the room's order). `recipients` in the
    /// report is the number of nodes that received it.
    pub async fn publish(&self, event: &Event) -> Result<PublishReport, BusError> {
        self.publish_batch(std::slice::from_ref(event)).await
    }

    /// Publishes events of one room (the alert triggers one price fired) in
    /// one script: consecutive seqs, all or none, and one pub/sub message,
    /// which every node delivers to its members as one outbox entry.
    /// `seq` in the report is the last event's.
    pub async fn publish_batch(&self, events: &[Event]) -> Result<PublishReport, BusError> {
        let Some(room) = crate::protocol::batch_room(events) else {
            return Ok(PublishReport::default());
        };
        // The room's policy bounds its stream: approximately (cheap) for a
        // ring, exactly one entry for a room whose history is its latest snapshot.
        let (stream_len, trimming) = match room.policy().fleet_stream {
            FleetStream::Ring => (self.config.stream_len, "~"),
            FleetStream::Latest => (1, "="),
            FleetStream::Retained => (self.rooms.history_size_of(&room), "~"),
        };
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.key("seq", room.as_str()))
            .key(self.key("epoch", room.as_str()))
            .key(self.key("h", room.as_str()))
            .key(self.key("r", room.as_str()))
            .arg(new_epoch())
            .arg(stream_len)
            .arg(self.key_ttl_of(&room).as_millis() as u64)
            .arg(trimming);
        for event in events {
            // The canonical JSON, framed once: the frame's payload (with a
            // neutral event's snapshot, if it carries one) is what Redis gets.
            invocation.arg(&event.wire_json(&event.canonical_frame())[..]);
        }
        let mut conn = self.commands.clone();
        let result = with_timeout(invocation.invoke_async(&mut conn)).await;
        let (first_seq, _epoch, receivers): (u64, u64, u64) = self.command_result(result)?;
        metrics().bus_published.increment(events.len() as u64);
        Ok(PublishReport {
            seq: first_seq + events.len() as u64 - 1,
            recipients: receivers as usize,
            ..PublishReport::default()
        })
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
