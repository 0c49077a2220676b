//! The bus: the one way events enter rooms. HTTP publish endpoints and
//! built-in sources call [`Bus::publish`]; the bus delivers into the rooms of
//! every node that has members. In embedded mode that is this process
//! ([`LocalBus`]); in fleet mode ([`RedisBus`], `REDIS_URL`) Redis numbers
//! each event in its room, keeps it in the room's stream and sends it to every
//! node subscribed to the room, so rooms and sessions never change when the
//! transport does. Producers that must run once per fleet ask
//! [`Bus::holds`] for their lease.

pub mod lease;
pub mod local;
pub mod redis;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

pub use lease::Lease;
pub use local::LocalBus;
pub use redis::{RedisBus, RedisConfig};

use crate::catalog::RoomName;
use crate::protocol::Event;
use crate::rooms::{PublishReport, Rooms, RoomsError};

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The node refused the event's room.
    #[error(transparent)]
    Rooms(#[from] RoomsError),
    /// Redis is unreachable, frozen or refused the command (HTTP 503).
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// Producers that run on one node of the fleet at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// The embedded market simulator.
    Simulator,
    /// Ingestion of seed 001's Redis channels.
    Ingest,
    /// Seed 004's price batcher and the paper-trading account.
    Trading,
}

/// The fleet bus and this node's leases.
#[derive(Debug)]
pub struct Fleet {
    /// Publishing and delivery through Redis.
    pub redis: Arc<RedisBus>,
    /// The simulator's lease.
    simulator: Arc<Lease>,
    /// The ingest lease.
    ingest: Arc<Lease>,
    /// The lease of the price batcher and the paper account.
    trading: Arc<Lease>,
    /// This node's name (the value of the leases it holds).
    node: String,
}

impl Fleet {
    /// The leases this node keeps renewing (or trying to take).
    pub fn leases(&self) -> [&Arc<Lease>; 3] {
        [&self.simulator, &self.ingest, &self.trading]
    }

    /// The ingest lease: while held, this node ingests seed 001's channels.
    pub fn ingest_lease(&self) -> Arc<Lease> {
        Arc::clone(&self.ingest)
    }
}

/// Where published events go.
#[derive(Debug)]
pub enum Bus {
    /// In-process delivery (embedded mode).
    Local(LocalBus),
    /// Redis (fleet mode).
    Fleet(Fleet),
}

impl Bus {
    /// An in-process bus delivering into `rooms`.
    pub fn local(rooms: Arc<Rooms>) -> Self {
        Bus::Local(LocalBus::new(rooms))
    }

    /// A Redis bus for node `node` with leases of `lease_ttl`.
    pub fn fleet(redis: RedisBus, node: &str, lease_ttl: Duration) -> Self {
        let lease = |name| {
            Arc::new(Lease::new(
                name,
                redis.lease_key(name),
                node.to_string(),
                lease_ttl,
                redis.commands(),
            ))
        };
        Bus::Fleet(Fleet {
            simulator: lease("simulator"),
            ingest: lease("ingest"),
            trading: lease("trading"),
            node: node.to_string(),
            redis: Arc::new(redis),
        })
    }

    /// Publishes an event to its room on every node with members.
    pub async fn publish(&self, event: &Event) -> Result<PublishReport, BusError> {
        match self {
            Bus::Local(bus) => bus.publish(event),
            Bus::Fleet(fleet) => fleet.redis.publish(event).await,
        }
    }

