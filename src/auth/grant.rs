//! Which rooms a connection may join: the glob patterns of its token's rooms
//! claim (`ticker:*`, `s004:prices?*`, `backtest:run-??`), matched against
//! the catalog's room names ([`crate::catalog::RoomName`]) on every join,
//! whichever dialect asks. `*` matches any run of characters (none too),
//! `?` exactly one; every other character matches itself.

use std::sync::Arc;

/// Most patterns one token may carry.
pub const MAX_PATTERNS: usize = 256;

/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 256;

/// The rooms a connection may join.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomGrant {
    /// The patterns; `None` for any room (no token, or a token without the claim).
    patterns: Option<Arc<[Box<str>]>>,
}

/// Why a rooms claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The claim is neither a string nor an array of strings.
    #[error("the rooms claim must be a string or an array of strings")]
    Shape,
    /// Too many patterns.
    #[error("the rooms claim has more than {MAX_PATTERNS} patterns")]
    TooMany,
    /// A pattern is empty or too long.
    #[error("a rooms pattern must be 1 to {MAX_PATTERN_LEN} characters")]
    BadPattern,
}

impl RoomGrant {
    /// Any room.
    pub fn any() -> Self {
        RoomGrant { patterns: None }
    }

    /// The grant of a rooms claim: an array of patterns, or one string of
    /// space-separated patterns (the OAuth `scope` style); `None` (no claim)
    /// grants any room.
    pub fn from_claim(claim: Option<&serde_json::Value>) -> Result<Self, GrantError> {
        let patterns: Vec<Box<str>> = match claim {
            None => return Ok(RoomGrant::any()),
            Some(serde_json::Value::String(s)) => s.split_whitespace().map(Box::from).collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(Box::from).ok_or(GrantError::Shape))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(GrantError::Shape),
        };
        if patterns.len() > MAX_PATTERNS {
            return Err(GrantError::TooMany);
        }
        if patterns
            .iter()
            .any(|p| p.is_empty() || p.len() > MAX_PATTERN_LEN)
        {
            return Err(GrantError::BadPattern);
        }
        Ok(RoomGrant {
            patterns: Some(patterns.into()),
        })
    }

    /// Whether `room` may be joined.
    pub fn allows(&self, room: &str) -> bool {
        match &self.patterns {
            None => true,
            Some(patterns) => patterns.iter().any(|p| glob(p.as_bytes(), room.as_bytes())),
        }
    }

    /// Whether every room is granted.
    pub fn is_any(&self) -> bool {
        self.patterns.is_none()
    }
}

/// Matches `text` against `pattern` (`*`, `?`), in time linear in their
/// product at worst: the classic backtrack to the last `*` only.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') => {
                // One character, not one byte: skip a whole UTF-8 sequence.
                t += utf8_len(text[t]);
                p += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    // The star takes one more character (not byte), so
                    // matching always resumes on a character boundary.
                    let next = st + utf8_len(text[st]);
                    p = sp + 1;
                    t = next;
                    star = Some((sp, next));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*') && t == text.len()
}

/// Length of the UTF-8 sequence that starts with `lead`.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob(b"ticker:*", b"ticker:AAPL"));
        assert!(glob(b"ticker:*", b"ticker:"));
        assert!(!glob(b"ticker:*", b"tickers:AAPL"));
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"*:AAPL", b"ticker:AAPL"));
        assert!(!glob(b"*:AAPL", b"ticker:AAPLX"));
        assert!(glob(b"a*b*c", b"a-b-b-c"));
        assert!(!glob(b"a*b*c", b"a-b-b-d"));
        assert!(glob(b"exact", b"exact"));
        assert!(!glob(b"exact", b"exactly"));
        assert!(glob("r?".as_bytes(), "ré".as_bytes()));
        assert!(glob("*?x".as_bytes(), "éx".as_bytes()));
        assert!(glob("*é".as_bytes(), "aéé".as_bytes()));
        assert!(!glob("*?é".as_bytes(), "é".as_bytes()));
    }

    #[test]
    fn claims_become_grants() {
        assert!(RoomGrant::from_claim(None).unwrap().is_any());
        let g = RoomGrant::from_claim(Some(&json!(["ticker:*", "alerts"]))).unwrap();
        assert!(g.allows("ticker:MSFT") && g.allows("alerts") && !g.allows("patterns"));
        let g = RoomGrant::from_claim(Some(&json!("ticker:AAPL  market_status"))).unwrap();
        assert!(g.allows("market_status") && g.allows("ticker:AAPL") && !g.allows("ticker:MSFT"));
        let none = RoomGrant::from_claim(Some(&json!([]))).unwrap();
        assert!(!none.allows("alerts"), "an empty claim grants nothing");
        assert_eq!(
            RoomGrant::from_claim(Some(&json!(42))),
            Err(GrantError::Shape)
        );
        assert_eq!(
            RoomGrant::from_claim(Some(&json!([1]))),
            Err(GrantError::Shape)
        );
        assert_eq!(
            RoomGrant::from_claim(Some(&json!([""]))),
            Err(GrantError::BadPattern)
        );
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("r{i}")).collect();
        assert_eq!(
            RoomGrant::from_claim(Some(&json!(many))),
            Err(GrantError::TooMany)
        );
    }
}
