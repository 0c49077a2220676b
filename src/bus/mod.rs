//! The bus: the one way events enter rooms. HTTP publish endpoints and
//! built-in sources call [`Bus::publish`]; the bus delivers into the rooms of
//! every node that has members. In embedded mode that is this process
//! ([`LocalBus`]); fleet mode adds a Redis implementation behind the same
//! enum, so rooms and sessions never change when the transport does.

pub mod local;

use std::sync::Arc;

pub use local::LocalBus;

use crate::protocol::Event;
use crate::rooms::{PublishReport, Rooms, RoomsError};

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The node refused the event's room.
    #[error(transparent)]
    Rooms(#[from] RoomsError),
}

/// Where published events go.
#[derive(Debug)]
pub enum Bus {
    /// In-process delivery (embedded mode).
    Local(LocalBus),
}

impl Bus {
    /// An in-process bus delivering into `rooms`.
    pub fn local(rooms: Arc<Rooms>) -> Self {
        Bus::Local(LocalBus::new(rooms))
    }

    /// Publishes an event to its room on every node with members.
    pub async fn publish(&self, event: &Event) -> Result<PublishReport, BusError> {
        match self {
            Bus::Local(bus) => bus.publish(event),
        }
    }

    /// Whether the bus can deliver right now (`/ready`).
    pub fn is_ready(&self) -> bool {
        match self {
            Bus::Local(_) => true,
        }
    }

    /// A label for status endpoints.
    pub fn mode(&self) -> &'static str {
        match self {
            Bus::Local(_) => "local",
        }
    }
}
