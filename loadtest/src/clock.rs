//! One clock for scheduled and receive times. Both are microseconds since the
//! Unix epoch (so the number in a published message is meaningful to anyone
//! reading it, k6 included), but derived from one monotonic `Instant` base
//! taken at start-up: a wall-clock step during a run cannot produce negative
//! or inflated latencies, and reading it is a vDSO call, no system call.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Maps monotonic instants to µs since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The monotonic reading taken together with `base_us`.
    base: Instant,
    /// Wall-clock µs since the epoch at `base`.
    base_us: u64,
}

impl Clock {
    /// A clock anchored now.
    pub fn new() -> Self {
        let base = Instant::now();
        let base_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_micros() as u64;
        Clock { base, base_us }
    }

    /// µs since the epoch, now.
    #[inline]
    pub fn now_us(&self) -> u64 {
        self.base_us + self.base.elapsed().as_micros() as u64
    }

    /// µs since the epoch at `at`.
    pub fn us_at(&self, at: Instant) -> u64 {
        self.base_us + at.saturating_duration_since(self.base).as_micros() as u64
    }
}
