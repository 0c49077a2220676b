//! A live chart of one instrument, built from its ticks: candles on several
//! timeframes, market structure (swing highs and lows, the trend, breaks
//! of structure) and a confluence score. Seed 003's market-data stream is
//! this chart, tick by tick.
//!
//! * **Candles.** Each tick updates the forming candle of every timeframe
//!   (bars open on the timeframe's UTC grid); a tick past a bar's end
//!   closes it first. Volume is what the instrument's accumulated day
//!   volume grew by during the bar (a new day's smaller total counts whole).
//! * **Structure**, on the smallest timeframe's closed candles: a swing high
//!   is a candle whose high tops the [`SWING_SIDE`] candles on each side (a
//!   swing low likewise); the trend is bullish when the last two swing
//!   highs and lows both rise, bearish when both fall, ranging otherwise;
//!   a close beyond the last swing high (or low) breaks structure.
//! * **Confluence**, on each closed candle of the smallest timeframe: the
//!   share of factors that agree — each timeframe's forming candle up or
//!   down, the structure's trend, a fresh break of structure — as a score
//!   0–1 with the direction they agree on (`neutral` below 0.6).

use std::collections::VecDeque;

use crate::bar::{Bar, Timeframe};

/// Candles on each side of a swing point.
pub const SWING_SIDE: usize = 2;

/// Closed candles of the smallest timeframe kept for structure.
const STRUCTURE_WINDOW: usize = 64;

/// One candle: a bar of a timeframe, forming or closed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    /// Its timeframe.
    pub timeframe: Timeframe,
    /// The bar so far (`time` on the timeframe's grid; `volume` traded in it).
    pub bar: Bar,
    /// Whether the bar has ended.
    pub is_closed: bool,
}

/// A swing point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Swing {
    /// Its high (or low).
    pub price: f64,
    /// Its candle's open time (Unix seconds).
    pub time: i64,
}

/// Which way the market leans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// Higher highs and higher lows.
    Bullish,
    /// Lower highs and lower lows.
    Bearish,
    /// Neither.
    Ranging,
}

impl Trend {
    /// `bullish`, `bearish` or `ranging`.
    pub fn label(self) -> &'static str {
        match self {
            Trend::Bullish => "bullish",
            Trend::Bearish => "bearish",
            Trend::Ranging => "ranging",
        }
    }
}

/// The market structure of the smallest timeframe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Structure {
    /// The timeframe it is read on.
    pub timeframe: Timeframe,
    /// The trend.
    pub trend: Trend,
    /// The last swing high, if any yet.
    pub last_swing_high: Option<Swing>,
    /// The last swing low, if any yet.
    pub last_swing_low: Option<Swing>,
    /// Whether the last closed candle broke beyond the last swing.
    pub break_of_structure: bool,
}

/// A confluence reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Confluence {
    /// 0–1: the share of factors agreeing on `direction`.
    pub score: f64,
    /// `long`, `short` or `neutral`.
    pub direction: &'static str,
    /// The factors that agree, e.g. `5M candle up`.
    pub factors: Vec<String>,
}

/// What one tick changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChartUpdate {
    /// Candles that closed on this tick, then every timeframe's forming
    /// candle.
    pub candles: Vec<Candle>,
    /// The smallest timeframe's candle that closed, if one did (for a
    /// pattern detector).
    pub closed: Option<Candle>,
    /// The structure, when its swings, trend or break changed.
    pub structure: Option<Structure>,
    /// A confluence reading, when the smallest timeframe's candle closed.
    pub confluence: Option<Confluence>,
}

/// One instrument's chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Timeframes, shortest first.
    timeframes: Vec<Timeframe>,
    /// The forming candle of each.
    forming: Vec<Option<Candle>>,
    /// The accumulated day volume at the last tick.
    last_volume: Option<f64>,
    /// The smallest timeframe's closed candles, newest last.
    closed: VecDeque<Bar>,
    /// The structure as last reported.
    structure: Structure,
    /// The last two swing highs, newest last: the trend compares them.
    highs: VecDeque<Swing>,
    /// The last two swing lows, newest last.
    lows: VecDeque<Swing>,
}

impl Chart {
    /// A chart on `timeframes` (sorted shortest first, at least one).
    pub fn new(mut timeframes: Vec<Timeframe>) -> Self {
        timeframes.sort_by_key(|tf| tf.seconds());
        timeframes.dedup();
        assert!(!timeframes.is_empty(), "a chart needs a timeframe");
        Chart {
            forming: vec![None; timeframes.len()],
            structure: Structure {
                timeframe: timeframes[0],
                trend: Trend::Ranging,
                last_swing_high: None,
                last_swing_low: None,
                break_of_structure: false,
            },
            timeframes,
            last_volume: None,
            closed: VecDeque::new(),
            highs: VecDeque::new(),
            lows: VecDeque::new(),
        }
    }

