//! Where a run's bars come from: a deterministic generated series, or CSV
//! files.
//!
//! **Generated.** Each symbol's series is a pure function of the symbol, a
//! seed and the time, so any date range can be generated without what comes
//! before it, on any node, after any restart, with the same result. A daily
//! log-price walk anchored at 2000-01-01 sets each day's open; minutes
//! within a day follow a Brownian bridge between two anchors, drawn with
//! counter-based randomness ([`crate::rng`]); bars of every timeframe are
//! aggregated from those minutes, so timeframes agree. The walk's drift and
//! volatility switch regime every week (trending up, trending down, ranging,
//! turbulent), so strategies both win and lose.
//!
//! **CSV.** `<dir>/<SYMBOL>/<TF>.csv` with a `timestamp,open,high,low,close,volume`
//! header; timestamps in RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or Unix seconds.

use std::path::Path;

use crate::bar::{Bar, Timeframe};
use crate::calendar::Calendar;
use crate::rng;

/// Where the generated walk starts: 2000-01-01T00:00:00Z.
const ANCHOR_EPOCH: i64 = 946_684_800;

/// Seconds per day.
const DAY: i64 = 86_400;

/// Minutes per day.
const MINUTES: i64 = 1_440;

/// Why bars could not be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    /// The range holds no bar of the symbol (or starts before the data).
    #[error("Insufficient historical data")]
    Insufficient {
        /// The symbol.
        symbol: String,
        /// The first time the request needs (RFC 3339).
        required_start: String,
        /// The first time the data has, if any (RFC 3339).
        available_start: Option<String>,
    },
    /// A CSV file could not be read or parsed.
    #[error("{path}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// What was wrong, with the line number.
        message: String,
    },
}

/// The generated-data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generator {
    /// Keys every series (`ROOMCAST_BACKTEST_DATA_SEED`).
    pub seed: u64,
}

/// A regime of the generated walk: daily drift and volatility of log price.
#[derive(Debug, Clone, Copy)]
struct Regime {
    drift: f64,
    volatility: f64,
}

const REGIMES: [Regime; 4] = [
    Regime {
        drift: 0.0025,
        volatility: 0.010,
    },
    Regime {
        drift: -0.0025,
        volatility: 0.012,
    },
    Regime {
        drift: 0.0,
        volatility: 0.006,
    },
    Regime {
        drift: 0.0,
        volatility: 0.025,
    },
];

impl Generator {
    /// The bars of `symbol` at `timeframe` opening in `[from, to)`, on its
    /// calendar; empty when the calendar has none there. The series begins
    /// on 2000-01-01: nothing is generated before it.
    pub fn bars(&self, symbol: &str, timeframe: Timeframe, from: i64, to: i64) -> Vec<Bar> {
        let from = from.max(ANCHOR_EPOCH);
        let calendar = Calendar::for_symbol(symbol);
        let series = Series::new(self.seed, symbol);
        let mut bars = Vec::new();
        let mut start = timeframe.floor(from);
        if start < from {
            start += timeframe.seconds();
        }
        let mut day = Day::default();
        while start < to {
            let end = start + timeframe.seconds();
            let mut bar: Option<Bar> = None;
            for (open, close) in calendar.open_spans(start, end) {
                let mut minute = open - open.rem_euclid(60);
                while minute < close {
                    let (o, c, high, low, volume) = series.minute(minute, &mut day);
                    match &mut bar {
                        None => {
                            bar = Some(Bar {
                                time: start,
                                open: o,
                                high,
                                low,
                                close: c,
                                volume,
                            })
                        }
                        Some(b) => {
                            b.high = b.high.max(high);
                            b.low = b.low.min(low);
                            b.close = c;
                            b.volume += volume;
                        }
                    }
                    minute += 60;
                }
            }
            bars.extend(bar);
            start = end;
        }
        bars
    }
}

/// One symbol's generated series.
struct Series {
    /// Keys its draws.
    key: u64,
    /// Log of its price on 2000-01-01.
    log_start: f64,
    /// Scales its volumes.
    volume: f64,
    /// Scales its regimes' drift and volatility by asset class: FX moves
    /// about a third as much as an equity, crypto twice as much.
    scale: f64,
}

