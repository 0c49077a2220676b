//! One room: a named stream that owns its state like a Durable Object — a
//! monotonically increasing `seq`, an `epoch`, a bounded history, and its
//! members grouped by dialect. Publishing takes the room's lock once, assigns
//! the next `seq`, encodes the event once per dialect present, and queues the
//! same `Bytes` to every member's outbox: no allocation or serialisation per
//! member. The lock is never held across `.await` (nothing here is async).
//! In fleet mode a room is a replica of the fleet's room in Redis; how it
//! loads, follows the bus and admits resuming members is in `room/replica.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use parking_lot::Mutex;

mod replica;

use super::history::History;
use crate::catalog::{DeliveryPolicy, RoomName};
use crate::delivery::outbox::{Delivery, Outbox, Pushed};
use crate::dialect::{self, DialectKind, Greeting, Joined, Published, Resume, Retained};
use crate::frame;
use crate::ids::{RoomId, SessionId};
use crate::protocol::Event;

/// The room was removed from the registry while a session was joining it;
/// the caller looks the room up again (with the greeting given back).
pub struct Retired(pub Greeting);

impl std::fmt::Debug for Retired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Retired")
    }
}

use replica::Waiting;
pub use replica::{Head, NO_LINEAGE, Remote};

/// What one publish did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// The event's sequence number in its room.
    pub seq: u64,
    /// Members the frame was queued to (including conflated).
    pub recipients: usize,
    /// Members whose frame was conflated (slow, on a conflating room).
    pub conflated: usize,
    /// Members closed as slow consumers by this publish.
    pub overflowed: usize,
    /// Frames discarded by those closes.
    pub dropped: usize,
}

/// Mutable room state, behind the room lock.
#[derive(Debug)]
struct RoomState {
    /// Sequence number of the last published event (0 before the first).
    seq: u64,
    /// Identifies the history lineage `seq` counts in; in fleet mode it comes
    /// from Redis and changes when Redis lost the room's history.
    epoch: u64,
    /// False for a fleet room that has not delivered anything yet: its first
    /// delivery sets `seq` and `epoch` rather than being a gap.
    synced: bool,
    /// Recent events for replay to new members.
    history: History,
    /// Frames every new member gets first, replaced by any event that
    /// carries a snapshot (a modeldata feed's latest `initial_modeldata`, a
    /// trading account's state); empty for most rooms.
    snapshot: Vec<Bytes>,
    /// Whether every member has had a first message (an event's `first`
    /// frame, or a snapshot holding one); until then events that carry a
    /// `first` frame are sent as that.
    greeted: bool,
    /// Members per dialect ([`DialectKind::index`]), so each dialect's frame
    /// is encoded once and iterated over a contiguous map.
    members: [IndexMap<SessionId, Arc<Outbox>>; DialectKind::COUNT],
    /// Set when the registry removed the room; joins must go to the new one.
    retired: bool,
    /// Fleet mode: true until the room's recent history arrived from Redis
    /// ([`Room::preload`]); members joining meanwhile wait in `waiting`.
    loading: bool,
    /// Members that joined while loading; greeted and admitted by `preload`.
    waiting: Vec<Waiting>,
    /// Since when the room has been idle, as last observed ([`Room::idle_since`]):
    /// a memberless room idle longer than its retention allows is retired,
    /// and at the room cap the longest idle go first. Publishing reads no
    /// clock: an observation that finds `seq` moved past `observed_seq`
    /// restarts the idle time there.
    idle: Instant,
    /// `seq` when `idle` was last observed.
    observed_seq: u64,
}

/// A named stream and its members.
#[derive(Debug)]
pub struct Room {
    /// The room's name, e.g. `ticker:AAPL`.
    name: RoomName,
    /// What a full outbox does with this room's frames; a conflating room's
    /// process-unique [`RoomId`] is the conflation key in members' outboxes.
    delivery: Delivery,
    /// Sequence, history and members.
    state: Mutex<RoomState>,
    /// Member count readable without the lock (stats, registry clean-up).
    member_count: AtomicUsize,
    /// Fed by the fleet bus (its `seq` can lag behind Redis's).
    remote: bool,
    /// The node publishes into it itself (catalog policy, embedded mode):
    /// never retired.
    pinned: bool,
}

impl Room {
    /// A new, empty room keeping `history_size` events; how its slow
    /// members are treated comes from its catalog policy.
    pub fn new(name: RoomName, history_size: usize) -> Self {
        let delivery = match name.policy().delivery {
            DeliveryPolicy::ConflateToLatest => Delivery::Conflate(RoomId::next()),
            DeliveryPolicy::Ordered => Delivery::Ordered,
        };
        let pinned = name.policy().pinned;
        Room {
            name,
            delivery,
            state: Mutex::new(RoomState {
                seq: 0,
                // A new local room is a new lineage; 53 bits: exact in JavaScript numbers.
                epoch: new_epoch(),
                synced: true,
                history: History::new(history_size),
                snapshot: Vec::new(),
                greeted: false,
                members: std::array::from_fn(|_| IndexMap::new()),
                retired: false,
                loading: false,
                waiting: Vec::new(),
                idle: Instant::now(),
                observed_seq: 0,
            }),
            member_count: AtomicUsize::new(0),
            remote: false,
            pinned,
        }
    }

    /// The room's name.
    pub fn name(&self) -> &RoomName {
        &self.name
    }

    /// Current member count (all dialects).
    pub fn member_count(&self) -> usize {
        self.member_count.load(Ordering::Relaxed)
    }

    /// Members of one dialect (status endpoints that count their own seed's).
    pub fn member_count_of(&self, kind: DialectKind) -> usize {
        self.state.lock().members[kind.index()].len()
    }

    /// Sequence number of the last published event.
    pub fn seq(&self) -> u64 {
        self.state.lock().seq
    }

