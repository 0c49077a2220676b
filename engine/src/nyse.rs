//! US equity (NYSE/Nasdaq) regular-session calendar: when roomcast's market
//! simulator lets its tickers move (and publishes `market_status`), and which
//! bars an equity backtest has ([`crate::Calendar::Nyse`]).
//!
//! It answers "is the market open at this instant, and when does that change?" from rules
//! alone (no holiday table to maintain): 09:30–16:00 America/New_York, Monday–Friday,
//! minus NYSE full holidays, with 13:00 early closes. Daylight-saving time is handled by
//! `chrono-tz`, so the UTC instants returned are correct on both sides of a DST switch.
//!
//! Holidays (computed for any year, then moved to the observed day):
//! New Year's Day, Martin Luther King Jr. Day (3rd Monday of January), Washington's
//! Birthday (3rd Monday of February), Good Friday (Easter Sunday − 2 days, Easter via the
//! anonymous Gregorian algorithm), Memorial Day (last Monday of May), Juneteenth (June 19,
//! from 2022 on), Independence Day (July 4), Labor Day (1st Monday of September),
//! Thanksgiving (4th Thursday of November) and Christmas Day (December 25).
//! A fixed-date holiday on a Saturday is observed the Friday before and on a Sunday the
//! Monday after, except that New Year's Day on a Saturday is not observed at all (NYSE
//! Rule 7.2: the preceding December 31 stays a full trading day).
//!
//! Early closes (13:00 Eastern) on trading days only: the day after Thanksgiving,
//! December 24, and July 3 when July 4 falls on a weekday (Tuesday–Friday in practice,
//! the only cases where July 3 is itself a weekday and not an observed holiday).
//!
//! Not modelled: one-off closures (national days of mourning, weather/emergency closures)
//! and ad-hoc early closes the exchange announces outside these rules.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::America::New_York;

/// Whether the US equity regular session is open at an instant, and when it next changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketSession {
    /// True while `now` is inside [open, close) of a regular session; this is what the
    /// feed checks before moving prices.
    pub is_open: bool,
    /// Set only when closed: the start of the next regular session (UTC).
    pub next_open: Option<DateTime<Utc>>,
    /// Set only when open: the end of the current session (UTC), 13:00 ET on early-close days.
    pub next_close: Option<DateTime<Utc>>,
}

/// Start of the regular session, Eastern local time.
pub const REGULAR_OPEN: NaiveTime = eastern_time(9, 30);
/// End of a full regular session, Eastern local time.
pub const REGULAR_CLOSE: NaiveTime = eastern_time(16, 0);
/// End of the session on early-close days, Eastern local time.
pub const EARLY_CLOSE: NaiveTime = eastern_time(13, 0);

/// Longest run of calendar days searched for the next session. The real worst case is a
/// weekend next to a holiday (4 days), so 15 only guards against an endless loop.
const MAX_DAYS_TO_NEXT_SESSION: u32 = 15;

/// Builds a wall-clock time at compile time; an out-of-range literal fails the build
/// (const evaluation panics), so this can never panic at run time.
const fn eastern_time(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(time) => time,
        None => panic!("invalid session time literal"),
    }
}

/// Open/closed state at `now`, with the next open (when closed) or close (when open).
///
/// `next_open` is `None` only if no trading day exists within
/// `MAX_DAYS_TO_NEXT_SESSION` days, which the holiday rules never produce (or if the date
/// arithmetic runs off the end of chrono's supported range).
pub fn session_at(now: DateTime<Utc>) -> MarketSession {
    let local = now.with_timezone(&New_York);
    let today = local.date_naive();
    let time_of_day = local.time();

    if let Some(close) = close_time_on(today) {
        if time_of_day >= REGULAR_OPEN && time_of_day < close {
            return MarketSession {
                is_open: true,
                next_open: None,
                next_close: Some(eastern_to_utc(today, close)),
            };
        }
        if time_of_day < REGULAR_OPEN {
            return closed_until(Some(eastern_to_utc(today, REGULAR_OPEN)));
        }
    }

    let mut candidate = today;
    for _ in 0..MAX_DAYS_TO_NEXT_SESSION {
        let Some(next_day) = candidate.succ_opt() else {
            break;
        };
        candidate = next_day;
        if is_trading_day(candidate) {
            return closed_until(Some(eastern_to_utc(candidate, REGULAR_OPEN)));
        }
    }
    closed_until(None)
}

/// True on weekdays that are not NYSE full holidays (observed dates).
pub fn is_trading_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_nyse_holiday(date)
}

