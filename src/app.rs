//! The node: its shared state, built once from the configuration, for the
//! request handlers and sessions above it. Components below it get narrow
//! handles (the [`Publisher`], the rooms, the sessions), never the `App`;
//! `lib::run` spawns every long-lived one.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::AccessControl;
use crate::alerts::{AlertBook, Alerts, RedisAlerts};
use crate::auth::Authenticator;
use crate::bus::{Bus, BusError, RedisBus, RedisConfig};
use crate::config::Config;
use crate::delivery::flusher::Flusher;
use crate::publisher::Publisher;
use crate::rooms::Rooms;
use crate::sources::backtest::Backtests;
use crate::sources::backtest::fleet::FleetRuns;
use crate::sources::modeldata::{ModelData, ModelDataConfig};
use crate::sources::trading::Trading;
use crate::sources::trading::quotes::QuoteBook;
use crate::ws::sessions::{Heartbeat, Sessions};

/// Everything a request handler, session or source needs.
#[derive(Debug)]
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// Who may use which route: API keys, trusted networks, CORS.
    pub access: Arc<AccessControl>,
    /// This node's name in the fleet (`ROOMCAST_NODE_ID`).
    pub node: String,
    /// Rooms on this node.
    pub rooms: Arc<Rooms>,
    /// The transport (in-process, or Redis): cluster status, leases.
    pub bus: Arc<Bus>,
    /// The publish pipeline (bus and price alerts), handed to producers.
    pub publisher: Publisher,
    /// Checks the tokens of WebSocket upgrades (and in-band refreshes).
    pub auth: Arc<Authenticator>,
    /// Open WebSocket sessions.
    pub sessions: Arc<Sessions>,
    /// Writes fan-out frames to idle sockets (one task for every session).
    pub flusher: Arc<Flusher>,
    /// Seed 000's modeldata feeds (leases, status).
    pub modeldata: Arc<ModelData>,
    /// Backtest runs (seeds 002 and 003).
    pub backtests: Arc<Backtests>,
    /// Seed 004's producers, as its sessions and endpoints see them.
    pub trading: Arc<Trading>,
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
        let (rooms, bus, alerts) = match &config.fleet.redis_url {
            None => {
                let rooms = Arc::new(Rooms::new(&config.rooms));
                let alerts = Alerts::Local(AlertBook::new(
                    config.max_alerts,
                    config.max_alerts_per_user,
                ));
                (Arc::clone(&rooms), Bus::local(rooms), alerts)
            }
            Some(url) => {
                let (hints, hinted) = tokio::sync::mpsc::unbounded_channel();
                let rooms = Arc::new(Rooms::new_fleet(&config.rooms, hints));
                let redis = RedisBus::new(
                    RedisConfig {
                        url: url.clone(),
                        ca_file: config.fleet.redis_ca_file.clone(),
                        prefix: config.fleet.redis_prefix.clone(),
                        stream_len: config.fleet.redis_stream_len.max(config.rooms.history_size),
                        key_ttl: config.fleet.redis_key_ttl.get(),
                        run_ttl: config.rooms.run_retention.get(),
                    },
                    Arc::clone(&rooms),
                    hinted,
                )?;
                let alerts = Alerts::Fleet(RedisAlerts::new(
                    redis.commands(),
                    &config.fleet.redis_prefix,
                    config.max_alerts,
                    config.max_alerts_per_user,
                ));
                (
                    rooms,
                    Bus::fleet(redis, &node, config.fleet.lease_ttl.get()),
                    alerts,
                )
            }
        };
        let bus = Arc::new(bus);
        let quotes = Arc::new(QuoteBook::new());
        let publisher = Publisher::new(Arc::clone(&bus), Arc::new(alerts), Arc::clone(&quotes));
        let fleet_runs = match &*bus {
            Bus::Fleet(fleet) => Some(FleetRuns::new(
                fleet.redis.commands(),
                &config.fleet.redis_prefix,
                node.clone(),
                config.fleet.lease_ttl.get(),
                config.rooms.run_retention.get(),
            )),
            Bus::Local(_) => None,
        };
        Ok(Arc::new(App {
            access: Arc::new(AccessControl::new(&config.access)),
            node,
            backtests: Backtests::new(
                config.backtest.clone(),
                config.rooms.run_max_events,
                config.rooms.run_retention.get(),
                publisher.clone(),
                Arc::clone(&rooms),
                fleet_runs,
            ),
            trading: Arc::new(Trading::new(config.trading.clone(), quotes)),
            publisher,
            bus,
            auth: Authenticator::new(config.auth.clone()),
            sessions: Arc::new(Sessions::new(
                config.ws.max_connections,
                Heartbeat {
                    ping_after: config.ws.ping_interval(),
                    timeout: config.ws.heartbeat_timeout.get(),
                },
            )),
            flusher: Flusher::new(),
            modeldata: ModelData::new(
                ModelDataConfig {
                    interval: config.modeldata.interval.get(),
                    max_feeds: config.modeldata.max_feeds,
                    max_points: config.modeldata.max_points,
                    lead_ttl: (config.modeldata.interval.get() * 3)
                        .max(config.fleet.lease_ttl.get()),
                },
                config.modeldata.database_url.is_some(),
            ),
            rooms,
            config,
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }))
    }
}