    /// `(epoch, seq)` of the last published event.
    pub fn position(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.epoch, state.seq)
    }

    /// Retained history length.
    pub fn history_len(&self) -> usize {
        self.state.lock().history.len()
    }

    /// Adds a member. On a new join the frames from `greet` (given the
    /// history, oldest first, and the room's snapshot) are queued before the
    /// member can receive any live event.
    pub fn join(
        &self,
        session: SessionId,
        kind: DialectKind,
        outbox: &Arc<Outbox>,
        greet: Greeting,
    ) -> Result<Joined, Retired> {
        self.join_resuming(session, kind, outbox, None, greet)
    }

    /// [`Room::join`] for a member resuming after `resume`: in a fleet room
    /// whose copy on this node is behind it, the member waits (greeting
    /// included) until the bus has caught the room up, so the replay is
    /// neither short nor followed by duplicates.
    pub fn join_resuming(
        &self,
        session: SessionId,
        kind: DialectKind,
        outbox: &Arc<Outbox>,
        resume: Option<Resume>,
        greet: Greeting,
    ) -> Result<Joined, Retired> {
        let mut state = self.state.lock();
        if state.retired {
            return Err(Retired(greet));
        }
        if state.members[kind.index()].contains_key(&session)
            || state
                .waiting
                .iter()
                .any(|w| w.session == session && w.kind == kind)
        {
            return Ok(Joined::Already);
        }
        let ahead = resume.filter(|r| {
            self.remote
                && state.synced
                && r.epoch.is_none_or(|e| e == state.epoch)
                && r.seq > state.seq
        });
        if state.loading || ahead.is_some() {
            state.waiting.push(Waiting {
                session,
                kind,
                outbox: outbox.clone(),
                greet,
                until: resume.map(|r| r.seq),
                since: Instant::now(),
            });
            self.member_count.fetch_add(1, Ordering::Relaxed);
            return Ok(Joined::New);
        }
        outbox.push_greeting(&greet(&retained(&state)));
        state.members[kind.index()].insert(session, outbox.clone());
        self.member_count.fetch_add(1, Ordering::Relaxed);
        Ok(Joined::New)
    }

    /// Removes a member; false if it was not one.
    pub fn leave(&self, session: SessionId, kind: DialectKind) -> bool {
        let mut state = self.state.lock();
        let waiting = state.waiting.len();
        state
            .waiting
            .retain(|w| !(w.session == session && w.kind == kind));
        let removed = state.waiting.len() < waiting
            || state.members[kind.index()].swap_remove(&session).is_some();
        drop(state);
        if removed {
            self.member_count.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Marks the room retired if it is not pinned, has no members and
    /// (unless `ignore_history`) no history, nor a snapshot its retention
    /// keeps; the registry calls this under its map lock before removing
    /// the room.
    pub fn retire_if_unused(&self, ignore_history: bool) -> bool {
        let keeps_snapshot = self.name.policy().retention == crate::catalog::Retention::State;
        self.retire_if(|state| {
            let state_kept = keeps_snapshot && !state.snapshot.is_empty();
            ignore_history || (state.history.is_empty() && !state_kept)
        })
    }

    /// Marks the room retired if it is not pinned, has no members and has
    /// been idle since `cutoff` or earlier, observed at `now` (its history
    /// goes with it).
    pub fn retire_if_idle_since(&self, cutoff: Instant, now: Instant) -> bool {
        self.retire_if(|state| observe(state, now) <= cutoff)
    }

    /// Marks the room retired whatever its members (a forgotten run: its
    /// viewers keep what they got; a new run of the id gets a new room).
    pub fn retire_now(&self) -> bool {
        if self.pinned {
            return false;
        }
        self.state.lock().retired = true;
        true
    }

    fn retire_if(&self, unused: impl FnOnce(&mut RoomState) -> bool) -> bool {
        if self.pinned {
            return false;
        }
        let mut state = self.state.lock();
        let unused = state.waiting.is_empty()
            && state.members.iter().all(IndexMap::is_empty)
            && unused(&mut state);
        if unused {
            state.retired = true;
        }
        unused
    }

    /// Since when the room has been idle, observed at `now` (a publish since
    /// the last observation makes that `now`), if it could be retired (not
    /// pinned, no members): the registry's retirement candidates.
    pub fn idle_since(&self, now: Instant) -> Option<Instant> {
        if self.pinned || self.member_count() > 0 {
            return None;
        }
        Some(observe(&mut self.state.lock(), now))
    }

    /// Publishes one event: next `seq`, into history, encoded once per dialect
    /// present, the same frame queued to every member.
    pub fn publish(&self, event: &Event) -> PublishReport {
        // The canonical encoding carries no seq, so it is built outside the lock.
        let canonical_frame = event.canonical_frame();
        let mut state = self.state.lock();
        let seq = state.seq + 1;
        self.fan_out(&mut state, event, &canonical_frame, seq)
    }

    fn fan_out(
        &self,
        state: &mut RoomState,
        event: &Event,
        canonical_frame: &Bytes,
        seq: u64,
    ) -> PublishReport {
        let canonical_frame = record(state, event, canonical_frame, seq);
        self.queue_to_members(state, &[(event, canonical_frame)], seq)
    }

    /// Publishes several events of this room at once (the alert triggers one
    /// price fired): each gets its `seq` and its place in the history, and
    /// every member gets them as one outbox entry per dialect, the frames
    /// back to back. A burst is encoded once per dialect, counts once against
    /// each member's outbox capacity, and reaches every member that keeps up.
    pub fn publish_batch(&self, events: &[Event]) -> PublishReport {
        let canonical_frames: Vec<Bytes> = events.iter().map(Event::canonical_frame).collect();
        let batch: Vec<(&Event, &Bytes)> = events.iter().zip(&canonical_frames).collect();
        let mut state = self.state.lock();
        let first = state.seq + 1;
        self.fan_out_batch(&mut state, &batch, first)
    }

    /// Makes `events` the room's events from `first` on and queues them to
    /// every member as one outbox entry per dialect.
    fn fan_out_batch(
        &self,
        state: &mut RoomState,
        events: &[(&Event, &Bytes)],
        first: u64,
    ) -> PublishReport {
        let sent: Vec<Bytes> = events
            .iter()
            .zip(first..)
            .map(|((event, frame), seq)| record(state, event, frame, seq).clone())
            .collect();
        let batch: Vec<(&Event, &Bytes)> = events.iter().map(|(e, _)| *e).zip(&sent).collect();
        self.queue_to_members(state, &batch, first)
    }

    /// Encodes `events` (numbered from `first`) once per dialect present and
    /// queues them to that dialect's members: one event as its frame, several
    /// back to back as one outbox entry.
    fn queue_to_members(
        &self,
        state: &RoomState,
        events: &[(&Event, &Bytes)],
        first: u64,
    ) -> PublishReport {
        let mut report = PublishReport {
            seq: state.seq,
            ..PublishReport::default()
        };
        let mut batch = BytesMut::new();
        for kind in DialectKind::ALL {
            let members = &state.members[kind.index()];
            if members.is_empty() {
                continue;
            }
            let encode = |(event, canonical_frame): &(&Event, &Bytes), seq| {
                dialect::encode(
                    kind,
                    &Published {
                        room: &self.name,
                        seq,
                        epoch: state.epoch,
                        event,
                        canonical_frame,
                    },
                )
            };
            let frame = if let [one] = events {
                encode(one, first)
            } else {
                for (event, seq) in events.iter().zip(first..) {
                    if let Some(frame) = encode(event, seq) {
                        batch.extend_from_slice(&frame);
                    }
                }
                (!batch.is_empty()).then(|| batch.split().freeze())
            };
            if let Some(frame) = frame {
                self.push_to(members, &frame, &mut report);
            }
        }
        report
    }

    /// Queues `frame` to every member in `members` under the room's delivery policy.
    fn push_to(
        &self,
        members: &IndexMap<SessionId, Arc<Outbox>>,
        frame: &Bytes,
        report: &mut PublishReport,
    ) {
        for outbox in members.values() {
            match outbox.push(frame, self.delivery) {
                Pushed::Queued => report.recipients += 1,
                Pushed::Conflated => {
                    report.recipients += 1;
                    report.conflated += 1;
                }
                Pushed::Overflowed(dropped) => {
                    report.overflowed += 1;
                    report.dropped += dropped;
                }
                Pushed::Closed => {}
            }
        }
    }
}

/// Makes `event` the room's event number `seq`: its history entry, the
/// room's snapshot if it carries one. Returns the frame members get: an
/// event's `first` frame (a modeldata feed's `initial_modeldata`) while some
/// member never had a first message, else its canonical frame.
fn record<'a>(
    state: &mut RoomState,
    event: &'a Event,
    canonical_frame: &'a Bytes,
    seq: u64,
) -> &'a Bytes {
    let canonical_frame = match event.first_frame() {
        Some(first) if !std::mem::replace(&mut state.greeted, true) => first,
        _ => canonical_frame,
    };
    if let Some(snapshot) = event.snapshot() {
        state.snapshot.clear();
        state.snapshot.extend_from_slice(snapshot);
    }
    state.seq = seq;
    state.history.push(seq, frame::payload(canonical_frame));
    canonical_frame
}