/// Eastern local close time on `date`: `None` if not a trading day, 13:00 on early-close
/// days, otherwise 16:00.
pub fn close_time_on(date: NaiveDate) -> Option<NaiveTime> {
    if !is_trading_day(date) {
        return None;
    }
    if is_early_close(date) {
        Some(EARLY_CLOSE)
    } else {
        Some(REGULAR_CLOSE)
    }
}

/// True if `date` is the observed date of an NYSE full holiday (see module docs).
pub fn is_nyse_holiday(date: NaiveDate) -> bool {
    let year = date.year();
    let fixed_date_holidays = [
        new_years_day_observed(year),
        juneteenth_observed(year),
        fixed_date_observed(year, 7, 4),
        fixed_date_observed(year, 12, 25),
    ];
    let floating_holidays = [
        NaiveDate::from_weekday_of_month_opt(year, 1, Weekday::Mon, 3),
        NaiveDate::from_weekday_of_month_opt(year, 2, Weekday::Mon, 3),
        easter_sunday(year).and_then(|easter| easter.checked_sub_signed(Duration::days(2))),
        last_monday_of_may(year),
        NaiveDate::from_weekday_of_month_opt(year, 9, Weekday::Mon, 1),
        thanksgiving(year),
    ];
    fixed_date_holidays
        .iter()
        .chain(floating_holidays.iter())
        .any(|holiday| *holiday == Some(date))
}

/// True if `date` is a trading day that closes at 13:00 Eastern (see module docs).
pub fn is_early_close(date: NaiveDate) -> bool {
    if !is_trading_day(date) {
        return false;
    }
    let year = date.year();
    let day_after_thanksgiving = thanksgiving(year).and_then(|day| day.succ_opt());
    let christmas_eve = NaiveDate::from_ymd_opt(year, 12, 24);
    let day_before_independence_day = NaiveDate::from_ymd_opt(year, 7, 4)
        .filter(|july_4| !matches!(july_4.weekday(), Weekday::Sat | Weekday::Sun))
        .and_then(|july_4| july_4.pred_opt());
    [
        day_after_thanksgiving,
        christmas_eve,
        day_before_independence_day,
    ]
    .contains(&Some(date))
}

/// Easter Sunday (Gregorian) via the anonymous Gregorian (Meeus/Jones/Butcher) algorithm.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    // month is 3 or 4 and day 1..=31 by construction, so the casts cannot truncate.
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

fn closed_until(next_open: Option<DateTime<Utc>>) -> MarketSession {
    MarketSession {
        is_open: false,
        next_open,
        next_close: None,
    }
}

/// Converts an Eastern wall-clock time to UTC. New York's DST switches happen at 02:00
/// local, so the session times used here are never skipped or repeated; the gap/overlap
/// arms exist only to keep the function total without `unwrap()`.
fn eastern_to_utc(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let wall_clock = NaiveDateTime::new(date, time);
    match New_York.from_local_datetime(&wall_clock) {
        chrono::LocalResult::Single(instant) => instant.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        // Wall-clock time skipped by a spring-forward: read it with the pre-jump (EST)
        // offset, i.e. the instant the clocks jumped over it.
        chrono::LocalResult::None => Utc.from_utc_datetime(&(wall_clock + Duration::hours(5))),
    }
}

/// The regular session of `date` as UTC instants `[open, close)`, or `None`
/// when it is not a trading day.
pub fn session_on(date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let close = close_time_on(date)?;
    Some((
        eastern_to_utc(date, REGULAR_OPEN),
        eastern_to_utc(date, close),
    ))
}

/// Saturday → preceding Friday, Sunday → following Monday, weekday unchanged.
fn observed(date: NaiveDate) -> Option<NaiveDate> {
    match date.weekday() {
        Weekday::Sat => date.pred_opt(),
        Weekday::Sun => date.succ_opt(),
        _ => Some(date),
    }
}

fn fixed_date_observed(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day).and_then(observed)
}

/// NYSE exception: a Saturday New Year's Day is not moved back to December 31.
fn new_years_day_observed(year: i32) -> Option<NaiveDate> {
    let new_years_day = NaiveDate::from_ymd_opt(year, 1, 1)?;
    match new_years_day.weekday() {
        Weekday::Sat => None,
        _ => observed(new_years_day),
    }
}

/// Juneteenth became an NYSE holiday in 2022.
fn juneteenth_observed(year: i32) -> Option<NaiveDate> {
    if year < 2022 {
        return None;
    }
    fixed_date_observed(year, 6, 19)
}

fn last_monday_of_may(year: i32) -> Option<NaiveDate> {
    let may_31 = NaiveDate::from_ymd_opt(year, 5, 31)?;
    let days_since_monday = i64::from(may_31.weekday().num_days_from_monday());
    may_31.checked_sub_signed(Duration::days(days_since_monday))
}

