//! Volatility-contraction breakout detector for the simulated market feed.
//!
//! The feed builds OHLCV bars per ticker and hands each completed bar to that ticker's
//! [`PatternDetector`]; any [`PatternSignal`] returned is published as a `pattern_alert`
//! event to the ticker's WebSocket rooms. The rule is a VCP-style (volatility
//! contraction pattern) breakout over a fixed-size base of the last
//! [`PatternConfig::lookback`] bars, held in a pre-allocated ring so per-bar work is
//! O(lookback) with no allocation other than the alert message itself.
//!
//! Rule, evaluated when a new bar arrives and the base (ring) is full:
//! * **Breakout**: the bar closes strictly above the base high (highest high of the prior
//!   `lookback` bars). The breakout bar itself is not part of its own base.
//! * **Contraction**: mean true range of the most recent third of the base is below
//!   `contraction_ratio` × the mean true range of the earliest third.
//! * **Entry** = the base high (the pivot the price broke through), not the close: stop
//!   and target are planned from the trigger level, so the risk/reward does not depend
//!   on how far a single bar overshot.
//! * **Stop** = lowest low of the last `lookback / 4` bars of the base (the tight pivot
//!   area). If that is not strictly below entry (a perfectly flat base) no signal is sent.
//! * **Target** = entry + `reward_multiple` × (entry − stop), so the risk/reward ratio is
//!   exactly `reward_multiple` (2.0 by default).
//! * **Score** (0–10, one decimal): `VCP` = 2 + 4 × contraction strength + 4 × volume
//!   strength, where contraction strength = 1 − (recent/earliest true-range ratio) and
//!   volume strength = (breakout volume / base mean volume − 1) scaled so
//!   `full_score_volume_ratio` earns full marks. A breakout without contraction is sent as
//!   `BREAKOUT` (if `emit_plain_breakouts`) only on at least `plain_breakout_min_volume_ratio`
//!   × base volume, scored 1 + 3 × volume strength (at most 4.0, below most VCPs).
//! * **Cooldown**: after any signal, the next `cooldown_bars` valid bars cannot signal.
//!
//! Invalid bars (non-finite or non-positive prices, negative or non-finite volume,
//! `high < low`, or open/close outside `[low, high]`) are ignored entirely: they return
//! `None` and change no state.

use crate::protocol::json::round;

/// One completed OHLCV bar, as produced by the feed's bar builder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// First trade price of the bar; only validated (must lie within `[low, high]`).
    pub open: f64,
    /// Highest trade price; defines the base high a breakout must clear.
    pub high: f64,
    /// Lowest trade price; defines the stop (lowest low of the pivot area).
    pub low: f64,
    /// Last trade price; a breakout is judged on the close so intrabar spikes don't count.
    pub close: f64,
    /// Traded volume; breakout volume versus the base average confirms demand.
    pub volume: f64,
}

/// A detected setup, ready to be serialised into a `pattern_alert` event.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternSignal {
    /// `"VCP"` (breakout after volatility contraction) or `"BREAKOUT"` (volume-confirmed
    /// breakout without contraction), so clients can filter by setup quality.
    pub pattern_type: &'static str,
    /// Setup quality 0.0..=10.0, one decimal, so clients can rank and threshold alerts.
    pub score: f64,
    /// The base high the close broke through: the pivot a trader would buy above.
    pub entry_price: f64,
    /// Lowest low of the pivot area: where the setup is invalidated.
    pub stop_price: f64,
    /// entry + reward_multiple × risk: where the planned trade takes profit.
    pub target_price: f64,
    /// (target − entry) / (entry − stop), two decimals, for display next to the alert.
    pub risk_reward_ratio: f64,
    /// Human-readable summary shown verbatim in the alert feed.
    pub message: String,
}

