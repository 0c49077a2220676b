//! A room's fleet replica: in fleet mode a room on this node is a copy of
//! the fleet's room in Redis, fed by the bus. This is how the copy starts
//! (loading its recent history, members waiting meanwhile), follows (each
//! delivery in `seq` order, at most once, gaps reported or filled), and
//! admits members that resume ahead of it once it has caught up. A child of
//! `room`, so it works on the room's state directly.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{PublishReport, Room, RoomState, retained};
use crate::catalog::RoomName;
use crate::delivery::outbox::{Delivery, Outbox};
use crate::dialect::native::GapInfo;
use crate::dialect::{self, DialectKind, Greeting};
use crate::ids::SessionId;
use crate::protocol::Event;

/// A member whose greeting waits for the room's history (fleet mode).
pub(super) struct Waiting {
    /// The session.
    pub(super) session: SessionId,
    /// Its dialect.
    pub(super) kind: DialectKind,
    /// Its outbox.
    pub(super) outbox: Arc<Outbox>,
    /// Its greeting, run once the history is loaded.
    pub(super) greet: Greeting,
    /// A resuming member whose `seq` is ahead of this node's copy of the
    /// room (the bus is catching up): admitted once the room reaches it.
    pub(super) until: Option<u64>,
    /// When it started waiting (a bounded wait: see [`Room::admit_overdue`]).
    pub(super) since: Instant,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// The epoch of a fleet room whose lineage does not exist yet in Redis: the
/// first event's epoch is adopted without a gap notice.
pub const NO_LINEAGE: u64 = 0;

/// Where a fleet room stands in Redis when its history is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The room's lineage and its last `seq`.
    Known {
        /// The lineage.
        epoch: u64,
        /// The last `seq` published.
        seq: u64,
    },
    /// Nothing was ever published to the room (or its keys expired).
    Empty,
    /// Redis could not be read.
    Unknown,
}

/// What a delivery from another node (the bus) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// Delivered to the members.
    Delivered(PublishReport),
    /// Already delivered (its `seq` is not after the room's): ignored.
    Duplicate,
    /// Events between the room's `seq` (`last`) and this one are missing: the
    /// caller fetches them first, or delivers with `accept_gap` when they are
    /// lost.
    Gap {
        /// The room's last delivered `seq`.
        last: u64,
    },
}

impl Room {
    /// A room fed by the bus from other nodes: `seq` and `epoch` are taken
    /// from the first delivery.
    pub fn new_remote(name: RoomName, history_size: usize) -> Self {
        let mut room = Room::new(name, history_size);
        room.remote = true;
        // Fed by the bus only while it has members: nothing to keep it for.
        room.pinned = false;
        {
            let mut state = room.state.lock();
            state.synced = false;
            state.loading = true;
        }
        room
    }

    /// Sets the frames new members get first (a fleet modeldata room loading
    /// the latest snapshot from the bus); members then count as greeted.
    pub fn set_snapshot(&self, snapshot: Vec<Bytes>) {
        let mut state = self.state.lock();
        state.greeted = true;
        state.snapshot = snapshot;
    }

    /// Whether the room still waits for its history ([`Room::preload`]).
    pub fn is_loading(&self) -> bool {
        self.state.lock().loading
    }

    /// Ends loading with the room's recent history from the bus
    /// (`(seq, epoch, canonical JSON)`, oldest first) and its `head`: merged
    /// with anything delivered meanwhile, then every waiting member is
    /// greeted with it and admitted. Does nothing if the room is not loading.
    pub fn preload(&self, entries: Vec<(u64, u64, Bytes)>, head: Head) {
        let mut state = self.state.lock();
        if !state.loading {
            return;
        }
        state.loading = false;
        match head {
            Head::Known { epoch, seq } if !state.synced || state.epoch != epoch => {
                // Nothing delivered yet in this lineage: the stream is the history.
                state.synced = true;
                state.epoch = epoch;
                state.seq = seq;
                state.history.clear();
                for (seq, e, json) in entries {
                    if e == epoch {
                        state.history.push(seq, json);
                    }
                }
            }
            Head::Known { .. } => {
                // Live events arrived while loading: older entries go first.
                let live: Vec<(u64, Bytes)> = state.history.entries().collect();
                state.history.clear();
                let oldest_live = live.first().map_or(u64::MAX, |e| e.0);
                for (seq, _, json) in entries {
                    if seq < oldest_live {
                        state.history.push(seq, json);
                    }
                }
                for (seq, json) in live {
                    state.history.push(seq, json);
                }
            }
            Head::Empty if !state.synced => {
                // No lineage yet: the first event (seq 1) starts it, silently.
                state.synced = true;
                state.epoch = NO_LINEAGE;
                state.seq = 0;
            }
            // Unknown (Redis unreachable): the first delivery sets the baseline;
            // nothing can have been accepted by Redis meanwhile.
            Head::Empty | Head::Unknown => {}
        }
        let seq = state.seq;
        admit(&mut state, |w| w.until.is_none_or(|until| until <= seq));
    }

