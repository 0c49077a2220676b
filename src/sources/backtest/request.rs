//! What a run is asked to do, whichever seed's POST asked: the symbol, its
//! trading and higher timeframes, the range, the strategy, the account. The
//! seeds' handlers read their own bodies and build a [`RunRequest`] with
//! the checks here, so both POSTs refuse the same things the same way (a
//! [`RequestError`] names the field).

use chrono::{DateTime, NaiveDate, Utc};
use engine::Timeframe;
use engine::calendar::Calendar;
use engine::strategy::{self, HtfBias, Strategy};

use crate::catalog::normalize_ticker;

/// Which seed's POST started a run (status endpoints name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `POST /api/v1/backtest/run`.
    Seed002,
    /// `POST /api/backtesting/start`.
    Seed003,
}

impl Origin {
    /// `seed002` or `seed003`.
    pub fn label(self) -> &'static str {
        match self {
            Origin::Seed002 => "seed002",
            Origin::Seed003 => "seed003",
        }
    }
}

/// A field of a start request that cannot be run (422 naming it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field '{field}': {message}")]
pub struct RequestError {
    /// The body's field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// A [`RequestError`] naming `field`.
pub fn bad(field: &'static str, message: impl Into<String>) -> RequestError {
    RequestError {
        field,
        message: message.into(),
    }
}

/// A validated run: everything the driver needs, nothing left to check.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    /// The run's id (a room name's suffix: 1–128 of `[A-Za-z0-9_.:-]`).
    pub id: String,
    /// Who asked.
    pub origin: Origin,
    /// Seed 003's `name`, or seed 002's mode (for log lines).
    pub name: String,
    /// What seed 002's `backtest_start` echoes as `variant`: the mode, or
    /// the strategy id of a seed 003 run.
    pub variant: String,
    /// The catalogue id of the strategy.
    pub strategy: String,
    /// The normalised symbol.
    pub symbol: String,
    /// The trading timeframe, as the client spelled it (echoed).
    pub timeframe_label: String,
    /// The trading timeframe.
    pub timeframe: Timeframe,
    /// Larger timeframes giving context (seed 003's `timeframes` besides the
    /// smallest), largest last.
    pub higher: Vec<Timeframe>,
    /// First instant of the range (Unix seconds).
    pub from: i64,
    /// End of the range, exclusive.
    pub to: i64,
    /// Bars the range holds on the symbol's calendar.
    pub total_bars: usize,
    /// Starting balance.
    pub initial_balance: f64,
    /// Fraction of the balance risked per trade.
    pub risk_per_trade: f64,
    /// Whether the run publishes its events (`enable_ws_streaming`,
    /// `?stream=`); a silent run is still registered and has a result.
    pub streaming: bool,
}

impl RunRequest {
    /// The strategy instance for this run: the catalogue's, with seed 003's
    /// higher timeframes for the bias strategy when the request gave some.
    pub fn strategy(&self) -> Box<dyn Strategy + Send> {
        let bias = matches!(self.strategy.as_str(), "htf_bias" | "strategy1");
        if bias && !self.higher.is_empty() {
            return Box::new(HtfBias::new(self.higher.clone()));
        }
        strategy::by_id(&self.strategy).expect("the id was checked against the catalogue")
    }

    /// The quantity step of the symbol: 0.0001 for crypto, 1,000 units
    /// (0.01 lot) for FX, one share for equities.
    pub fn lot(&self) -> f64 {
        match Calendar::for_symbol(&self.symbol) {
            Calendar::Crypto => 0.0001,
            Calendar::Fx => 1_000.0,
            Calendar::Nyse => 1.0,
        }
    }

    /// `YYYY-MM-DD` of the range's first day.
    pub fn start_date(&self) -> String {
        date_of(self.from)
    }

    /// `YYYY-MM-DD` of the range's last day.
    pub fn end_date(&self) -> String {
        date_of(self.to - 1)
    }
}

