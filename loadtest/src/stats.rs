//! What the receivers record, kept per shard and merged at the end.
//!
//! Every connection belongs to one [`Shard`] (connection id modulo the number
//! of runtime threads): on the default current-thread runtime there is one
//! shard and its lock is never contended; with `--threads N` each thread's
//! connections mostly hit their own shard. Latencies go into HDR histograms
//! (µs, 3 significant digits, so p99 of 1.234 ms is exact to the µs), one per
//! publish window (a `--steps` step), and each delivered event is attributed
//! to the window that contains its *scheduled* time, so a step's figures are
//! its own even when deliveries from it arrive during the next one.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

/// Largest latency or duration the histograms track (10 minutes, in µs);
/// larger values are clamped to it rather than dropped.
const MAX_US: u64 = 600_000_000;

/// A new µs histogram (1 µs to 10 min, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// Percentiles of a µs histogram, in milliseconds, for the report.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Pcts {
    /// How many values: a percentile of 3 samples means little, and the reader should see that.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile: the typical bad case.
    pub p90: f64,
    /// 99th percentile: what the thresholds (e.g. < 100 ms) are judged on.
    pub p99: f64,
    /// Worst value seen (to the histogram's precision).
    pub max: f64,
}

/// µs to ms (three decimals carry the µs).
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Pcts {
    /// The percentiles of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Pcts::default();
        }
        Pcts {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// One publish window (a step, or the whole run) as receivers see it:
/// scheduled times in `[start_us, end_us)` belong to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpan {
    /// First scheduled µs (since the Unix epoch) of the window.
    pub start_us: u64,
    /// One past the last scheduled µs of the window.
    pub end_us: u64,
}

/// Deliveries of one window, on one shard (or merged).
#[derive(Debug, Clone)]
pub struct StepRecv {
    /// Receive time − scheduled time of every delivered event, µs.
    pub latency: Histogram<u64>,
    /// Events delivered (the same as `latency.len()`, kept as a plain counter
    /// so progress polling does not walk the histogram).
    pub delivered: u64,
}

impl StepRecv {
    fn new() -> Self {
        StepRecv {
            latency: histogram(),
            delivered: 0,
        }
    }

    /// Adds another shard's deliveries of the same window.
    pub fn merge(&mut self, other: &StepRecv) {
        self.latency
            .add(&other.latency)
            .expect("histograms with identical bounds merge");
        self.delivered += other.delivered;
    }
}

/// Everything one shard's connections recorded.
#[derive(Debug, Clone)]
pub struct ShardStats {
    /// The publish windows, set before publishing starts, so an event can be
    /// attributed to its step by its scheduled time alone.
    windows: Vec<WindowSpan>,
    /// Deliveries per window (same index as `windows`).
    pub steps: Vec<StepRecv>,
    /// Events whose scheduled time is in no window: left over from an earlier
    /// run, or published by someone else. Counted, never mixed into latency.
    pub stray: u64,
    /// TCP connect + WebSocket handshake time of every successful connection, µs.
    pub connect: Histogram<u64>,
    /// Handshake done → every subscription confirmed (and history received), µs.
    pub subscribe: Histogram<u64>,
    /// Failed connections by reason (`connect refused`, `http 503`, `timeout` …),
    /// so a failure count comes with its cause.
    pub failures: BTreeMap<String, u64>,
    /// Connections that ended during the run, by close code or reason
    /// (`4008`, `eof` …): a subscriber lost mid-run explains lost deliveries.
    pub closes: BTreeMap<String, u64>,
    /// `error` replies from the server (dialect-recognised): a bad subscribe
    /// or throttling shows up here instead of silently as missing events.
    pub error_replies: u64,
}

impl Default for ShardStats {
    fn default() -> Self {
        ShardStats {
            windows: Vec::new(),
            steps: Vec::new(),
            stray: 0,
            connect: histogram(),
            subscribe: histogram(),
            failures: BTreeMap::new(),
            closes: BTreeMap::new(),
            error_replies: 0,
        }
    }
}

impl ShardStats {
    /// Installs the publish windows (resets per-window deliveries).
    pub fn set_windows(&mut self, windows: &[WindowSpan]) {
        self.windows = windows.to_vec();
        self.steps = windows.iter().map(|_| StepRecv::new()).collect();
    }

    /// Records one delivered event scheduled at `scheduled_us`, received at `now_us`.
    #[inline]
    pub fn delivered(&mut self, scheduled_us: u64, now_us: u64) {
        // At most a few dozen windows, in order: a linear scan is the fastest lookup.
        match self
            .windows
            .iter()
            .position(|w| scheduled_us >= w.start_us && scheduled_us < w.end_us)
        {
            Some(i) => {
                let step = &mut self.steps[i];
                step.latency
                    .saturating_record(now_us.saturating_sub(scheduled_us).min(MAX_US));
                step.delivered += 1;
            }
            None => self.stray += 1,
        }
    }

