//! The room registry: every room on this node by name. Publishers and
//! sessions look rooms up here (the map guard is dropped as soon as the
//! room's `Arc` is cloned out). What each room keeps, and so how long it
//! lives, is its catalog policy's retention: a room exists while it has
//! members or retained history, until it has been idle longer than its
//! retention allows; the rooms the node publishes into itself (pinned) exist
//! from the start and never go. The registry is capped so arbitrary names
//! cannot grow it without bound: at the cap the longest-idle memberless
//! rooms make way for new ones.

pub mod history;
pub mod limits;
pub mod room;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

pub use room::{Head, PublishReport, Remote, Retired, Room};

use crate::catalog::{Retention, RoomKind, RoomName};
use crate::close_code::CloseCode;
use crate::delivery::outbox::Outbox;
use crate::dialect::{DialectKind, Greeting, JoinError, Joined, Resume};
use crate::ids::SessionId;
use crate::protocol::Event;
use crate::telemetry::{Limit, RetireReason, metrics};
use limits::RoomLimits;

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
    /// Events a room of [`Retention::Ring`] retains for replay
    /// (`ROOMCAST_HISTORY_SIZE`).
    history_size: usize,
    /// Cap on the rooms that are not pinned (`map.len() - pinned`).
    max_rooms: usize,
    /// Rooms created at start-up that never go (not counted by the cap).
    pinned: usize,
    /// How long a memberless ring or latest room outlives its last publish
    /// (`ROOMCAST_ROOM_IDLE_TTL`; run rooms have their own TTL).
    idle_ttl: Duration,
    /// Events a run room retains: a whole run (`ROOMCAST_BACKTEST_MAX_EVENTS`).
    run_max_events: usize,
    /// How long a memberless run room outlives its last publish
    /// (`ROOMCAST_BACKTEST_RETENTION`).
    run_ttl: Duration,
    /// Fleet mode: rooms are fed by the bus, history lives in Redis, so a
    /// room goes as soon as its last local member leaves; each time a room
    /// gains its first member or loses its last, its name is sent here so
    /// the bus (re)checks whether to subscribe to it.
    fleet: Option<UnboundedSender<RoomName>>,
}

impl Rooms {
    /// A registry bounded by `limits`, holding the pinned rooms the catalog names.
    pub fn new(limits: &RoomLimits) -> Self {
        let mut rooms = Rooms {
            map: DashMap::new(),
            history_size: limits.history_size,
            max_rooms: limits.max_rooms,
            pinned: 0,
            idle_ttl: limits.idle_ttl.get(),
            run_max_events: limits.run_max_events,
            run_ttl: limits.run_retention.get(),
            fleet: None,
        };
        for name in RoomName::fixed() {
            if name.policy().pinned {
                let room = Room::new(name.clone(), rooms.history_size_of(&name));
                rooms.map.insert(name, Arc::new(room));
                rooms.pinned += 1;
                metrics().rooms.increment(1.0);
            }
        }
        rooms
    }

    /// A registry for fleet mode: rooms live here only while they have
    /// members (their history is in Redis), so none is pinned; membership
    /// changes are hinted to `hints`.
    pub fn new_fleet(limits: &RoomLimits, hints: UnboundedSender<RoomName>) -> Self {
        Rooms {
            map: DashMap::new(),
            history_size: limits.history_size,
            max_rooms: limits.max_rooms,
            pinned: 0,
            idle_ttl: limits.idle_ttl.get(),
            run_max_events: limits.run_max_events,
            run_ttl: limits.run_retention.get(),
            fleet: Some(hints),
        }
    }

