//! A session's outbound queue: the only buffer between fan-out and the socket.
//!
//! Rooms push pre-encoded frames ([`Bytes`] shared by every member) into each
//! member's [`Outbox`]; the flusher or the session's writer drains what is
//! queued, up to [`MAX_BATCH`] frames per vectored write. The queue is
//! bounded. When it is full the frame's
//! [`Delivery`] decides: a conflating stream (prices, market status) keeps only
//! the latest frame per room in a side slot, so a slow reader gets fresh values
//! and never unbounded memory; an ordered stream (patterns, alerts) cannot skip,
//! so the session is closed with [`CloseCode::SlowConsumer`] (4008) rather than
//! silently losing a message. Pushing never waits on the socket and never
//! allocates once the queue (and the flusher's queue) has grown to its
//! working size; a push to an idle outbox also takes the flusher's queue
//! lock, briefly.
//!
//! Who writes: an outbox built with [`Outbox::direct`] is written by the
//! node's [`Flusher`] while its socket keeps up. A push to an idle outbox
//! schedules it there (one wake-up per fan-out, not one per member); the
//! flusher writes what is queued with a non-blocking vectored write and, when
//! the socket cannot take everything, hands the outbox to the session's own
//! writer, which waits for the socket and writes until the queue is empty
//! again. Exactly one of them owns the socket at a time ([`Owner`]), so bytes
//! never interleave; the close frame is always written by the session's
//! writer. A plain [`Outbox::new`] is written by its writer alone, woken when
//! the outbox goes from empty to non-empty.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use crate::close_code::CloseCode;
use crate::delivery::flusher::Flusher;
use crate::ids::RoomId;
use crate::telemetry::metrics;

/// Default number of frames a session may have queued before its room's
/// slow-consumer policy applies.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Most frames handed out by one drain, so to one `writev` (the flusher's
/// and the session writer's batch): as many as one system call sends.
pub const MAX_BATCH: usize = crate::sys::MAX_IOVECS;

/// How a frame may be treated when the outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every frame must arrive, in order; overflow closes the session (4008).
    Ordered,
    /// Only the latest frame for this room matters; overflow replaces the
    /// pending frame of the same room.
    Conflate(RoomId),
}

/// What happened to one pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Appended to the queue.
    Queued,
    /// The queue was full (or already held a conflated frame for the room):
    /// the frame replaced or became the room's pending latest value.
    Conflated,
    /// The queue was full on an ordered stream: the session is now closing with
    /// 4008, and this many frames (the queued ones and this one) were discarded.
    Overflowed(usize),
    /// The session is closing or gone; the frame was not queued.
    Closed,
}

/// What the writer should do next, as returned by [`Outbox::drain_into`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Frames were moved into the writer's batch; write them.
    Frames,
    /// Nothing for the writer now (nothing queued, or the flusher is
    /// writing); wait for [`Outbox::ready`].
    Idle,
    /// Everything owed has been drained: send this close frame and stop.
    Close(CloseCode),
    /// The session is gone: stop without writing.
    Finished,
}

/// What [`Outbox::take_for_flush`] handed the flusher.
#[derive(Debug)]
pub enum FlushTake<'a> {
    /// Frames were moved into the batch: write them to this socket, then
    /// report with [`Outbox::flushed`].
    Frames(&'a OwnedWriteHalf),
    /// Nothing to do: the outbox is idle again, or now the writer's.
    Done,
}

/// Who may write the socket. Changed only under the outbox lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Nobody is writing and nothing is queued (or the writer is about to
    /// look): the next push decides who writes.
    Idle,
    /// Scheduled on (or being written by, see `State::flushing`) the
    /// flusher; the writer keeps off. A push that fills the queue of an
    /// outbox the flusher has not reached gives it to the writer.
    Flusher,
    /// The session's writer: it drains until the queue is empty.
    Writer,
}

/// The flusher path of an outbox built with [`Outbox::direct`].
#[derive(Debug)]
struct Direct {
    /// The socket's write half, shared with the session's writer; only the
    /// current [`Owner`] writes it.
    socket: Arc<OwnedWriteHalf>,
    /// Where an idle outbox is scheduled when a frame arrives.
    flusher: Arc<Flusher>,
    /// This outbox, so a push (`&self`) can schedule it.
    this: Weak<Outbox>,
}

/// Closing state of an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Accepting frames.
    Open,
    /// Deliver what is queued, then the close frame.
    AfterFlush(CloseCode),
    /// Discard what is queued and send the close frame at once.
    Now(CloseCode),
    /// The close frame was handed out, or the peer is gone.
    Done,
}

