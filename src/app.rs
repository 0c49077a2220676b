//! The node's shared state and its one publish pipeline. Every producer —
//! HTTP publish endpoints and built-in sources alike — publishes through
//! [`App::publish`], so user price alerts are evaluated on every price tick
//! whatever its origin, and everything then goes through the [`Bus`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::{AlertBook, Alerts, RedisAlerts};
use crate::bus::{Bus, BusError, RedisBus, RedisConfig};
use crate::config::Config;
use crate::delivery::flusher::Flusher;
use crate::protocol::Event;
use crate::rooms::{PublishReport, Rooms};
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
    /// User price alerts, checked on every price update: this node's, or
    /// the fleet's in Redis.
    pub alerts: Alerts,
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
        let (rooms, bus, alerts) = match &config.redis_url {
            None => {
                let rooms = Arc::new(Rooms::new(
                    config.rooms.history_size,
                    config.rooms.max_rooms,
                ));
                let alerts = Alerts::Local(AlertBook::new(config.max_alerts));
                (Arc::clone(&rooms), Bus::local(rooms), alerts)
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
                let alerts = Alerts::Fleet(RedisAlerts::new(
                    redis.commands(),
                    &config.redis_prefix,
                    config.max_alerts,
                ));
                (rooms, Bus::fleet(redis, &node, config.lease_ttl()), alerts)
            }
        };
        Ok(Arc::new(App {
            node,
            bus,
            sessions: Arc::new(Sessions::new(config.max_connections)),
            flusher: Flusher::new(),
            alerts,
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

    /// Publishes an event; a price update then fires the alerts it crosses,
    /// whose triggers are published to the `alerts` room together, right
    /// after the price. An error means nothing was published. Once the price
    /// is out, the outcome says what became of its alerts: triggers that
    /// could not be published (Redis failing in between) are not lost, their
    /// alerts are armed again and fire on the next crossing price.
    pub async fn publish(&self, event: Event) -> Result<PublishOutcome, BusError> {
        let report = self.bus.publish(&event).await?;
        let Event::PriceUpdate(price) = &event else {
            return Ok(PublishOutcome {
                report,
                alerts: None,
            });
        };
        let fired = match self.alerts.on_price(&price.ticker, price.price).await {
            Ok(fired) if fired.is_empty() => {
                return Ok(PublishOutcome {
                    report,
                    alerts: None,
                });
            }
            Ok(fired) => fired,
            Err(e) => {
                // Nothing fired: the alerts stay armed for the next price.
                tracing::warn!(ticker = %price.ticker, error = %e, "price alerts not checked");
                return Ok(PublishOutcome {
                    report,
                    alerts: Some(AlertsFired {
                        fired: 0,
                        published: 0,
                        rearmed: 0,
                        error: Some(format!("alerts not checked: {e}")),
                    }),
                });
            }
        };
        let triggers: Vec<Event> = fired
            .iter()
            .map(|f| Event::AlertTrigger(f.trigger.clone()))
            .collect();
        let (published, result) = self.bus.publish_batch(&triggers).await;
        let rearmed = fired.len() - published;
        let error = result.err().map(|e| {
            tracing::warn!(ticker = %price.ticker, published, rearmed, error = %e, "alert triggers not published; their alerts are armed again");
            e.to_string()
        });
        let unpublished: Vec<_> = fired.into_iter().skip(published).map(|f| f.alert).collect();
        if let Err(e) = self.alerts.restore(unpublished).await {
            tracing::error!(ticker = %price.ticker, rearmed, error = %e, "fired alerts could not be armed again");
        }
        Ok(PublishOutcome {
            report,
            alerts: Some(AlertsFired {
                fired: published + rearmed,
                published,
                rearmed,
                error,
            }),
        })
    }
}

/// What [`App::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The event's publish.
    pub report: PublishReport,
    /// For a price that fired alerts: what became of them.
    pub alerts: Option<AlertsFired>,
}

/// The alerts one price fired.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertsFired {
    /// Alerts the price crossed.
    pub fired: usize,
    /// Triggers published to the `alerts` room.
    pub published: usize,
    /// Alerts whose trigger could not be published, armed again.
    pub rearmed: usize,
    /// Why publishing stopped, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
