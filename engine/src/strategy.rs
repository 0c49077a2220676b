//! Strategies: on each bar's close, with only the bars so far (no
//! look-ahead), a strategy decides what happens at the next bar's open.
//! The catalogue ([`by_id`]): [`SmaCross`] (`sma_crossover`, seed 002's
//! `vanilla`), [`Spiced`] (`spiced`: the crossover behind a regime and a
//! trend filter), [`Breakout`] (`breakout`, a Donchian channel breakout)
//! and [`HtfBias`] (`htf_bias`, seed 003's `strategy1`: higher timeframes
//! set the bias, the trading timeframe times the entry).

use crate::bar::{Bar, Timeframe};

/// Which way a position faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Bought: gains when the price rises.
    Long,
    /// Sold short: gains when the price falls.
    Short,
}

impl Direction {
    /// `long` or `short`, as the seeds spell it.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Long => "long",
            Direction::Short => "short",
        }
    }

    /// +1 for long, −1 for short: a price move times this is the position's gain.
    pub fn sign(self) -> f64 {
        match self {
            Direction::Long => 1.0,
            Direction::Short => -1.0,
        }
    }
}

/// A position to open at the next bar's open. Its stop and targets are
/// distances from the fill, which the decision cannot know: a bar that
/// opens with a gap moves them with it (the risk taken is what was decided).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Which way.
    pub direction: Direction,
    /// Price distance from the fill to the stop-loss, if any (the trade's R).
    pub risk: Option<f64>,
    /// Take-profit levels in multiples of `risk`, nearest first; the first
    /// one reached closes the whole position (see `trail`).
    pub targets_r: Vec<f64>,
    /// The `*_full` variants' trailing exit ladder: reaching a level moves
    /// the stop up to the one below it (to the entry for the first), and
    /// only the last level closes the position.
    pub trail: bool,
    /// The signal's strength, 0–1.
    pub confidence: f64,
    /// The rule that fired, for the trade's `reasoning`.
    pub rationale: String,
}

/// What to do at the next bar's open.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing.
    Hold,
    /// Open a position (ignored while one is open).
    Enter(Entry),
    /// Close the open position.
    Exit,
    /// Close the open position, then open this one.
    Reverse(Entry),
}

/// A trading rule.
pub trait Strategy {
    /// The catalogue id (`sma_crossover`).
    fn id(&self) -> &'static str;

    /// Decides on the close of `bars`' last bar; `open` is the direction of
    /// the position held, if any.
    fn decide(&mut self, bars: &[Bar], open: Option<Direction>) -> Decision;
}

impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn id(&self) -> &'static str {
        (**self).id()
    }

    fn decide(&mut self, bars: &[Bar], open: Option<Direction>) -> Decision {
        (**self).decide(bars, open)
    }
}

/// The catalogue: a strategy by its id (`sma_crossover` or `vanilla`,
/// `spiced`, `vanilla_full`, `spiced_full`, `breakout`, `htf_bias` or
/// `strategy1`), with its default parameters.
pub fn by_id(id: &str) -> Option<Box<dyn Strategy + Send>> {
    Some(match id {
        "sma_crossover" | "vanilla" => Box::new(SmaCross::default()),
        "spiced" => Box::new(Spiced::default()),
        "vanilla_full" => Box::new(Full {
            id: "vanilla_full",
            inner: Spiced {
                trend: None,
                ..Spiced::default()
            },
        }),
        "spiced_full" => Box::new(Full {
            id: "spiced_full",
            inner: Spiced::default(),
        }),
        "breakout" => Box::new(Breakout::default()),
        "htf_bias" | "strategy1" => Box::new(HtfBias::default()),
        _ => return None,
    })
}

/// The mean close of the `n` bars ending at `end` (exclusive).
fn sma(bars: &[Bar], end: usize, n: usize) -> Option<f64> {
    let window = bars.get(end.checked_sub(n)?..end)?;
    Some(window.iter().map(|b| b.close).sum::<f64>() / n as f64)
}