    /// The timeframes, shortest first.
    pub fn timeframes(&self) -> &[Timeframe] {
        &self.timeframes
    }

    /// Every timeframe's forming candle.
    pub fn forming(&self) -> impl Iterator<Item = &Candle> {
        self.forming.iter().flatten()
    }

    /// The structure as last reported.
    pub fn structure(&self) -> &Structure {
        &self.structure
    }

    /// Feeds a tick: `price` at `time` (Unix seconds), with the day's
    /// accumulated `volume`. A tick older than a forming candle's bar
    /// updates it as if current.
    pub fn on_tick(&mut self, price: f64, volume: f64, time: i64) -> ChartUpdate {
        let mut update = ChartUpdate::default();
        if !(price.is_finite() && price > 0.0) {
            return update;
        }
        let traded = match self.last_volume {
            Some(last) if volume >= last => volume - last,
            _ if volume.is_finite() && volume > 0.0 && self.last_volume.is_some() => volume,
            _ => 0.0,
        };
        if volume.is_finite() {
            self.last_volume = Some(volume);
        }
        for (i, tf) in self.timeframes.iter().copied().enumerate() {
            let open = tf.floor(time);
            let slot = &mut self.forming[i];
            match slot {
                Some(candle) if open > candle.bar.time => {
                    let mut done = *candle;
                    done.is_closed = true;
                    update.candles.push(done);
                    if i == 0 {
                        update.closed = Some(done);
                    }
                    *slot = None;
                }
                _ => {}
            }
            let candle = slot.get_or_insert(Candle {
                timeframe: tf,
                bar: Bar {
                    time: open,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    volume: 0.0,
                },
                is_closed: false,
            });
            let bar = &mut candle.bar;
            bar.high = bar.high.max(price);
            bar.low = bar.low.min(price);
            bar.close = price;
            bar.volume += traded;
        }
        if let Some(closed) = update.closed {
            update.structure = self.on_closed(closed.bar);
            update.confluence = Some(self.confluence());
        }
        update
            .candles
            .extend(self.forming.iter().flatten().copied());
        update
    }

    /// A smallest-timeframe candle closed: find swings, the trend, a break.
    fn on_closed(&mut self, bar: Bar) -> Option<Structure> {
        self.closed.push_back(bar);
        if self.closed.len() > STRUCTURE_WINDOW {
            self.closed.pop_front();
        }
        let n = self.closed.len();
        if n > 2 * SWING_SIDE {
            let middle = self.closed[n - 1 - SWING_SIDE];
            let sides = || {
                (n - 1 - 2 * SWING_SIDE..n)
                    .filter(move |&j| j != n - 1 - SWING_SIDE)
                    .map(|j| self.closed[j])
            };
            if sides().all(|c| c.high < middle.high) {
                push_swing(
                    &mut self.highs,
                    Swing {
                        price: middle.high,
                        time: middle.time,
                    },
                );
            }
            if sides().all(|c| c.low > middle.low) {
                push_swing(
                    &mut self.lows,
                    Swing {
                        price: middle.low,
                        time: middle.time,
                    },
                );
            }
        }
        let rising = |s: &VecDeque<Swing>| s.len() == 2 && s[1].price > s[0].price;
        let falling = |s: &VecDeque<Swing>| s.len() == 2 && s[1].price < s[0].price;
        let trend = if rising(&self.highs) && rising(&self.lows) {
            Trend::Bullish
        } else if falling(&self.highs) && falling(&self.lows) {
            Trend::Bearish
        } else {
            Trend::Ranging
        };
        let last_high = self.highs.back().copied();
        let last_low = self.lows.back().copied();
        let broke = last_high.is_some_and(|h| bar.close > h.price)
            || last_low.is_some_and(|l| bar.close < l.price);
        let next = Structure {
            timeframe: self.timeframes[0],
            trend,
            last_swing_high: last_high,
            last_swing_low: last_low,
            break_of_structure: broke,
        };
        let changed = next != self.structure;
        self.structure = next;
        changed.then_some(next)
    }

    /// The confluence of the timeframes' candles and the structure.
    fn confluence(&self) -> Confluence {
        let mut long = Vec::new();
        let mut short = Vec::new();
        let mut factors = 0usize;
        for candle in self.forming.iter().flatten() {
            factors += 1;
            let label = count_first_label(candle.timeframe);
            if candle.bar.close > candle.bar.open {
                long.push(format!("{label} candle up"));
            } else if candle.bar.close < candle.bar.open {
                short.push(format!("{label} candle down"));
            }
        }
        factors += 1;
        match self.structure.trend {
            Trend::Bullish => long.push("bullish structure".into()),
            Trend::Bearish => short.push("bearish structure".into()),
            Trend::Ranging => {}
        }
        if self.structure.break_of_structure {
            factors += 1;
            let close = self.closed.back().map_or(0.0, |c| c.close);
            if self
                .structure
                .last_swing_high
                .is_some_and(|h| close > h.price)
            {
                long.push("break above swing high".into());
            } else {
                short.push("break below swing low".into());
            }
        }
        let (direction, agreeing) = if long.len() >= short.len() {
            ("long", long)
        } else {
            ("short", short)
        };
        let score = agreeing.len() as f64 / factors as f64;
        Confluence {
            score: (score * 100.0).round() / 100.0,
            direction: if score >= 0.6 { direction } else { "neutral" },
            factors: agreeing,
        }
    }
}