/// Tuning for [`PatternDetector`]; see the module docs for how each value is used.
#[derive(Debug, Clone)]
pub struct PatternConfig {
    /// Bars in the base (default 20). Values below [`MIN_LOOKBACK`] are raised to it so
    /// each third and the stop window hold at least one bar.
    pub lookback: usize,
    /// Valid bars after a signal during which no new signal is sent (default 10), so one
    /// move does not flood rooms with repeated alerts.
    pub cooldown_bars: usize,
    /// Recent-third mean true range must be below this fraction of the earliest third's
    /// (default 0.75) for the base to count as contracting.
    pub contraction_ratio: f64,
    /// Target distance as a multiple of risk (default 2.0); also the reported RR.
    pub reward_multiple: f64,
    /// Breakout volume / base mean volume that earns the full volume part of the score
    /// (default 3.0); higher ratios add nothing more.
    pub full_score_volume_ratio: f64,
    /// Whether volume-confirmed breakouts without contraction are sent as `BREAKOUT`
    /// (default true), giving the feed some alerts even from non-VCP price paths.
    pub emit_plain_breakouts: bool,
    /// Minimum breakout volume / base mean volume for a `BREAKOUT` (default 1.5); without
    /// contraction, volume is the only evidence the move is real.
    pub plain_breakout_min_volume_ratio: f64,
}

/// Smallest accepted base: thirds of 2 bars and a stop window of 1 bar.
pub const MIN_LOOKBACK: usize = 6;

impl Default for PatternConfig {
    fn default() -> Self {
        Self {
            lookback: 20,
            cooldown_bars: 10,
            contraction_ratio: 0.75,
            reward_multiple: 2.0,
            full_score_volume_ratio: 3.0,
            emit_plain_breakouts: true,
            plain_breakout_min_volume_ratio: 1.5,
        }
    }
}

/// The slice of a bar the base needs, with its true range fixed at insertion time
/// (true range depends on the previous close, which the ring may already have dropped).
#[derive(Debug, Clone, Copy)]
struct BaseBar {
    /// For the base high (breakout level).
    high: f64,
    /// For the stop (lowest low of the pivot window).
    low: f64,
    /// For the base mean volume the breakout volume is compared against.
    volume: f64,
    /// For the early-versus-recent volatility comparison.
    true_range: f64,
}

/// Fixed-capacity ring of the most recent bars, oldest overwritten first.
#[derive(Debug)]
struct BarRing {
    /// Storage, allocated once with capacity `capacity`; grows by push only until full.
    slots: Vec<BaseBar>,
    /// Index of the oldest bar once full (the next slot to overwrite); 0 while filling,
    /// which keeps `slots` in oldest-first order until then.
    oldest: usize,
    /// Bars held when full (the base length).
    capacity: usize,
}

impl BarRing {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            slots: Vec::with_capacity(capacity),
            oldest: 0,
            capacity,
        }
    }

    fn is_full(&self) -> bool {
        self.slots.len() == self.capacity
    }

    fn push(&mut self, bar: BaseBar) {
        if self.is_full() {
            self.slots[self.oldest] = bar;
            self.oldest = (self.oldest + 1) % self.capacity;
        } else {
            self.slots.push(bar);
        }
    }

    /// Bars from oldest to newest.
    fn iter(&self) -> impl Iterator<Item = &BaseBar> {
        let (newer, older) = self.slots.split_at(self.oldest);
        older.iter().chain(newer.iter())
    }
}

/// Measurements of a full base, taken before the new bar is added to it.
struct BaseStats {
    /// Highest high of the base: the level a close must clear, and the entry price.
    high: f64,
    /// Lowest low of the last `lookback / 4` bars: the stop price.
    pivot_low: f64,
    /// Mean base volume: the yardstick for breakout-volume expansion.
    mean_volume: f64,
    /// recent-third mean true range / earliest-third mean true range; `None` when the
    /// earliest third had no range at all (ratio undefined, treated as no contraction).
    true_range_ratio: Option<f64>,
}

