//! One room: a named stream that owns its state like a Durable Object — a
//! monotonically increasing `seq`, an `epoch`, a bounded history, and its
//! members grouped by dialect. Publishing takes the room's lock once, assigns
//! the next `seq`, encodes the event once per dialect present, and queues the
//! same `Bytes` to every member's outbox: no allocation or serialisation per
//! member. The lock is never held across `.await` (nothing here is async).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use indexmap::IndexMap;
use parking_lot::Mutex;

use super::history::History;
use crate::dialect::{self, DialectKind, Greeting, Joined, Published};
use crate::frame;
use crate::ids::{RoomId, SessionId};
use crate::outbox::{Delivery, Outbox, Pushed};
use crate::protocol::{Event, ModelDataFrame, RoomName};

/// The room was removed from the registry while a session was joining it;
/// the caller looks the room up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retired;

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
    /// Recent events for replay to new members.
    history: History,
    /// Frames every new member gets first, replaced by events that carry one
    /// (a modeldata feed's latest `initial_modeldata`); empty for most rooms.
    snapshot: Vec<Bytes>,
    /// Members per dialect ([`DialectKind::index`]), so each dialect's frame
    /// is encoded once and iterated over a contiguous map.
    members: [IndexMap<SessionId, Arc<Outbox>>; DialectKind::COUNT],
    /// Set when the registry removed the room; joins must go to the new one.
    retired: bool,
}

/// A named stream and its members.
#[derive(Debug)]
pub struct Room {
    /// The room's name, e.g. `ticker:AAPL`.
    name: RoomName,
    /// What a full outbox does with this room's frames; a conflating room's
    /// process-unique [`RoomId`] is the conflation key in members' outboxes.
    delivery: Delivery,
    /// Identifies this room's history lineage; changes when history is lost
    /// (a new room instance), so a resuming client can tell `seq`s apart.
    epoch: u64,
    /// Sequence, history and members.
    state: Mutex<RoomState>,
    /// Member count readable without the lock (stats, registry clean-up).
    member_count: AtomicUsize,
}

/// Whether a room's slow members are conflated or disconnected: prices,
/// market status and modeldata snapshots conflate (only the latest value
/// matters); every other stream is ordered, so a member that cannot keep up
/// is closed with 4008.
pub fn conflates(name: &RoomName) -> bool {
    name.ticker_symbol().is_some() || *name == RoomName::market_status() || name.is_modeldata()
}

