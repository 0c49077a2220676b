//! Who watches seed 003's live-trading stream, by symbol filter (the
//! canonical filter, sorted and comma-joined, or `all`), for
//! `GET /api/ws/stream/status` and the per-stream connection cap. A
//! connection holds a [`Viewer`] while it is open.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Viewers by filter.
#[derive(Debug, Default)]
pub struct Viewers {
    /// Open connections per filter.
    counts: Mutex<BTreeMap<String, usize>>,
}

/// One connection's place among the viewers: counted until dropped.
#[derive(Debug)]
pub struct Viewer {
    /// The registry to leave when dropped.
    viewers: Arc<Viewers>,
    /// The filter watched.
    filter: String,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut counts = self.viewers.counts.lock();
        if let Some(n) = counts.get_mut(&self.filter) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.filter);
            }
        }
    }
}

impl Viewers {
    /// Counts a viewer of `filter`, unless `cap` (> 0) viewers watch it already.
    pub fn join(self: &Arc<Self>, filter: &str, cap: usize) -> Option<Viewer> {
        let mut counts = self.counts.lock();
        let n = counts.entry(filter.to_string()).or_default();
        if cap > 0 && *n >= cap {
            return None;
        }
        *n += 1;
        Some(Viewer {
            viewers: Arc::clone(self),
            filter: filter.to_string(),
        })
    }

    /// Viewers by filter, sorted by filter.
    pub fn counts(&self) -> Vec<(String, usize)> {
        self.counts
            .lock()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| (f.clone(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_are_counted_while_open_and_capped_per_filter() {
        let viewers = Arc::new(Viewers::default());
        let a = viewers.join("all", 2).unwrap();
        let _b = viewers.join("all", 2).unwrap();
        assert!(viewers.join("all", 2).is_none());
        let _c = viewers.join("AAPL", 2).unwrap();
        assert_eq!(
            viewers.counts(),
            [("AAPL".to_string(), 1), ("all".to_string(), 2)]
        );
        drop(a);
        assert_eq!(viewers.counts()[1], ("all".to_string(), 1));
    }
}
