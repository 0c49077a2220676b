//! Seed 004 (`/ws`), the trading stream. A client opens
//! `/ws?client_id=lt-<i>` (the `client_id` makes roomcast auto-subscribe it
//! at once to every channel with all symbols) and sends nothing, or narrows
//! its prices with `{"type":"subscribe","channel":"price_updates","symbols":[…]}`.
//! Nothing is confirmed: the first `price_update` of its set is the sign it
//! is served. The server times the events itself: every
//! `WEBSOCKET_PRICE_UPDATE_INTERVAL` seconds one flat `price_update` batch
//! per distinct symbol set, `{"type":"price_update","symbols":{"AAPL":{…},…},"timestamp":"…Z"}`,
//! plus `signal`, `trade_executed` and `portfolio_update` from the paper
//! account. Each event's `timestamp` (RFC 3339, milliseconds, UTC) is when
//! the server started the round, so it is the event's "scheduled time":
//! latency = receive time − `timestamp`, found from the frame's end with a
//! substring search and read without a JSON parser.
//!
//! A *set* here is a room name of the scenario: `*` for "all symbols"
//! (nothing sent; the auto-subscription's `s004:prices`), otherwise
//! comma-separated symbols in byte order (`AAPL,MSFT`), exactly the order
//! roomcast lists them in the set's batch. [`SetSignature`] recognises a
//! set's own batches by their first symbol and their number of entries.

use std::io::Write;

use memchr::memmem::{Finder, FinderRev};

use super::seed001::write_price_body;
use super::{Classified, Dialect};

/// roomcast's simulator's symbols (`ROOMCAST_SYMBOLS` default), from which
/// narrowed sets are drawn.
pub const DEFAULT_SYMBOLS: &str = "AAPL,MSFT,TSLA,NVDA,AMZN,GOOGL,META,BTC-USD,ETH-USD";

/// The room name of the "all symbols" set.
pub const ALL: &str = "*";

/// Prefix of every price batch (flat, `type` first).
pub const PRICE_UPDATE: &[u8] = br#"{"type":"price_update""#;
/// Prefix of every batch's entries.
const SYMBOLS: &[u8] = br#"{"type":"price_update","symbols":{"#;
const ERROR: &[u8] = br#"{"type":"error""#;
/// Every batch entry has exactly one `close`.
const CLOSE_KEY: &[u8] = br#""close":"#;
/// Flat messages end with their timestamp.
const TIMESTAMP_KEY: &[u8] = br#""timestamp":""#;

/// The seed 004 dialect.
pub struct Seed004 {
    /// Finds the last `"timestamp":"` of a frame (flat messages end with it).
    timestamp: FinderRev<'static>,
}

impl Seed004 {
    /// The dialect.
    pub fn new() -> Self {
        Seed004 {
            timestamp: FinderRev::new(TIMESTAMP_KEY),
        }
    }

    /// The `timestamp` of a flat seed 004 message, µs since the Unix epoch.
    pub fn timestamp_us(&self, payload: &[u8]) -> Option<u64> {
        let at = self.timestamp.rfind(payload)?;
        parse_rfc3339_us(&payload[at + TIMESTAMP_KEY.len()..])
    }
}

/// The symbols of a set's room name (`*` = none: all symbols).
pub fn set_symbols(room: &str) -> Vec<&str> {
    if room == ALL {
        Vec::new()
    } else {
        room.split(',').filter(|s| !s.is_empty()).collect()
    }
}

/// The message that narrows a connection's prices to `room`'s set (none for `*`).
pub fn subscribe_message(room: &str) -> Option<String> {
    let symbols = set_symbols(room);
    if symbols.is_empty() {
        return None;
    }
    let quoted: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    Some(format!(
        r#"{{"type":"subscribe","channel":"price_updates","symbols":[{}]}}"#,
        quoted.join(",")
    ))
}