    /// Events the room `name` retains for replay, by its retention policy.
    pub fn history_size_of(&self, name: &RoomName) -> usize {
        match name.policy().retention {
            Retention::Ring => self.history_size,
            Retention::Latest => 1,
            Retention::Run => self.run_max_events,
            Retention::Snapshot | Retention::State | Retention::None => 0,
        }
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
            self.record(report, started, 1);
        }
        Some(remote)
    }

    /// Delivers a batch another node published into the local room (see
    /// [`Room::deliver_batch`]); `None` when this node does not have the
    /// room or the batch does not directly follow its copy.
    pub fn deliver_batch(
        &self,
        room: &RoomName,
        events: &[(&Event, &Bytes)],
        first: u64,
        epoch: u64,
    ) -> Option<PublishReport> {
        let started = Instant::now();
        let report = self.get(room)?.deliver_batch(events, first, epoch)?;
        self.record(&report, started, events.len());
        Some(report)
    }

    /// The room named `name`, if it exists.
    pub fn get(&self, name: &RoomName) -> Option<Arc<Room>> {
        self.map.get(name).map(|r| Arc::clone(&r))
    }

    fn get_or_create(&self, name: &RoomName) -> Result<Arc<Room>, RoomsError> {
        if let Some(room) = self.get(name) {
            return Ok(room);
        }
        if self.map.len() - self.pinned >= self.max_rooms && self.evict_idle() == 0 {
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

    /// At the room cap: retires the longest-idle memberless rooms (a
    /// hundredth of the cap, at least one, so a burst of new names scans the
    /// registry once per batch rather than once per room). Returns how many
    /// went.
    fn evict_idle(&self) -> usize {
        let batch = (self.max_rooms / 100).max(1);
        let now = Instant::now();
        let mut candidates: Vec<(Instant, Arc<Room>)> = self
            .map
            .iter()
            .filter_map(|entry| {
                let since = entry.value().idle_since(now)?;
                Some((since, Arc::clone(entry.value())))
            })
            .collect();
        // Longest idle first; among equally idle rooms, by name (deterministic).
        let order = |a: &(Instant, Arc<Room>), b: &(Instant, Arc<Room>)| {
            (a.0, a.1.name()).cmp(&(b.0, b.1.name()))
        };
        if candidates.len() > batch {
            candidates.select_nth_unstable_by(batch - 1, order);
            candidates.truncate(batch);
        }
        let evicted = candidates
            .into_iter()
            .filter(|(since, room)| self.remove_if(room, |r| r.retire_if_idle_since(*since, now)))
            .count();
        if evicted > 0 {
            metrics().rooms_retired(RetireReason::Evicted, evicted);
            tracing::debug!(evicted, "room cap reached: longest-idle rooms retired");
        }
        evicted
    }

    /// Retires every memberless room idle longer than its retention keeps
    /// it: `idle_ttl` for ring and latest rooms, the run's own TTL for run
    /// rooms. Returns how many went.
    pub fn retire_idle(&self, idle_ttl: Duration) -> usize {
        let now = Instant::now();
        let idle: Vec<(Instant, Arc<Room>)> = self
            .map
            .iter()
            .filter_map(|entry| {
                let ttl = match entry.key().policy().retention {
                    Retention::Run => self.run_ttl,
                    Retention::Ring
                    | Retention::Latest
                    | Retention::Snapshot
                    | Retention::State
                    | Retention::None => idle_ttl,
                };
                let cutoff = now.checked_sub(ttl)?;
                let since = entry.value().idle_since(now)?;
                (since <= cutoff).then(|| (cutoff, Arc::clone(entry.value())))
            })
            .collect();
        let retired = idle
            .into_iter()
            .filter(|(cutoff, room)| self.remove_if(room, |r| r.retire_if_idle_since(*cutoff, now)))
            .count();
        if retired > 0 {
            metrics().rooms_retired(RetireReason::Idle, retired);
            tracing::debug!(retired, "idle rooms retired");
        }
        retired
    }

    /// Retires idle rooms until `shutdown`, a quarter of the idle TTL apart
    /// (1–60 s; see [`Rooms::retire_idle`]).
    pub async fn run_retirement(self: Arc<Self>, shutdown: CancellationToken) {
        let idle_ttl = self.idle_ttl;
        let period = (idle_ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    self.retire_idle(idle_ttl);
                }
            }
        }
    }

    /// Removes `room` from the map if it is still the registered one and
    /// `retire` marks it retired (under the map's shard lock, so no join
    /// can slip in between).
    fn remove_if(&self, room: &Arc<Room>, retire: impl FnOnce(&Room) -> bool) -> bool {
        let removed = self
            .map
            .remove_if(room.name(), |_, r| Arc::ptr_eq(r, room) && retire(r))
            .is_some();
        if removed {
            metrics().rooms.decrement(1.0);
        }
        removed
    }

    /// Publishes an event into its room, created if needed to retain history;
    /// an event for a room that keeps no history and has no members is
    /// delivered to nobody, so no room is created for it.
    pub fn publish(&self, event: &Event) -> Result<PublishReport, RoomsError> {
        let started = Instant::now();
        let Some(room) = self.room_for(&event.room())? else {
            return Ok(PublishReport::default());
        };
        let report = room.publish(event);
        self.record(&report, started, 1);
        Ok(report)
    }

    /// Publishes events of one room together ([`Room::publish_batch`]): all
    /// or, when the room is refused, none.
    pub fn publish_batch(&self, events: &[Event]) -> Result<PublishReport, RoomsError> {
        let started = Instant::now();
        let Some(name) = crate::protocol::batch_room(events) else {
            return Ok(PublishReport::default());
        };
        let Some(room) = self.room_for(&name)? else {
            return Ok(PublishReport::default());
        };
        let report = room.publish_batch(events);
        self.record(&report, started, events.len());
        Ok(report)
    }

    /// The room a publish to `name` goes to: created if its retention keeps
    /// events or state; `None` for a room that keeps neither and does not
    /// exist (nobody would receive the event).
    fn room_for(&self, name: &RoomName) -> Result<Option<Arc<Room>>, RoomsError> {
        if self.history_size_of(name) == 0 && name.policy().retention != Retention::State {
            return Ok(self.get(name));
        }
        self.get_or_create(name).map(Some)
    }

    fn record(&self, report: &PublishReport, started: Instant, events: usize) {
        let m = metrics();
        m.fanout_seconds.record(started.elapsed().as_secs_f64());
        m.events_published.increment(events as u64);
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
            self.remove_if(room, |r| r.retire_if_unused(fleet));
            if let Some(hints) = &self.fleet {
                let _ = hints.send(room.name().clone());
            }
        }
        true
    }

    /// Drops the room `name` with its history (a run the registry forgot):
    /// members still in it keep what they got and get nothing more; a new
    /// run of the same id gets a new room. Returns whether it went.
    pub fn discard(&self, name: &RoomName) -> bool {
        let Some(room) = self.get(name) else {
            return false;
        };
        self.remove_if(&room, Room::retire_now)
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

    /// Every room of `room_kind` with members of dialect `kind`, with how many.
    pub fn member_counts_of(
        &self,
        room_kind: RoomKind,
        kind: DialectKind,
    ) -> Vec<(RoomName, usize)> {
        let rooms: Vec<Arc<Room>> = self
            .map
            .iter()
            .filter(|entry| entry.key().kind() == room_kind && entry.value().member_count() > 0)
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        rooms
            .into_iter()
            .filter_map(|room| {
                let n = room.member_count_of(kind);
                (n > 0).then(|| (room.name().clone(), n))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AlertTrigger, PriceUpdate};

    fn alert() -> Event {
        Event::from(AlertTrigger {
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

    fn price(ticker: &str) -> Event {
        Event::from(PriceUpdate {
            ticker: ticker.into(),
            price: 1.0,
            change: 0.0,
            change_percent: 0.0,
            volume: 1.0,
            high: 1.0,
            low: 1.0,
            open: 1.0,
            timestamp: "t".into(),
        })
    }

    fn join(rooms: &Rooms, name: &RoomName) -> Result<(Arc<Room>, SessionId), JoinError> {
        let outbox = Arc::new(Outbox::new(8));
        let id = SessionId::next();
        rooms
            .join(name, id, DialectKind::Seed001, &outbox, none())
            .map(|(room, _)| (room, id))
    }

    #[test]
    fn room_without_history_is_removed_when_last_member_leaves() {
        let rooms = Rooms::new(&RoomLimits::new(0, 100));
        let pinned = rooms.len();
        let (room, id) = join(&rooms, &RoomName::ticker("AAPL")).unwrap();
        assert_eq!(rooms.len(), pinned + 1);
        assert!(rooms.leave(&room, id, DialectKind::Seed001));
        assert_eq!(rooms.len(), pinned);
    }

    #[test]
    fn room_with_history_outlives_its_members() {
        let rooms = Rooms::new(&RoomLimits::new(10, 100));
        let (room, id) = join(&rooms, &RoomName::ticker("AAPL")).unwrap();
        rooms.publish(&price("AAPL")).unwrap();
        rooms.leave(&room, id, DialectKind::Seed001);
        let room = rooms.get(&RoomName::ticker("AAPL")).unwrap();
        assert_eq!(room.history_len(), 1);
    }

    #[test]
    fn the_rooms_the_node_publishes_into_exist_from_the_start_outside_the_cap() {
        let rooms = Rooms::new(&RoomLimits::new(10, 1));
        for name in RoomName::fixed() {
            assert!(rooms.get(&name).is_some(), "{name}");
        }
        // The cap is for the rooms clients and producers name.
        rooms.publish(&price("AAPL")).unwrap();
        rooms.publish(&alert()).unwrap();
        let (room, id) = join(&rooms, &RoomName::alerts()).unwrap();
        rooms.leave(&room, id, DialectKind::Seed001);
        assert_eq!(rooms.retire_idle(Duration::ZERO), 1, "only the ticker goes");
        assert!(rooms.get(&RoomName::alerts()).is_some());
    }

    #[test]
    fn at_the_cap_the_longest_idle_memberless_room_makes_way() {
        let rooms = Rooms::new(&RoomLimits::new(10, 2));
        rooms.publish(&price("OLD")).unwrap();
        // Idleness is observed by the retirement pass (publishing reads no
        // clock): OLD is seen idle from here on.
        assert_eq!(rooms.retire_idle(Duration::from_secs(3600)), 0);
        rooms.publish(&price("NEW")).unwrap();
        rooms.publish(&price("NEWEST")).unwrap();
        assert!(rooms.get(&RoomName::ticker("OLD")).is_none());
        assert!(rooms.get(&RoomName::ticker("NEW")).is_some());
        assert!(rooms.get(&RoomName::ticker("NEWEST")).is_some());
    }

    #[test]
    fn at_the_cap_with_every_room_watched_a_new_room_is_refused() {
        let rooms = Rooms::new(&RoomLimits::new(10, 1));
        let (_watched, _) = join(&rooms, &RoomName::ticker("AAPL")).unwrap();
        assert_eq!(
            rooms.publish(&price("MSFT")),
            Err(RoomsError::TooManyRooms(1))
        );
        assert_eq!(
            join(&rooms, &RoomName::ticker("MSFT")).unwrap_err(),
            JoinError::TooManyRooms
        );
        // Existing rooms are still served.
        assert_eq!(rooms.publish(&price("AAPL")).unwrap().recipients, 1);
    }

    #[test]
    fn idle_rooms_retire_after_their_ttl_and_watched_ones_stay() {
        let rooms = Rooms::new(&RoomLimits::new(10, 100));
        rooms.publish(&price("IDLE")).unwrap();
        let (_watched, _) = join(&rooms, &RoomName::ticker("WATCHED")).unwrap();
        rooms.publish(&price("WATCHED")).unwrap();
        assert_eq!(rooms.retire_idle(Duration::from_secs(3600)), 0);
        assert_eq!(rooms.retire_idle(Duration::ZERO), 1);
        assert!(rooms.get(&RoomName::ticker("IDLE")).is_none());
        assert!(rooms.get(&RoomName::ticker("WATCHED")).is_some());
    }

    #[test]
    fn retention_decides_how_many_events_a_room_keeps() {
        let rooms = Rooms::new(&RoomLimits::new(10, 100));
        assert_eq!(rooms.history_size_of(&RoomName::ticker("X")), 10);
        assert_eq!(rooms.history_size_of(&RoomName::alerts()), 10);
        assert_eq!(rooms.history_size_of(&RoomName::modeldata(None)), 0);
    }
}

#[cfg(test)]
mod proptests {
    //! The registry against a model: arbitrary sequences of joins, leaves and
    //! publishes over a few rooms (ordered, conflating, and a modeldata room
    //! that keeps no history) and sessions of every dialect, checked after
    //! every step for membership, room count and cap, `seq`, retained
    //! history and rooms removed once unused; and at the end for exactly
    //! which frames each session received, in order.
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    use proptest::prelude::*;

    use super::*;
    use crate::delivery::outbox::Drain;
    use crate::frame;
    use crate::protocol::{AlertTrigger, ModelDataFrame, PatternAlert, PriceUpdate};

    /// Rooms of the test, by index: two ordered and pinned, a conflating
    /// one, a modeldata one, and a second conflating one (two rooms compete
    /// for a small cap).
    fn room_names() -> [RoomName; 5] {
        [
            RoomName::patterns(),
            RoomName::alerts(),
            RoomName::ticker("AAPL"),
            RoomName::modeldata(None),
            RoomName::ticker("MSFT"),
        ]
    }

    /// Whether room `room` of the test is pinned (exists from the start, never goes).
    fn pinned(room: usize) -> bool {
        room < 2
    }

    /// Dialects of the test's sessions, by index.
    const SESSION_KINDS: [DialectKind; 4] = [
        DialectKind::Seed001,
        DialectKind::Native,
        DialectKind::Seed000,
        DialectKind::Seed001,
    ];

    /// Big enough that no outbox overflows or conflates in a test.
    const OUTBOX_CAPACITY: usize = 1024;

    #[derive(Debug, Clone)]
    enum Op {
        Join { session: usize, room: usize },
        Leave { session: usize, room: usize },
        Publish { room: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        let sessions = 0..SESSION_KINDS.len();
        let rooms = 0..room_names().len();
        prop_oneof![
            (sessions.clone(), rooms.clone())
                .prop_map(|(session, room)| Op::Join { session, room }),
            (sessions, rooms.clone()).prop_map(|(session, room)| Op::Leave { session, room }),
            rooms.prop_map(|room| Op::Publish { room }),
        ]
    }

    /// What a session receives, as far as the registry decides it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Received {
        /// The greeting of a new join: the room's `seq` and retained `seq`s then.
        Greeting {
            room: String,
            seq: u64,
            retained: Vec<u64>,
        },
        /// A published event (its unique id), with the `seq` the frame
        /// carries (native frames carry one; seed frames do not).
        Event { id: u64, seq: Option<u64> },
    }

    /// An event for room `room` that carries `id` (in a field each shape has).
    fn event(room: usize, id: u64) -> Event {
        let timestamp = "2025-11-18T10:30:00.000Z".to_string();
        match room {
            0 => Event::from(PatternAlert {
                ticker: "AAPL".into(),
                pattern_type: "VCP".into(),
                score: id as f64,
                entry_price: 1.0,
                stop_price: 0.5,
                target_price: 2.0,
                risk_reward_ratio: 2.0,
                message: "m".into(),
                timestamp,
            }),
            1 => Event::from(AlertTrigger {
                ticker: "AAPL".into(),
                alert_type: "above".into(),
                trigger_price: id as f64,
                current_price: 2.0,
                message: "m".into(),
                timestamp,
            }),
            2 | 4 => Event::from(PriceUpdate {
                ticker: if room == 2 { "AAPL" } else { "MSFT" }.into(),
                price: id as f64,
                change: 0.0,
                change_percent: 0.0,
                volume: 1.0,
                high: id as f64,
                low: id as f64,
                open: id as f64,
                timestamp,
            }),
            _ => Event::ModelData(ModelDataFrame {
                room: RoomName::modeldata(None),
                frame: frame::text(
                    format!(r#"{{"type":"modeldata_update","id":{id}}}"#).as_bytes(),
                ),
                first: None,
                snapshot: None,
            }),
        }
    }

    /// Whether a member of dialect `kind` is sent events of room `room`.
    fn carries(kind: DialectKind, room: usize) -> bool {
        let modeldata = room == 3;
        match kind {
            DialectKind::Seed000 => modeldata,
            _ => !modeldata,
        }
    }

    /// Reads back what one frame a session received was.
    fn received(frame: &Bytes) -> Received {
        let json: serde_json::Value = serde_json::from_slice(&frame::payload(frame)).unwrap();
        if let Some(room) = json.get("greet") {
            return Received::Greeting {
                room: room.as_str().unwrap().to_string(),
                seq: json["seq"].as_u64().unwrap(),
                retained: serde_json::from_value(json["retained"].clone()).unwrap(),
            };
        }
        let (data, seq) = match json["type"].as_str() {
            Some("message") => (&json["data"], json["seq"].as_u64()),
            _ => (&json, None),
        };
        let id = ["score", "trigger_price", "price", "id"]
            .iter()
            .find_map(|field| data.get(*field).and_then(serde_json::Value::as_f64))
            .unwrap() as u64;
        Received::Event { id, seq }
    }

    /// A greeting that reports what the room showed the joiner.
    fn reporting_greeting(room: &RoomName) -> Greeting {
        let room = room.to_string();
        Box::new(move |retained: &crate::dialect::Retained<'_>| {
            let seqs: Vec<u64> = retained.entries.iter().map(|(seq, _)| *seq).collect();
            let json = serde_json::json!({"greet": room, "seq": retained.seq, "retained": seqs});
            vec![frame::json(&json)]
        })
    }

    #[derive(Debug, Default)]
    struct ModelRoom {
        seq: u64,
        members: BTreeSet<usize>,
        retained: VecDeque<u64>,
        /// Step since which the room has been idle, as last observed.
        idle: usize,
        /// `seq` at that observation.
        observed_seq: u64,
    }

    /// The registry's rules, written down plainly.
    #[derive(Debug)]
    struct Model {
        history_size: usize,
        max_rooms: usize,
        rooms: BTreeMap<usize, ModelRoom>,
        expected: Vec<Vec<Received>>,
        /// The current step (for `ModelRoom::active`).
        step: usize,
    }

    impl Model {
        fn history_of(&self, room: usize) -> usize {
            if room == 3 { 0 } else { self.history_size }
        }

        /// Creates `room` if the cap allows, evicting the longest-idle
        /// memberless room at the cap; false when refused.
        fn create(&mut self, room: usize) -> bool {
            if self.rooms.contains_key(&room) {
                return true;
            }
            let unpinned = self.rooms.keys().filter(|r| !pinned(**r)).count();
            if unpinned >= self.max_rooms {
                // Eviction observes every candidate now: one published since
                // its last observation is idle from now.
                let step = self.step;
                for (_, state) in self
                    .rooms
                    .iter_mut()
                    .filter(|(r, state)| !pinned(**r) && state.members.is_empty())
                {
                    if state.seq != state.observed_seq {
                        state.observed_seq = state.seq;
                        state.idle = step;
                    }
                }
                let victim = self
                    .rooms
                    .iter()
                    .filter(|(r, state)| !pinned(**r) && state.members.is_empty())
                    .min_by_key(|(r, state)| (state.idle, room_names()[**r].clone()))
                    .map(|(r, _)| *r);
                match victim {
                    Some(victim) => self.rooms.remove(&victim),
                    None => return false,
                };
            }
            let idle = self.step;
            self.rooms.insert(
                room,
                ModelRoom {
                    idle,
                    ..ModelRoom::default()
                },
            );
            true
        }

        fn join(&mut self, session: usize, room: usize) -> Result<Joined, JoinError> {
            if !self.create(room) {
                return Err(JoinError::TooManyRooms);
            }
            let state = self.rooms.get_mut(&room).unwrap();
            if !state.members.insert(session) {
                return Ok(Joined::Already);
            }
            self.expected[session].push(Received::Greeting {
                room: room_names()[room].to_string(),
                seq: state.seq,
                retained: state.retained.iter().copied().collect(),
            });
            Ok(Joined::New)
        }

        fn leave(&mut self, session: usize, room: usize) -> bool {
            let Some(state) = self.rooms.get_mut(&room) else {
                return false;
            };
            if !state.members.remove(&session) {
                return false;
            }
            if state.members.is_empty() && state.retained.is_empty() && !pinned(room) {
                self.rooms.remove(&room);
            }
            true
        }

        fn publish(&mut self, room: usize, id: u64) -> Result<PublishReport, RoomsError> {
            let history = self.history_of(room);
            if history == 0 && !self.rooms.contains_key(&room) {
                return Ok(PublishReport::default());
            }
            if !self.create(room) {
                return Err(RoomsError::TooManyRooms(self.max_rooms));
            }
            let state = self.rooms.get_mut(&room).unwrap();
            state.seq += 1;
            if history > 0 {
                if state.retained.len() == history {
                    state.retained.pop_front();
                }
                state.retained.push_back(state.seq);
            }
            let mut recipients = 0;
            for &member in &state.members {
                let kind = SESSION_KINDS[member];
                if carries(kind, room) {
                    recipients += 1;
                    let seq = (kind == DialectKind::Native).then_some(state.seq);
                    self.expected[member].push(Received::Event { id, seq });
                }
            }
            Ok(PublishReport {
                seq: state.seq,
                recipients,
                ..PublishReport::default()
            })
        }
    }

    proptest! {
        #[test]
        fn registry_matches_a_model_of_membership_history_and_cleanup(
            history_size in 0usize..4,
            max_rooms in 1usize..5,
            ops in prop::collection::vec(op(), 0..40),
        ) {
            let rooms = Rooms::new(&RoomLimits::new(history_size, max_rooms));
            let names = room_names();
            let ids: Vec<SessionId> = SESSION_KINDS.iter().map(|_| SessionId::next()).collect();
            let outboxes: Vec<Arc<Outbox>> = SESSION_KINDS
                .iter()
                .map(|_| Arc::new(Outbox::new(OUTBOX_CAPACITY)))
                .collect();
            // The room each session joined, as a session keeps it.
            let mut joined: Vec<BTreeMap<usize, Arc<Room>>> = vec![BTreeMap::new(); SESSION_KINDS.len()];
            let mut model = Model {
                history_size,
                max_rooms,
                rooms: (0..names.len()).filter(|r| pinned(*r)).map(|r| (r, ModelRoom::default())).collect(),
                expected: vec![Vec::new(); SESSION_KINDS.len()],
                step: 0,
            };
            for (step, op) in ops.into_iter().enumerate() {
                model.step = step;
                match op {
                    Op::Join { session, room } => {
                        let got = rooms
                            .join(&names[room], ids[session], SESSION_KINDS[session], &outboxes[session], reporting_greeting(&names[room]))
                            .map(|(arc, joined_now)| {
                                joined[session].insert(room, arc);
                                joined_now
                            });
                        prop_assert_eq!(got, model.join(session, room), "step {}: join", step);
                    }
                    Op::Leave { session, room } => {
                        let arc = joined[session].remove(&room).or_else(|| rooms.get(&names[room]));
                        let got = arc.is_some_and(|arc| rooms.leave(&arc, ids[session], SESSION_KINDS[session]));
                        prop_assert_eq!(got, model.leave(session, room), "step {}: leave", step);
                    }
                    Op::Publish { room } => {
                        let id = step as u64 + 1;
                        let got = rooms.publish(&event(room, id));
                        prop_assert_eq!(got, model.publish(room, id), "step {}: publish", step);
                    }
                }
                // The registry also pins `market_status`, which the test does not use.
                prop_assert_eq!(rooms.len(), model.rooms.len() + 1, "step {}: room count", step);
                prop_assert!(rooms.len() <= max_rooms + 3, "step {}: cap exceeded", step);
                for (index, name) in names.iter().enumerate() {
                    let real = rooms.get(name);
                    let modelled = model.rooms.get(&index);
                    prop_assert_eq!(real.is_some(), modelled.is_some(), "step {}: {} exists", step, name);
                    if let (Some(real), Some(modelled)) = (real, modelled) {
                        prop_assert_eq!(real.member_count(), modelled.members.len(), "step {}: {} members", step, name);
                        prop_assert_eq!(real.seq(), modelled.seq, "step {}: {} seq", step, name);
                        prop_assert_eq!(real.history_len(), modelled.retained.len(), "step {}: {} history", step, name);
                        prop_assert_eq!(rooms.has_members(name), !modelled.members.is_empty());
                    }
                }
            }
            for (session, outbox) in outboxes.iter().enumerate() {
                let mut frames = Vec::new();
                while outbox.drain_into(&mut frames, 64) == Drain::Frames {}
                let got: Vec<Received> = frames.iter().map(received).collect();
                prop_assert_eq!(&got, &model.expected[session], "session {} received", session);
            }
        }
    }
}
