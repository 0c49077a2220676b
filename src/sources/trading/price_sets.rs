//! The distinct price symbol sets this node's `/ws` connections asked
//! for: one `s004:prices?<SYM,…>` room each, so connections with equal sets
//! share one batch and one encode. A connection holds a [`PriceSetLease`]
//! while it is narrowed to a set; the batcher serves the sets with a
//! holder (in a fleet, every node's, registered in Redis). A set seen for
//! the first time is batched at once, so its first connection is not left
//! waiting a whole interval. At most `ROOMCAST_WS_MAX_PRICE_FEEDS` sets
//! are held at once; the "all symbols" room is not one of them.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::catalog::RoomName;

/// Held sets and their holders.
#[derive(Debug)]
pub struct PriceSets {
    /// Most sets held at once.
    max: usize,
    /// Holders per set, and sets not batched yet.
    state: Mutex<SetsState>,
    /// Wakes the batcher when a set is new.
    fresh: Notify,
}

#[derive(Debug, Default)]
struct SetsState {
    /// Connections holding each set: a set is served while it has one.
    holders: HashMap<RoomName, usize>,
    /// Sets held since the batcher last looked, to batch at once.
    new: Vec<RoomName>,
}

/// The node already serves as many sets as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Too many distinct symbol sets on this server")]
pub struct TooManySets;

/// A connection's hold on its set: released when dropped.
#[derive(Debug)]
pub struct PriceSetLease {
    /// The registry to release into when dropped.
    sets: Arc<PriceSets>,
    /// The set held.
    room: RoomName,
}

impl PriceSetLease {
    /// The set's room.
    pub fn room(&self) -> &RoomName {
        &self.room
    }
}

impl Drop for PriceSetLease {
    fn drop(&mut self) {
        let mut state = self.sets.state.lock();
        if let Some(holders) = state.holders.get_mut(&self.room) {
            *holders -= 1;
            if *holders == 0 {
                state.holders.remove(&self.room);
            }
        }
    }
}

impl PriceSets {
    /// A registry of at most `max` sets.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PriceSets {
            max,
            state: Mutex::default(),
            fresh: Notify::new(),
        })
    }

    /// Holds the set of `room` (an `s004:prices?…` room) for a connection
    /// that holds `replacing` until it has the new one: a set only it holds
    /// does not count against the cap.
    pub fn acquire(
        self: &Arc<Self>,
        room: RoomName,
        replacing: Option<&PriceSetLease>,
    ) -> Result<PriceSetLease, TooManySets> {
        let mut state = self.state.lock();
        let freed = replacing.is_some_and(|old| state.holders.get(&old.room) == Some(&1));
        let held = state.holders.len() - usize::from(freed);
        match state.holders.get_mut(&room) {
            Some(holders) => *holders += 1,
            None if held >= self.max => return Err(TooManySets),
            None => {
                state.holders.insert(room.clone(), 1);
                state.new.push(room.clone());
                self.fresh.notify_one();
            }
        }
        Ok(PriceSetLease {
            sets: Arc::clone(self),
            room,
        })
    }

    /// Every held set.
    pub fn held(&self) -> Vec<RoomName> {
        self.state.lock().holders.keys().cloned().collect()
    }

    /// Sets held for the first time since the last call.
    pub fn take_new(&self) -> Vec<RoomName> {
        std::mem::take(&mut self.state.lock().new)
    }

    /// Resolves when a set is held for the first time.
    pub async fn fresh(&self) {
        self.fresh.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(symbols: &[&str]) -> RoomName {
        let owned: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
        RoomName::s004_prices(Some(&owned)).unwrap()
    }

    #[test]
    fn a_set_is_held_while_any_connection_holds_it_and_the_cap_counts_sets() {
        let sets = PriceSets::new(2);
        let a1 = sets.acquire(set(&["A"]), None).unwrap();
        let a2 = sets.acquire(set(&["A"]), None).unwrap();
        let b = sets.acquire(set(&["B"]), None).unwrap();
        assert_eq!(sets.take_new().len(), 2, "A and B are new once");
        assert_eq!(sets.acquire(set(&["C"]), None).unwrap_err(), TooManySets);
        assert_eq!(
            sets.acquire(set(&["C"]), Some(&a1)).unwrap_err(),
            TooManySets,
            "A has another holder"
        );
        drop(a1);
        assert_eq!(sets.held().len(), 2);
        drop(a2);
        assert_eq!(sets.held(), vec![set(&["B"])]);
        let c = sets.acquire(set(&["C"]), None).unwrap();
        assert_eq!(b.room(), &set(&["B"]));
        assert_eq!(sets.take_new(), vec![set(&["C"])]);
        // B's only holder moves to D: B is freed as D is taken.
        let d = sets.acquire(set(&["D"]), Some(&b)).unwrap();
        drop(b);
        assert_eq!(sets.held().len(), 2);
        drop((c, d));
    }
}
