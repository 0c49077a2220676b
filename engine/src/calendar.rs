//! Trading calendars: which bars a symbol has. `*-USD` is crypto, trading
//! around the clock (roomcast's convention for its simulator's symbols); a
//! six-letter alphabetic pair such as `EURUSD` is FX, trading from Sunday
//! 22:00 to Friday 22:00 UTC; anything else is an equity on the NYSE's
//! regular sessions ([`crate::nyse`]: holidays, early closes, daylight
//! saving time). A bar exists when the market is open at some moment of it.

use chrono::{DateTime, Utc};
use chrono_tz::America::New_York;

use crate::bar::Timeframe;
use crate::nyse;

/// Seconds in a (non-leap) year, for annualising.
const YEAR: f64 = 365.0 * 86_400.0;

/// Seconds in a day and in a week.
const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// FX opens and closes, as seconds after Sunday 00:00 UTC.
const FX_OPEN: i64 = 22 * 3_600;
const FX_CLOSE: i64 = 5 * DAY + 22 * 3_600;

/// When a symbol trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// Every second of every day.
    Crypto,
    /// Sunday 22:00 to Friday 22:00 UTC.
    Fx,
    /// NYSE regular sessions.
    Nyse,
}

impl Calendar {
    /// The calendar of `symbol` (see the module docs).
    pub fn for_symbol(symbol: &str) -> Self {
        if symbol.ends_with("-USD") {
            Calendar::Crypto
        } else if symbol.len() == 6 && symbol.bytes().all(|b| b.is_ascii_alphabetic()) {
            Calendar::Fx
        } else {
            Calendar::Nyse
        }
    }

    /// Whether the market is open at `time` (Unix seconds).
    pub fn is_open(self, time: i64) -> bool {
        !self.open_spans(time, time + 1).is_empty()
    }

    /// Whether the bar of `timeframe` opening at `start` exists: the market
    /// is open at some moment of it.
    pub fn has_bar(self, start: i64, timeframe: Timeframe) -> bool {
        !self
            .open_spans(start, start + timeframe.seconds())
            .is_empty()
    }

    /// The stretches of `[start, end)` during which the market is open, in
    /// order, as `(from, to)` Unix seconds.
    pub fn open_spans(self, start: i64, end: i64) -> Vec<(i64, i64)> {
        let mut spans = Vec::new();
        let mut add = |open: i64, close: i64| {
            let (from, to) = (open.max(start), close.min(end));
            if from < to {
                spans.push((from, to));
            }
        };
        match self {
            Calendar::Crypto => add(start, end),
            Calendar::Fx => {
                // Weeks start on Sunday 00:00 UTC (the Unix epoch was a Thursday).
                let sunday = start - (start + 4 * DAY).rem_euclid(WEEK);
                let mut week = sunday;
                while week < end {
                    add(week + FX_OPEN, week + FX_CLOSE);
                    week += WEEK;
                }
            }
            Calendar::Nyse => {
                let (Some(from), Some(to)) = (
                    DateTime::<Utc>::from_timestamp(start, 0),
                    DateTime::<Utc>::from_timestamp(end, 0),
                ) else {
                    return spans;
                };
                let mut date = from.with_timezone(&New_York).date_naive();
                let last = to.with_timezone(&New_York).date_naive();
                while date <= last {
                    if let Some((open, close)) = nyse::session_on(date) {
                        add(open.timestamp(), close.timestamp());
                    }
                    let Some(next) = date.succ_opt() else {
                        break;
                    };
                    date = next;
                }
            }
        }
        spans
    }

    /// How many bars of `timeframe` open in `[start, end)`: the bars a run
    /// over that range has on full data (known before any bar is read).
    pub fn bar_count(self, timeframe: Timeframe, start: i64, end: i64) -> usize {
        let tf = timeframe.seconds();
        let mut count = 0;
        // The last bar counted: a bar spanning two open spans counts once.
        let mut last: Option<i64> = None;
        // The first bar opening at or after `start`.
        let lowest = timeframe.floor(start + tf - 1);
        for (open, close) in self.open_spans(start, end) {
            let mut first = timeframe.floor(open).max(lowest);
            if last == Some(first) {
                first += tf;
            }
            let end_bar = timeframe.floor(close - 1);
            if end_bar >= first {
                count += ((end_bar - first) / tf + 1) as usize;
                last = Some(end_bar);
            }
        }
        count
    }

    /// Bars of `timeframe` in a year of this calendar, for annualising
    /// (crypto 8,760 hourly bars; FX 6,240; NYSE 252 sessions of 6.5 hours).
    pub fn bars_per_year(self, timeframe: Timeframe) -> f64 {
        let tf = timeframe.seconds() as f64;
        match self {
            Calendar::Crypto => YEAR / tf,
            Calendar::Fx => 52.0 * 5.0 * 86_400.0 / tf,
            Calendar::Nyse => 252.0 * (6.5 * 3_600.0 / tf).ceil(),
        }
    }
}