/// State behind the outbox lock; held only for a push or a drain, never across `.await`.
#[derive(Debug)]
struct State {
    /// Frames in arrival order; bounded by `Outbox::capacity` (plus at most
    /// [`MAX_BATCH`] that the flusher took and gave back unwritten).
    queue: VecDeque<Bytes>,
    /// Latest pending frame per conflating room that did not fit in the queue
    /// (or arrived while the room already had a pending frame here, so that
    /// per-room order is kept). Bounded by the session's subscription count.
    conflated: Vec<(RoomId, Bytes)>,
    /// The rest of a frame the flusher wrote only in part: it must reach the
    /// socket before any other byte, the close frame included, so neither a
    /// slow-consumer overflow nor `close_now` discards it (only `abandon`,
    /// when the peer is gone). Set only when the socket goes to the writer.
    partial: Option<Bytes>,
    /// Whether and how the session is closing.
    closing: Closing,
    /// Who writes the socket now.
    owner: Owner,
    /// The flusher holds frames of this outbox and is writing them (set by
    /// [`Outbox::take_for_flush`], cleared when it takes again, finds the
    /// queue empty or hands over). While it is false, an outbox the flusher
    /// owns is only scheduled: it has not been reached yet.
    flushing: bool,
    /// Greeting frames still queued ([`Outbox::push_greeting`]): they do not
    /// count against the capacity. Boxed, and only while there are some, so
    /// the common state stays small (it is touched once per member per publish).
    greetings: Option<Box<Greetings>>,
}

/// Where a joiner's greeting frames sit in the queue. Positions count
/// frames appended to the queue since this was created (the frames queued
/// then included), so a range stays put while frames are taken from the
/// front or given back to it.
#[derive(Debug)]
struct Greetings {
    /// Position the next appended frame takes.
    appended: u64,
    /// Position of the queue's first frame.
    taken: u64,
    /// `[start, end)` of each greeting not yet all taken, oldest first.
    ranges: Vec<(u64, u64)>,
}

impl State {
    fn append(&mut self, frame: Bytes) {
        self.queue.push_back(frame);
        if let Some(g) = &mut self.greetings {
            g.appended += 1;
        }
    }

    /// `n` frames left the front of the queue.
    fn took(&mut self, n: usize) {
        let Some(g) = &mut self.greetings else {
            return;
        };
        g.taken += n as u64;
        let taken = g.taken;
        g.ranges.retain(|&(_, end)| end > taken);
        if g.ranges.is_empty() {
            self.greetings = None;
        }
    }

    /// `n` frames taken went back to the front of the queue (unwritten).
    fn gave_back(&mut self, n: usize) {
        if let Some(g) = &mut self.greetings {
            g.taken -= n as u64;
        }
    }

    /// Queued frames that count against the capacity: all but greetings.
    fn live_len(&self) -> usize {
        let Some(g) = &self.greetings else {
            return self.queue.len();
        };
        let greeting: u64 = g
            .ranges
            .iter()
            .map(|&(start, end)| end - start.max(g.taken))
            .sum();
        self.queue.len() - greeting as usize
    }

    /// Marks the next `n` frames to be appended as a greeting.
    fn start_greeting(&mut self, n: usize) {
        let queued = self.queue.len() as u64;
        let g = self.greetings.get_or_insert_with(|| {
            Box::new(Greetings {
                appended: queued,
                taken: 0,
                ranges: Vec::new(),
            })
        });
        g.ranges.push((g.appended, g.appended + n as u64));
    }

    fn clear_queue(&mut self) {
        self.queue.clear();
        self.conflated.clear();
        self.greetings = None;
    }
}

