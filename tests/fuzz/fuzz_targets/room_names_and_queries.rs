//! Fuzzes the parsers of client-named things: room names
//! (`roomcast::native::parse_room`), ticker symbols
//! (`roomcast::catalog::normalize_ticker`), seed 001 user ids
//! (`roomcast::seeds::seed001::validate_user_id`) and seed 000 feed
//! options (`roomcast::sources::modeldata::FeedOptions::from_query`). The
//! input is read as text (lossily) and given to each. Invariants:
//!
//! * `normalize_ticker` accepts exactly 1–16 characters of `A-Z a-z 0-9 . - ^ = /`
//!   around optional whitespace, returns them upper-cased, and is idempotent;
//! * a parsed room name round-trips through its string form (and through
//!   the fleet bus's `RoomName::from_wire`), is of a kind the catalog opens
//!   to native clients, and a `ticker:` room holds a normalised ticker;
//! * `topic:<name>` and `backtest:<id>` are accepted exactly when the name
//!   is 1–64 (the id 1–128) characters of `A-Z a-z 0-9 _ . : -`, as written;
//! * seed 004's rooms (`s004:prices[?<SYM,…>]`, `s004:signals[:<SYM>]`,
//!   `s004:trades[:<SYM>]`, `s004:portfolio`) and seed 003's live ones
//!   (`s003:live[:<SYM>]`, `s003:account`, `s003:market:<SYM>`) are
//!   accepted exactly when every symbol is a ticker (at most 256 distinct
//!   in a set), and parse to their canonical spelling (upper case; a set
//!   sorted and distinct);
//! * `validate_user_id` accepts exactly 1–64 characters of letters, digits
//!   and `_ - . @`;
//! * feed options stay within their documented bounds, name a modeldata
//!   room, and re-parsing their canonical query (the room name's suffix)
//!   gives the same options, and so the same room, whenever the bounds lie
//!   in years 0000–9999 (RFC 3339 writes no others).
#![no_main]

use chrono::{DateTime, Datelike};
use libfuzzer_sys::fuzz_target;
use roomcast::catalog::{
    MAX_BACKTEST_ID_LEN, MAX_SET_SYMBOLS, MAX_TICKER_LEN, MAX_TOPIC_LEN, RoomKind, RoomName,
    normalize_ticker,
};
use roomcast::native::parse_room;
use roomcast::seeds::seed001::{MAX_USER_ID_LEN, validate_user_id};
use roomcast::sources::modeldata::FeedOptions;
use roomcast::sources::modeldata::options::MIN_POINTS;

/// The `max_points` the options are parsed with (the server's default).
const MAX_POINTS: usize = 5000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_ticker(&text);
    check_room(&text);
    check_user_id(&text);
    check_feed_options(&text);
});

fn is_ticker_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'^' | b'=' | b'/')
}

fn check_ticker(raw: &str) {
    let trimmed = raw.trim();
    let valid =
        (1..=MAX_TICKER_LEN).contains(&trimmed.len()) && trimmed.bytes().all(is_ticker_byte);
    match normalize_ticker(raw) {
        Ok(ticker) => {
            assert!(valid, "accepted ticker {raw:?}");
            assert_eq!(ticker, trimmed.to_ascii_uppercase());
            assert_eq!(
                normalize_ticker(&ticker).as_deref(),
                Ok(ticker.as_str()),
                "normalize_ticker is not idempotent"
            );
        }
        Err(_) => assert!(!valid, "refused ticker {raw:?}"),
    }
}

/// Whether `name` is 1–`max` characters of `A-Z a-z 0-9 _ . : -` (topic
/// names and backtest ids).
fn is_stream_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// The documented grammar of a `topic:`/`backtest:` name, if `name` has
/// one of those prefixes: whether it is valid.
fn stream_room_valid(name: &str) -> Option<bool> {
    if let Some(topic) = name.strip_prefix("topic:") {
        return Some(is_stream_name(topic, MAX_TOPIC_LEN));
    }
    name.strip_prefix("backtest:")
        .map(|id| is_stream_name(id, MAX_BACKTEST_ID_LEN))
}