impl Room {
    /// A new, empty room keeping `history_size` events.
    pub fn new(name: RoomName, history_size: usize) -> Self {
        let id = RoomId::next();
        let delivery = if conflates(&name) {
            Delivery::Conflate(id)
        } else {
            Delivery::Ordered
        };
        Room {
            name,
            delivery,
            // 53 bits: exact in JavaScript numbers.
            epoch: rand::random::<u64>() >> 11,
            state: Mutex::new(RoomState {
                seq: 0,
                history: History::new(history_size),
                snapshot: Vec::new(),
                members: std::array::from_fn(|_| IndexMap::new()),
                retired: false,
            }),
            member_count: AtomicUsize::new(0),
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

    /// Sequence number of the last published event.
    pub fn seq(&self) -> u64 {
        self.state.lock().seq
    }

    /// Retained history length.
    pub fn history_len(&self) -> usize {
        self.state.lock().history.len()
    }

    /// Adds a member. On a new join the room's snapshot, then the frames from
    /// `greet` (given the history, oldest first), are queued before the member
    /// can receive any live event.
    pub fn join(
        &self,
        session: SessionId,
        kind: DialectKind,
        outbox: &Arc<Outbox>,
        greet: Greeting<'_>,
    ) -> Result<Joined, Retired> {
        let mut state = self.state.lock();
        if state.retired {
            return Err(Retired);
        }
        if state.members[kind.index()].contains_key(&session) {
            return Ok(Joined::Already);
        }
        for frame in &state.snapshot {
            outbox.push(frame, Delivery::Ordered);
        }
        for frame in greet(&mut state.history.payloads()) {
            outbox.push(&frame, Delivery::Ordered);
        }
        state.members[kind.index()].insert(session, outbox.clone());
        self.member_count.fetch_add(1, Ordering::Relaxed);
        Ok(Joined::New)
    }

    /// Removes a member; false if it was not one.
    pub fn leave(&self, session: SessionId, kind: DialectKind) -> bool {
        let removed = self.state.lock().members[kind.index()]
            .swap_remove(&session)
            .is_some();
        if removed {
            self.member_count.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Marks the room retired if it has no members and no history; the
    /// registry calls this under its map lock before removing the room.
    pub fn retire_if_unused(&self) -> bool {
        let mut state = self.state.lock();
        let unused = state.history.is_empty() && state.members.iter().all(IndexMap::is_empty);
        if unused {
            state.retired = true;
        }
        unused
    }

    /// Publishes one event: next `seq`, into history, encoded once per dialect
    /// present, the same frame queued to every member.
    pub fn publish(&self, event: &Event) -> PublishReport {
        // The canonical encoding carries no seq, so it is built outside the lock.
        let canonical_frame = event.canonical_frame();
        let canonical = frame::payload(&canonical_frame);

        let mut state = self.state.lock();
        if let Event::ModelData(ModelDataFrame {
            snapshot: Some(snapshot),
            ..
        }) = event
        {
            state.snapshot.clone_from(snapshot);
        }
        state.seq += 1;
        let seq = state.seq;
        state.history.push(seq, canonical);
        let mut report = PublishReport {
            seq,
            ..PublishReport::default()
        };
        for kind in DialectKind::ALL {
            let members = &state.members[kind.index()];
            if members.is_empty() {
                continue;
            }
            let published = Published {
                room: &self.name,
                seq,
                epoch: self.epoch,
                event,
                canonical_frame: &canonical_frame,
            };
            let Some(frame) = dialect::encode(kind, &published) else {
                continue;
            };
            for outbox in members.values() {
                match outbox.push(&frame, self.delivery) {
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
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close_code::CloseCode;
    use crate::outbox::Drain;
    use crate::protocol::PatternAlert;
    use crate::protocol::PriceUpdate;
    use bytes::Bytes;

    fn price(ticker: &str, p: f64) -> Event {
        Event::PriceUpdate(PriceUpdate {
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
        Event::PatternAlert(PatternAlert {
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

    fn no_greeting() -> impl FnMut(&mut dyn Iterator<Item = &Bytes>) -> Vec<Bytes> {
        |_| Vec::new()
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
            room.join(
                SessionId::next(),
                DialectKind::Seed001,
                o,
                &mut no_greeting(),
            )
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
        let mut seen = 0;
        let mut greet = |h: &mut dyn Iterator<Item = &Bytes>| {
            seen = h.count();
            vec![frame::text(b"hello")]
        };
        room.join(SessionId::next(), DialectKind::Seed001, &outbox, &mut greet)
            .unwrap();
        assert_eq!(seen, 1);
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
        assert_eq!(
            room.join(id, k, &outbox, &mut no_greeting()),
            Ok(Joined::New)
        );
        assert_eq!(
            room.join(id, k, &outbox, &mut no_greeting()),
            Ok(Joined::Already)
        );
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
        room.join(SessionId::next(), k, &slow, &mut no_greeting())
            .unwrap();
        room.join(SessionId::next(), k, &fast, &mut no_greeting())
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
            &mut no_greeting(),
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
    fn retired_room_refuses_joins() {
        let room = Room::new(RoomName::patterns(), 10);
        assert!(room.retire_if_unused());
        let outbox = Arc::new(Outbox::new(8));
        assert_eq!(
            room.join(
                SessionId::next(),
                DialectKind::Seed001,
                &outbox,
                &mut no_greeting()
            ),
            Err(Retired)
        );
    }
}