/// A session's bounded queue of pre-encoded frames. Shared (`Arc`) between the
/// rooms the session belongs to, the session itself and its writer.
#[derive(Debug)]
pub struct Outbox {
    /// Queue and closing state; a short critical section per push or drain.
    state: Mutex<State>,
    /// Wakes the writer: when the outbox goes from empty to non-empty while
    /// the writer owns it (or it has no flusher), when it starts closing, and
    /// when the flusher hands the socket over.
    notify: Notify,
    /// Maximum frames in `queue`; past it the room's [`Delivery`] policy applies.
    capacity: usize,
    /// Set when the flusher may write this outbox's socket directly.
    direct: Option<Direct>,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` frames (at least 1),
    /// written by its session's writer alone.
    pub fn new(capacity: usize) -> Self {
        Self::build(capacity, None)
    }

    /// An empty outbox whose frames `flusher` writes to `socket` while the
    /// socket keeps up (see the module docs); the session's writer writes the
    /// rest and the close frame.
    pub fn direct(
        capacity: usize,
        socket: Arc<OwnedWriteHalf>,
        flusher: Arc<Flusher>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| {
            Self::build(
                capacity,
                Some(Direct {
                    socket,
                    flusher,
                    this: Weak::clone(this),
                }),
            )
        })
    }

    fn build(capacity: usize, direct: Option<Direct>) -> Self {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                conflated: Vec::new(),
                partial: None,
                closing: Closing::Open,
                owner: Owner::Idle,
                flushing: false,
                greetings: None,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
            direct,
        }
    }

    /// Queues a clone of `frame` (a reference-count increment) under `delivery`'s policy.
    pub fn push(&self, frame: &Bytes, delivery: Delivery) -> Pushed {
        let mut taken_over = false;
        let (outcome, (wake, schedule)) = {
            let mut state = self.state.lock();
            if state.closing != Closing::Open {
                return Pushed::Closed;
            }
            let was_empty = state.queue.is_empty() && state.conflated.is_empty();
            let outcome = match delivery {
                Delivery::Conflate(room) => {
                    if let Some(slot) = state.conflated.iter_mut().find(|(r, _)| *r == room) {
                        slot.1 = frame.clone();
                        Pushed::Conflated
                    } else if state.live_len() < self.capacity {
                        state.append(frame.clone());
                        Pushed::Queued
                    } else {
                        state.conflated.push((room, frame.clone()));
                        Pushed::Conflated
                    }
                }
                Delivery::Ordered => {
                    if state.live_len() < self.capacity {
                        state.append(frame.clone());
                        Pushed::Queued
                    } else if state.owner == Owner::Flusher && !state.flushing {
                        // Full, but nothing has been offered to the socket
                        // yet: the flusher has not reached this outbox (a
                        // burst of publishes, or the flusher's worker thread
                        // descheduled). The slow-consumer policy is about the
                        // client's socket, so the session's writer takes over
                        // and offers it the queue; if the socket cannot take
                        // it, the next push past capacity closes as usual.
                        state.append(frame.clone());
                        state.owner = Owner::Writer;
                        taken_over = true;
                        Pushed::Queued
                    } else {
                        let discarded = state.queue.len() + state.conflated.len() + 1;
                        state.clear_queue();
                        state.closing = Closing::Now(CloseCode::SlowConsumer);
                        Pushed::Overflowed(discarded)
                    }
                }
            };
            let wake = was_empty || taken_over || matches!(outcome, Pushed::Overflowed(_));
            (outcome, self.route(&mut state, wake))
        };
        self.wake(wake, schedule);
        outcome
    }

    /// Queues a joiner's greeting (a room's snapshot, or its replay) ahead of
    /// any live frame of the room: in order, and outside the capacity, since
    /// the room's retention already bounds it. Live frames queued after it
    /// still find the whole capacity free for them.
    pub fn push_greeting(&self, frames: &[Bytes]) {
        if frames.is_empty() {
            return;
        }
        let (wake, schedule) = {
            let mut state = self.state.lock();
            if state.closing != Closing::Open {
                return;
            }
            let was_empty = state.queue.is_empty() && state.conflated.is_empty();
            state.start_greeting(frames.len());
            for frame in frames {
                state.append(frame.clone());
            }
            self.route(&mut state, was_empty)
        };
        self.wake(wake, schedule);
    }

    /// After a push that may need a writer (`wake`): an idle socket with
    /// frames to send goes to the flusher; a closing one (overflow) to the
    /// writer, which sends the close. Returns `(wake the writer, schedule on
    /// the flusher)`.
    fn route(&self, state: &mut State, wake: bool) -> (bool, bool) {
        let schedule = wake
            && state.owner == Owner::Idle
            && state.closing == Closing::Open
            && self.direct.is_some();
        if schedule {
            state.owner = Owner::Flusher;
        }
        (wake && state.owner != Owner::Flusher, schedule)
    }

    fn wake(&self, wake: bool, schedule: bool) {
        if schedule {
            self.schedule();
        } else if wake {
            self.notify.notify_one();
        }
    }

    /// Hands this outbox (now owned by the flusher) to the flusher, or back to
    /// the writer when the flusher has stopped.
    fn schedule(&self) {
        let direct = self.direct.as_ref().expect("scheduled outboxes are direct");
        let scheduled = direct
            .this
            .upgrade()
            .is_some_and(|this| direct.flusher.schedule(this));
        if !scheduled {
            self.hand_to_writer();
        }
    }

    /// For the flusher (or a push the stopped flusher refused): gives the
    /// socket, if the flusher still owns it, to the session's writer and
    /// wakes it. (A push may have given it to the writer already, see
    /// [`Outbox::push`]; the flusher's queue can then still hold the outbox.)
    pub(crate) fn hand_to_writer(&self) {
        {
            let mut state = self.state.lock();
            if state.owner != Owner::Flusher {
                return;
            }
            state.owner = Owner::Writer;
            state.flushing = false;
        }
        self.notify.notify_one();
    }

    /// For the flusher: moves up to `max` queued frames into `batch` and
    /// returns the socket to write them to. When nothing is queued the outbox
    /// becomes idle; when it is closing, it goes to the writer (which sends
    /// the close frame). Only called while the flusher owns the outbox.
    pub(crate) fn take_for_flush(&self, batch: &mut Vec<Bytes>, max: usize) -> FlushTake<'_> {
        let mut state = self.state.lock();
        if state.owner != Owner::Flusher {
            // A push gave it to the writer before the flusher got here (or
            // it is a stale entry of an outbox scheduled again since).
            return FlushTake::Done;
        }
        state.flushing = false;
        if state.closing != Closing::Open {
            state.owner = Owner::Writer;
            drop(state);
            self.notify.notify_one();
            return FlushTake::Done;
        }
        if !take_frames(&mut state, batch, max) {
            state.owner = Owner::Idle;
            return FlushTake::Done;
        }
        state.flushing = true;
        let direct = self.direct.as_ref().expect("flushed outboxes are direct");
        FlushTake::Frames(&direct.socket)
    }