/// The minute path of the day being generated (reused across bars).
#[derive(Default)]
struct Day {
    /// Which day (days since 2000-01-01); `None` before the first.
    index: Option<i64>,
    /// Log price at the start of each minute, and at the day's end.
    path: Vec<f64>,
}

impl Series {
    fn new(seed: u64, symbol: &str) -> Self {
        let key = rng::key(seed, symbol);
        let (start, scale) = match Calendar::for_symbol(symbol) {
            Calendar::Crypto => (50.0 + 40_000.0 * rng::uniform(key, u64::MAX), 2.0),
            Calendar::Fx => (0.6 + 1.2 * rng::uniform(key, u64::MAX), 0.35),
            Calendar::Nyse => (20.0 + 300.0 * rng::uniform(key, u64::MAX), 1.0),
        };
        Series {
            key,
            log_start: start.ln(),
            volume: 1_000.0 + 100_000.0 * rng::uniform(key, u64::MAX - 1),
            scale,
        }
    }

    /// The regime of the week holding `day`.
    fn regime(&self, day: i64) -> Regime {
        let week = day.div_euclid(7) as u64;
        let regime = REGIMES[(rng::mix(self.key ^ week.wrapping_mul(0x5851_F42D)) % 4) as usize];
        Regime {
            drift: regime.drift * self.scale,
            volatility: regime.volatility * self.scale,
        }
    }

    /// Log price at the start of `day` (days since 2000-01-01): the daily
    /// steps before it, taken one by one.
    fn anchor(&self, day: i64) -> f64 {
        (0..day.max(0)).fold(self.log_start, |level, d| self.step(d, level))
    }

    /// Log price at the end of `day`, from `level` at its start: the
    /// regime's drift and volatility, mean-reverting towards the start level
    /// over years, so long runs stay in a sensible range. The one formula
    /// both [`Series::anchor`] and a day's path use, so they agree to the bit.
    fn step(&self, day: i64, level: f64) -> f64 {
        let regime = self.regime(day);
        let pull = 0.01 * (self.log_start - level);
        level + (regime.drift + pull + regime.volatility * rng::normal(self.key, day.max(0) as u64))
    }

    /// `(open, close, high, low, volume)` of the minute starting at `time`.
    fn minute(&self, time: i64, day: &mut Day) -> (f64, f64, f64, f64, f64) {
        let index = (time - ANCHOR_EPOCH).div_euclid(DAY);
        if day.index != Some(index) {
            self.fill_day(index, day);
        }
        let m = ((time - ANCHOR_EPOCH).rem_euclid(DAY) / 60) as usize;
        let (open, close) = (day.path[m].exp(), day.path[m + 1].exp());
        let n = (index * MINUTES) as u64 + m as u64;
        let wick = self.regime(index).volatility / (MINUTES as f64).sqrt();
        let up = (wick * rng::uniform(self.key ^ 0xA1, n)).exp();
        let down = (-wick * rng::uniform(self.key ^ 0xB2, n)).exp();
        let high = open.max(close) * up;
        let low = open.min(close) * down;
        let volume = (self.volume * (0.5 + rng::uniform(self.key ^ 0xC3, n))).round();
        (open, close, high, low, volume)
    }

    /// The Brownian bridge of minute log prices between `index`'s anchor and the next.
    fn fill_day(&self, index: i64, day: &mut Day) {
        let from = match day.index {
            // The next day starts where this one ended: one step, not a re-walk.
            Some(previous) if previous + 1 == index => *day.path.last().unwrap_or(&0.0),
            _ => self.anchor(index),
        };
        let to = self.step(index, from);
        let sigma = self.regime(index).volatility / (MINUTES as f64).sqrt();
        day.path.clear();
        day.path.push(0.0);
        let base = (index * MINUTES) as u64;
        for m in 0..MINUTES as u64 {
            let step = sigma * rng::normal(self.key ^ 0x51, base + m);
            let last = *day.path.last().unwrap_or(&0.0);
            day.path.push(last + step);
        }
        let total = day.path[MINUTES as usize];
        for (m, point) in day.path.iter_mut().enumerate() {
            let t = m as f64 / MINUTES as f64;
            *point = from + *point - t * total + t * (to - from);
        }
        // Exactly the anchors at both ends, whatever the rounding above.
        day.path[0] = from;
        day.path[MINUTES as usize] = to;
        day.index = Some(index);
    }
}