/// Average true range of the `n` bars ending at `end` (exclusive).
pub fn atr(bars: &[Bar], end: usize, n: usize) -> Option<f64> {
    let start = end.checked_sub(n)?.max(1);
    let window = bars.get(start..end)?;
    if window.is_empty() {
        return None;
    }
    let total: f64 = window
        .iter()
        .zip(&bars[start - 1..end - 1])
        .map(|(bar, prev)| {
            (bar.high - bar.low)
                .max((bar.high - prev.close).abs())
                .max((bar.low - prev.close).abs())
        })
        .sum();
    Some(total / window.len() as f64)
}

/// `sma_crossover`: long when the fast SMA crosses above the slow one,
/// short when it crosses below; an open position is reversed. Optionally a
/// stop at `stop_atr` × ATR(14) and targets at R multiples.
#[derive(Debug, Clone, PartialEq)]
pub struct SmaCross {
    /// Fast SMA length (10).
    pub fast: usize,
    /// Slow SMA length (20).
    pub slow: usize,
    /// Stop distance in ATR(14) multiples (2.0); `None`: no stop, no targets.
    pub stop_atr: Option<f64>,
    /// Take-profit levels in R multiples (1, 2, 3).
    pub targets_r: Vec<f64>,
}

impl Default for SmaCross {
    fn default() -> Self {
        SmaCross {
            fast: 10,
            slow: 20,
            stop_atr: Some(2.0),
            targets_r: vec![1.0, 2.0, 3.0],
        }
    }
}

impl Strategy for SmaCross {
    fn id(&self) -> &'static str {
        "sma_crossover"
    }

    fn decide(&mut self, bars: &[Bar], open: Option<Direction>) -> Decision {
        let n = bars.len();
        let (Some(fast), Some(slow), Some(fast_before), Some(slow_before)) = (
            sma(bars, n, self.fast),
            sma(bars, n, self.slow),
            sma(bars, n - 1, self.fast),
            sma(bars, n - 1, self.slow),
        ) else {
            return Decision::Hold;
        };
        // Strictly below, then strictly above (and the mirror): a touch is
        // not a cross (backtesting.py's `crossover`).
        let direction = if fast > slow && fast_before < slow_before {
            Direction::Long
        } else if fast < slow && fast_before > slow_before {
            Direction::Short
        } else {
            return Decision::Hold;
        };
        if open == Some(direction) {
            return Decision::Hold;
        }
        let risk = self
            .stop_atr
            .and_then(|k| Some(k * atr(bars, n, 14)?))
            .filter(|r| *r > 0.0);
        let spread = (fast - slow).abs() / slow.abs().max(f64::MIN_POSITIVE);
        let entry = Entry {
            direction,
            risk,
            targets_r: if risk.is_some() {
                self.targets_r.clone()
            } else {
                Vec::new()
            },
            trail: false,
            confidence: (0.5 + 50.0 * spread).min(0.95),
            rationale: format!(
                "SMA({}) crossed {} SMA({})",
                self.fast,
                if direction == Direction::Long {
                    "above"
                } else {
                    "below"
                },
                self.slow
            ),
        };
        match open {
            Some(_) => Decision::Reverse(entry),
            None => Decision::Enter(entry),
        }
    }
}

/// `breakout`: a close beyond the highest high (lowest low) of the previous
/// `channel` bars enters long (short), with a stop at `stop_atr` × ATR(14)
/// and targets at R multiples. Positions end at their stop or target.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakout {
    /// Donchian channel length (20).
    pub channel: usize,
    /// Stop distance in ATR(14) multiples (2.0).
    pub stop_atr: f64,
    /// Take-profit levels in R multiples (1, 2, 3).
    pub targets_r: Vec<f64>,
}

impl Default for Breakout {
    fn default() -> Self {
        Breakout {
            channel: 20,
            stop_atr: 2.0,
            targets_r: vec![1.0, 2.0, 3.0],
        }
    }
}