    /// Total delivered over all windows.
    pub fn delivered_total(&self) -> u64 {
        self.steps.iter().map(|s| s.delivered).sum()
    }

    /// Counts one failed connection.
    pub fn failed(&mut self, reason: &str) {
        *self.failures.entry(reason.to_string()).or_default() += 1;
    }

    /// Counts one connection that ended during the run.
    pub fn closed(&mut self, reason: &str) {
        *self.closes.entry(reason.to_string()).or_default() += 1;
    }

    /// Adds another shard's records into this one.
    pub fn merge(&mut self, other: &ShardStats) {
        if self.steps.is_empty() && !other.steps.is_empty() {
            self.set_windows(&other.windows);
        }
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            mine.merge(theirs);
        }
        self.stray += other.stray;
        self.connect
            .add(&other.connect)
            .expect("histograms with identical bounds merge");
        self.subscribe
            .add(&other.subscribe)
            .expect("histograms with identical bounds merge");
        for (k, v) in &other.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.closes {
            *self.closes.entry(k.clone()).or_default() += v;
        }
        self.error_replies += other.error_replies;
    }
}

/// One shard: its stats behind a lock held only for a record.
#[derive(Debug, Default)]
pub struct Shard {
    /// The shard's records; `parking_lot` because an uncontended lock is a
    /// single atomic and this is taken once per delivered frame.
    pub stats: Mutex<ShardStats>,
}

/// Merges every shard's stats into one.
pub fn merge_all(shards: &[Shard]) -> ShardStats {
    let mut total = ShardStats::default();
    for shard in shards {
        total.merge(&shard.stats.lock());
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Vec<WindowSpan> {
        vec![
            WindowSpan {
                start_us: 1_000,
                end_us: 2_000,
            },
            WindowSpan {
                start_us: 3_000,
                end_us: 4_000,
            },
        ]
    }

    #[test]
    fn events_are_attributed_to_their_scheduled_window() {
        let mut s = ShardStats::default();
        s.set_windows(&windows());
        s.delivered(1_000, 1_500); // step 0, 500 µs
        s.delivered(1_999, 3_100); // step 0 even though received during step 1
        s.delivered(3_500, 3_600); // step 1
        s.delivered(2_500, 2_600); // between windows: stray
        s.delivered(10, 20); // before: stray
        assert_eq!(s.steps[0].delivered, 2);
        assert_eq!(s.steps[1].delivered, 1);
        assert_eq!(s.stray, 2);
        assert_eq!(s.delivered_total(), 3);
        assert_eq!(s.steps[0].latency.max(), 1_101);
    }

    #[test]
    fn merging_shards_adds_counts_and_keeps_percentiles_exact() {
        let shards: Vec<Shard> = (0..3).map(|_| Shard::default()).collect();
        for (i, shard) in shards.iter().enumerate() {
            let mut s = shard.stats.lock();
            s.set_windows(&windows());
            // Shard i records latencies i*1000+1 ..= i*1000+1000 µs in step 0.
            for v in 1..=1000u64 {
                s.delivered(1_000, 1_000 + i as u64 * 1000 + v);
            }
            s.delivered(3_000, 3_000 + 7);
            s.connect.record(100 + i as u64).unwrap();
            s.failed("http 503");
            s.closed("4008");
            s.error_replies += 1;
        }
        let total = merge_all(&shards);
        assert_eq!(total.steps[0].delivered, 3_000);
        assert_eq!(total.steps[0].latency.len(), 3_000);
        assert_eq!(total.steps[1].delivered, 3);
        let p = Pcts::of(&total.steps[0].latency);
        assert_eq!(p.count, 3_000);
        // 1..=3000 µs uniformly: p50 ≈ 1.5 ms, p99 ≈ 2.97 ms, max 3 ms (3 significant digits).
        assert!((p.p50 - 1.5).abs() < 0.002, "{p:?}");
        assert!((p.p99 - 2.97).abs() < 0.003, "{p:?}");
        assert!((p.max - 3.0).abs() < 0.003, "{p:?}");
        assert_eq!(total.connect.len(), 3);
        assert_eq!(total.failures["http 503"], 3);
        assert_eq!(total.closes["4008"], 3);
        assert_eq!(total.error_replies, 3);
    }

    #[test]
    fn huge_and_negative_latencies_are_clamped_not_lost() {
        let mut s = ShardStats::default();
        s.set_windows(&windows());
        s.delivered(1_500, 1_000); // received "before" scheduled (clock step): 0
        s.delivered(1_500, u64::MAX); // absurdly late: clamped to MAX_US
        assert_eq!(s.steps[0].delivered, 2);
        assert_eq!(s.steps[0].latency.min(), 0);
        assert!(s.steps[0].latency.max() >= MAX_US);
        assert_eq!(Pcts::of(&histogram()), Pcts::default());
    }
}