/// `time` as a UTC date-time, for messages (`2024-01-15T08:00:00Z`).
pub fn rfc3339(time: i64) -> String {
    DateTime::<Utc>::from_timestamp(time, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Midnight UTC of `date` (`YYYY-MM-DD`) in Unix seconds.
pub fn parse_date(date: &str) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars_in(calendar: Calendar, tf: Timeframe, from: &str, to: &str) -> usize {
        let (from, to) = (parse_date(from).unwrap(), parse_date(to).unwrap());
        (from..to)
            .step_by(tf.seconds() as usize)
            .filter(|&t| calendar.has_bar(t, tf))
            .count()
    }

    #[test]
    fn bar_count_agrees_with_the_bars_the_calendar_has() {
        for calendar in [Calendar::Crypto, Calendar::Fx, Calendar::Nyse] {
            for tf in Timeframe::ALL {
                for (from, to) in [
                    ("2023-12-29", "2024-01-09"),
                    ("2024-03-08", "2024-03-12"),
                    ("2024-07-03", "2024-07-06"),
                ] {
                    let (a, b) = (parse_date(from).unwrap(), parse_date(to).unwrap());
                    assert_eq!(
                        calendar.bar_count(tf, a, b),
                        bars_in(calendar, tf, from, to),
                        "{calendar:?} {tf:?} {from}..{to}"
                    );
                }
            }
        }
        // Unaligned bounds: only bars opening inside count.
        let start = parse_date("2024-01-01").unwrap() + 90;
        assert_eq!(
            Calendar::Crypto.bar_count(Timeframe::M1, start, start + 600),
            10
        );
    }

    #[test]
    fn symbols_pick_their_calendar() {
        assert_eq!(Calendar::for_symbol("BTC-USD"), Calendar::Crypto);
        assert_eq!(Calendar::for_symbol("EURUSD"), Calendar::Fx);
        assert_eq!(Calendar::for_symbol("AAPL"), Calendar::Nyse);
        assert_eq!(Calendar::for_symbol("BRK.B"), Calendar::Nyse);
    }

    #[test]
    fn a_year_of_fx_hours_is_about_6240_bars_and_crypto_never_closes() {
        // 2023: 52 weeks of 120 hours, plus the partial first and last weeks.
        let fx = bars_in(Calendar::Fx, Timeframe::H1, "2023-01-01", "2024-01-01");
        assert!((6_200..=6_280).contains(&fx), "{fx}");
        let btc = bars_in(Calendar::Crypto, Timeframe::M15, "2024-01-01", "2024-02-01");
        assert_eq!(btc, 31 * 96, "seed 003's example: 2,976 bars");
    }

    #[test]
    fn fx_opens_sunday_22_and_closes_friday_22_utc() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        assert!(!Calendar::Fx.is_open(at("2024-01-07T21:59:59Z")));
        assert!(Calendar::Fx.is_open(at("2024-01-07T22:00:00Z")));
        assert!(Calendar::Fx.is_open(at("2024-01-12T21:59:59Z")));
        assert!(!Calendar::Fx.is_open(at("2024-01-12T22:00:00Z")));
        assert!(!Calendar::Fx.is_open(at("2024-01-13T12:00:00Z")));
        // A daily bar on Sunday holds the two hours after the open.
        assert!(Calendar::Fx.has_bar(at("2024-01-07T00:00:00Z"), Timeframe::D1));
        assert!(!Calendar::Fx.has_bar(at("2024-01-06T00:00:00Z"), Timeframe::D1));
        assert_eq!(
            Calendar::Fx.open_spans(at("2024-01-05T21:00:00Z"), at("2024-01-08T00:00:00Z")),
            [
                (at("2024-01-05T21:00:00Z"), at("2024-01-05T22:00:00Z")),
                (at("2024-01-07T22:00:00Z"), at("2024-01-08T00:00:00Z")),
            ]
        );
    }

    #[test]
    fn nyse_bars_follow_its_sessions_holidays_included() {
        // January 2024: 21 sessions (New Year's Day and MLK Day closed).
        assert_eq!(
            bars_in(Calendar::Nyse, Timeframe::D1, "2024-01-01", "2024-02-01"),
            21
        );
        // A session (09:30-16:00 ET) touches 7 hourly bars.
        assert_eq!(
            bars_in(Calendar::Nyse, Timeframe::H1, "2024-01-02", "2024-01-03"),
            7
        );
    }
}
