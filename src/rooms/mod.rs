//! The room registry: every room on this node by name. Publishers and
//! sessions look rooms up here (the map guard is dropped as soon as the
//! room's `Arc` is cloned out); a room exists while it has members or
//! retained history, and the registry is capped so arbitrary names cannot
//! grow it without bound.

pub mod history;
pub mod room;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc::UnboundedSender;

pub use room::{Head, PublishReport, Remote, Retired, Room};

use crate::close_code::CloseCode;
use crate::dialect::{DialectKind, Greeting, JoinError, Joined, Resume};
use crate::ids::SessionId;
use crate::outbox::Outbox;
use crate::protocol::{Event, RoomName};
use crate::telemetry::{Limit, metrics};

/// Default maximum number of rooms on one node.
pub const DEFAULT_MAX_ROOMS: usize = 100_000;

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomsError {
    /// Creating the event's room would exceed the node's room cap.
    #[error("room limit reached ({0} rooms)")]
    TooManyRooms(usize),
}

/// All rooms on this node.
#[derive(Debug)]
pub struct Rooms {
    /// Rooms by name; sharded so lookups from many sessions rarely contend.
    map: DashMap<RoomName, Arc<Room>>,
    /// Events each new room retains for replay (modeldata rooms keep none:
    /// a new member gets the room's snapshot instead).
    history_size: usize,
    /// Cap on `map.len()`.
    max_rooms: usize,
    /// Fleet mode: rooms are fed by the bus, history lives in Redis, so a
    /// room goes as soon as its last local member leaves; each time a room
    /// gains its first member or loses its last, its name is sent here so
    /// the bus (re)checks whether to subscribe to it.
    fleet: Option<UnboundedSender<RoomName>>,
}

impl Rooms {
    /// An empty registry.
    pub fn new(history_size: usize, max_rooms: usize) -> Self {
        Rooms {
            map: DashMap::new(),
            history_size,
            max_rooms,
            fleet: None,
        }
    }

    /// A registry for fleet mode: membership changes are hinted to `hints`.
    pub fn new_fleet(
        history_size: usize,
        max_rooms: usize,
        hints: UnboundedSender<RoomName>,
    ) -> Self {
        Rooms {
            fleet: Some(hints),
            ..Rooms::new(history_size, max_rooms)
        }
    }

    /// Events a room retains for replay.
    pub fn history_size(&self) -> usize {
        self.history_size
    }

    /// Admits members that waited longer than `max_wait` for their room to
    /// catch up with their resume point (fleet mode).
    pub fn admit_overdue(&self, max_wait: std::time::Duration) {
        let rooms: Vec<Arc<Room>> = self.map.iter().map(|r| Arc::clone(r.value())).collect();
        for room in rooms {
            room.admit_overdue(max_wait);
        }
    }

    /// Whether `name` has members on this node (the bus subscribes to it then).
    pub fn has_members(&self, name: &RoomName) -> bool {
        self.get(name).is_some_and(|r| r.member_count() > 0)
    }

    /// Delivers an event another node published into the local room, if this
    /// node has it; `None` when it does not.
    pub fn deliver(
        &self,
        event: &Event,
        canonical_frame: &Bytes,
        seq: u64,
        epoch: u64,
        accept_gap: bool,
    ) -> Option<Remote> {
        let started = Instant::now();
        let room = self.get(&event.room())?;
        let remote = room.deliver(event, canonical_frame, seq, epoch, accept_gap);
        if let Remote::Delivered(report) = &remote {
            self.record(report, started);
        }
        Some(remote)
    }

    /// The room named `name`, if it exists.
    pub fn get(&self, name: &RoomName) -> Option<Arc<Room>> {
        self.map.get(name).map(|r| Arc::clone(&r))
    }

    fn get_or_create(&self, name: &RoomName) -> Result<Arc<Room>, RoomsError> {
        if let Some(room) = self.get(name) {
            return Ok(room);
        }
        if self.map.len() >= self.max_rooms {
            metrics().limit_hit(Limit::Rooms);
            return Err(RoomsError::TooManyRooms(self.max_rooms));
        }
        let room = self
            .map
            .entry(name.clone())
            .or_insert_with(|| {
                metrics().rooms.increment(1.0);
                let history = self.history_size_of(name);
                Arc::new(if self.fleet.is_some() {
                    Room::new_remote(name.clone(), history)
                } else {
                    Room::new(name.clone(), history)
                })
            })
            .clone();
        Ok(room)
    }

    fn history_size_of(&self, name: &RoomName) -> usize {
        if name.is_modeldata() {
            0
        } else {
            self.history_size
        }
    }

    /// Publishes an event into its room, created if needed to retain history;
    /// an event for a room that keeps no history and has no members is
    /// delivered to nobody, so no room is created for it.
    pub fn publish(&self, event: &Event) -> Result<PublishReport, RoomsError> {
        let started = Instant::now();
        let name = event.room();
        let room = if self.history_size_of(&name) == 0 {
            match self.get(&name) {
                Some(room) => room,
                None => return Ok(PublishReport::default()),
            }
        } else {
            self.get_or_create(&name)?
        };
        let report = room.publish(event);
        self.record(&report, started);
        Ok(report)
    }

