//! The node's shared state and its one publish pipeline. Every producer —
//! HTTP publish endpoints and built-in sources alike — publishes through
//! [`App::publish`], so user price alerts are evaluated on every price tick
//! whatever its origin, and everything then goes through the [`Bus`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::{Bus, BusError, RedisBus, RedisConfig};
use crate::config::Config;
use crate::delivery::flusher::Flusher;
use crate::protocol::Event;
use crate::rooms::{PublishReport, Rooms};
use crate::sources::alerts::AlertBook;
use crate::sources::modeldata::{ModelData, ModelDataConfig};
use crate::ws::sessions::Sessions;

/// Everything a request handler, session or source needs.
#[derive(Debug)]
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// This node's name in the fleet (`ROOMCAST_NODE_ID`).
    pub node: String,
    /// Rooms on this node.
    pub rooms: Arc<Rooms>,
    /// Where publishes go (in-process or, later, Redis).
    pub bus: Bus,
    /// Open WebSocket sessions.
    pub sessions: Arc<Sessions>,
    /// Writes fan-out frames to idle sockets (one task for every session).
    pub flusher: Arc<Flusher>,
    /// User price alerts, checked on every price update.
    pub alerts: AlertBook,
    /// Seed 000's modeldata feeds (leases, status).
    pub modeldata: Arc<ModelData>,
    /// Process start, for `uptime`.
    pub started: Instant,
    /// Cancelled when the node starts draining.
    pub shutdown: CancellationToken,
    /// Every spawned task (sessions, sources), awaited on drain.
    pub tracker: TaskTracker,
}

impl App {
    /// Builds the node's state from a validated config: embedded, or a fleet
    /// node when `REDIS_URL` is set (Redis is connected lazily).
    pub fn new(config: Config) -> Result<Arc<Self>, BusError> {
        let node = config.node_name();
        let (rooms, bus) = match &config.redis_url {
            None => {
                let rooms = Arc::new(Rooms::new(
                    config.rooms.history_size,
                    config.rooms.max_rooms,
                ));
                (Arc::clone(&rooms), Bus::local(rooms))
            }
            Some(url) => {
                let (hints, hinted) = tokio::sync::mpsc::unbounded_channel();
                let rooms = Arc::new(Rooms::new_fleet(
                    config.rooms.history_size,
                    config.rooms.max_rooms,
                    hints,
                ));
                let redis = RedisBus::new(
                    RedisConfig {
                        url: url.clone(),
                        prefix: config.redis_prefix.clone(),
                        stream_len: config.redis_stream_len.max(config.rooms.history_size),
                        key_ttl: Duration::from_secs_f64(config.redis_key_ttl_secs),
                    },
                    Arc::clone(&rooms),
                    hinted,
                )?;
                (rooms, Bus::fleet(redis, &node, config.lease_ttl()))
            }
        };
        Ok(Arc::new(App {
            node,
            bus,
            sessions: Arc::new(Sessions::new(config.max_connections)),
            flusher: Flusher::new(),
            alerts: AlertBook::new(config.max_alerts),
            modeldata: ModelData::new(
                ModelDataConfig {
                    interval: config.modeldata_interval(),
                    max_feeds: config.modeldata_max_feeds,
                    max_points: config.modeldata_max_points,
                    lead_ttl: (config.modeldata_interval() * 3).max(config.lease_ttl()),
                },
                config.database_url.is_some(),
            ),
            rooms,
            config,
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }))
    }

    /// Publishes an event; a price update first fires any alerts it crosses
    /// (published to the `alerts` room right after the price).
    pub async fn publish(&self, event: Event) -> Result<PublishReport, BusError> {
        let report = self.bus.publish(&event).await?;
        if let Event::PriceUpdate(price) = &event {
            for trigger in self.alerts.on_price(&price.ticker, price.price) {
                self.bus.publish(&Event::AlertTrigger(trigger)).await?;
            }
        }
        Ok(report)
    }
}