impl Strategy for Breakout {
    fn id(&self) -> &'static str {
        "breakout"
    }

    fn decide(&mut self, bars: &[Bar], open: Option<Direction>) -> Decision {
        let n = bars.len();
        if open.is_some() || n <= self.channel {
            return Decision::Hold;
        }
        let channel = &bars[n - 1 - self.channel..n - 1];
        let high = channel.iter().map(|b| b.high).fold(f64::MIN, f64::max);
        let low = channel.iter().map(|b| b.low).fold(f64::MAX, f64::min);
        let close = bars[n - 1].close;
        let direction = if close > high {
            Direction::Long
        } else if close < low {
            Direction::Short
        } else {
            return Decision::Hold;
        };
        let Some(risk) = atr(bars, n, 14)
            .map(|a| a * self.stop_atr)
            .filter(|r| *r > 0.0)
        else {
            return Decision::Hold;
        };
        let beyond = match direction {
            Direction::Long => (close - high) / risk,
            Direction::Short => (low - close) / risk,
        };
        Decision::Enter(Entry {
            direction,
            risk: Some(risk),
            targets_r: self.targets_r.clone(),
            trail: false,
            confidence: (0.55 + beyond).min(0.95),
            rationale: format!(
                "close broke the {}-bar {}",
                self.channel,
                if direction == Direction::Long {
                    "high"
                } else {
                    "low"
                }
            ),
        })
    }
}

/// `spiced`: the SMA crossover with two filters, so it trades less and
/// differently than `vanilla` (seed 002 compares the two).
///
/// - **Regime:** no entry while ATR(14) is in the top quintile of its last
///   `lookback` values (turbulent markets whipsaw a crossover).
/// - **Trend:** a long only above a rising SMA(`trend`), a short only below
///   a falling one.
///
/// A reversal the filters refuse becomes a plain exit: the position that
/// the cross invalidated is still closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Spiced {
    /// The crossover it filters.
    pub cross: SmaCross,
    /// ATR values the regime is ranked against (100).
    pub lookback: usize,
    /// Trend SMA length (50); `None`: the regime filter alone
    /// (`vanilla_full`).
    pub trend: Option<usize>,
    /// ATR(14) of the last `lookback` bars seen, oldest first.
    atrs: std::collections::VecDeque<f64>,
    /// Bars seen: `decide` is normally called once per bar, in order.
    seen: usize,
}

impl Default for Spiced {
    fn default() -> Self {
        Spiced {
            cross: SmaCross::default(),
            lookback: 100,
            trend: Some(50),
            atrs: std::collections::VecDeque::new(),
            seen: 0,
        }
    }
}

impl Spiced {
    /// Whether the filters let an entry in `direction` through on `bars`'
    /// last bar, whose ATR(14) is `current`.
    fn allows(&self, bars: &[Bar], current: Option<f64>, direction: Direction) -> bool {
        let n = bars.len();
        let Some(current) = current else {
            return false;
        };
        if self.atrs.len() < self.lookback / 2 {
            return false;
        }
        let below = self.atrs.iter().filter(|&&a| a < current).count();
        if below as f64 >= 0.8 * self.atrs.len() as f64 {
            return false;
        }
        let Some(trend) = self.trend else {
            return true;
        };
        let (Some(now), Some(before)) = (sma(bars, n, trend), sma(bars, n - 5, trend)) else {
            return false;
        };
        let close = bars[n - 1].close;
        match direction {
            Direction::Long => close > now && now > before,
            Direction::Short => close < now && now < before,
        }
    }
}