/// Since when the room has been idle, observed at `now`.
fn observe(state: &mut RoomState, now: Instant) -> Instant {
    if state.seq != state.observed_seq {
        state.observed_seq = state.seq;
        state.idle = now;
    }
    state.idle
}

/// The greeting's view of a room's state.
fn retained(state: &RoomState) -> Retained<'_> {
    Retained {
        epoch: state.epoch,
        seq: state.seq,
        entries: state.history.as_deque(),
        snapshot: &state.snapshot,
    }
}

/// A fresh epoch: 53 random bits, exact in JavaScript numbers, never
/// [`NO_LINEAGE`].
pub fn new_epoch() -> u64 {
    (rand::random::<u64>() >> 11).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close_code::CloseCode;
    use crate::delivery::outbox::Drain;
    use crate::dialect::Resume;
    use crate::protocol::PatternAlert;
    use crate::protocol::PriceUpdate;
    use bytes::Bytes;

    fn price(ticker: &str, p: f64) -> Event {
        Event::from(PriceUpdate {
            ticker: ticker.into(),
            price: p,
            change: 0.0,
            change_percent: 0.0,
            volume: 1.0,
            high: p,
            low: p,
            open: p,
            timestamp: "2025-11-18T10:30:00.000Z".into(),
        })
    }

    fn pattern() -> Event {
        Event::from(PatternAlert {
            ticker: "AAPL".into(),
            pattern_type: "VCP".into(),
            score: 8.5,
            entry_price: 1.0,
            stop_price: 0.5,
            target_price: 2.0,
            risk_reward_ratio: 2.0,
            message: "m".into(),
            timestamp: "t".into(),
        })
    }

    fn no_greeting() -> Greeting {
        Box::new(|_| Vec::new())
    }

    fn drain(outbox: &Outbox) -> Vec<Bytes> {
        let mut out = Vec::new();
        while outbox.drain_into(&mut out, 64) == Drain::Frames {}
        out
    }

    #[test]
    fn every_member_gets_the_same_bytes() {
        let room = Room::new(RoomName::ticker("AAPL"), 10);
        let outboxes: Vec<_> = (0..3).map(|_| Arc::new(Outbox::new(8))).collect();
        for o in &outboxes {
            room.join(SessionId::next(), DialectKind::Seed001, o, no_greeting())
                .unwrap();
        }
        let report = room.publish(&price("AAPL", 1.0));
        assert_eq!(report.seq, 1);
        assert_eq!(report.recipients, 3);
        let frames: Vec<_> = outboxes.iter().map(|o| drain(o).remove(0)).collect();
        // Same allocation, not just equal contents: encoded once.
        assert!(frames.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()));
    }

    #[test]
    fn seq_increases_and_history_is_bounded() {
        let room = Room::new(RoomName::ticker("AAPL"), 2);
        for i in 0..5 {
            assert_eq!(room.publish(&price("AAPL", i as f64)).seq, i + 1);
        }
        assert_eq!(room.history_len(), 2);
        assert_eq!(room.seq(), 5);
    }

    #[test]
    fn greeting_is_queued_before_live_events_and_sees_history() {
        let room = Room::new(RoomName::ticker("AAPL"), 10);
        room.publish(&price("AAPL", 1.0));
        let outbox = Arc::new(Outbox::new(8));
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let greet: Greeting = Box::new(move |r: &Retained<'_>| {
            counter.store(r.payloads().count(), Ordering::Relaxed);
            vec![frame::text(b"hello")]
        });
        room.join(SessionId::next(), DialectKind::Seed001, &outbox, greet)
            .unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 1);
        room.publish(&price("AAPL", 2.0));
        let frames = drain(&outbox);
        assert_eq!(frame::payload(&frames[0]), Bytes::from_static(b"hello"));
        assert_eq!(frames.len(), 2);
    }

    #[test]
    fn joining_twice_is_reported_and_leave_removes() {
        let room = Room::new(RoomName::patterns(), 10);
        let outbox = Arc::new(Outbox::new(8));
        let id = SessionId::next();
        let k = DialectKind::Seed001;
        assert!(matches!(
            room.join(id, k, &outbox, no_greeting()),
            Ok(Joined::New)
        ));
        assert!(matches!(
            room.join(id, k, &outbox, no_greeting()),
            Ok(Joined::Already)
        ));
        assert_eq!(room.member_count(), 1);
        assert!(room.leave(id, k));
        assert!(!room.leave(id, k));
        assert_eq!(room.member_count(), 0);
        assert_eq!(room.publish(&pattern()).recipients, 0);
    }

    #[test]
    fn slow_member_of_ordered_room_is_closed_others_unaffected() {
        let room = Room::new(RoomName::patterns(), 10);
        let slow = Arc::new(Outbox::new(2));
        let fast = Arc::new(Outbox::new(64));
        let k = DialectKind::Seed001;
        room.join(SessionId::next(), k, &slow, no_greeting())
            .unwrap();
        room.join(SessionId::next(), k, &fast, no_greeting())
            .unwrap();
        let mut overflowed = 0;
        for _ in 0..3 {
            overflowed += room.publish(&pattern()).overflowed;
        }
        assert_eq!(overflowed, 1);
        assert_eq!(
            slow.drain_into(&mut Vec::new(), 64),
            Drain::Close(CloseCode::SlowConsumer)
        );
        assert_eq!(drain(&fast).len(), 3);
    }

    #[test]
    fn slow_member_of_price_room_is_conflated() {
        let room = Room::new(RoomName::ticker("AAPL"), 10);
        let slow = Arc::new(Outbox::new(2));
        room.join(
            SessionId::next(),
            DialectKind::Seed001,
            &slow,
            no_greeting(),
        )
        .unwrap();
        let mut conflated = 0;
        for i in 0..10 {
            conflated += room.publish(&price("AAPL", i as f64)).conflated;
        }
        assert_eq!(conflated, 8);
        let frames = drain(&slow);
        assert_eq!(frames.len(), 3);
        let last: serde_json::Value = serde_json::from_slice(&frame::payload(&frames[2])).unwrap();
        assert_eq!(last["price"], 9.0);
    }

    #[test]
    fn remote_deliveries_are_in_order_at_most_once_and_report_gaps() {
        let room = Room::new_remote(RoomName::patterns(), 10);
        let outbox = Arc::new(Outbox::new(64));
        let k = DialectKind::Seed001;
        room.join(SessionId::next(), k, &outbox, no_greeting())
            .unwrap();
        // A fleet room admits members once its history arrived (none here).
        assert!(room.is_loading());
        room.preload(Vec::new(), Head::Unknown);
        let event = pattern();
        let frame = event.canonical_frame();
        let deliver = |seq, epoch, accept| room.deliver(&event, &frame, seq, epoch, accept);
        // The first delivery sets the baseline, whatever its seq.
        assert!(matches!(deliver(41, 7, false), Remote::Delivered(_)));
        assert!(matches!(deliver(42, 7, false), Remote::Delivered(_)));
        assert_eq!(deliver(42, 7, false), Remote::Duplicate);
        assert_eq!(deliver(40, 7, false), Remote::Duplicate);
        assert_eq!(deliver(44, 7, false), Remote::Gap { last: 42 });
        assert!(matches!(deliver(44, 7, true), Remote::Delivered(_)));
        // A new epoch (history lost) restarts the lineage.
        assert!(matches!(deliver(1, 8, false), Remote::Delivered(_)));
        assert_eq!(room.position(), (8, 1));
        assert_eq!(room.history_len(), 1);
        assert_eq!(drain(&outbox).len(), 4);
    }

    #[test]
    fn members_joining_a_loading_room_get_the_loaded_history_before_live_events() {
        let room = Room::new_remote(RoomName::ticker("AAPL"), 10);
        let outbox = Arc::new(Outbox::new(64));
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let greet: Greeting = Box::new(move |r: &Retained<'_>| {
            seen.store(r.payloads().count(), Ordering::Relaxed);
            vec![frame::text(b"greeting")]
        });
        room.join(SessionId::next(), DialectKind::Seed001, &outbox, greet)
            .unwrap();
        assert_eq!(room.member_count(), 1);
        // A live event arrives while loading: kept, not yet sent.
        let event = price("AAPL", 3.0);
        let live = event.canonical_frame();
        room.deliver(&event, &live, 3, 9, false);
        assert!(drain(&outbox).is_empty());
        room.preload(
            vec![
                (1, 9, Bytes::from_static(b"{\"n\":1}")),
                (2, 9, Bytes::from_static(b"{\"n\":2}")),
            ],
            Head::Known { epoch: 9, seq: 2 },
        );
        assert_eq!(count.load(Ordering::Relaxed), 3);
        let frames = drain(&outbox);
        assert_eq!(frames.len(), 1);
        assert_eq!(frame::payload(&frames[0]), Bytes::from_static(b"greeting"));
        assert_eq!(room.position(), (9, 3));
        room.deliver(&event, &live, 4, 9, false);
        assert_eq!(drain(&outbox).len(), 1);
    }

    #[test]
    fn a_room_new_to_redis_adopts_its_first_lineage_and_asks_for_missed_events() {
        let room = Room::new_remote(RoomName::alerts(), 10);
        room.preload(Vec::new(), Head::Empty);
        let event = pattern();
        let frame = event.canonical_frame();
        // seq 3 first: 1 and 2 were published before this node listened.
        assert_eq!(
            room.deliver(&event, &frame, 3, 77, false),
            Remote::Gap { last: 0 }
        );
        assert!(matches!(
            room.deliver(&event, &frame, 1, 77, false),
            Remote::Delivered(_)
        ));
        assert_eq!(room.position(), (77, 1));
    }

    #[test]
    fn a_member_resuming_ahead_of_a_lagging_room_waits_until_it_catches_up() {
        let room = Room::new_remote(RoomName::alerts(), 10);
        room.preload(Vec::new(), Head::Known { epoch: 7, seq: 3 });
        let outbox = Arc::new(Outbox::new(64));
        let greeted_at = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&greeted_at);
        let greet: Greeting = Box::new(move |r: &Retained<'_>| {
            seen.store(r.seq as usize, Ordering::Relaxed);
            vec![frame::text(b"subscribed")]
        });
        let resume = Some(Resume {
            seq: 5,
            epoch: Some(7),
        });
        room.join_resuming(
            SessionId::next(),
            DialectKind::Native,
            &outbox,
            resume,
            greet,
        )
        .unwrap();
        let event = pattern();
        let frame = event.canonical_frame();
        room.deliver(&event, &frame, 4, 7, false);
        assert!(
            drain(&outbox).is_empty(),
            "seq 4 is one the client already has"
        );
        room.deliver(&event, &frame, 5, 7, false);
        assert_eq!(greeted_at.load(Ordering::Relaxed), 5);
        assert_eq!(drain(&outbox).len(), 1, "greeting only: 5 is not re-sent");
        room.deliver(&event, &frame, 6, 7, false);
        assert_eq!(drain(&outbox).len(), 1);
    }

    #[test]
    fn a_resume_point_the_room_never_reaches_is_admitted_after_the_wait() {
        let room = Room::new_remote(RoomName::alerts(), 10);
        room.preload(Vec::new(), Head::Known { epoch: 7, seq: 3 });
        let outbox = Arc::new(Outbox::new(64));
        let resume = Some(Resume {
            seq: 1_000,
            epoch: None,
        });
        room.join_resuming(
            SessionId::next(),
            DialectKind::Native,
            &outbox,
            resume,
            no_greeting(),
        )
        .unwrap();
        room.admit_overdue(std::time::Duration::from_secs(3600));
        let event = pattern();
        let frame = event.canonical_frame();
        room.deliver(&event, &frame, 4, 7, false);
        assert!(drain(&outbox).is_empty());
        room.admit_overdue(std::time::Duration::ZERO);
        room.deliver(&event, &frame, 5, 7, false);
        assert_eq!(drain(&outbox).len(), 1);
    }

    #[test]
    fn a_batch_takes_consecutive_seqs_and_reaches_a_member_as_one_entry() {
        let room = Room::new(RoomName::patterns(), 10);
        room.publish(&pattern());
        let outbox = Arc::new(Outbox::new(1));
        room.join(
            SessionId::next(),
            DialectKind::Native,
            &outbox,
            no_greeting(),
        )
        .unwrap();
        let report = room.publish_batch(&[pattern(), pattern(), pattern()]);
        assert_eq!(
            (report.seq, report.recipients, report.overflowed),
            (4, 1, 0)
        );
        assert_eq!(room.history_len(), 4);
        let entries = drain(&outbox);
        assert_eq!(entries.len(), 1, "one outbox entry for the whole batch");
        let mut rest = &entries[0][..];
        let mut seqs = Vec::new();
        while !rest.is_empty() {
            let (header, len) = match rest[1] & 0x7f {
                126 => (4, usize::from(u16::from_be_bytes([rest[2], rest[3]]))),
                len => (2, usize::from(len)),
            };
            let json: serde_json::Value =
                serde_json::from_slice(&rest[header..header + len]).unwrap();
            seqs.push(json["seq"].as_u64().unwrap());
            rest = &rest[header + len..];
        }
        assert_eq!(seqs, [2, 3, 4]);
    }

    #[test]
    fn a_late_joiner_replaying_more_than_its_outbox_holds_is_not_closed() {
        let room = Room::new(RoomName::patterns(), 50);
        for _ in 0..50 {
            room.publish(&pattern());
        }
        let outbox = Arc::new(Outbox::new(8));
        let replay: Greeting =
            Box::new(|retained| retained.payloads().map(|p| frame::text(p)).collect());
        room.join(SessionId::next(), DialectKind::Seed001, &outbox, replay)
            .unwrap();
        let report = room.publish(&pattern());
        assert_eq!((report.recipients, report.overflowed), (1, 0));
        assert_eq!(drain(&outbox).len(), 51);
        assert!(outbox.is_open());
    }

    pub(super) fn neutral(room: &RoomName, kind: &str, n: u64) -> crate::protocol::Neutral {
        let data = serde_json::json!({ "n": n });
        crate::protocol::Neutral::new(room.clone(), kind, "2026-01-01T00:00:00.000Z", &data)
            .unwrap()
    }

    #[test]
    fn any_event_that_carries_a_snapshot_replaces_the_rooms_snapshot() {
        let run = RoomName::backtest("bt-8").unwrap();
        let room = Room::new(run.clone(), 0);
        let state = |n| frame::text(format!("{{\"state\":{n}}}").as_bytes());
        room.publish(&Event::from(
            neutral(&run, "pnl", 1).with_snapshot(vec![state(1), state(2)]),
        ));
        room.publish(&Event::from(neutral(&run, "risk", 2)));
        room.publish(&Event::from(
            neutral(&run, "pnl", 3).with_snapshot(vec![state(3)]),
        ));
        let joiner = Arc::new(Outbox::new(8));
        let greet: Greeting = Box::new(|retained| retained.snapshot.to_vec());
        room.join(SessionId::next(), DialectKind::Native, &joiner, greet)
            .unwrap();
        assert_eq!(drain(&joiner), vec![state(3)]);
    }

    #[test]
    fn a_remote_batch_that_follows_the_room_reaches_members_as_one_entry() {
        let room = Room::new_remote(RoomName::alerts(), 100);
        room.preload(Vec::new(), Head::Empty);
        let outbox = Arc::new(Outbox::new(2));
        room.join(
            SessionId::next(),
            DialectKind::Seed001,
            &outbox,
            no_greeting(),
        )
        .unwrap();
        let events: Vec<Event> = (0..5).map(|_| pattern()).collect();
        let frames: Vec<Bytes> = events.iter().map(Event::canonical_frame).collect();
        let batch: Vec<(&Event, &Bytes)> = events.iter().zip(&frames).collect();
        // Not the next seqs (the room is at 0): delivered event by event instead.
        assert_eq!(room.deliver_batch(&batch, 2, 9), None);
        let report = room.deliver_batch(&batch, 1, 9).unwrap();
        assert_eq!((report.recipients, report.overflowed), (1, 0));
        assert_eq!(room.position(), (9, 5));
        // Five events through a two-slot outbox: one entry, all of them.
        let mut entries = Vec::new();
        assert_eq!(outbox.drain_into(&mut entries, 64), Drain::Frames);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].len(),
            frames.iter().map(Bytes::len).sum::<usize>()
        );
        // A batch of another lineage is left to the single-event path.
        assert_eq!(room.deliver_batch(&batch, 6, 10), None);
    }

    #[test]
    fn a_pinned_room_is_never_retired() {
        let room = Room::new(RoomName::patterns(), 10);
        assert!(!room.retire_if_unused(true));
        assert!(!room.retire_if_idle_since(Instant::now(), Instant::now()));
        assert_eq!(room.idle_since(Instant::now()), None);
    }

    #[test]
    fn a_state_room_keeps_its_snapshot_after_its_last_member_but_not_in_a_fleet() {
        let name = RoomName::s003_account();
        let room = Room::new(name.clone(), 0);
        assert!(
            Room::new(name.clone(), 0).retire_if_unused(false),
            "no state yet"
        );
        room.publish(&Event::Neutral(
            neutral(&name, "pnl", 1).with_snapshot(vec![Bytes::from_static(b"state")]),
        ));
        assert!(
            !room.retire_if_unused(false),
            "its state greets the next joiner"
        );
        assert!(room.retire_if_unused(true), "a fleet reloads it from Redis");
    }

    #[test]
    fn retired_room_refuses_joins() {
        let room = Room::new(RoomName::ticker("AAPL"), 10);
        assert!(room.retire_if_unused(false));
        let outbox = Arc::new(Outbox::new(8));
        assert!(matches!(
            room.join(
                SessionId::next(),
                DialectKind::Seed001,
                &outbox,
                no_greeting()
            ),
            Err(Retired(..))
        ));
    }
}

