//! In-process bus (embedded mode): a publish goes straight into this node's
//! room, so delivery order is the order of publishes.

use std::sync::Arc;

use super::BusError;
use crate::protocol::Event;
use crate::rooms::{PublishReport, Rooms};

/// Delivers events into this process's rooms.
#[derive(Debug)]
pub struct LocalBus {
    /// The node's room registry.
    rooms: Arc<Rooms>,
}

impl LocalBus {
    /// A bus delivering into `rooms`.
    pub fn new(rooms: Arc<Rooms>) -> Self {
        LocalBus { rooms }
    }

    /// The node's rooms.
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// Publishes into the local room.
    pub fn publish(&self, event: &Event) -> Result<PublishReport, BusError> {
        Ok(self.rooms.publish(event)?)
    }

    /// Publishes events of one room together: all, or none.
    pub fn publish_batch(&self, events: &[Event]) -> Result<PublishReport, BusError> {
        Ok(self.rooms.publish_batch(events)?)
    }
}
