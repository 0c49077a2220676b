//! Strategies: on each bar's close, with only the bars so far (no
//! look-ahead), a strategy decides what happens at the next bar's open.
//! The catalogue: [`SmaCross`] (`sma_crossover`) and [`Breakout`]
//! (`breakout`, a Donchian channel breakout).

use crate::bar::Bar;

/// Which way a position faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Long,
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
    /// one reached closes the whole position.
    pub targets_r: Vec<f64>,
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
    fn atr_is_the_mean_true_range() {
        let b = bars(&[10.0, 11.0, 10.0]);
        // True ranges: max(1, |10.5-10|, |9.5-10|)... high-low is 1 each bar,
        // gaps of 1 make |high - prev close| 1.5.
        assert_eq!(atr(&b, 3, 2), Some(1.5));
        assert_eq!(atr(&b, 1, 2), None);
    }
}