fn push_swing(swings: &mut VecDeque<Swing>, swing: Swing) {
    swings.push_back(swing);
    if swings.len() > 2 {
        swings.pop_front();
    }
}

/// A timeframe written count first, as seed 003 does: `1M`, `15M`, `4H`.
pub fn count_first_label(tf: Timeframe) -> String {
    let label = tf.label();
    format!("{}{}", &label[1..], &label[..1])
}

/// Parses seed 003's timeframe list (`1M,5M,15M,1H,4H`).
pub fn parse_timeframes(list: &str) -> Result<Vec<Timeframe>, String> {
    let timeframes: Vec<Timeframe> = list
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| Timeframe::parse(t).ok_or_else(|| format!("unknown timeframe {t:?}")))
        .collect::<Result<_, _>>()?;
    if timeframes.is_empty() {
        return Err("expected at least one timeframe".into());
    }
    Ok(timeframes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart::new(vec![Timeframe::M5, Timeframe::M1])
    }

    #[test]
    fn ticks_form_candles_and_a_tick_past_a_bar_closes_it() {
        let mut chart = chart();
        let update = chart.on_tick(100.0, 1_000.0, 60);
        assert_eq!(update.candles.len(), 2, "one forming candle per timeframe");
        assert_eq!(update.candles[0].timeframe, Timeframe::M1);
        assert_eq!(
            update.candles[0].bar.volume, 0.0,
            "the first tick sets the base"
        );
        chart.on_tick(103.0, 1_500.0, 90);
        let update = chart.on_tick(101.0, 1_600.0, 121);
        let closed: Vec<_> = update.candles.iter().filter(|c| c.is_closed).collect();
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (
                closed[0].bar.time,
                closed[0].bar.open,
                closed[0].bar.high,
                closed[0].bar.low,
                closed[0].bar.close
            ),
            (60, 100.0, 103.0, 100.0, 103.0)
        );
        assert_eq!(closed[0].bar.volume, 500.0);
        assert_eq!(update.closed, Some(*closed[0]));
        assert!(update.confluence.is_some());
        let m5 = update
            .candles
            .iter()
            .find(|c| c.timeframe == Timeframe::M5)
            .unwrap();
        assert_eq!(
            (m5.bar.time, m5.bar.high, m5.bar.volume, m5.is_closed),
            (0, 103.0, 600.0, false)
        );
        // A new day's smaller total counts whole.
        let update = chart.on_tick(101.0, 40.0, 130);
        assert_eq!(update.candles[0].bar.volume, 140.0);
    }

    #[test]
    fn rising_swings_make_a_bullish_trend_and_a_close_above_the_high_breaks_it() {
        let mut chart = Chart::new(vec![Timeframe::M1]);
        // One tick per minute; a zig-zag with higher highs and higher lows.
        let closes = [
            10.0, 12.0, 15.0, 12.0, 11.0, 13.0, 17.0, 14.0, 13.5, 16.0, 19.0, 20.0,
        ];
        let mut last = None;
        for (i, close) in closes.iter().enumerate() {
            let update = chart.on_tick(*close, 0.0, i as i64 * 60);
            if let Some(structure) = update.structure {
                last = Some(structure);
            }
        }
        let structure = last.expect("the structure changed");
        assert_eq!(structure.trend, Trend::Bullish);
        assert_eq!(structure.last_swing_high.unwrap().price, 17.0);
        assert_eq!(structure.last_swing_low.unwrap().price, 13.5);
        assert!(structure.break_of_structure, "19 closed above 17");
    }

    #[test]
    fn timeframes_are_written_count_first() {
        assert_eq!(count_first_label(Timeframe::M15), "15M");
        assert_eq!(count_first_label(Timeframe::H4), "4H");
        assert_eq!(
            parse_timeframes("1M,5M,15M,1H,4H").unwrap(),
            [
                Timeframe::M1,
                Timeframe::M5,
                Timeframe::M15,
                Timeframe::H1,
                Timeframe::H4
            ]
        );
        assert!(parse_timeframes("1M,7X").is_err());
        assert!(parse_timeframes("").is_err());
    }
}