    fn record(&self, report: &PublishReport, started: Instant) {
        let m = metrics();
        m.fanout_seconds.record(started.elapsed().as_secs_f64());
        m.events_published.increment(1);
        if report.conflated > 0 {
            m.frames_conflated.increment(report.conflated as u64);
        }
        if report.dropped > 0 {
            m.frames_dropped.increment(report.dropped as u64);
        }
        for _ in 0..report.overflowed {
            m.closed(CloseCode::SlowConsumer);
        }
    }

    /// Adds a session to a room (created if needed), queuing `greet`'s frames first.
    pub fn join(
        &self,
        name: &RoomName,
        session: SessionId,
        kind: DialectKind,
        outbox: &Arc<Outbox>,
        greet: Greeting,
    ) -> Result<(Arc<Room>, Joined), JoinError> {
        self.join_resuming(name, session, kind, outbox, None, greet)
    }

    /// [`Rooms::join`] for a member resuming after `resume` ([`Room::join_resuming`]).
    pub fn join_resuming(
        &self,
        name: &RoomName,
        session: SessionId,
        kind: DialectKind,
        outbox: &Arc<Outbox>,
        resume: Option<Resume>,
        mut greet: Greeting,
    ) -> Result<(Arc<Room>, Joined), JoinError> {
        loop {
            let room = self
                .get_or_create(name)
                .map_err(|_| JoinError::TooManyRooms)?;
            let before = room.member_count();
            // A retired room was removed between lookup and join: look again.
            match room.join_resuming(session, kind, outbox, resume, greet) {
                Err(Retired(back)) => greet = back,
                Ok(joined) => {
                    if joined == Joined::New {
                        metrics().subscriptions.increment(1.0);
                        if before == 0
                            && let Some(hints) = &self.fleet
                        {
                            let _ = hints.send(name.clone());
                        }
                    }
                    return Ok((room, joined));
                }
            }
        }
    }

    /// Removes a session from a room; the room goes when it is left unused.
    pub fn leave(&self, room: &Arc<Room>, session: SessionId, kind: DialectKind) -> bool {
        if !room.leave(session, kind) {
            return false;
        }
        metrics().subscriptions.decrement(1.0);
        if room.member_count() == 0 {
            let fleet = self.fleet.is_some();
            let removed = self
                .map
                .remove_if(room.name(), |_, r| {
                    Arc::ptr_eq(r, room) && r.retire_if_unused(fleet)
                })
                .is_some();
            if removed {
                metrics().rooms.decrement(1.0);
            }
            if let Some(hints) = &self.fleet {
                let _ = hints.send(room.name().clone());
            }
        }
        true
    }

    /// Number of rooms.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `(room, member count)` of every room with members (for status endpoints).
    pub fn member_counts(&self) -> Vec<(RoomName, usize)> {
        self.map
            .iter()
            .filter_map(|entry| {
                let n = entry.value().member_count();
                (n > 0).then(|| (entry.key().clone(), n))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AlertTrigger, RoomName};

    fn alert() -> Event {
        Event::AlertTrigger(AlertTrigger {
            ticker: "AAPL".into(),
            alert_type: "above".into(),
            trigger_price: 1.0,
            current_price: 2.0,
            message: "m".into(),
            timestamp: "t".into(),
        })
    }

    fn none() -> Greeting {
        Box::new(|_| Vec::new())
    }

    #[test]
    fn room_without_history_is_removed_when_last_member_leaves() {
        let rooms = Rooms::new(10, 100);
        let outbox = Arc::new(Outbox::new(8));
        let id = SessionId::next();
        let (room, _) = rooms
            .join(
                &RoomName::patterns(),
                id,
                DialectKind::Seed001,
                &outbox,
                none(),
            )
            .unwrap();
        assert_eq!(rooms.len(), 1);
        assert!(rooms.leave(&room, id, DialectKind::Seed001));
        assert_eq!(rooms.len(), 0);
    }

    #[test]
    fn room_with_history_outlives_its_members() {
        let rooms = Rooms::new(10, 100);
        let outbox = Arc::new(Outbox::new(8));
        let id = SessionId::next();
        let (room, _) = rooms
            .join(
                &RoomName::alerts(),
                id,
                DialectKind::Seed001,
                &outbox,
                none(),
            )
            .unwrap();
        rooms.publish(&alert()).unwrap();
        rooms.leave(&room, id, DialectKind::Seed001);
        assert_eq!(rooms.get(&RoomName::alerts()).unwrap().history_len(), 1);
    }

    #[test]
    fn room_cap_refuses_new_rooms_but_serves_existing() {
        let rooms = Rooms::new(10, 1);
        rooms.publish(&alert()).unwrap();
        let outbox = Arc::new(Outbox::new(8));
        let err = rooms
            .join(
                &RoomName::patterns(),
                SessionId::next(),
                DialectKind::Seed001,
                &outbox,
                none(),
            )
            .unwrap_err();
        assert_eq!(err, JoinError::TooManyRooms);
        assert!(rooms.publish(&alert()).is_ok());
    }
}