/// The documented grammar of a trading room, if `name` starts `s003:` or
/// `s004:`: its canonical spelling when valid.
fn trading_room(name: &str) -> Option<Option<String>> {
    let ticker = |t: &str| normalize_ticker(t).ok();
    if let Some(rest) = name.strip_prefix("s003:") {
        return Some(match rest {
            "account" | "live" => Some(name.to_string()),
            _ => {
                if let Some(symbol) = rest.strip_prefix("live:") {
                    ticker(symbol).map(|t| format!("s003:live:{t}"))
                } else if let Some(symbol) = rest.strip_prefix("market:") {
                    ticker(symbol).map(|t| format!("s003:market:{t}"))
                } else {
                    None
                }
            }
        });
    }
    let rest = name.strip_prefix("s004:")?;
    Some(match rest {
        "portfolio" | "prices" | "signals" | "trades" => Some(name.to_string()),
        _ => {
            if let Some(set) = rest.strip_prefix("prices?") {
                let mut symbols: Vec<String> = set.split(',').map(ticker).collect::<Option<_>>()?;
                symbols.sort();
                symbols.dedup();
                (symbols.len() <= MAX_SET_SYMBOLS)
                    .then(|| format!("s004:prices?{}", symbols.join(",")))
            } else if let Some(symbol) = rest.strip_prefix("signals:") {
                ticker(symbol).map(|t| format!("s004:signals:{t}"))
            } else if let Some(symbol) = rest.strip_prefix("trades:") {
                ticker(symbol).map(|t| format!("s004:trades:{t}"))
            } else {
                None
            }
        }
    })
}

fn check_room(name: &str) {
    if let Some(valid) = stream_room_valid(name) {
        assert_eq!(parse_room(name).is_ok(), valid, "parse_room({name:?})");
    }
    if let Some(canonical) = trading_room(name) {
        assert_eq!(
            parse_room(name).ok().map(|r| r.as_str().to_string()),
            canonical,
            "parse_room({name:?})"
        );
    }
    let Ok(room) = parse_room(name) else {
        return;
    };
    assert_eq!(
        parse_room(room.as_str()).as_ref(),
        Ok(&room),
        "room {room} does not round-trip"
    );
    assert_eq!(room.to_string(), room.as_str());
    assert_eq!(RoomName::from_wire(room.as_str()).as_ref(), Some(&room));
    assert!(
        room.policy().native,
        "parsed a room closed to native clients: {room}"
    );
    match room.ticker_symbol() {
        Some(ticker) => {
            assert_eq!(normalize_ticker(ticker).as_deref(), Ok(ticker));
            assert_eq!(room, RoomName::ticker(ticker));
        }
        None => assert!(
            [
                RoomName::patterns(),
                RoomName::alerts(),
                RoomName::market_status()
            ]
            .contains(&room)
                || (matches!(room.kind(), RoomKind::Topic | RoomKind::Backtest)
                    && stream_room_valid(room.as_str()) == Some(true))
                || (matches!(
                    room.kind(),
                    RoomKind::S004Prices
                        | RoomKind::S004Signals
                        | RoomKind::S004Trades
                        | RoomKind::S004Portfolio
                        | RoomKind::S003Live
                        | RoomKind::S003Account
                        | RoomKind::S003Market
                ) && trading_room(room.as_str()) == Some(Some(room.as_str().to_string()))),
            "parsed an unknown room kind {room}"
        ),
    }
    assert_ne!(
        room.kind(),
        RoomKind::ModelData,
        "a client named a modeldata room"
    );
}

fn check_user_id(user_id: &str) {
    let valid = (1..=MAX_USER_ID_LEN).contains(&user_id.len())
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    assert_eq!(
        validate_user_id(user_id).is_ok(),
        valid,
        "validate_user_id({user_id:?})"
    );
}

/// Whether an instant (epoch microseconds) falls in years 0000–9999.
fn has_four_digit_year(micros: i64) -> bool {
    DateTime::from_timestamp_micros(micros).is_some_and(|t| (0..=9999).contains(&t.year()))
}

fn check_feed_options(query: &str) {
    let Ok(options) = FeedOptions::from_query(Some(query), MAX_POINTS) else {
        return;
    };
    assert!(
        (MIN_POINTS..=MAX_POINTS).contains(&options.points),
        "points {} out of bounds",
        options.points
    );
    if let (Some(from), Some(to)) = (options.from, options.to) {
        assert!(from <= to, "accepted from > to");
    }
    let room = options.room();
    assert_eq!(
        room.kind(),
        RoomKind::ModelData,
        "feed room {room} is not a modeldata room"
    );
    assert_eq!(RoomName::from_wire(room.as_str()).as_ref(), Some(&room));
    let canonical = options.to_string();
    if canonical.is_empty() {
        assert_eq!(options, FeedOptions::default());
        assert_eq!(room, RoomName::modeldata(None));
        return;
    }
    assert_eq!(room.as_str(), format!("modeldata?{canonical}"));
    if options
        .from
        .into_iter()
        .chain(options.to)
        .all(has_four_digit_year)
    {
        let again = FeedOptions::from_query(Some(&canonical), MAX_POINTS);
        assert_eq!(
            again.as_ref(),
            Ok(&options),
            "canonical query {canonical:?} does not parse back to its options"
        );
    }
}