    /// Publishes events of one room together, in order (the alert triggers
    /// one price fired): embedded, into the room at once, all or none
    /// ([`Rooms::publish_batch`]); through Redis, in scripts of at most
    /// [`redis::MAX_BATCH`] events, each one pub/sub message, stopping at the
    /// first failure. Every member gets each script's events as one outbox
    /// entry. Returns how many were published, with the last report or the
    /// error that stopped it.
    pub async fn publish_batch(
        &self,
        events: &[Event],
    ) -> (usize, Result<PublishReport, BusError>) {
        match self {
            Bus::Local(bus) => match bus.publish_batch(events) {
                Ok(report) => (events.len(), Ok(report)),
                Err(e) => (0, Err(e)),
            },
            Bus::Fleet(fleet) => {
                let mut published = 0;
                let mut last = PublishReport::default();
                for chunk in events.chunks(redis::MAX_BATCH) {
                    match fleet.redis.publish_batch(chunk).await {
                        Ok(report) => last = report,
                        Err(e) => return (published, Err(e)),
                    }
                    published += chunk.len();
                }
                (published, Ok(last))
            }
        }
    }

    /// Whether this node leads the producer of `room` (a modeldata feed):
    /// always in embedded mode; in a fleet, the node holding the room's lease
    /// (taken if free, renewed if held, for `ttl`).
    pub async fn lead(&self, room: &RoomName, ttl: Duration) -> bool {
        match self {
            Bus::Local(_) => true,
            Bus::Fleet(fleet) => {
                let key = fleet.redis.lease_key(&format!("room:{room}"));
                lease::acquire(&mut fleet.redis.commands(), &key, &fleet.node, ttl).await
            }
        }
    }

    /// Gives up leading `room` (its last local connection left).
    pub async fn resign(&self, room: &RoomName) {
        if let Bus::Fleet(fleet) = self {
            let key = fleet.redis.lease_key(&format!("room:{room}"));
            lease::release(&mut fleet.redis.commands(), &key, &fleet.node).await;
        }
    }

    /// The fleet's live nodes (`None` in embedded mode; an error while Redis
    /// is unreachable).
    pub async fn cluster(&self) -> Option<Result<Vec<redis::NodeStatus>, BusError>> {
        match self {
            Bus::Local(_) => None,
            Bus::Fleet(fleet) => Some(fleet.redis.cluster().await),
        }
    }

    /// Whether this node may run `producer` now (always, in embedded mode).
    pub fn holds(&self, producer: Producer) -> bool {
        match self {
            Bus::Local(_) => true,
            Bus::Fleet(fleet) => match producer {
                Producer::Simulator => fleet.simulator.is_held(),
                Producer::Ingest => fleet.ingest.is_held(),
                Producer::Trading => fleet.trading.is_held(),
            },
        }
    }

    /// Whether `room` was published to: it exists here, or (in a fleet)
    /// its stream exists in Redis.
    pub async fn has_room(&self, room: &RoomName) -> Result<bool, BusError> {
        match self {
            Bus::Local(local) => Ok(local.rooms().get(room).is_some()),
            Bus::Fleet(fleet) => {
                if fleet.redis.rooms().get(room).is_some() {
                    return Ok(true);
                }
                fleet.redis.has_stream(room).await
            }
        }
    }

    /// Whether the bus can deliver right now (`/ready`).
    pub fn is_ready(&self) -> bool {
        match self {
            Bus::Local(_) => true,
            Bus::Fleet(fleet) => fleet.redis.is_ready(),
        }
    }

    /// Why the bus cannot deliver right now (`None` when it can), naming
    /// Redis and where it is (`/ready`).
    pub fn not_ready_reason(&self) -> Option<String> {
        match self {
            Bus::Local(_) => None,
            Bus::Fleet(fleet) => fleet.redis.not_ready_reason(),
        }
    }

    /// The mode for the start-up log: `embedded`, or `fleet` with Redis's
    /// `host:port/db` (never a password).
    pub fn describe(&self) -> String {
        match self {
            Bus::Local(_) => "embedded (one node, in-process bus)".into(),
            Bus::Fleet(fleet) => format!("fleet (Redis {})", fleet.redis.target()),
        }
    }

    /// Whether this is a fleet node (Redis).
    pub fn is_fleet(&self) -> bool {
        matches!(self, Bus::Fleet(_))
    }

    /// A label for status endpoints.
    pub fn mode(&self) -> &'static str {
        match self {
            Bus::Local(_) => "local",
            Bus::Fleet(_) => "redis",
        }
    }
}