#[cfg(test)]
mod proptests {
    //! `seq`, epochs and gaps as members see them: a native client resuming
    //! an embedded room gets every event it missed exactly once and in
    //! order, or an explicit gap (trimmed history, other epoch); a fleet
    //! room's deliveries reach members in order and at most once, with a
    //! `gap` notice before every hole and every new lineage.
    use proptest::prelude::*;

    use super::*;
    use crate::close_code::CloseCode;
    use crate::delivery::outbox::Drain;
    use crate::dialect::{DialectSession, JoinError, Link, MessageKind};
    use crate::native::NativeSession;
    use crate::protocol::AlertTrigger;

    /// Big enough that no outbox overflows in a test.
    const OUTBOX_CAPACITY: usize = 1024;

    /// An alert whose `trigger_price` is `id`, so frames name their event.
    fn alert(id: u64) -> Event {
        Event::from(AlertTrigger {
            ticker: "AAPL".into(),
            alert_type: "above".into(),
            trigger_price: id as f64,
            current_price: 2.0,
            message: "m".into(),
            timestamp: "2025-11-18T10:30:00.000Z".into(),
        })
    }

    /// The frames queued to `outbox`, as JSON.
    fn drained(outbox: &Outbox) -> Vec<serde_json::Value> {
        let mut frames = Vec::new();
        while outbox.drain_into(&mut frames, 64) == Drain::Frames {}
        frames
            .iter()
            .map(|f| serde_json::from_slice(&frame::payload(f)).unwrap())
            .collect()
    }