/// Where a run's bars come from (`ROOMCAST_BACKTEST_DATA_DIR` set or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The generated series.
    Generated(Generator),
    /// CSV files under this directory.
    Csv(std::path::PathBuf),
}

impl Source {
    /// The bars of `symbol` at `timeframe` opening in `[from, to)`, or the
    /// "Insufficient historical data" error when the data does not cover
    /// the range. CSV data is read at `timeframe`, or aggregated from the
    /// longest shorter timeframe that has a file and divides it.
    pub fn bars(
        &self,
        symbol: &str,
        timeframe: Timeframe,
        from: i64,
        to: i64,
    ) -> Result<Vec<Bar>, DataError> {
        let bars = match self {
            Source::Generated(generator) => generator.bars(symbol, timeframe, from, to),
            Source::Csv(dir) => {
                let file = |tf: Timeframe| dir.join(symbol).join(format!("{}.csv", tf.label()));
                let lower = Timeframe::ALL
                    .into_iter()
                    .rev()
                    .filter(|tf| *tf <= timeframe && timeframe.seconds() % tf.seconds() == 0)
                    .find(|tf| file(*tf).is_file());
                match lower {
                    Some(tf) if tf == timeframe => read_csv(dir, symbol, tf)?,
                    Some(tf) => aggregate(&read_csv(dir, symbol, tf)?, timeframe),
                    None => Vec::new(),
                }
            }
        };
        covering(symbol, timeframe, bars, from, to)
    }
}

/// `bars` (sorted) grouped into bars of `timeframe`: the first open, the
/// highest high, the lowest low, the last close, the summed volume.
pub fn aggregate(bars: &[Bar], timeframe: Timeframe) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::new();
    for bar in bars {
        let start = timeframe.floor(bar.time);
        match out.last_mut() {
            Some(last) if last.time == start => {
                last.high = last.high.max(bar.high);
                last.low = last.low.min(bar.low);
                last.close = bar.close;
                last.volume += bar.volume;
            }
            _ => out.push(Bar {
                time: start,
                ..*bar
            }),
        }
    }
    out
}

/// Reads `<dir>/<SYMBOL>/<TF>.csv`.
pub fn read_csv(dir: &Path, symbol: &str, timeframe: Timeframe) -> Result<Vec<Bar>, DataError> {
    let path = dir.join(symbol).join(format!("{}.csv", timeframe.label()));
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::Csv {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    parse_csv(&text).map_err(|message| DataError::Csv {
        path: shown,
        message,
    })
}

/// Parses CSV bars (header `timestamp,open,high,low,close,volume`), sorted by time.
pub fn parse_csv(text: &str) -> Result<Vec<Bar>, String> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, h)| h.trim()).unwrap_or_default();
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if columns != ["timestamp", "open", "high", "low", "close", "volume"] {
        return Err("line 1: expected the header timestamp,open,high,low,close,volume".into());
    }
    let mut bars = Vec::new();
    for (n, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}", n + 1);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [time, open, high, low, close, volume] = fields[..] else {
            return Err(bad("expected 6 fields"));
        };
        let number = |text: &str, name: &str| {
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("{name} is not a number")))
        };
        let bar = Bar {
            time: parse_time(time).ok_or_else(|| {
                bad("timestamp is not RFC 3339, YYYY-MM-DD HH:MM:SS or Unix seconds")
            })?,
            open: number(open, "open")?,
            high: number(high, "high")?,
            low: number(low, "low")?,
            close: number(close, "close")?,
            volume: number(volume, "volume")?,
        };
        if bar.low > bar.open.min(bar.close) || bar.high < bar.open.max(bar.close) {
            return Err(bad("low/high do not contain open and close"));
        }
        bars.push(bar);
    }
    bars.sort_by_key(|b| b.time);
    bars.dedup_by_key(|b| b.time);
    Ok(bars)
}

fn parse_time(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp());
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|at| at.and_utc().timestamp())
}