/// Per-ticker detector state; one per symbol, fed one completed bar at a time.
#[derive(Debug)]
pub struct PatternDetector {
    /// Tuning, with `lookback` already raised to at least [`MIN_LOOKBACK`].
    config: PatternConfig,
    /// The last `lookback` valid bars: the base a new bar is judged against.
    base: BarRing,
    /// Close of the previous valid bar, for the next bar's true range (gaps count as range).
    previous_close: Option<f64>,
    /// Valid bars still to pass before another signal may be sent.
    cooldown_remaining: usize,
}

impl PatternDetector {
    /// Creates an empty detector; the base buffer is allocated here, once.
    pub fn new(config: PatternConfig) -> Self {
        let config = PatternConfig {
            lookback: config.lookback.max(MIN_LOOKBACK),
            ..config
        };
        Self {
            base: BarRing::with_capacity(config.lookback),
            config,
            previous_close: None,
            cooldown_remaining: 0,
        }
    }

    /// Feeds one completed bar; returns a signal if this bar completes a breakout.
    pub fn on_bar(&mut self, bar: Bar) -> Option<PatternSignal> {
        if !is_valid(&bar) {
            return None;
        }
        let signal = if self.cooldown_remaining > 0 {
            self.cooldown_remaining -= 1;
            None
        } else if self.base.is_full() {
            self.evaluate_breakout(&bar)
        } else {
            None
        };
        if signal.is_some() {
            self.cooldown_remaining = self.config.cooldown_bars;
        }
        self.remember(&bar);
        signal
    }

    fn remember(&mut self, bar: &Bar) {
        let true_range = match self.previous_close {
            Some(previous_close) => bar.high.max(previous_close) - bar.low.min(previous_close),
            None => bar.high - bar.low,
        };
        self.base.push(BaseBar {
            high: bar.high,
            low: bar.low,
            volume: bar.volume,
            true_range,
        });
        self.previous_close = Some(bar.close);
    }

    fn base_stats(&self) -> BaseStats {
        let lookback = self.config.lookback;
        let third = lookback / 3;
        let pivot_window = lookback / 4;
        let mut high = f64::MIN;
        let mut pivot_low = f64::MAX;
        let mut total_volume = 0.0;
        let mut earliest_range_sum = 0.0;
        let mut recent_range_sum = 0.0;
        for (index, bar) in self.base.iter().enumerate() {
            high = high.max(bar.high);
            total_volume += bar.volume;
            if index < third {
                earliest_range_sum += bar.true_range;
            }
            if index >= lookback - third {
                recent_range_sum += bar.true_range;
            }
            if index >= lookback - pivot_window {
                pivot_low = pivot_low.min(bar.low);
            }
        }
        // Both thirds hold `third` bars, so the ratio of sums equals the ratio of means.
        let true_range_ratio =
            (earliest_range_sum > 0.0).then(|| recent_range_sum / earliest_range_sum);
        BaseStats {
            high,
            pivot_low,
            mean_volume: total_volume / lookback as f64,
            true_range_ratio,
        }
    }

    fn evaluate_breakout(&self, bar: &Bar) -> Option<PatternSignal> {
        let stats = self.base_stats();
        if bar.close <= stats.high {
            return None;
        }
        let entry = stats.high;
        let stop = stats.pivot_low;
        if stop >= entry {
            return None;
        }
        let volume_ratio = volume_ratio(bar.volume, stats.mean_volume);
        let volume_strength = ((volume_ratio - 1.0)
            / (self.config.full_score_volume_ratio - 1.0).max(f64::EPSILON))
        .clamp(0.0, 1.0);
        let contracting_ratio = stats
            .true_range_ratio
            .filter(|ratio| *ratio < self.config.contraction_ratio);

        let (pattern_type, raw_score) = match contracting_ratio {
            Some(ratio) => {
                let contraction_strength = (1.0 - ratio).clamp(0.0, 1.0);
                (
                    "VCP",
                    2.0 + 4.0 * contraction_strength + 4.0 * volume_strength,
                )
            }
            None if self.config.emit_plain_breakouts
                && volume_ratio >= self.config.plain_breakout_min_volume_ratio =>
            {
                ("BREAKOUT", 1.0 + 3.0 * volume_strength)
            }
            None => return None,
        };
        let score = round(raw_score.clamp(0.0, 10.0), 1);
        let risk = entry - stop;
        let target = entry + self.config.reward_multiple * risk;
        let risk_reward_ratio = round((target - entry) / risk, 2);
        let message = match contracting_ratio {
            Some(ratio) => format!(
                "VCP breakout above {entry:.2}: volatility contracted {:.0}% across the {}-bar base, volume {volume_ratio:.1}x average (score {score:.1})",
                (1.0 - ratio) * 100.0,
                self.config.lookback,
            ),
            None => format!(
                "BREAKOUT above {entry:.2}, the {}-bar high, on {volume_ratio:.1}x average volume (score {score:.1})",
                self.config.lookback,
            ),
        };
        Some(PatternSignal {
            pattern_type,
            score,
            entry_price: entry,
            stop_price: stop,
            target_price: target,
            risk_reward_ratio,
            message,
        })
    }
}