impl Strategy for Spiced {
    fn id(&self) -> &'static str {
        "spiced"
    }

    fn decide(&mut self, bars: &[Bar], open: Option<Direction>) -> Decision {
        let n = bars.len();
        if self.seen + 1 != n {
            // Not called bar after bar from the start: rebuild the history.
            self.atrs.clear();
            for end in n.saturating_sub(self.lookback).max(1)..n {
                self.atrs.extend(atr(bars, end, 14));
            }
        }
        let current = atr(bars, n, 14);
        let decision = self.cross.decide(bars, open);
        let verdict = match decision {
            Decision::Enter(entry) if self.allows(bars, current, entry.direction) => {
                Decision::Enter(entry)
            }
            Decision::Enter(_) => Decision::Hold,
            Decision::Reverse(entry) if self.allows(bars, current, entry.direction) => {
                Decision::Reverse(entry)
            }
            Decision::Reverse(_) => Decision::Exit,
            other => other,
        };
        self.atrs.extend(current);
        if self.atrs.len() > self.lookback {
            self.atrs.pop_front();
        }
        self.seen = n;
        verdict
    }
}

/// A `*_full` variant (seed 002's `vanilla_full`, `spiced_full`): the
/// regime-filtered crossover's entries with the trailing exit ladder
/// ([`Entry::trail`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Full<S> {
    /// Its catalogue id.
    pub id: &'static str,
    /// The rule whose entries trail.
    pub inner: S,
}

impl<S: Strategy> Strategy for Full<S> {
    fn id(&self) -> &'static str {
        self.id
    }

    fn decide(&mut self, bars: &[Bar], open: Option<Direction>) -> Decision {
        match self.inner.decide(bars, open) {
            Decision::Enter(entry) => Decision::Enter(Entry {
                trail: true,
                ..entry
            }),
            Decision::Reverse(entry) => Decision::Reverse(Entry {
                trail: true,
                ..entry
            }),
            other => other,
        }
    }
}

/// `htf_bias` (seed 003's `strategy1`): each higher timeframe's SMA of its
/// completed closes, rising or falling over its last `slope` bars, sets a
/// bias; when every higher timeframe agrees, a trading-timeframe close that
/// reclaims its SMA after a pullback enters in the bias's direction, with a
/// stop at `stop_atr` × ATR(14) and targets at R multiples. A position is
/// closed when the bias turns against it.
#[derive(Debug, Clone, PartialEq)]
pub struct HtfBias {
    /// The higher timeframes (H4 and D1).
    pub higher: Vec<Timeframe>,
    /// SMA length on the higher timeframes and the trading one (20).
    pub sma: usize,
    /// Higher-timeframe bars over which the SMA must rise or fall (5).
    pub slope: usize,
    /// Stop distance in ATR(14) multiples (2.0).
    pub stop_atr: f64,
    /// Take-profit levels in R multiples (1, 2, 3).
    pub targets_r: Vec<f64>,
    /// Each higher timeframe's completed closes and the one forming.
    frames: Vec<HigherFrame>,
    /// Bars seen: `decide` is normally called once per bar, in order.
    seen: usize,
}

/// One higher timeframe built from the trading bars as they arrive.
#[derive(Debug, Clone, PartialEq)]
struct HigherFrame {
    /// Its bar length: trading bars are grouped by its `floor`.
    timeframe: Timeframe,
    /// Closes of its completed bars.
    closes: Vec<f64>,
    /// The forming bar's open time and latest close.
    forming: Option<(i64, f64)>,
}

impl HigherFrame {
    fn add(&mut self, bar: &Bar) {
        let start = self.timeframe.floor(bar.time);
        match self.forming {
            Some((open, _)) if open == start => {}
            Some((_, close)) => self.closes.push(close),
            None => {}
        }
        self.forming = Some((start, bar.close));
    }

    /// +1 (SMA rising), −1 (falling) or 0 (flat, or too few bars).
    fn trend(&self, sma_len: usize, slope: usize) -> i8 {
        let n = self.closes.len();
        let mean = |end: usize| -> Option<f64> {
            let window = self.closes.get(end.checked_sub(sma_len)?..end)?;
            Some(window.iter().sum::<f64>() / sma_len as f64)
        };
        match (mean(n), n.checked_sub(slope).and_then(mean)) {
            (Some(now), Some(before)) if now > before => 1,
            (Some(now), Some(before)) if now < before => -1,
            _ => 0,
        }
    }
}