/// `YYYY-MM-DD` of an instant.
pub fn date_of(time: i64) -> String {
    DateTime::<Utc>::from_timestamp(time, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// The catalogue's strategy ids, for error messages.
pub const STRATEGY_IDS: &str = "sma_crossover, breakout, htf_bias (alias strategy1), vanilla, spiced, vanilla_full, spiced_full";

/// Checks a strategy id against the catalogue.
pub fn check_strategy(field: &'static str, id: &str) -> Result<String, RequestError> {
    match strategy::by_id(id) {
        Some(_) => Ok(id.to_string()),
        None => Err(bad(
            field,
            format!(
                "unknown strategy '{}' (known: {STRATEGY_IDS})",
                id.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// A symbol by roomcast's ticker rules, normalised.
pub fn check_symbol(symbol: &str) -> Result<String, RequestError> {
    let symbol =
        normalize_ticker(symbol).map_err(|e| bad("symbol", format!("invalid symbol: {e}")))?;
    // The symbol names a directory of CSV data: never a path.
    if symbol.contains('/') || symbol.starts_with('.') {
        return Err(bad(
            "symbol",
            "invalid symbol: '/' and a leading '.' are not allowed here",
        ));
    }
    Ok(symbol)
}

/// A timeframe in either seed's notation (`H1`, `1H`, `15M`).
pub fn check_timeframe(field: &'static str, text: &str) -> Result<Timeframe, RequestError> {
    Timeframe::parse(text).ok_or_else(|| {
        bad(
            field,
            format!(
                "unknown timeframe '{}' (expected one of M1 M5 M15 M30 H1 H4 D1, or 1M 5M 15M 30M 1H 4H 1D)",
                text.chars().take(16).collect::<String>()
            ),
        )
    })
}

/// Reads `start_date`/`end_date` (a date, or RFC 3339; a date-only end
/// includes its whole day) into `[from, to)`: the start must come before
/// the end, and the end not after `now`.
pub fn check_range(start: &str, end: &str, now: i64) -> Result<(i64, i64), RequestError> {
    let from = parse_instant(start, false)
        .ok_or_else(|| bad("start_date", "expected YYYY-MM-DD or an RFC 3339 date-time"))?;
    let to = parse_instant(end, true)
        .ok_or_else(|| bad("end_date", "expected YYYY-MM-DD or an RFC 3339 date-time"))?;
    if from < EARLIEST {
        return Err(bad("start_date", "start_date must be 1970-01-01 or later"));
    }
    if from >= to {
        return Err(bad("end_date", "end_date must be after start_date"));
    }
    if to > now + 86_400 {
        return Err(bad("end_date", "end_date is in the future"));
    }
    Ok((from, to))
}

/// The earliest instant a range may start (the Unix epoch): bounds the work
/// of counting a range's bars before it is refused.
const EARLIEST: i64 = 0;

/// Checks the bars a range holds against the cap, and that it holds any.
pub fn check_bars(
    symbol: &str,
    timeframe: Timeframe,
    from: i64,
    to: i64,
    max_bars: usize,
) -> Result<usize, RequestError> {
    // Every calendar is open at least a sixth of the time (NYSE: 32.5 of 168
    // hours a week), so a range this long holds more bars than the cap
    // whatever its calendar: refused without counting.
    let slots = ((to - from) / timeframe.seconds()).max(0) as usize;
    if slots / 6 > max_bars {
        return Err(bad(
            "end_date",
            format!(
                "the range holds more than {max_bars} bars of {} (ROOMCAST_BACKTEST_MAX_BARS); narrow it or use a longer timeframe",
                timeframe.label()
            ),
        ));
    }
    let bars = Calendar::for_symbol(symbol).bar_count(timeframe, from, to);
    if bars > max_bars {
        return Err(bad(
            "end_date",
            format!(
                "the range holds {bars} bars of {}, more than ROOMCAST_BACKTEST_MAX_BARS ({max_bars}); narrow it or use a longer timeframe",
                timeframe.label()
            ),
        ));
    }
    if bars == 0 {
        return Err(bad(
            "end_date",
            format!("the market of {symbol} is closed throughout the range"),
        ));
    }
    Ok(bars)
}

/// A date (`YYYY-MM-DD`; its end when `end_of_day`) or an RFC 3339 instant.
fn parse_instant(text: &str, end_of_day: bool) -> Option<i64> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end_of_day { date.succ_opt()? } else { date };
        return Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.timestamp())
}

/// Checks a starting balance (a positive, finite amount).
pub fn check_balance(field: &'static str, value: f64) -> Result<f64, RequestError> {
    if value.is_finite() && value > 0.0 && value <= 1e12 {
        Ok(value)
    } else {
        Err(bad(field, "must be a positive amount, at most 1e12"))
    }
}

/// Checks a fraction risked per trade, in (0, 0.1].
pub fn check_risk(value: f64) -> Result<f64, RequestError> {
    if value.is_finite() && value > 0.0 && value <= 0.1 {
        Ok(value)
    } else {
        Err(bad("risk_per_trade", "must be a fraction in (0, 0.1]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600; // 2026-01-01

    #[test]
    fn a_date_only_end_includes_its_whole_day_and_order_is_checked() {
        let (from, to) = check_range("2024-01-01", "2024-01-31", NOW).unwrap();
        assert_eq!(to - from, 31 * 86_400);
        let (from, to) =
            check_range("2024-01-01T12:00:00Z", "2024-01-01T13:00:00+00:00", NOW).unwrap();
        assert_eq!(to - from, 3_600);
        assert_eq!(
            check_range("2024-02-01", "2024-01-01", NOW)
                .unwrap_err()
                .field,
            "end_date"
        );
        assert_eq!(
            check_range("2024-13-01", "2024-12-01", NOW)
                .unwrap_err()
                .field,
            "start_date"
        );
        assert_eq!(
            check_range("2024-01-01", "soon", NOW).unwrap_err().field,
            "end_date"
        );
        assert_eq!(
            check_range("2024-01-01", "2027-01-01", NOW)
                .unwrap_err()
                .field,
            "end_date"
        );
    }

    #[test]
    fn too_many_bars_or_none_name_the_end_date() {
        let (from, to) = check_range("2024-01-01", "2024-01-31", NOW).unwrap();
        assert_eq!(
            check_bars("BTC-USD", Timeframe::M15, from, to, 10_000),
            Ok(2_976)
        );
        let e = check_bars("BTC-USD", Timeframe::M1, from, to, 10_000).unwrap_err();
        assert!(e.message.contains("44640 bars"), "{e}");
        // A Saturday on the NYSE.
        let (from, to) = check_range("2024-01-06", "2024-01-06", NOW).unwrap();
        assert!(check_bars("AAPL", Timeframe::H1, from, to, 10_000).is_err());
        // Absurd ranges are refused before any counting.
        assert_eq!(
            check_range("-262000-01-01", "2024-01-01", NOW)
                .unwrap_err()
                .field,
            "start_date"
        );
        let (from, to) = check_range("1970-01-01", "2024-01-01", NOW).unwrap();
        assert!(check_bars("AAPL", Timeframe::M1, from, to, 500_000).is_err());
        assert!(check_symbol("../../etc").is_err());
        assert!(check_symbol("BRK.B").is_ok());
    }

    #[test]
    fn strategies_and_timeframes_are_checked_against_their_catalogues() {
        assert!(check_strategy("strategy_ids", "strategy1").is_ok());
        let e = check_strategy("strategy_ids", "martingale").unwrap_err();
        assert!(e.message.contains("sma_crossover"), "{e}");
        assert_eq!(check_timeframe("timeframe", "H1"), Ok(Timeframe::H1));
        assert_eq!(check_timeframe("timeframe", "1M"), Ok(Timeframe::M1));
        assert!(check_timeframe("timeframe", "1W").is_err());
        assert!(check_risk(0.2).is_err() && check_risk(0.02).is_ok());
        assert!(check_balance("initial_balance", f64::NAN).is_err());
    }
}
