//! A room's bounded history: the canonical payloads of its most recent events
//! with their `seq`, kept in-process (embedded mode). New members get it on
//! joining (seed 001 `history`); later the native protocol resumes from it.

use std::collections::VecDeque;

use bytes::Bytes;

/// Default number of events a room retains (seed 001: "last 100 messages per ticker").
pub const DEFAULT_HISTORY_SIZE: usize = 100;

/// The last `capacity` events of a room, oldest first.
#[derive(Debug)]
pub struct History {
    /// `(seq, canonical JSON payload)`, oldest first; the payload shares memory
    /// with the frame that was fanned out.
    entries: VecDeque<(u64, Bytes)>,
    /// Maximum retained entries; 0 keeps nothing.
    capacity: usize,
}

impl History {
    /// Empty history keeping at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        History {
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// Appends an event, evicting the oldest past capacity.
    pub fn push(&mut self, seq: u64, payload: Bytes) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((seq, payload));
    }

    /// `(seq, payload)` of every retained event, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = (u64, Bytes)> + '_ {
        self.entries
            .iter()
            .map(|(seq, payload)| (*seq, payload.clone()))
    }

    /// The retained `(seq, payload)` entries, oldest first.
    pub fn as_deque(&self) -> &VecDeque<(u64, Bytes)> {
        &self.entries
    }

    /// Retained payloads, oldest first.
    pub fn payloads(&self) -> impl Iterator<Item = &Bytes> {
        self.entries.iter().map(|(_, payload)| payload)
    }

    /// Retained events.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets every retained event (the lineage changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_entries_oldest_first() {
        let mut h = History::new(3);
        for seq in 1..=5 {
            h.push(seq, Bytes::from(seq.to_string()));
        }
        let got: Vec<_> = h.payloads().cloned().collect();
        assert_eq!(
            got,
            vec![Bytes::from("3"), Bytes::from("4"), Bytes::from("5")]
        );
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut h = History::new(0);
        h.push(1, Bytes::from("x"));
        assert!(h.is_empty());
    }
}

#[cfg(test)]
mod proptests {
    //! The history against its definition: the last `capacity` events
    //! pushed, oldest first, whatever the capacity and push count.
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn history_keeps_the_last_capacity_events_oldest_first(
            capacity in 0usize..8,
            pushes in 0u64..40,
        ) {
            let mut history = History::new(capacity);
            for seq in 1..=pushes {
                history.push(seq, Bytes::from(seq.to_string()));
            }
            let kept = pushes.min(capacity as u64);
            let want: Vec<u64> = (pushes - kept + 1..=pushes).collect();
            let seqs: Vec<u64> = history.entries().map(|(seq, _)| seq).collect();
            prop_assert_eq!(&seqs, &want);
            let payloads: Vec<Bytes> = history.payloads().cloned().collect();
            let want_payloads: Vec<Bytes> = want.iter().map(|seq| Bytes::from(seq.to_string())).collect();
            prop_assert_eq!(payloads, want_payloads);
            prop_assert_eq!(history.len(), want.len());
            prop_assert_eq!(history.is_empty(), want.is_empty());
        }
    }
}
