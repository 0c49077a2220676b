//! Execution slots, handed out in start order: at most
//! `ROOMCAST_BACKTEST_MAX_CONCURRENT` runs execute; the others wait in the
//! order their POSTs were answered (a tokio semaphore would order them by
//! when each run's task first asked, which a later POST can beat). A run
//! cancelled while waiting gives up its place; a finished run's slot goes
//! to the longest-waiting run.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The node's execution slots.
#[derive(Debug)]
pub struct Slots {
    /// Free slots, and the runs waiting for one, oldest first.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Slots nobody holds.
    free: usize,
    /// Where to hand the next freed slots.
    waiting: VecDeque<oneshot::Sender<Slot>>,
}

/// A held slot; dropping it hands it on.
#[derive(Debug)]
pub struct Slot {
    /// The slots it returns to (`None` once it has gone back).
    slots: Option<Arc<Slots>>,
}

/// A place in the queue: a slot now, or one to wait for.
#[derive(Debug)]
pub enum Ticket {
    /// A slot was free.
    Now(Slot),
    /// Wait for it (a dropped receiver gives up the place).
    Later(oneshot::Receiver<Slot>),
}

impl Ticket {
    /// The slot, once it is this run's turn.
    pub async fn slot(self) -> Option<Slot> {
        match self {
            Ticket::Now(slot) => Some(slot),
            Ticket::Later(turn) => turn.await.ok(),
        }
    }
}

impl Slots {
    /// `count` slots, all free.
    pub fn new(count: usize) -> Arc<Self> {
        Arc::new(Slots {
            state: Mutex::new(State {
                free: count,
                waiting: VecDeque::new(),
            }),
        })
    }

    /// Takes a place in line (call it when the run is registered).
    pub fn queue(self: &Arc<Self>) -> Ticket {
        let mut state = self.state.lock();
        if state.free > 0 && state.waiting.is_empty() {
            state.free -= 1;
            return Ticket::Now(Slot {
                slots: Some(Arc::clone(self)),
            });
        }
        let (tx, rx) = oneshot::channel();
        state.waiting.push_back(tx);
        Ticket::Later(rx)
    }

    /// Hands a freed slot to the longest-waiting run still waiting.
    fn release(self: &Arc<Self>) {
        let mut state = self.state.lock();
        while let Some(next) = state.waiting.pop_front() {
            let slot = Slot {
                slots: Some(Arc::clone(self)),
            };
            match next.send(slot) {
                Ok(()) => return,
                // It gave up its place: the slot came back unsent; disarm it
                // (its drop must not release again, under this lock).
                Err(mut slot) => slot.slots = None,
            }
        }
        state.free += 1;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_go_in_queue_order_and_skip_those_who_left() {
        let slots = Slots::new(1);
        let first = slots.queue().slot().await.expect("free");
        let second = slots.queue();
        let gave_up = slots.queue();
        let third = slots.queue();
        drop(gave_up);
        drop(first);
        let second = second.slot().await.expect("the second's turn");
        drop(second);
        let third = third
            .slot()
            .await
            .expect("the third's turn, the one who left skipped");
        drop(third);
        assert!(matches!(slots.queue(), Ticket::Now(_)));
    }
}