impl Default for HtfBias {
    fn default() -> Self {
        HtfBias::new(vec![Timeframe::H4, Timeframe::D1])
    }
}

impl HtfBias {
    /// The rule over `higher` timeframes, with the default parameters.
    pub fn new(higher: Vec<Timeframe>) -> Self {
        HtfBias {
            frames: Vec::new(),
            higher,
            sma: 20,
            slope: 5,
            stop_atr: 2.0,
            targets_r: vec![1.0, 2.0, 3.0],
            seen: 0,
        }
    }

    /// The agreed bias of every higher timeframe: `Some(direction)` or none.
    fn bias(&self) -> Option<Direction> {
        let mut trends = self.frames.iter().map(|f| f.trend(self.sma, self.slope));
        let first = trends.next()?;
        if first == 0 || !trends.all(|t| t == first) {
            return None;
        }
        Some(if first > 0 {
            Direction::Long
        } else {
            Direction::Short
        })
    }
}

impl Strategy for HtfBias {
    fn id(&self) -> &'static str {
        "htf_bias"
    }

    fn decide(&mut self, bars: &[Bar], open: Option<Direction>) -> Decision {
        let n = bars.len();
        if self.seen + 1 != n || self.frames.len() != self.higher.len() {
            // Not called bar after bar from the start: rebuild from the bars.
            self.frames = self
                .higher
                .iter()
                .map(|&timeframe| HigherFrame {
                    timeframe,
                    closes: Vec::new(),
                    forming: None,
                })
                .collect();
            for bar in &bars[..n.saturating_sub(1)] {
                self.frames.iter_mut().for_each(|f| f.add(bar));
            }
        }
        if let Some(bar) = bars.last() {
            self.frames.iter_mut().for_each(|f| f.add(bar));
        }
        self.seen = n;
        let bias = self.bias();
        if let Some(held) = open {
            return if bias.is_some_and(|b| b != held) {
                Decision::Exit
            } else {
                Decision::Hold
            };
        }
        let Some(direction) = bias else {
            return Decision::Hold;
        };
        let (Some(now), Some(before)) = (sma(bars, n, self.sma), sma(bars, n - 1, self.sma)) else {
            return Decision::Hold;
        };
        let (close, previous) = (bars[n - 1].close, bars[n - 2].close);
        let s = direction.sign();
        // A pullback through the SMA, then a close back on the bias's side.
        if !(s * (previous - before) < 0.0 && s * (close - now) > 0.0) {
            return Decision::Hold;
        }
        let Some(risk) = atr(bars, n, 14)
            .map(|a| a * self.stop_atr)
            .filter(|r| *r > 0.0)
        else {
            return Decision::Hold;
        };
        let names: Vec<&str> = self.higher.iter().map(|t| t.label()).collect();
        let side = if direction == Direction::Long {
            "bullish"
        } else {
            "bearish"
        };
        Decision::Enter(Entry {
            direction,
            risk: Some(risk),
            targets_r: self.targets_r.clone(),
            trail: false,
            confidence: (0.6 + 0.1 * self.higher.len() as f64).min(0.9),
            rationale: format!(
                "HTF {side} bias ({}) + LTF pullback reclaimed SMA({})",
                names.join(", "),
                self.sma
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(closes: &[f64]) -> Vec<Bar> {
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar {
                time: i as i64 * 60,
                open: c,
                high: c + 0.5,
                low: c - 0.5,
                close: c,
                volume: 1.0,
            })
            .collect()
    }

    #[test]
    fn a_cross_up_enters_long_with_a_bracket_and_a_cross_down_reverses() {
        let mut s = SmaCross {
            fast: 2,
            slow: 4,
            ..SmaCross::default()
        };
        // Fourteen flat bars first, so ATR(14) exists.
        let mut closes = vec![10.0; 14];
        closes.extend([9.0, 9.0]);
        assert_eq!(s.decide(&bars(&closes), None), Decision::Hold);
        closes.push(12.0);
        let Decision::Enter(entry) = s.decide(&bars(&closes), None) else {
            panic!("no entry");
        };
        assert_eq!(entry.direction, Direction::Long);
        assert!(entry.risk.unwrap() > 0.0);
        assert_eq!(entry.targets_r, vec![1.0, 2.0, 3.0]);
        closes.extend([8.0, 7.0]);
        assert!(matches!(
            s.decide(&bars(&closes), Some(Direction::Long)),
            Decision::Reverse(Entry {
                direction: Direction::Short,
                ..
            })
        ));
    }

    #[test]
    fn a_breakout_needs_a_close_beyond_the_channel() {
        let mut s = Breakout {
            channel: 3,
            ..Breakout::default()
        };
        let mut closes = vec![10.0; 14];
        closes.extend([10.2, 9.8, 10.0]);
        assert_eq!(s.decide(&bars(&closes), None), Decision::Hold);
        closes.push(11.0);
        assert!(matches!(
            s.decide(&bars(&closes), None),
            Decision::Enter(Entry {
                direction: Direction::Long,
                ..
            })
        ));
        assert_eq!(
            s.decide(&bars(&closes), Some(Direction::Long)),
            Decision::Hold
        );
    }

    #[test]
    fn spiced_decides_the_same_whether_called_bar_by_bar_or_cold() {
        let bars = crate::data::Generator { seed: 9 }.bars(
            "GBPUSD",
            crate::Timeframe::H1,
            crate::calendar::parse_date("2023-03-01").unwrap(),
            crate::calendar::parse_date("2023-06-01").unwrap(),
        );
        let mut warm = Spiced::default();
        let in_order: Vec<Decision> = (1..=bars.len())
            .map(|n| warm.decide(&bars[..n], None))
            .collect();
        assert!(in_order.iter().any(|d| matches!(d, Decision::Enter(_))));
        for n in [150, 600, bars.len()] {
            let cold = Spiced::default().decide(&bars[..n], None);
            assert_eq!(cold, in_order[n - 1], "bar {n}");
        }
    }

    #[test]
    fn htf_bias_enters_with_its_higher_timeframes_and_decides_the_same_cold() {
        let bars = crate::data::Generator { seed: 11 }.bars(
            "BTC-USD",
            Timeframe::M15,
            crate::calendar::parse_date("2024-01-01").unwrap(),
            crate::calendar::parse_date("2024-04-01").unwrap(),
        );
        let mut warm = HtfBias::default();
        let mut held = None;
        let mut decisions = Vec::new();
        for n in 1..=bars.len() {
            let d = warm.decide(&bars[..n], held);
            match &d {
                Decision::Enter(e) => {
                    assert!(e.rationale.starts_with("HTF "), "{}", e.rationale);
                    held = Some(e.direction);
                }
                Decision::Exit => held = None,
                _ => {}
            }
            decisions.push((d, held));
        }
        let entries = decisions
            .iter()
            .filter(|(d, _)| matches!(d, Decision::Enter(_)))
            .count();
        assert!(entries > 3, "{entries} entries");
        for n in [2_000, 5_000, bars.len()] {
            let before = if n >= 2 { decisions[n - 2].1 } else { None };
            let cold = HtfBias::default().decide(&bars[..n], before);
            assert_eq!(cold, decisions[n - 1].0, "bar {n}");
        }
        assert_eq!(by_id("strategy1").unwrap().id(), "htf_bias");
    }

    #[test]
    fn atr_is_the_mean_true_range() {
        let b = bars(&[10.0, 11.0, 10.0]);
        // True ranges: max(1, |10.5-10|, |9.5-10|)... high-low is 1 each bar,
        // gaps of 1 make |high - prev close| 1.5.
        assert_eq!(atr(&b, 3, 2), Some(1.5));
        assert_eq!(atr(&b, 1, 2), None);
    }
}