/// `K` distinct symbol sets over `symbols` (sorted first): `K = 1` is the
/// one "all symbols" set (`*`); otherwise the first `K` non-empty proper
/// subsets by size, then in order (9 symbols, K = 16: the 9 singles and 7
/// pairs). `None` if there are not that many proper subsets.
pub fn symbol_sets(symbols: &[String], k: usize) -> Option<Vec<String>> {
    if k == 1 {
        return Some(vec![ALL.to_string()]);
    }
    let mut symbols = symbols.to_vec();
    symbols.sort_unstable();
    symbols.dedup();
    let n = symbols.len();
    let mut sets = Vec::with_capacity(k);
    'sizes: for size in 1..n {
        // Combinations of `size` indices in lexicographic order.
        let mut idx: Vec<usize> = (0..size).collect();
        loop {
            if sets.len() == k {
                break 'sizes;
            }
            sets.push(
                idx.iter()
                    .map(|&i| symbols[i].as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            // Next combination.
            let Some(i) = (0..size).rev().find(|&i| idx[i] < n - size + i) else {
                break;
            };
            idx[i] += 1;
            for j in i + 1..size {
                idx[j] = idx[j - 1] + 1;
            }
        }
    }
    (sets.len() == k).then_some(sets)
}

/// Recognises one set's batches: the first entry's key and the number of
/// entries (`None` for "all symbols": every batch is the set's own when it
/// is the only set).
pub struct SetSignature {
    /// `{"type":"price_update","symbols":{"FIRST":`, or the bare prefix for `*`.
    prefix: Vec<u8>,
    /// Entries in a batch of the set.
    entries: Option<usize>,
    /// Counts entries.
    close: Finder<'static>,
}

impl SetSignature {
    /// The signature of `room`'s set.
    pub fn new(room: &str) -> Self {
        let symbols = set_symbols(room);
        let mut prefix = SYMBOLS.to_vec();
        if let Some(first) = symbols.first() {
            let _ = write!(prefix, "\"{first}\":");
        }
        SetSignature {
            prefix,
            entries: (!symbols.is_empty()).then_some(symbols.len()),
            close: Finder::new(CLOSE_KEY),
        }
    }

    /// Whether `payload` (a `price_update`) is a batch of this set.
    pub fn matches(&self, payload: &[u8]) -> bool {
        if !payload.starts_with(&self.prefix) {
            return false;
        }
        match self.entries {
            None => true,
            Some(n) => self.close.find_iter(payload).take(n + 1).count() == n,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)` at the start of
/// `bytes` (the rest is ignored) as µs since the Unix epoch. Only UTC
/// (what roomcast writes); anything else is `None`.
pub fn parse_rfc3339_us(bytes: &[u8]) -> Option<u64> {
    fn num(b: &[u8]) -> Option<u32> {
        let mut v = 0u32;
        for &c in b {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    }
    if bytes.len() < 20 {
        return None;
    }
    let sep = |i: usize, c: u8| bytes[i] == c;
    if !(sep(4, b'-') && sep(7, b'-') && (sep(10, b'T') || sep(10, b't')) && sep(13, b':'))
        || !sep(16, b':')
    {
        return None;
    }
    let (y, mo, d) = (num(&bytes[0..4])?, num(&bytes[5..7])?, num(&bytes[8..10])?);
    let (h, mi, s) = (
        num(&bytes[11..13])?,
        num(&bytes[14..16])?,
        num(&bytes[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0u64;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + u64::from(bytes[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..6 {
            micros *= 10;
        }
    }
    match bytes.get(i) {
        Some(b'Z' | b'z') => {}
        Some(b'+' | b'-') if bytes.get(i + 1..i + 6) == Some(b"00:00") => {}
        _ => return None,
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    u64::try_from(secs).ok().map(|s| s * 1_000_000 + micros)
}

impl Dialect for Seed004 {
    fn name(&self) -> &'static str {
        "seed004"
    }

    fn ws_path(&self, _rooms: &[String]) -> String {
        "/ws".to_string()
    }

    fn ws_path_for(&self, id: usize, _rooms: &[String]) -> String {
        format!("/ws?client_id=lt-{id}")
    }

    fn room_names(&self, _prefix: &str, count: usize) -> Vec<String> {
        let symbols: Vec<String> = DEFAULT_SYMBOLS.split(',').map(String::from).collect();
        // Beyond the proper subsets of the nine symbols, repeat them.
        let distinct = count.min((1 << symbols.len()) - 2).max(1);
        let sets = symbol_sets(&symbols, distinct).unwrap_or_else(|| vec![ALL.to_string()]);
        (0..count).map(|i| sets[i % sets.len()].clone()).collect()
    }

    fn subscribe_messages(&self, rooms: &[String]) -> Vec<String> {
        rooms.iter().filter_map(|r| subscribe_message(r)).collect()
    }

    fn confirmations(&self, _rooms: usize) -> usize {
        // Seed 004 confirms nothing: the set's first batch is the sign.
        0
    }

    fn classify(&self, payload: &[u8]) -> Classified {
        if payload.starts_with(PRICE_UPDATE) {
            match self.timestamp_us(payload) {
                Some(ts) => Classified::Event(ts),
                None => Classified::Other,
            }
        } else if payload.starts_with(ERROR) {
            Classified::Error
        } else {
            Classified::Other
        }
    }

    fn publish_path(&self, _room: &str) -> String {
        // A seed 001 price is recorded in the quote book the batches are made of.
        "/api/ws/broadcast/price".to_string()
    }

    fn write_publish_body(&self, room: &str, seq: u64, scheduled_us: u64, out: &mut Vec<u8>) {
        write_price_body(room, seq, scheduled_us, out);
    }

    fn has_roomcast_metrics(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH_2: &[u8] = br#"{"type":"price_update","symbols":{"AAPL":{"price":190.1,"change":0.5,"change_pct":0.26,"volume":1000,"high":191.0,"low":189.0,"open":190.0,"close":190.1},"MSFT":{"price":420.0,"change":0.0,"change_pct":0.0,"volume":5,"high":420.0,"low":420.0,"open":420.0,"close":420.0}},"timestamp":"2026-12-02T05:03:30.123Z"}"#;

    #[test]
    fn timestamps_parse_to_epoch_microseconds() {
        assert_eq!(parse_rfc3339_us(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_us(b"1970-01-01T00:00:01.5Z\"}"),
            Some(1_500_000)
        );
        // `date -u -d 2026-12-02T05:03:30Z +%s` = 1796187810.
        assert_eq!(
            parse_rfc3339_us(b"2026-12-02T05:03:30.123Z"),
            Some(1_796_187_810_123_000)
        );
        assert_eq!(
            parse_rfc3339_us(b"2024-02-29T23:59:59.999999+00:00"),
            Some(1_709_251_199_999_999)
        );
        assert_eq!(parse_rfc3339_us(b"2026-12-02T05:03:30.123+01:00"), None);
        assert_eq!(parse_rfc3339_us(b"2026-13-02T05:03:30Z"), None);
        assert_eq!(parse_rfc3339_us(b"2026-12-02 05:03"), None);
        assert_eq!(parse_rfc3339_us(b"2026-12-02T05:03:30.Z"), None);
    }

    #[test]
    fn recognises_seed_004_frames() {
        let d = Seed004::new();
        assert_eq!(
            d.classify(BATCH_2),
            Classified::Event(1_796_187_810_123_000)
        );
        assert_eq!(
            d.classify(br#"{"type":"portfolio_update","channel":"portfolio","data":{},"timestamp":"2026-12-02T05:03:30.123Z"}"#),
            Classified::Other
        );
        assert_eq!(
            d.classify(br#"{"type":"error","error":"Invalid channel: x","timestamp":"t"}"#),
            Classified::Error
        );
        assert_eq!(d.confirmations(1), 0);
        assert_eq!(d.room_names("LT", 1), ["*"]);
        assert_eq!(d.room_names("LT", 3), ["AAPL", "AMZN", "BTC-USD"]);
        assert_eq!(d.ws_path_for(7, &[ALL.into()]), "/ws?client_id=lt-7");
        assert!(d.subscribe_messages(&[ALL.into()]).is_empty());
        let narrowed = d.subscribe_messages(&["AAPL,MSFT".into()]);
        let v: serde_json::Value = serde_json::from_str(&narrowed[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"subscribe","channel":"price_updates","symbols":["AAPL","MSFT"]})
        );
    }

    #[test]
    fn a_set_recognises_only_its_own_batches() {
        let pair = SetSignature::new("AAPL,MSFT");
        let single = SetSignature::new("AAPL");
        let all = SetSignature::new(ALL);
        assert!(pair.matches(BATCH_2));
        assert!(!single.matches(BATCH_2), "same first symbol, more entries");
        assert!(all.matches(BATCH_2));
        assert!(!SetSignature::new("MSFT").matches(BATCH_2));
    }

    #[test]
    fn sets_are_distinct_proper_subsets() {
        let symbols: Vec<String> = DEFAULT_SYMBOLS.split(',').map(String::from).collect();
        assert_eq!(symbol_sets(&symbols, 1).unwrap(), ["*"]);
        let sets = symbol_sets(&symbols, 16).unwrap();
        assert_eq!(sets.len(), 16);
        assert_eq!(sets[0], "AAPL");
        assert_eq!(sets[8], "TSLA");
        assert_eq!(sets[9], "AAPL,AMZN");
        assert_eq!(sets[15], "AAPL,NVDA");
        let mut unique = sets.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 16);
        // 2^9 - 2 proper non-empty subsets.
        assert_eq!(symbol_sets(&symbols, 510).unwrap().len(), 510);
        assert!(symbol_sets(&symbols, 511).is_none());
    }
}