    /// Admits members that have waited longer than `max_wait` (a resume
    /// `seq` this node's copy of the room never reaches, e.g. a bogus one):
    /// greeted with what the room has.
    pub fn admit_overdue(&self, max_wait: std::time::Duration) {
        let mut state = self.state.lock();
        if state.loading || state.waiting.is_empty() {
            return;
        }
        admit(&mut state, |w| w.since.elapsed() >= max_wait);
    }

    /// `(epoch, seq)` of the last delivered event, or `None` for a fleet room
    /// that has delivered nothing yet (it has nothing to catch up on).
    pub fn resume_point(&self) -> Option<(u64, u64)> {
        let state = self.state.lock();
        state.synced.then_some((state.epoch, state.seq))
    }

    /// Delivers an event another node published, numbered by the bus: in
    /// order, at most once. `canonical_frame` is the event's canonical JSON as
    /// a text frame (received once per node, shared by every member).
    pub fn deliver(
        &self,
        event: &Event,
        canonical_frame: &Bytes,
        seq: u64,
        epoch: u64,
        accept_gap: bool,
    ) -> Remote {
        let mut state = self.state.lock();
        let mut gap = None;
        if state.synced && state.epoch == NO_LINEAGE {
            // The room's first lineage: adopt it; earlier seqs are a gap.
            state.epoch = epoch;
            if seq > state.seq + 1 && !accept_gap {
                return Remote::Gap { last: state.seq };
            }
        } else if !state.synced || state.epoch != epoch {
            // First delivery, or the bus lost the room's history: a new lineage,
            // which members that saw the old one are told about.
            if state.synced {
                gap = Some(None);
            }
            state.synced = true;
            state.epoch = epoch;
            state.history.clear();
        } else if seq <= state.seq {
            return Remote::Duplicate;
        } else if seq > state.seq + 1 {
            if !accept_gap {
                return Remote::Gap { last: state.seq };
            }
            gap = Some(Some(GapInfo {
                from: state.seq + 1,
                to: seq - 1,
            }));
        }
        if let Some(missed) = gap {
            for kind in DialectKind::ALL {
                let members = &state.members[kind.index()];
                if members.is_empty() {
                    continue;
                }
                if let Some(notice) = dialect::encode_gap(kind, &self.name, epoch, missed) {
                    for outbox in members.values() {
                        outbox.push(&notice, Delivery::Ordered);
                    }
                }
            }
        }
        let report = self.fan_out(&mut state, event, canonical_frame, seq);
        if !state.waiting.is_empty() && !state.loading {
            // Resuming members the room has now caught up with (all of them
            // on a new lineage: their seq belongs to the old one).
            let new_lineage = gap == Some(None);
            admit(&mut state, |w| {
                new_lineage || w.until.is_none_or(|until| until <= seq)
            });
        }
        Remote::Delivered(report)
    }
    /// Delivers a batch another node published (consecutive seqs from
    /// `first`, e.g. the alert triggers one price fired) as one outbox entry
    /// per member, when it directly follows the room's copy in the same
    /// lineage. `None` otherwise: the caller delivers it event by event,
    /// which handles gaps, duplicates and new lineages.
    pub fn deliver_batch(
        &self,
        events: &[(&Event, &Bytes)],
        first: u64,
        epoch: u64,
    ) -> Option<PublishReport> {
        let mut state = self.state.lock();
        // The same lineage, or the room's first one (adopted silently, as
        // by a single delivery).
        let follows = state.synced
            && (state.epoch == epoch || state.epoch == NO_LINEAGE)
            && first == state.seq + 1;
        if !follows || events.is_empty() {
            return None;
        }
        state.epoch = epoch;
        let report = self.fan_out_batch(&mut state, events, first);
        if !state.waiting.is_empty() && !state.loading {
            let last = first + events.len() as u64 - 1;
            admit(&mut state, |w| w.until.is_none_or(|until| until <= last));
        }
        Some(report)
    }
}

/// Greets and admits the waiting members `ready` picks, in join order.
pub(super) fn admit(state: &mut RoomState, ready: impl Fn(&Waiting) -> bool) {
    let (go, stay): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut state.waiting)
        .into_iter()
        .partition(|w| ready(w));
    state.waiting = stay;
    for waiting in go {
        waiting
            .outbox
            .push_greeting(&(waiting.greet)(&retained(state)));
        state.members[waiting.kind.index()].insert(waiting.session, waiting.outbox);
    }
}