fn is_valid(bar: &Bar) -> bool {
    let prices = [bar.open, bar.high, bar.low, bar.close];
    prices.iter().all(|price| price.is_finite() && *price > 0.0)
        && bar.volume.is_finite()
        && bar.volume >= 0.0
        && bar.high >= bar.low
        && (bar.low..=bar.high).contains(&bar.open)
        && (bar.low..=bar.high).contains(&bar.close)
}

/// Breakout volume relative to the base mean; a silent base (mean 0) counts any traded
/// volume as maximal expansion and none as no expansion, avoiding 0/0.
fn volume_ratio(bar_volume: f64, base_mean_volume: f64) -> f64 {
    if base_mean_volume > 0.0 {
        bar_volume / base_mean_volume
    } else if bar_volume > 0.0 {
        f64::MAX
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(low: f64, high: f64, close: f64, volume: f64) -> Bar {
        Bar {
            open: (low + high) / 2.0,
            high,
            low,
            close,
            volume,
        }
    }

    /// 20 bars: wide swings up to a 105 high early, then tightening ranges under it.
    fn contracting_base() -> Vec<Bar> {
        let mut bars = Vec::new();
        for index in 0..20 {
            let half_range = match index {
                0..=6 => 2.5,
                7..=13 => 1.2,
                _ => 0.3,
            };
            let center = if index < 7 { 102.0 } else { 103.0 };
            let high = if index == 2 {
                105.0
            } else {
                center + half_range
            };
            bars.push(bar(center - half_range, high, center, 1_000.0));
        }
        bars
    }

    /// Deterministic xorshift so the random-walk test needs no extra dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next_unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn feed(detector: &mut PatternDetector, bars: &[Bar]) -> Vec<(usize, PatternSignal)> {
        bars.iter()
            .enumerate()
            .filter_map(|(index, bar)| detector.on_bar(*bar).map(|signal| (index, signal)))
            .collect()
    }

    #[test]
    fn contracting_base_then_high_volume_breakout_fires_one_vcp() {
        let mut bars = contracting_base();
        bars.push(bar(103.0, 106.5, 106.0, 3_000.0));
        // Follow-through that stays below the breakout bar's high: no new breakout.
        for _ in 0..15 {
            bars.push(bar(104.5, 106.0, 105.5, 1_000.0));
        }
        let mut detector = PatternDetector::new(PatternConfig::default());
        let signals = feed(&mut detector, &bars);
        assert_eq!(signals.len(), 1, "{signals:?}");
        let (index, signal) = &signals[0];
        assert_eq!(*index, 20);
        assert_eq!(signal.pattern_type, "VCP");
        assert_eq!(signal.entry_price, 105.0);
        assert_eq!(signal.stop_price, 102.7);
        assert!(signal.stop_price < signal.entry_price);
        assert!(signal.entry_price < signal.target_price);
        assert!((signal.target_price - 109.6).abs() < 1e-9);
        assert_eq!(signal.risk_reward_ratio, 2.0);
        assert!(
            signal.score > 8.0 && signal.score <= 10.0,
            "{}",
            signal.score
        );
        assert!(signal.message.starts_with("VCP breakout above 105.00"));
    }

    #[test]
    fn vcp_score_rises_with_breakout_volume_and_has_one_decimal() {
        let score_for = |volume: f64| {
            let mut bars = contracting_base();
            bars.push(bar(103.0, 106.5, 106.0, volume));
            let mut detector = PatternDetector::new(PatternConfig::default());
            feed(&mut detector, &bars)
                .pop()
                .map(|(_, signal)| signal.score)
        };
        let quiet = score_for(1_000.0).unwrap();
        let loud = score_for(2_000.0).unwrap();
        let huge = score_for(50_000.0).unwrap();
        assert!(quiet < loud && loud < huge, "{quiet} {loud} {huge}");
        for score in [quiet, loud, huge] {
            assert!((0.0..=10.0).contains(&score));
            assert_eq!(score, (score * 10.0).round() / 10.0);
        }
    }

    #[test]
    fn random_walk_fires_nothing_in_the_first_lookback_bars() {
        for seed in 1..=50u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut detector = PatternDetector::new(PatternConfig::default());
            let mut price = 100.0;
            for _ in 0..detector.config.lookback {
                let next = price * (1.0 + (rng.next_unit() - 0.5) * 0.04);
                let high = price.max(next) * (1.0 + rng.next_unit() * 0.01);
                let low = price.min(next) * (1.0 - rng.next_unit() * 0.01);
                let volume = 500.0 + rng.next_unit() * 5_000.0;
                let walk_bar = Bar {
                    open: price,
                    high,
                    low,
                    close: next,
                    volume,
                };
                assert_eq!(detector.on_bar(walk_bar), None, "seed {seed}");
                price = next;
            }
        }
    }

    #[test]
    fn random_range_that_never_closes_above_its_high_fires_nothing() {
        let mut rng = XorShift(0xDEAD_BEEF);
        let mut detector = PatternDetector::new(PatternConfig::default());
        // Every bar tags the same 110 ceiling, so no close can ever exceed the base high.
        for _ in 0..1_000 {
            let high = 110.0;
            let low = 90.0 + rng.next_unit() * 19.0;
            let close = low + (high - low) * rng.next_unit();
            let volume = rng.next_unit() * 10_000.0;
            assert!(detector.on_bar(bar(low, high, close, volume)).is_none());
        }
    }

    #[test]
    fn cooldown_suppresses_signals_for_cooldown_bars_then_rearms() {
        let config = PatternConfig {
            cooldown_bars: 5,
            // Later breakouts are judged against a base already full of heavy bars.
            plain_breakout_min_volume_ratio: 1.0,
            ..PatternConfig::default()
        };
        let mut detector = PatternDetector::new(config);
        let mut bars = contracting_base();
        // Every bar after the base makes a new closing high on heavy volume.
        let mut level = 106.0;
        for _ in 0..15 {
            bars.push(bar(level - 1.0, level + 0.5, level + 0.4, 5_000.0));
            level += 1.0;
        }
        let fired_at: Vec<usize> = feed(&mut detector, &bars)
            .into_iter()
            .map(|(index, _)| index)
            .collect();
        assert_eq!(fired_at, vec![20, 26, 32]);
    }

    #[test]
    fn invalid_bars_are_ignored_and_change_no_state() {
        let invalid_bars = [
            bar(f64::NAN, 105.0, 104.0, 1_000.0),
            bar(100.0, f64::INFINITY, 104.0, 1_000.0),
            bar(-1.0, 105.0, 104.0, 1_000.0),
            bar(0.0, 105.0, 104.0, 1_000.0),
            bar(100.0, 105.0, 104.0, f64::NAN),
            bar(100.0, 105.0, 104.0, -5.0),
            Bar {
                open: 100.0,
                high: 99.0,
                low: 101.0,
                close: 100.0,
                volume: 1_000.0,
            },
            bar(100.0, 105.0, 106.0, 1_000.0),
        ];
        let base = contracting_base();
        let mut detector = PatternDetector::new(PatternConfig::default());
        for base_bar in &base[..19] {
            assert!(detector.on_bar(*base_bar).is_none());
        }
        for invalid in invalid_bars {
            assert_eq!(detector.on_bar(invalid), None);
        }
        // Still one bar short of a full base: the invalid bars were not counted.
        assert!(!detector.base.is_full());
        assert!(detector.on_bar(base[19]).is_none());
        let signal = detector.on_bar(bar(103.0, 106.5, 106.0, 3_000.0));
        assert_eq!(signal.map(|signal| signal.pattern_type), Some("VCP"));
    }

    #[test]
    fn no_signal_until_the_base_is_full() {
        let mut detector = PatternDetector::new(PatternConfig::default());
        let lookback = detector.config.lookback;
        // Each bar closes above every earlier high on rising volume.
        let rising: Vec<Bar> = (0..=lookback)
            .map(|index| {
                let level = 100.0 + 2.0 * index as f64;
                bar(
                    level - 1.0,
                    level + 1.0,
                    level + 0.9,
                    1_000.0 * (index + 1) as f64,
                )
            })
            .collect();
        let signals = feed(&mut detector, &rising);
        assert_eq!(signals.len(), 1);
        assert_eq!(signals[0].0, lookback);
    }

    #[test]
    fn breakout_without_contraction_is_a_lower_scored_breakout_when_volume_confirms() {
        let steady_base: Vec<Bar> = (0..20).map(|_| bar(99.0, 101.0, 100.0, 1_000.0)).collect();
        let mut confirmed = steady_base.clone();
        confirmed.push(bar(100.0, 103.0, 102.5, 2_500.0));
        let mut detector = PatternDetector::new(PatternConfig::default());
        let signals = feed(&mut detector, &confirmed);
        assert_eq!(signals.len(), 1);
        let signal = &signals[0].1;
        assert_eq!(signal.pattern_type, "BREAKOUT");
        assert!(signal.score <= 4.0);
        assert_eq!(signal.entry_price, 101.0);
        assert_eq!(signal.stop_price, 99.0);
        assert_eq!(signal.target_price, 105.0);
        assert_eq!(signal.risk_reward_ratio, 2.0);

        let mut unconfirmed = steady_base.clone();
        unconfirmed.push(bar(100.0, 103.0, 102.5, 1_200.0));
        let mut detector = PatternDetector::new(PatternConfig::default());
        assert!(feed(&mut detector, &unconfirmed).is_empty());

        let mut disabled = PatternDetector::new(PatternConfig {
            emit_plain_breakouts: false,
            ..PatternConfig::default()
        });
        assert!(feed(&mut disabled, &confirmed).is_empty());
    }

    #[test]
    fn flat_base_with_stop_not_below_entry_is_skipped() {
        let mut bars: Vec<Bar> = (0..20).map(|_| bar(100.0, 100.0, 100.0, 1_000.0)).collect();
        bars.push(bar(100.0, 102.0, 101.0, 10_000.0));
        let mut detector = PatternDetector::new(PatternConfig::default());
        assert!(feed(&mut detector, &bars).is_empty());
    }

    #[test]
    fn base_ring_never_grows_past_lookback() {
        let mut detector = PatternDetector::new(PatternConfig::default());
        let capacity = detector.base.slots.capacity();
        let mut rng = XorShift(7);
        for _ in 0..10_000 {
            let low = 50.0 + rng.next_unit() * 50.0;
            detector.on_bar(bar(low, low + 1.0, low + 0.5, 100.0));
        }
        assert_eq!(detector.base.slots.len(), 20);
        assert_eq!(detector.base.slots.capacity(), capacity);
    }

    #[test]
    fn tiny_lookback_is_raised_to_the_minimum() {
        let detector = PatternDetector::new(PatternConfig {
            lookback: 1,
            ..PatternConfig::default()
        });
        assert_eq!(detector.config.lookback, MIN_LOOKBACK);
    }
}