    /// For the flusher, after writing what [`Outbox::take_for_flush`] gave it:
    /// `unwritten` holds what the socket did not take, its first frame already
    /// advanced past the bytes written (`started`: some of it was). Empty: the
    /// flusher keeps the outbox and takes again (true). Otherwise the writer
    /// takes over to wait for the socket (false): a started frame is kept to
    /// be finished first, the whole ones go back to the front of the queue in
    /// order (or are dropped if the session is closing at once).
    pub(crate) fn flushed(&self, unwritten: &mut Vec<Bytes>, started: bool) -> bool {
        if unwritten.is_empty() {
            return true;
        }
        let mut state = self.state.lock();
        let mut rest = unwritten.drain(..);
        if started && state.closing != Closing::Done {
            state.partial = rest.next();
        }
        if matches!(state.closing, Closing::Open | Closing::AfterFlush(_)) {
            let n = rest.len();
            for frame in rest.rev() {
                state.queue.push_front(frame);
            }
            state.gave_back(n);
        } else {
            // Closing at once (an overflow already counted the queue it
            // discarded) or gone: these frames go with it.
            metrics().frames_dropped.increment(rest.len() as u64);
            rest.for_each(drop);
        }
        state.owner = Owner::Writer;
        state.flushing = false;
        drop(state);
        self.notify.notify_one();
        false
    }

    /// Starts closing: queued frames are delivered first, then the close frame.
    /// A session already closing keeps its first reason.
    pub fn close(&self, code: CloseCode) {
        self.set_closing(Closing::AfterFlush(code));
    }

    /// Closes at once: queued frames are discarded and the close frame goes next.
    pub fn close_now(&self, code: CloseCode) {
        self.set_closing(Closing::Now(code));
    }

    /// The peer is gone: drop everything, the writer stops without writing.
    pub fn abandon(&self) {
        {
            let mut state = self.state.lock();
            state.clear_queue();
            state.partial = None;
            state.closing = Closing::Done;
        }
        self.notify.notify_one();
    }

    fn set_closing(&self, closing: Closing) {
        {
            let mut state = self.state.lock();
            if state.closing != Closing::Open {
                return;
            }
            if matches!(closing, Closing::Now(_)) {
                state.clear_queue();
            }
            state.closing = closing;
        }
        self.notify.notify_one();
    }

    /// True until the session starts closing.
    pub fn is_open(&self) -> bool {
        self.state.lock().closing == Closing::Open
    }