/// The bars opening in `[from, to)`, or the "Insufficient historical data"
/// error when `bars` does not reach back to `from` (to the first bar of
/// `timeframe` the symbol's calendar has from then: a range may start on a
/// weekend or a holiday) or holds none there.
pub fn covering(
    symbol: &str,
    timeframe: Timeframe,
    bars: Vec<Bar>,
    from: i64,
    to: i64,
) -> Result<Vec<Bar>, DataError> {
    let available_start = bars.first().map(|b| crate::calendar::rfc3339(b.time));
    // The first bar the calendar has from `from` on (a month covers any closure).
    let first_tradable = Calendar::for_symbol(symbol)
        .open_spans(from, from + 31 * DAY)
        .first()
        .map_or(from, |(open, _)| timeframe.floor(*open));
    let starts_late = bars
        .first()
        .is_none_or(|b| b.time >= first_tradable + timeframe.seconds());
    let inside: Vec<Bar> = bars
        .into_iter()
        .filter(|b| b.time >= from && b.time < to)
        .collect();
    if inside.is_empty() || starts_late {
        return Err(DataError::Insufficient {
            symbol: symbol.to_string(),
            required_start: crate::calendar::rfc3339(from),
            available_start,
        });
    }
    Ok(inside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_date;

    fn day(date: &str) -> i64 {
        parse_date(date).unwrap()
    }

    #[test]
    fn a_series_is_the_same_whatever_range_asks_for_it() {
        let g = Generator { seed: 42 };
        let whole = g.bars(
            "EURUSD",
            Timeframe::H1,
            day("2024-01-01"),
            day("2024-01-20"),
        );
        let part = g.bars(
            "EURUSD",
            Timeframe::H1,
            day("2024-01-10"),
            day("2024-01-20"),
        );
        assert_eq!(&whole[whole.len() - part.len()..], &part[..]);
        assert_ne!(
            g.bars(
                "GBPUSD",
                Timeframe::H1,
                day("2024-01-10"),
                day("2024-01-11")
            ),
            part[..24]
        );
        assert_ne!(
            Generator { seed: 43 }.bars(
                "EURUSD",
                Timeframe::H1,
                day("2024-01-10"),
                day("2024-01-20")
            ),
            part
        );
    }

    #[test]
    fn timeframes_agree_because_they_aggregate_the_same_minutes() {
        let g = Generator { seed: 7 };
        let (from, to) = (day("2024-03-04"), day("2024-03-05"));
        let m15 = g.bars("BTC-USD", Timeframe::M15, from, to);
        let h1 = g.bars("BTC-USD", Timeframe::H1, from, to);
        assert_eq!((m15.len(), h1.len()), (96, 24));
        for (hour, quarter) in h1.iter().zip(m15.chunks(4)) {
            assert_eq!(hour.open, quarter[0].open);
            assert_eq!(hour.close, quarter[3].close);
            assert_eq!(
                hour.high,
                quarter.iter().map(|b| b.high).fold(f64::MIN, f64::max)
            );
            assert_eq!(
                hour.low,
                quarter.iter().map(|b| b.low).fold(f64::MAX, f64::min)
            );
        }
    }

    #[test]
    fn generated_bars_are_well_formed_and_follow_the_calendar() {
        let g = Generator { seed: 1 };
        let bars = g.bars("AAPL", Timeframe::H1, day("2024-01-01"), day("2024-02-01"));
        assert_eq!(bars.len(), 21 * 7, "21 sessions of 7 hourly bars");
        for pair in bars.windows(2) {
            assert!(pair[0].time < pair[1].time);
        }
        for b in &bars {
            assert!(b.low > 0.0 && b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close));
            assert!(b.volume > 0.0);
        }
        // Consecutive bars continue each other (no jumps inside a day).
        let btc = g.bars(
            "BTC-USD",
            Timeframe::H1,
            day("2024-01-01"),
            day("2024-01-03"),
        );
        for pair in btc.windows(2) {
            assert!((pair[0].close - pair[1].open).abs() < 1e-9 * pair[0].close);
        }
    }

    #[test]
    fn csv_bars_parse_in_three_time_formats_and_bad_lines_are_named() {
        let text = "timestamp,open,high,low,close,volume\n\
                    2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n\
                    2024-01-01 01:00:00,1.5,2,1,1.2,11\n\
                    1704074400,1.2,1.3,1.1,1.25,12\n";
        let bars = parse_csv(text).unwrap();
        assert_eq!(
            bars.iter().map(|b| b.time).collect::<Vec<_>>(),
            [1704067200, 1704070800, 1704074400]
        );
        assert!(parse_csv("time,o\n").unwrap_err().contains("line 1"));
        let bad = "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,x,10\n";
        assert_eq!(parse_csv(bad).unwrap_err(), "line 2: close is not a number");
        let inverted =
            "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,0.9,0.5,1,10\n";
        assert!(parse_csv(inverted).unwrap_err().contains("low/high"));
    }

    #[test]
    fn a_range_the_data_does_not_cover_is_insufficient() {
        let csv = |time: &str| {
            parse_csv(&format!(
                "timestamp,open,high,low,close,volume\n{time},1,1,1,1,1\n"
            ))
            .unwrap()
        };
        let bars = csv("2024-01-10T00:00:00Z");
        let (jan1, feb1) = (day("2024-01-01"), day("2024-02-01"));
        let err = covering("EURUSD", Timeframe::H1, bars.clone(), jan1, feb1).unwrap_err();
        assert_eq!(
            err,
            DataError::Insufficient {
                symbol: "EURUSD".into(),
                required_start: "2024-01-01T00:00:00Z".into(),
                available_start: Some("2024-01-10T00:00:00Z".into()),
            }
        );
        let from_then = covering("EURUSD", Timeframe::H1, bars, day("2024-01-10"), feb1);
        assert_eq!(from_then.unwrap().len(), 1);
        // A range starting on a Saturday is covered by data from Sunday's open.
        let sunday_open = csv("2024-01-07T22:00:00Z");
        let saturday = day("2024-01-06");
        assert!(covering("EURUSD", Timeframe::H1, sunday_open.clone(), saturday, feb1).is_ok());
        // NYSE: from New Year's Day, the first session is January 2.
        let jan2 = csv("2024-01-02T14:30:00Z");
        assert!(covering("AAPL", Timeframe::H1, jan2, jan1, feb1).is_ok());
    }

    #[test]
    fn csv_data_is_read_at_its_timeframe_or_aggregated_from_a_shorter_one() {
        let dir = std::env::temp_dir().join(format!("roomcast-engine-csv-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("EURUSD")).unwrap();
        // Four M15 bars of Monday 2024-01-08 00:00-01:00 UTC, then one more.
        let mut text = String::from("timestamp,open,high,low,close,volume\n");
        for (i, (o, h, l, c)) in [
            (1.0, 1.2, 0.9, 1.1),
            (1.1, 1.5, 1.0, 1.4),
            (1.4, 1.4, 0.8, 0.9),
            (0.9, 1.0, 0.85, 0.95),
            (0.95, 1.0, 0.9, 1.0),
        ]
        .into_iter()
        .enumerate()
        {
            text += &format!(
                "{},{o},{h},{l},{c},10\n",
                day("2024-01-08") + i as i64 * 900
            );
        }
        std::fs::write(dir.join("EURUSD").join("M15.csv"), text).unwrap();
        let source = Source::Csv(dir.clone());
        let (from, to) = (day("2024-01-08"), day("2024-01-09"));
        let h1 = source.bars("EURUSD", Timeframe::H1, from, to).unwrap();
        assert_eq!(
            h1[0],
            Bar {
                time: from,
                open: 1.0,
                high: 1.5,
                low: 0.8,
                close: 0.95,
                volume: 40.0
            }
        );
        assert_eq!(h1.len(), 2);
        assert_eq!(
            source
                .bars("EURUSD", Timeframe::M15, from, to)
                .unwrap()
                .len(),
            5
        );
        // No file at or below M5 divides it: insufficient, not a crash.
        assert!(matches!(
            source.bars("EURUSD", Timeframe::M5, from, to),
            Err(DataError::Insufficient { .. })
        ));
        assert!(matches!(
            source.bars("GBPUSD", Timeframe::H1, from, to),
            Err(DataError::Insufficient { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
        let generated = Source::Generated(Generator { seed: 1 });
        assert_eq!(
            generated
                .bars("EURUSD", Timeframe::H1, from, to)
                .unwrap()
                .len(),
            24
        );
    }

    #[test]
    fn nothing_is_generated_before_the_series_begins() {
        let g = Generator { seed: 3 };
        let straddle = g.bars(
            "BTC-USD",
            Timeframe::D1,
            day("1999-12-30"),
            day("2000-01-03"),
        );
        let inside = g.bars(
            "BTC-USD",
            Timeframe::D1,
            day("2000-01-01"),
            day("2000-01-03"),
        );
        assert_eq!(straddle, inside);
        assert_eq!(straddle.len(), 2);
    }
}
