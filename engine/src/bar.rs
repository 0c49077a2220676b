//! Bars and timeframes: what every other part of the engine reads.

use std::fmt;

/// One OHLCV bar. `time` is when it opens, in Unix seconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Open time, Unix seconds, UTC: bars are keyed and ordered by it.
    pub time: i64,
    /// First trade: where decisions taken on the previous close fill.
    pub open: f64,
    /// Highest trade: reaches targets of longs, stops of shorts.
    pub high: f64,
    /// Lowest trade: reaches stops of longs, targets of shorts.
    pub low: f64,
    /// Last trade: what strategies decide on, and equity is marked at.
    pub close: f64,
    /// Traded quantity, for producers' candles (no rule here reads it).
    pub volume: f64,
}

/// A bar length. Seeds spell them `H1` (002) or `1H`/`15M` (003); both parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timeframe {
    /// One minute: the generated series' own step.
    M1,
    M5,
    M15,
    M30,
    H1,
    H4,
    D1,
}

impl Timeframe {
    /// Every timeframe, shortest first.
    pub const ALL: [Timeframe; 7] = [
        Timeframe::M1,
        Timeframe::M5,
        Timeframe::M15,
        Timeframe::M30,
        Timeframe::H1,
        Timeframe::H4,
        Timeframe::D1,
    ];

    /// Its length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Timeframe::M1 => 60,
            Timeframe::M5 => 300,
            Timeframe::M15 => 900,
            Timeframe::M30 => 1_800,
            Timeframe::H1 => 3_600,
            Timeframe::H4 => 14_400,
            Timeframe::D1 => 86_400,
        }
    }

    /// Parses `H1`, `1H`, `m15`, `15M`, `D1`, `1D`, …
    pub fn parse(text: &str) -> Option<Self> {
        let upper = text.trim().to_ascii_uppercase();
        if !upper.is_ascii() {
            return None;
        }
        let (unit, count) = match upper.as_bytes().first()? {
            b'0'..=b'9' => {
                let unit = upper.chars().last()?;
                (unit, &upper[..upper.len() - 1])
            }
            _ => (upper.chars().next()?, &upper[1..]),
        };
        Timeframe::ALL
            .into_iter()
            .find(|tf| tf.label().starts_with(unit) && &tf.label()[1..] == count)
    }

    /// Seed 002's spelling: `H1`, `M15`, `D1`.
    pub fn label(self) -> &'static str {
        match self {
            Timeframe::M1 => "M1",
            Timeframe::M5 => "M5",
            Timeframe::M15 => "M15",
            Timeframe::M30 => "M30",
            Timeframe::H1 => "H1",
            Timeframe::H4 => "H4",
            Timeframe::D1 => "D1",
        }
    }

    /// The start of the bar of this timeframe that contains `time`.
    pub fn floor(self, time: i64) -> i64 {
        time - time.rem_euclid(self.seconds())
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_seeds_spellings_parse_and_nothing_else() {
        assert_eq!(Timeframe::parse("H1"), Some(Timeframe::H1));
        assert_eq!(Timeframe::parse("1H"), Some(Timeframe::H1));
        assert_eq!(Timeframe::parse("15m"), Some(Timeframe::M15));
        assert_eq!(Timeframe::parse("M15"), Some(Timeframe::M15));
        assert_eq!(Timeframe::parse("4H"), Some(Timeframe::H4));
        assert_eq!(Timeframe::parse("1D"), Some(Timeframe::D1));
        for bad in ["", "H", "1", "H2", "X1", "1HH", "M", "60M", "1é", "é", "Ĥ1"] {
            assert_eq!(Timeframe::parse(bad), None, "{bad}");
        }
        for tf in Timeframe::ALL {
            assert_eq!(Timeframe::parse(tf.label()), Some(tf));
        }
    }

    #[test]
    fn floor_finds_the_containing_bar() {
        assert_eq!(Timeframe::H1.floor(7_199), 3_600);
        assert_eq!(Timeframe::H1.floor(-1), -3_600);
        assert_eq!(Timeframe::D1.floor(86_400 + 5), 86_400);
    }
}
