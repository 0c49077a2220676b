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
use crate::delivery::outbox::Outbox;
use crate::dialect::{DialectKind, Greeting, JoinError, Joined, Resume};
use crate::ids::SessionId;
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

    /// Rooms of the test, by index: two ordered, one conflating, one modeldata.
    fn room_names() -> [RoomName; 4] {
        [
            RoomName::patterns(),
            RoomName::alerts(),
            RoomName::ticker("AAPL"),
            RoomName::modeldata(None),
        ]
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
            0 => Event::PatternAlert(PatternAlert {
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
            1 => Event::AlertTrigger(AlertTrigger {
                ticker: "AAPL".into(),
                alert_type: "above".into(),
                trigger_price: id as f64,
                current_price: 2.0,
                message: "m".into(),
                timestamp,
            }),
            2 => Event::PriceUpdate(PriceUpdate {
                ticker: "AAPL".into(),
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
    }

    /// The registry's rules, written down plainly.
    #[derive(Debug)]
    struct Model {
        history_size: usize,
        max_rooms: usize,
        rooms: BTreeMap<usize, ModelRoom>,
        expected: Vec<Vec<Received>>,
    }

    impl Model {
        fn history_of(&self, room: usize) -> usize {
            if room == 3 { 0 } else { self.history_size }
        }

        /// Creates `room` if the cap allows; false when refused.
        fn create(&mut self, room: usize) -> bool {
            if self.rooms.contains_key(&room) {
                return true;
            }
            if self.rooms.len() >= self.max_rooms {
                return false;
            }
            self.rooms.insert(room, ModelRoom::default());
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
            if state.members.is_empty() && state.retained.is_empty() {
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
            let rooms = Rooms::new(history_size, max_rooms);
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
                rooms: BTreeMap::new(),
                expected: vec![Vec::new(); SESSION_KINDS.len()],
            };
            for (step, op) in ops.into_iter().enumerate() {
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
                prop_assert_eq!(rooms.len(), model.rooms.len(), "step {}: room count", step);
                prop_assert!(rooms.len() <= max_rooms, "step {}: cap exceeded", step);
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