    /// Moves up to `max` frames into `batch` (which the writer reuses), or says
    /// why there are none.
    pub fn drain_into(&self, batch: &mut Vec<Bytes>, max: usize) -> Drain {
        let mut state = self.state.lock();
        if state.owner == Owner::Flusher {
            // The flusher is writing; it hands over (and wakes the writer)
            // when the socket is full or the session closes.
            return Drain::Idle;
        }
        state.owner = Owner::Writer;
        if state.closing == Closing::Done {
            return Drain::Finished;
        }
        if let Some(rest) = state.partial.take() {
            batch.push(rest);
            return Drain::Frames;
        }
        if let Closing::Now(code) = state.closing {
            state.closing = Closing::Done;
            return Drain::Close(code);
        }
        if take_frames(&mut state, batch, max) {
            return Drain::Frames;
        }
        match state.closing {
            Closing::AfterFlush(code) => {
                state.closing = Closing::Done;
                Drain::Close(code)
            }
            _ => {
                state.owner = Owner::Idle;
                Drain::Idle
            }
        }
    }

    /// Resolves when something was pushed or closing began since the last drain.
    pub async fn ready(&self) {
        self.notify.notified().await
    }

    /// Frames currently waiting (queue, conflated slots and a partly written
    /// frame), not counting a batch the flusher or writer is writing.
    pub fn len(&self) -> usize {
        let state = self.state.lock();
        state.queue.len() + state.conflated.len() + usize::from(state.partial.is_some())
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Moves up to `max` frames into `batch`: the queue first, then the
/// conflated slots once the queue is empty. False when nothing was waiting.
fn take_frames(state: &mut State, batch: &mut Vec<Bytes>, max: usize) -> bool {
    if state.queue.len() == 1 {
        // The common case at low rates: one frame, without a drain iterator.
        batch.extend(state.queue.pop_front());
        state.took(1);
        return true;
    }
    if !state.queue.is_empty() {
        let n = state.queue.len().min(max);
        batch.extend(state.queue.drain(..n));
        state.took(n);
        return true;
    }
    if !state.conflated.is_empty() {
        let n = state.conflated.len().min(max);
        batch.extend(state.conflated.drain(..n).map(|(_, frame)| frame));
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn drain_all(outbox: &Outbox) -> Vec<Bytes> {
        let mut out = Vec::new();
        while outbox.drain_into(&mut out, 64) == Drain::Frames {}
        out
    }

    #[test]
    fn frames_drain_in_order() {
        let outbox = Outbox::new(8);
        for s in ["a", "b", "c"] {
            assert_eq!(outbox.push(&frame(s), Delivery::Ordered), Pushed::Queued);
        }
        assert_eq!(drain_all(&outbox), vec![frame("a"), frame("b"), frame("c")]);
        assert_eq!(outbox.drain_into(&mut Vec::new(), 64), Drain::Idle);
    }

    fn frames(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(format!("g{i}"))).collect()
    }

    #[test]
    fn a_greeting_longer_than_the_capacity_does_not_count_against_it() {
        let outbox = Outbox::new(4);
        outbox.push_greeting(&frames(100));
        for s in ["a", "b", "c", "d"] {
            assert_eq!(outbox.push(&frame(s), Delivery::Ordered), Pushed::Queued);
        }
        assert_eq!(
            outbox.push(&frame("e"), Delivery::Ordered),
            Pushed::Overflowed(105)
        );
    }

    #[test]
    fn greeting_frames_keep_their_order_among_live_frames_and_free_nothing_they_never_took() {
        let outbox = Outbox::new(4);
        outbox.push(&frame("a"), Delivery::Ordered);
        outbox.push(&frame("b"), Delivery::Ordered);
        outbox.push_greeting(&frames(10));
        let mut batch = Vec::new();
        // Takes a, b and three greeting frames.
        assert_eq!(outbox.drain_into(&mut batch, 5), Drain::Frames);
        assert_eq!(&batch[..2], &[frame("a"), frame("b")]);
        // Seven greeting frames are queued, none of them counted: four live fit.
        for s in ["c", "d", "e", "f"] {
            assert_eq!(outbox.push(&frame(s), Delivery::Ordered), Pushed::Queued);
        }
        assert!(matches!(
            outbox.push(&frame("g"), Delivery::Ordered),
            Pushed::Overflowed(_)
        ));
        let outbox = Outbox::new(4);
        outbox.push_greeting(&frames(3));
        outbox.push(&frame("a"), Delivery::Ordered);
        let all = drain_all(&outbox);
        assert_eq!(&all[..3], &frames(3)[..]);
        assert_eq!(all[3], frame("a"));
        // Everything drained: the whole capacity is free again.
        for s in ["b", "c", "d", "e"] {
            assert_eq!(outbox.push(&frame(s), Delivery::Ordered), Pushed::Queued);
        }
    }

    #[test]
    fn drain_respects_batch_limit() {
        let outbox = Outbox::new(8);
        for s in ["a", "b", "c"] {
            outbox.push(&frame(s), Delivery::Ordered);
        }
        let mut batch = Vec::new();
        assert_eq!(outbox.drain_into(&mut batch, 2), Drain::Frames);
        assert_eq!(batch.len(), 2);
        assert_eq!(outbox.len(), 1);
    }

    #[test]
    fn full_ordered_outbox_closes_with_4008_and_discards_queue() {
        let outbox = Outbox::new(2);
        outbox.push(&frame("a"), Delivery::Ordered);
        outbox.push(&frame("b"), Delivery::Ordered);
        assert_eq!(
            outbox.push(&frame("c"), Delivery::Ordered),
            Pushed::Overflowed(3)
        );
        assert_eq!(
            outbox.drain_into(&mut Vec::new(), 64),
            Drain::Close(CloseCode::SlowConsumer)
        );
        assert_eq!(outbox.push(&frame("d"), Delivery::Ordered), Pushed::Closed);
        assert_eq!(outbox.drain_into(&mut Vec::new(), 64), Drain::Finished);
    }

    #[test]
    fn full_conflating_outbox_keeps_latest_per_room() {
        let aapl = RoomId(1);
        let msft = RoomId(2);
        let outbox = Outbox::new(2);
        outbox.push(&frame("a1"), Delivery::Conflate(aapl));
        outbox.push(&frame("m1"), Delivery::Conflate(msft));
        assert_eq!(
            outbox.push(&frame("a2"), Delivery::Conflate(aapl)),
            Pushed::Conflated
        );
        assert_eq!(
            outbox.push(&frame("a3"), Delivery::Conflate(aapl)),
            Pushed::Conflated
        );
        assert_eq!(
            outbox.push(&frame("m2"), Delivery::Conflate(msft)),
            Pushed::Conflated
        );
        assert_eq!(outbox.len(), 4);
        assert_eq!(
            drain_all(&outbox),
            vec![frame("a1"), frame("m1"), frame("a3"), frame("m2")]
        );
    }

    #[test]
    fn conflated_room_stays_in_order_after_queue_frees_up() {
        let aapl = RoomId(1);
        let outbox = Outbox::new(1);
        outbox.push(&frame("a1"), Delivery::Conflate(aapl));
        outbox.push(&frame("a2"), Delivery::Conflate(aapl)); // to the side slot
        let mut batch = Vec::new();
        outbox.drain_into(&mut batch, 64); // a1 leaves, queue has room again
        // a3 must not overtake the pending a2: it replaces it instead.
        assert_eq!(
            outbox.push(&frame("a3"), Delivery::Conflate(aapl)),
            Pushed::Conflated
        );
        assert_eq!(drain_all(&outbox), vec![frame("a3")]);
    }

    #[test]
    fn graceful_close_flushes_queue_first() {
        let outbox = Outbox::new(8);
        outbox.push(&frame("a"), Delivery::Ordered);
        outbox.close(CloseCode::GoingAway);
        assert_eq!(
            outbox.push(&frame("late"), Delivery::Ordered),
            Pushed::Closed
        );
        let mut batch = Vec::new();
        assert_eq!(outbox.drain_into(&mut batch, 64), Drain::Frames);
        assert_eq!(batch, vec![frame("a")]);
        assert_eq!(
            outbox.drain_into(&mut batch, 64),
            Drain::Close(CloseCode::GoingAway)
        );
    }

    #[test]
    fn first_close_reason_wins() {
        let outbox = Outbox::new(8);
        outbox.close(CloseCode::IdleTimeout);
        outbox.close_now(CloseCode::GoingAway);
        assert_eq!(
            outbox.drain_into(&mut Vec::new(), 64),
            Drain::Close(CloseCode::IdleTimeout)
        );
    }

    #[test]
    fn abandoned_outbox_finishes_without_close_frame() {
        let outbox = Outbox::new(8);
        outbox.push(&frame("a"), Delivery::Ordered);
        outbox.abandon();
        assert_eq!(outbox.drain_into(&mut Vec::new(), 64), Drain::Finished);
    }

    #[tokio::test]
    async fn push_to_empty_outbox_wakes_writer() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let waiter = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.ready().await })
        };
        outbox.push(&frame("a"), Delivery::Ordered);
        waiter.await.unwrap();
    }
}