fn thanksgiving(year: i32) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Thu, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
            .unwrap()
    }

    fn eastern(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        New_York
            .with_ymd_and_hms(year, month, day, hour, minute, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn easter_matches_known_dates() {
        let known = [
            (1818, 3, 22),
            (1943, 4, 25),
            (2000, 4, 23),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ];
        for (year, month, day) in known {
            assert_eq!(easter_sunday(year), Some(date(year, month, day)), "{year}");
        }
    }

    #[test]
    fn good_friday_2026_is_april_3_and_closed() {
        assert!(is_nyse_holiday(date(2026, 4, 3)));
        assert!(!is_trading_day(date(2026, 4, 3)));
        assert!(is_trading_day(date(2026, 4, 2)));
        assert!(is_trading_day(date(2026, 4, 6)));
    }

    #[test]
    fn thanksgiving_2026_is_closed() {
        assert!(!is_trading_day(date(2026, 11, 26)));
        assert_eq!(close_time_on(date(2026, 11, 26)), None);
        let session = session_at(eastern(2026, 11, 26, 12, 0));
        assert!(!session.is_open);
        assert_eq!(session.next_open, Some(eastern(2026, 11, 27, 9, 30)));
        assert_eq!(session.next_close, None);
    }

    #[test]
    fn friday_after_thanksgiving_closes_at_13_00_eastern() {
        assert_eq!(close_time_on(date(2026, 11, 27)), Some(EARLY_CLOSE));
        let session = session_at(eastern(2026, 11, 27, 10, 0));
        assert!(session.is_open);
        assert_eq!(session.next_close, Some(utc(2026, 11, 27, 18, 0)));
        let after_early_close = session_at(eastern(2026, 11, 27, 13, 0));
        assert!(!after_early_close.is_open);
        assert_eq!(
            after_early_close.next_open,
            Some(eastern(2026, 11, 30, 9, 30))
        );
    }

    #[test]
    fn full_nyse_holiday_list_for_2026_matches_exchange_calendar() {
        let holidays_2026 = [
            date(2026, 1, 1),
            date(2026, 1, 19),
            date(2026, 2, 16),
            date(2026, 4, 3),
            date(2026, 5, 25),
            date(2026, 6, 19),
            date(2026, 7, 3),
            date(2026, 9, 7),
            date(2026, 11, 26),
            date(2026, 12, 25),
        ];
        let mut day = date(2026, 1, 1);
        let mut found = Vec::new();
        while day.year() == 2026 {
            if is_nyse_holiday(day) {
                found.push(day);
            }
            day = day.succ_opt().unwrap();
        }
        assert_eq!(found, holidays_2026);
    }

    #[test]
    fn full_nyse_holiday_list_for_2027_matches_exchange_calendar() {
        let holidays_2027 = [
            date(2027, 1, 1),
            date(2027, 1, 18),
            date(2027, 2, 15),
            date(2027, 3, 26),
            date(2027, 5, 31),
            date(2027, 6, 18),
            date(2027, 7, 5),
            date(2027, 9, 6),
            date(2027, 11, 25),
            date(2027, 12, 24),
        ];
        let mut day = date(2027, 1, 1);
        let mut found = Vec::new();
        while day.year() == 2027 {
            if is_nyse_holiday(day) {
                found.push(day);
            }
            day = day.succ_opt().unwrap();
        }
        assert_eq!(found, holidays_2027);
    }

    #[test]
    fn july_3_2026_is_observed_independence_day_because_july_4_is_saturday() {
        assert!(!is_trading_day(date(2026, 7, 3)));
        assert!(!is_early_close(date(2026, 7, 2)));
        assert_eq!(close_time_on(date(2026, 7, 2)), Some(REGULAR_CLOSE));
    }

    #[test]
    fn december_31_2027_trades_because_saturday_new_year_is_not_observed() {
        assert_eq!(date(2028, 1, 1).weekday(), Weekday::Sat);
        assert!(is_trading_day(date(2027, 12, 31)));
        assert_eq!(close_time_on(date(2027, 12, 31)), Some(REGULAR_CLOSE));
        assert!(is_trading_day(date(2021, 12, 31)));
    }

    #[test]
    fn sunday_new_year_is_observed_the_following_monday() {
        assert!(!is_trading_day(date(2023, 1, 2)));
    }

    #[test]
    fn juneteenth_is_a_holiday_only_from_2022() {
        assert!(is_trading_day(date(2021, 6, 18)));
        assert!(!is_trading_day(date(2022, 6, 20)));
        assert!(!is_trading_day(date(2026, 6, 19)));
    }

    #[test]
    fn saturday_christmas_is_observed_on_friday_december_24() {
        assert!(!is_trading_day(date(2027, 12, 24)));
        assert!(!is_early_close(date(2027, 12, 24)));
    }

    #[test]
    fn early_closes_follow_the_documented_rules() {
        assert_eq!(close_time_on(date(2026, 12, 24)), Some(EARLY_CLOSE));
        assert_eq!(close_time_on(date(2025, 7, 3)), Some(EARLY_CLOSE));
        assert_eq!(close_time_on(date(2024, 7, 3)), Some(EARLY_CLOSE));
        assert_eq!(close_time_on(date(2023, 7, 3)), Some(EARLY_CLOSE));
        assert_eq!(close_time_on(date(2024, 11, 29)), Some(EARLY_CLOSE));
        assert_eq!(close_time_on(date(2024, 12, 24)), Some(EARLY_CLOSE));
        assert_eq!(close_time_on(date(2026, 12, 23)), Some(REGULAR_CLOSE));
    }

    #[test]
    fn weekends_are_not_trading_days() {
        assert!(!is_trading_day(date(2026, 3, 7)));
        assert!(!is_trading_day(date(2026, 3, 8)));
        assert_eq!(close_time_on(date(2026, 3, 7)), None);
    }

    #[test]
    fn open_shifts_by_an_hour_in_utc_across_the_march_dst_switch() {
        let friday_before_dst = session_at(utc(2026, 3, 6, 14, 0));
        assert_eq!(friday_before_dst.next_open, Some(utc(2026, 3, 6, 14, 30)));
        let monday_after_dst = session_at(utc(2026, 3, 9, 13, 0));
        assert_eq!(monday_after_dst.next_open, Some(utc(2026, 3, 9, 13, 30)));
        assert!(session_at(utc(2026, 3, 9, 13, 30)).is_open);
        assert!(!session_at(utc(2026, 3, 6, 14, 29)).is_open);
    }

    #[test]
    fn mid_session_is_open_with_next_close_and_no_next_open() {
        let session = session_at(eastern(2026, 5, 13, 11, 15));
        assert_eq!(
            session,
            MarketSession {
                is_open: true,
                next_open: None,
                next_close: Some(utc(2026, 5, 13, 20, 0)),
            }
        );
    }

    #[test]
    fn session_interval_includes_open_and_excludes_close() {
        assert!(session_at(eastern(2026, 5, 13, 9, 30)).is_open);
        assert!(session_at(eastern(2026, 5, 13, 15, 59)).is_open);
        let at_close = session_at(eastern(2026, 5, 13, 16, 0));
        assert!(!at_close.is_open);
        assert_eq!(at_close.next_close, None);
        assert_eq!(at_close.next_open, Some(eastern(2026, 5, 14, 9, 30)));
    }

    #[test]
    fn before_open_on_a_trading_day_points_to_todays_open() {
        let session = session_at(eastern(2026, 5, 13, 4, 0));
        assert!(!session.is_open);
        assert_eq!(session.next_open, Some(eastern(2026, 5, 13, 9, 30)));
    }

    #[test]
    fn friday_after_close_points_to_monday_open() {
        let session = session_at(eastern(2026, 5, 15, 17, 0));
        assert!(!session.is_open);
        assert_eq!(session.next_open, Some(eastern(2026, 5, 18, 9, 30)));
        let saturday = session_at(eastern(2026, 5, 16, 12, 0));
        assert_eq!(saturday.next_open, Some(eastern(2026, 5, 18, 9, 30)));
    }

    #[test]
    fn friday_after_close_skips_monday_holiday_to_tuesday_open() {
        let before_mlk_day = session_at(eastern(2026, 1, 16, 16, 30));
        assert_eq!(before_mlk_day.next_open, Some(eastern(2026, 1, 20, 9, 30)));
        let before_memorial_day = session_at(eastern(2026, 5, 22, 20, 0));
        assert_eq!(
            before_memorial_day.next_open,
            Some(eastern(2026, 5, 26, 9, 30))
        );
    }

    #[test]
    fn thursday_before_good_friday_points_to_monday_open() {
        let session = session_at(eastern(2026, 4, 2, 16, 0));
        assert_eq!(session.next_open, Some(eastern(2026, 4, 6, 9, 30)));
    }

    #[test]
    fn every_day_for_decades_has_a_next_open_within_the_search_bound() {
        let mut instant = utc(1990, 1, 1, 22, 0);
        let end = utc(2060, 1, 1, 0, 0);
        while instant < end {
            let session = session_at(instant);
            assert_eq!(session.is_open, session.next_close.is_some());
            assert_eq!(!session.is_open, session.next_open.is_some(), "{instant}");
            instant += Duration::hours(13);
        }
    }
}
