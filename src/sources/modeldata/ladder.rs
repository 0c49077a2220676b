//! A group's position index: the key `(created_at, id)` of every `stride`-th
//! row of one `display_name`, in order, plus the row count. It turns "the row
//! at position p" into one short index probe — start at checkpoint
//! `p / stride`, skip `p % stride` index entries — so resampling 500 points
//! costs 500 bounded probes whatever the table size, instead of numbering
//! every row of the group as seed 000's SQL does.
//!
//! The ladder is built once per group and then kept current from new rows
//! only: each refresh re-reads the keys after a resume checkpoint (one that is
//! a little older than the newest row, so rows committed slightly out of
//! `created_at` order are placed exactly) and re-extends from there.

/// A row's position key: `created_at` in epoch microseconds, then `id`.
pub type Key = (i64, i64);

/// Default rows between checkpoints: at most 31 index entries to skip per
/// probe, and 16 bytes of memory per 32 rows (5 MB for a 10-million-row
/// group). Measured in `bench/RESULTS.md`: 64 is ~2× slower per probe, 16
/// only ~1.3× faster for twice the memory.
pub const DEFAULT_STRIDE: u64 = 32;

/// One group's checkpoints and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// Rows between checkpoints.
    stride: u64,
    /// Keys of the rows at positions 0, stride, 2·stride, …
    checkpoints: Vec<Key>,
    /// Rows in the group.
    len: u64,
    /// The latest row's key.
    last: Option<Key>,
}

impl Ladder {
    /// An empty ladder (a group not read yet).
    pub fn new(stride: u64) -> Self {
        Ladder {
            stride: stride.max(1),
            checkpoints: Vec::new(),
            len: 0,
            last: None,
        }
    }

    /// Rows between checkpoints.
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// Rows in the group.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before any row was read.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The latest row's key.
    pub fn last(&self) -> Option<Key> {
        self.last
    }

    /// Checkpoints held (memory: 16 bytes each).
    pub fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }

    /// Where a refresh resumes: the latest checkpoint at least `window`
    /// microseconds older than the newest row, as `(checkpoint index, key)`;
    /// `None` when the whole group must be read.
    pub fn resume_point(&self, window: i64) -> Option<(usize, Key)> {
        let newest = self.last?.0;
        let limit = newest.saturating_sub(window);
        let i = self.checkpoints.partition_point(|k| k.0 <= limit);
        // Index i-1 is the last checkpoint at or before `limit`; with none that
        // old, resume from the first so the read stays bounded by the window.
        let i = i.saturating_sub(1);
        self.checkpoints.get(i).map(|&k| (i, k))
    }

    /// Drops everything from checkpoint `index` on, ready to re-extend from
    /// that checkpoint's row (which the next [`Ladder::push`] must be).
    pub fn truncate(&mut self, index: usize) {
        self.checkpoints.truncate(index);
        self.len = index as u64 * self.stride;
        self.last = index.checked_sub(1).map(|i| self.checkpoints[i]);
    }

    /// Appends the next row in `(created_at, id)` order.
    pub fn push(&mut self, key: Key) {
        if self.len.is_multiple_of(self.stride) {
            self.checkpoints.push(key);
        }
        self.len += 1;
        self.last = Some(key);
    }

    /// Replaces the ladder with checkpoints read in one pass (every
    /// `stride`-th key from the first); the tail after the last one is then
    /// read by a refresh from [`Ladder::resume_point`]`(i64::MAX)`.
    pub fn set_checkpoints(&mut self, checkpoints: Vec<Key>) {
        self.len = checkpoints.len().saturating_sub(1) as u64 * self.stride
            + u64::from(!checkpoints.is_empty());
        self.last = checkpoints.last().copied();
        self.checkpoints = checkpoints;
    }

    /// The probe for row `position`: start at this key, skip this many rows.
    pub fn locate(&self, position: u64) -> Option<(Key, u64)> {
        if position >= self.len {
            return None;
        }
        let i = (position / self.stride) as usize;
        Some((self.checkpoints[i], position % self.stride))
    }

    /// For counting the rows before a time bound: the index and key of the
    /// last checkpoint whose `created_at` is before `micros` (or at it, when
    /// `inclusive`); rows before that checkpoint number `index · stride`.
    pub fn floor(&self, micros: i64, inclusive: bool) -> Option<(usize, Key)> {
        let i = self.checkpoints.partition_point(|k| {
            if inclusive {
                k.0 <= micros
            } else {
                k.0 < micros
            }
        });
        i.checked_sub(1).map(|i| (i, self.checkpoints[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder(n: i64, stride: u64) -> Ladder {
        let mut l = Ladder::new(stride);
        for i in 0..n {
            l.push((i * 10, i));
        }
        l
    }

    #[test]
    fn locate_finds_every_position() {
        let l = ladder(1000, 64);
        assert_eq!(l.len(), 1000);
        assert_eq!(l.checkpoints(), 16);
        for p in 0..1000u64 {
            let ((ts, id), skip) = l.locate(p).unwrap();
            assert_eq!(id as u64 + skip, p);
            assert_eq!(ts, id * 10);
            assert!(skip < 64);
        }
        assert_eq!(l.locate(1000), None);
    }

    #[test]
    fn truncate_and_re_extend_reproduces_the_ladder() {
        let full = ladder(1000, 64);
        let mut l = full.clone();
        let (i, key) = l.resume_point(100 * 10).unwrap();
        assert!(key.0 <= 999 * 10 - 1000);
        l.truncate(i);
        for k in key.1..1000 {
            l.push((k * 10, k));
        }
        assert_eq!(l, full);
    }

    #[test]
    fn resume_point_of_a_young_group_is_its_first_row() {
        let l = ladder(100, 64);
        assert_eq!(l.resume_point(1_000_000), Some((0, (0, 0))));
        assert_eq!(Ladder::new(64).resume_point(0), None);
    }

    #[test]
    fn set_checkpoints_then_tail_matches_pushing_every_row() {
        let full = ladder(1000, 64);
        let mut l = Ladder::new(64);
        l.set_checkpoints((0..1000).step_by(64).map(|i| (i * 10, i)).collect());
        let (i, key) = l.resume_point(i64::MAX).unwrap();
        l.truncate(i);
        for k in key.1..1000 {
            l.push((k * 10, k));
        }
        assert_eq!(l, full);
    }

    #[test]
    fn floor_splits_at_time_bounds() {
        let l = ladder(1000, 64);
        assert_eq!(l.floor(0, false), None);
        assert_eq!(l.floor(0, true), Some((0, (0, 0))));
        assert_eq!(l.floor(640, false), Some((0, (0, 0))));
        assert_eq!(l.floor(640, true), Some((1, (640, 64))));
        assert_eq!(l.floor(i64::MAX, true), Some((15, (9600, 960))));
    }
}
