//! Finding one integer in a frame without parsing JSON. Every published
//! message carries its scheduled send time (µs since the Unix epoch) as an
//! integer field; receivers locate the field's key in the raw frame bytes with
//! a prebuilt `memchr::memmem::Finder` (SIMD substring search) and read the
//! digits after it. No allocation, no JSON parser, a few tens of nanoseconds
//! per frame, which is what keeps one generator core ahead of the server.

use memchr::memmem::Finder;

/// Searches frames for one key (e.g. `"volume":`) and reads the integer after it.
#[derive(Clone)]
pub struct FieldScanner {
    /// The key's substring searcher, built once (building it per frame would
    /// cost more than the search).
    finder: Finder<'static>,
}

impl FieldScanner {
    /// A scanner for `key`, the exact bytes that precede the number (`"volume":`).
    pub fn new(key: &'static [u8]) -> Self {
        FieldScanner {
            finder: Finder::new(key),
        }
    }

    /// The integer after the first occurrence of the key, if there is one.
    pub fn scan(&self, haystack: &[u8]) -> Option<u64> {
        let at = self.finder.find(haystack)?;
        parse_digits(&haystack[at + self.finder.needle().len()..])
    }
}

/// Reads a non-negative integer at the start of `bytes` (after optional
/// spaces): digits, then anything that is not a digit. A fractional part
/// (`123.0`, `123.45`) is truncated, since JSON writers may print a whole
/// float with `.0`; an exponent (`1.7e15`), a sign, no digits at all or a
/// value past `u64::MAX` give `None`.
pub fn parse_digits(bytes: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    let start = i;
    let mut value: u64 = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(bytes[i] - b'0'))?;
        i += 1;
    }
    if i == start {
        return None;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_volume_in_a_seed_001_price_update() {
        let frame = br#"{"type":"price_update","ticker":"LT0","price":100.5,"change":0.5,"change_percent":0.5,"volume":1763781234567890,"high":101.0,"low":99.0,"open":100.0,"timestamp":"2026-11-22T03:00:00.000000Z"}"#;
        let s = FieldScanner::new(br#""volume":"#);
        assert_eq!(s.scan(frame), Some(1_763_781_234_567_890));
    }

    #[test]
    fn volume_at_the_end_and_with_spaces_and_fractions() {
        let s = FieldScanner::new(br#""volume":"#);
        assert_eq!(s.scan(br#"{"volume":42}"#), Some(42));
        assert_eq!(s.scan(br#"{"volume":42"#), Some(42));
        assert_eq!(s.scan(br#"{"volume": 7,"x":1}"#), Some(7));
        assert_eq!(s.scan(br#"{"volume":12.0}"#), Some(12));
        assert_eq!(s.scan(br#"{"volume":12.75}"#), Some(12));
        assert_eq!(s.scan(br#"{"volume":0}"#), Some(0));
        // The first occurrence wins.
        assert_eq!(s.scan(br#"{"volume":1,"volume":2}"#), Some(1));
    }

    #[test]
    fn rejects_missing_or_non_integer_values() {
        let s = FieldScanner::new(br#""volume":"#);
        assert_eq!(s.scan(br#"{"type":"pong"}"#), None);
        assert_eq!(s.scan(br#"{"volume":null}"#), None);
        assert_eq!(s.scan(br#"{"volume":"12"}"#), None);
        assert_eq!(s.scan(br#"{"volume":-5}"#), None);
        assert_eq!(s.scan(br#"{"volume":1.7e15}"#), None);
        assert_eq!(s.scan(br#"{"volume":"#), None);
        assert_eq!(s.scan(b""), None);
        // Past u64::MAX.
        assert_eq!(s.scan(br#"{"volume":18446744073709551616}"#), None);
        assert_eq!(
            s.scan(br#"{"volume":18446744073709551615}"#),
            Some(u64::MAX)
        );
        // The key must match exactly, quotes included.
        assert_eq!(s.scan(br#"{"volume_24h":5}"#), None);
    }

    #[test]
    fn other_keys_work_the_same_way() {
        let s = FieldScanner::new(br#""recipients":"#);
        assert_eq!(
            s.scan(br#"{"status":"success","room":"ticker:LT0","seq":9,"recipients":1000}"#),
            Some(1000)
        );
        let s = FieldScanner::new(br#""message":"lt-ts="#);
        assert_eq!(
            s.scan(br#"{"type":"pattern_alert","message":"lt-ts=123456","timestamp":"x"}"#),
            Some(123_456)
        );
    }
}