    /// A session's link to one room (what the session machinery does with
    /// the registry, minus the registry).
    struct OneRoomLink<'a> {
        room: &'a Room,
        session: SessionId,
        outbox: Arc<Outbox>,
    }

    impl Link for OneRoomLink<'_> {
        fn send(&mut self, frame: Bytes) {
            self.outbox.push(&frame, Delivery::Ordered);
        }

        fn join(&mut self, _room: RoomName, greet: Greeting) -> Result<Joined, JoinError> {
            Ok(self
                .room
                .join(self.session, DialectKind::Native, &self.outbox, greet)
                .expect("the room is not retired"))
        }

        fn join_resuming(
            &mut self,
            _room: RoomName,
            resume: Resume,
            greet: Greeting,
        ) -> Result<Joined, JoinError> {
            Ok(self
                .room
                .join_resuming(
                    self.session,
                    DialectKind::Native,
                    &self.outbox,
                    Some(resume),
                    greet,
                )
                .expect("the room is not retired"))
        }

        fn leave(&mut self, _room: &RoomName) -> bool {
            self.room.leave(self.session, DialectKind::Native)
        }

        fn close(&mut self, _code: CloseCode) {}
        fn set_timer(&mut self, _after: Option<std::time::Duration>) {}
    }

    /// Subscribes a native client to `room` resuming after `seq` (in `epoch`
    /// when given), through the native dialect; returns its outbox.
    fn resume_native(room: &Room, seq: u64, epoch: Option<u64>) -> Arc<Outbox> {
        let mut entry = serde_json::json!({"room": room.name().as_str(), "seq": seq});
        if let Some(epoch) = epoch {
            entry["epoch"] = epoch.into();
        }
        let mut message =
            serde_json::to_vec(&serde_json::json!({"type": "subscribe", "rooms": [entry]}))
                .unwrap();
        let mut link = OneRoomLink {
            room,
            session: SessionId::next(),
            outbox: Arc::new(Outbox::new(OUTBOX_CAPACITY)),
        };
        NativeSession::new("test").on_message(&mut link, MessageKind::Text, &mut message);
        link.outbox
    }

    #[test]
    fn a_run_room_replays_its_neutral_events_whole_to_a_late_native_joiner() {
        let run = RoomName::backtest("bt-7").unwrap();
        let room = Room::new(run.clone(), 100);
        for n in 1..=3 {
            room.publish(&Event::from(super::tests::neutral(&run, "progress", n)));
        }
        // A native client that asks for everything after seq 0.
        let late = resume_native(&room, 0, None);
        room.publish(&Event::from(super::tests::neutral(&run, "complete", 4)));
        let frames: Vec<serde_json::Value> = drained(&late)
            .into_iter()
            .filter(|m| m["type"] == "message")
            .collect();
        let seen: Vec<(u64, &str, u64)> = frames
            .iter()
            .map(|m| {
                let data = &m["data"];
                (
                    m["seq"].as_u64().unwrap(),
                    data["type"].as_str().unwrap(),
                    data["data"]["n"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, "progress", 1),
                (2, "progress", 2),
                (3, "progress", 3),
                (4, "complete", 4)
            ]
        );
        assert_eq!(frames[0]["data"]["timestamp"], "2026-01-01T00:00:00.000Z");
    }

    /// Which epoch a resuming client names.
    #[derive(Debug, Clone, Copy)]
    enum ClientEpoch {
        Omitted,
        Same,
        Other,
    }

    fn client_epoch() -> impl Strategy<Value = ClientEpoch> {
        prop_oneof![
            Just(ClientEpoch::Omitted),
            Just(ClientEpoch::Same),
            Just(ClientEpoch::Other)
        ]
    }

    proptest! {
        #[test]
        fn a_resuming_member_gets_every_missed_event_once_in_order_or_an_explicit_gap(
            history in 0usize..6,
            before in 0u64..12,
            resume_at in 0u64..14,
            epoch in client_epoch(),
            after in 0u64..5,
        ) {
            let room = Room::new(RoomName::alerts(), history);
            for id in 1..=before {
                room.publish(&alert(id));
            }
            let (room_epoch, _) = room.position();
            let outbox = resume_native(
                &room,
                resume_at,
                match epoch {
                    ClientEpoch::Omitted => None,
                    ClientEpoch::Same => Some(room_epoch),
                    ClientEpoch::Other => Some(room_epoch + 1),
                },
            );
            for id in before + 1..=before + after {
                room.publish(&alert(id));
            }
            let frames = drained(&outbox);
            let (subscribed, messages) = frames.split_first().expect("a greeting");
            prop_assert_eq!(&subscribed["type"], "subscribed");
            prop_assert_eq!(&subscribed["seq"], before);
            prop_assert_eq!(&subscribed["epoch"], room_epoch);
            let mut seqs = Vec::new();
            for message in messages {
                prop_assert_eq!(&message["type"], "message");
                prop_assert_eq!(&message["epoch"], room_epoch);
                let seq = message["seq"].as_u64().unwrap();
                // Each replayed or live message carries the event of its seq.
                prop_assert_eq!(&message["data"]["trigger_price"], seq as f64);
                seqs.push(seq);
            }
            let replayed = subscribed["replayed"].as_u64().unwrap();
            prop_assert!(replayed <= history as u64 && replayed <= before);
            prop_assert_eq!(seqs.len() as u64, replayed + after, "replayed, then live");
            // In order, no duplicates, no holes after the first.
            prop_assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "seqs {:?}", seqs);
            prop_assert!(seqs.last().is_none_or(|last| *last == before + after));
            let oldest_retained = before - before.min(history as u64) + 1;
            let first_seq = seqs.first().copied().unwrap_or(before + after + 1);
            match epoch {
                ClientEpoch::Other => {
                    // Another lineage: what is retained, and why not recovered.
                    prop_assert_eq!(&subscribed["recovered"], false);
                    prop_assert_eq!(&subscribed["reason"], "epoch");
                    prop_assert!(subscribed.get("gap").is_none());
                    prop_assert_eq!(replayed, before + 1 - oldest_retained);
                }
                _ if resume_at >= before => {
                    // Up to date (or claiming to be ahead): live events only.
                    prop_assert_eq!(&subscribed["recovered"], true);
                    prop_assert_eq!(replayed, 0);
                }
                _ if resume_at + 1 >= oldest_retained => {
                    // Every missed event is retained: all of them, once.
                    prop_assert_eq!(&subscribed["recovered"], true);
                    prop_assert_eq!(first_seq, resume_at + 1);
                }
                _ => {
                    // Some are gone: the gap names exactly those.
                    prop_assert_eq!(&subscribed["recovered"], false);
                    prop_assert_eq!(&subscribed["reason"], "trimmed");
                    prop_assert_eq!(&subscribed["gap"]["from"], resume_at + 1);
                    prop_assert_eq!(&subscribed["gap"]["to"], oldest_retained - 1);
                    prop_assert_eq!(first_seq, oldest_retained);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn a_member_resuming_a_lagging_fleet_room_misses_nothing_and_gets_nothing_twice(
            history in 0usize..5,
            loaded in 0u64..8,
            resume_at in 0u64..16,
            live in 0u64..5,
        ) {
            const EPOCH: u64 = 7;
            let room = Room::new_remote(RoomName::alerts(), history);
            let retained_from = loaded.saturating_sub(history as u64) + 1;
            let entries = (retained_from..=loaded)
                .map(|seq| (seq, EPOCH, frame::payload(&alert(seq).canonical_frame())))
                .collect();
            room.preload(entries, Head::Known { epoch: EPOCH, seq: loaded });
            let outbox = resume_native(&room, resume_at, Some(EPOCH));
            // The bus catches the room up, event by event.
            for seq in loaded + 1..=loaded + live {
                let event = alert(seq);
                room.deliver(&event, &event.canonical_frame(), seq, EPOCH, false);
            }
            // A resume point the room never reached is admitted after the wait.
            room.admit_overdue(std::time::Duration::ZERO);
            let last = loaded + live + 1;
            let event = alert(last);
            room.deliver(&event, &event.canonical_frame(), last, EPOCH, false);

            let frames = drained(&outbox);
            let (subscribed, messages) = frames.split_first().expect("a greeting");
            prop_assert_eq!(&subscribed["type"], "subscribed", "nothing before the greeting");
            let seqs: Vec<u64> = messages
                .iter()
                .map(|m| {
                    assert_eq!(m["type"], "message");
                    assert_eq!(m["data"]["trigger_price"], m["seq"].as_f64().unwrap());
                    m["seq"].as_u64().unwrap()
                })
                .collect();
            prop_assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "seqs {:?}", seqs);
            prop_assert_eq!(seqs.last(), Some(&last));
            let want_first = if resume_at >= last {
                last // claims to be ahead of everything: live events only
            } else if resume_at + 1 >= retained_from || resume_at >= loaded {
                prop_assert_eq!(&subscribed["recovered"], true);
                resume_at + 1
            } else {
                prop_assert_eq!(&subscribed["recovered"], false);
                prop_assert_eq!(&subscribed["gap"]["from"], resume_at + 1);
                prop_assert_eq!(&subscribed["gap"]["to"], retained_from - 1);
                retained_from
            };
            prop_assert_eq!(seqs.first(), Some(&want_first), "seqs {:?}", seqs);
        }
    }

    /// One delivery from the bus: `(seq, epoch, accept_gap)`.
    fn delivery() -> impl Strategy<Value = (u64, u64, bool)> {
        (1u64..12, 1u64..4, any::<bool>())
    }

    proptest! {
        #[test]
        fn remote_events_reach_members_in_order_at_most_once_with_a_notice_before_every_gap(
            history in 0usize..5,
            head_empty in any::<bool>(),
            deliveries in prop::collection::vec(delivery(), 0..30),
        ) {
            let room = Room::new_remote(RoomName::alerts(), history);
            room.preload(Vec::new(), if head_empty { Head::Empty } else { Head::Unknown });
            let native = Arc::new(Outbox::new(OUTBOX_CAPACITY));
            let seed001 = Arc::new(Outbox::new(OUTBOX_CAPACITY));
            room.join(SessionId::next(), DialectKind::Native, &native, Box::new(|_| Vec::new()))
                .unwrap();
            room.join(SessionId::next(), DialectKind::Seed001, &seed001, Box::new(|_| Vec::new()))
                .unwrap();
            // The documented rules: the first delivery sets the lineage (with
            // no lineage yet, seq 1 starts it); then in order, at most once.
            let mut lineage: Option<(u64, u64)> = head_empty.then_some((NO_LINEAGE, 0));
            let mut delivered = Vec::new();
            for (step, (seq, epoch, accept_gap)) in deliveries.into_iter().enumerate() {
                let event = alert(seq * 10 + epoch);
                let got = room.deliver(&event, &event.canonical_frame(), seq, epoch, accept_gap);
                let want = match lineage {
                    Some((NO_LINEAGE, last)) if seq > last + 1 && !accept_gap => {
                        lineage = Some((epoch, last));
                        Some(Remote::Gap { last })
                    }
                    Some((e, last)) if e == epoch && seq <= last => Some(Remote::Duplicate),
                    Some((e, last)) if e == epoch && seq > last + 1 && !accept_gap => {
                        Some(Remote::Gap { last })
                    }
                    _ => None,
                };
                match want {
                    Some(want) => prop_assert_eq!(got, want, "step {}", step),
                    None => {
                        prop_assert!(matches!(got, Remote::Delivered(r) if r.seq == seq), "step {}: {:?}", step, got);
                        lineage = Some((epoch, seq));
                        delivered.push((epoch, seq));
                    }
                }
                if let Some((epoch, seq)) = lineage {
                    prop_assert_eq!(room.position(), (epoch, seq), "step {}", step);
                }
                prop_assert!(room.history_len() <= history);
            }
            // Seed 001 members get each delivered event once, no notices.
            let seed_frames = drained(&seed001);
            let seed_events: Vec<u64> = seed_frames
                .iter()
                .map(|f| f["trigger_price"].as_f64().unwrap() as u64)
                .collect();
            let delivered_events: Vec<u64> = delivered.iter().map(|(e, s)| s * 10 + e).collect();
            prop_assert_eq!(seed_events, delivered_events.clone());
            // Native members: the same events, and a notice before each
            // hole in the seqs and each change of lineage.
            let mut last: Option<(u64, u64)> = None;
            let mut notice: Option<serde_json::Value> = None;
            let mut native_events = Vec::new();
            for frame in drained(&native) {
                if frame["type"] == "gap" {
                    prop_assert!(notice.is_none(), "two notices in a row");
                    notice = Some(frame);
                    continue;
                }
                prop_assert_eq!(&frame["type"], "message");
                let (epoch, seq) = (frame["epoch"].as_u64().unwrap(), frame["seq"].as_u64().unwrap());
                native_events.push(frame["data"]["trigger_price"].as_f64().unwrap() as u64);
                let notice = notice.take();
                match last {
                    Some((last_epoch, last_seq)) if last_epoch == epoch => {
                        prop_assert!(seq > last_seq, "seq {} after {}", seq, last_seq);
                        if seq == last_seq + 1 {
                            prop_assert!(notice.is_none(), "a notice without a gap");
                        } else {
                            let notice = notice.expect("a gap notice before a hole");
                            prop_assert_eq!(&notice["reason"], "lost");
                            prop_assert_eq!(&notice["epoch"], epoch);
                            prop_assert_eq!(&notice["missed"]["from"], last_seq + 1);
                            prop_assert_eq!(&notice["missed"]["to"], seq - 1);
                        }
                    }
                    Some(_) => {
                        let notice = notice.expect("a notice before a new lineage");
                        prop_assert_eq!(&notice["reason"], "epoch");
                        prop_assert_eq!(&notice["epoch"], epoch);
                        prop_assert!(notice.get("missed").is_none());
                    }
                    // The member's first event: the room adopts the lineage and
                    // position of its first delivery silently; a notice comes
                    // only when a lineage adopted before (a `Gap` answer) is
                    // replaced, or events after it are lost.
                    None => prop_assert!(
                        notice.is_none_or(|n| n["epoch"] == epoch
                            && (n["reason"] == "epoch"
                                || (n["reason"] == "lost" && n["missed"]["to"] == seq - 1))),
                        "a wrong notice before the first event"
                    ),
                }
                last = Some((epoch, seq));
            }
            prop_assert!(notice.is_none(), "a notice with no event after it");
            prop_assert_eq!(native_events, delivered_events);
        }
    }
}
