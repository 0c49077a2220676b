//! Per-connection options of `/ws/modeldata-stream` (seed 000's "future
//! enhancements"): `?points=N`, `?from=…&to=…` and `?sampler=even|lttb`.
//! Connections with the same options share one feed — one query round and one
//! serialisation per interval — so the options are normalised into a
//! canonical key that names the feed's room.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

use crate::catalog::RoomName;

/// Points per group when `?points` is absent (seed 000).
pub const DEFAULT_POINTS: usize = 500;
/// Smallest `?points`: a series needs its first and latest row.
pub const MIN_POINTS: usize = 2;

/// Which rows become points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sampler {
    /// Evenly spread by row position (seed 000's resampling), the default.
    #[default]
    Even,
    /// Largest-Triangle-Three-Buckets on `account_value`: keeps peaks and troughs.
    Lttb,
}

/// One feed's options; equal options share a feed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedOptions {
    /// Points per group (at most; a group with fewer rows sends them all).
    pub points: usize,
    /// How the points are chosen.
    pub sampler: Sampler,
    /// Only rows with `created_at >= from` (epoch microseconds).
    pub from: Option<i64>,
    /// Only rows with `created_at <= to` (epoch microseconds).
    pub to: Option<i64>,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            points: DEFAULT_POINTS,
            sampler: Sampler::Even,
            from: None,
            to: None,
        }
    }
}

/// A query parameter that was refused; the message names it and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query parameter '{name}': {message}")]
pub struct OptionsError {
    /// The parameter, e.g. `points`.
    pub name: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn bad(name: &'static str, message: impl Into<String>) -> OptionsError {
    OptionsError {
        name,
        message: message.into(),
    }
}

impl FeedOptions {
    /// Parses a query string (`points=200&sampler=lttb&from=2025-10-24`);
    /// `max_points` bounds `points`. Unknown parameters are refused, so a typo
    /// does not silently fall back to the defaults.
    pub fn from_query(query: Option<&str>, max_points: usize) -> Result<Self, OptionsError> {
        let mut options = FeedOptions::default();
        let Some(query) = query else {
            return Ok(options);
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            match &*key {
                "points" => {
                    let n: usize = value.parse().map_err(|_| {
                        bad("points", format!("'{}' is not a whole number", clip(value)))
                    })?;
                    if !(MIN_POINTS..=max_points).contains(&n) {
                        return Err(bad(
                            "points",
                            format!("must be between {MIN_POINTS} and {max_points}, got {n}"),
                        ));
                    }
                    options.points = n;
                }
                "sampler" => {
                    options.sampler = match value {
                        "even" => Sampler::Even,
                        "lttb" => Sampler::Lttb,
                        other => {
                            return Err(bad(
                                "sampler",
                                format!("'{}' is not one of: even, lttb", clip(other)),
                            ));
                        }
                    }
                }
                "from" => options.from = Some(parse_time("from", value)?),
                "to" => options.to = Some(parse_time("to", value)?),
                // The connection's JWT (`crate::auth`), read before the upgrade.
                "token" => {}
                other => {
                    return Err(OptionsError {
                        name: "query",
                        message: format!(
                            "unknown parameter '{}' (expected points, sampler, from, to)",
                            clip(other)
                        ),
                    });
                }
            }
        }
        if let (Some(from), Some(to)) = (options.from, options.to)
            && from > to
        {
            return Err(bad("to", "must not be earlier than 'from'"));
        }
        Ok(options)
    }

    /// The room of the feed with these options: `modeldata` for the defaults,
    /// `modeldata?<canonical query>` otherwise.
    pub fn room(&self) -> RoomName {
        if *self == FeedOptions::default() {
            RoomName::modeldata(None)
        } else {
            RoomName::modeldata(Some(&self.to_string()))
        }
    }
}

/// The canonical query: only non-default options, in a fixed order.
impl fmt::Display for FeedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut put = |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn fmt::Display| {
            let r = write!(f, "{sep}{k}={v}");
            sep = "&";
            r
        };
        if self.points != DEFAULT_POINTS {
            put(f, "points", &self.points)?;
        }
        if self.sampler == Sampler::Lttb {
            put(f, "sampler", &"lttb")?;
        }
        if let Some(from) = self.from {
            put(f, "from", &exact(from))?;
        }
        if let Some(to) = self.to {
            put(f, "to", &exact(to))?;
        }
        Ok(())
    }
}

/// A bound in RFC 3339 with as many fraction digits as it has (microseconds
/// at most): distinct bounds name distinct rooms.
fn exact(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC 3339 (`2025-10-24T10:00:00Z`, any offset), a naive date-time taken as
/// UTC (`2025-10-24T10:00:00`), a date (`2025-10-24`, midnight UTC), or Unix
/// seconds (`1761300000`).
fn parse_time(name: &'static str, value: &str) -> Result<i64, OptionsError> {
    let parsed = DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .ok()
        .or_else(|| {
            value
                .parse::<i64>()
                .ok()
                .and_then(|s| DateTime::from_timestamp(s, 0))
        });
    parsed.map(|t| t.timestamp_micros()).ok_or_else(|| {
        bad(
            name,
            format!(
                "'{}' is not a timestamp (use RFC 3339 like 2025-10-24T10:00:00Z, a date like 2025-10-24, or Unix seconds)",
                clip(value)
            ),
        )
    })
}

/// Shortens client-supplied text echoed in error messages.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<FeedOptions, OptionsError> {
        FeedOptions::from_query(Some(q), 5000)
    }

    #[test]
    fn no_query_is_the_seed_default_and_its_room_is_modeldata() {
        let o = FeedOptions::from_query(None, 5000).unwrap();
        assert_eq!(o, FeedOptions::default());
        assert_eq!(o.room().as_str(), "modeldata");
        assert_eq!(
            parse("points=500&sampler=even").unwrap().room().as_str(),
            "modeldata"
        );
    }

    #[test]
    fn equal_options_in_any_order_share_one_room() {
        let a = parse("sampler=lttb&points=200&from=2025-10-24").unwrap();
        let b = parse("from=2025-10-24T00:00:00Z&points=200&sampler=lttb").unwrap();
        assert_eq!(a.room(), b.room());
        assert_eq!(
            a.room().as_str(),
            "modeldata?points=200&sampler=lttb&from=2025-10-24T00:00:00Z"
        );
        let a = parse("from=2025-10-24T00:00:00.0001Z").unwrap();
        let b = parse("from=2025-10-24T00:00:00.0002Z").unwrap();
        assert_ne!(a.room(), b.room());
    }

    #[test]
    fn times_parse_in_every_documented_form() {
        let want = 1_761_300_000_000_000;
        for q in [
            "from=2025-10-24T10:00:00Z",
            "from=2025-10-24T12:00:00%2B02:00",
            "from=2025-10-24T10:00:00",
            "from=1761300000",
        ] {
            assert_eq!(parse(q).unwrap().from, Some(want), "{q}");
        }
    }

    #[test]
    fn bad_parameters_name_the_parameter() {
        for (q, name) in [
            ("points=1", "points"),
            ("points=5001", "points"),
            ("points=abc", "points"),
            ("sampler=fancy", "sampler"),
            ("from=yesterday", "from"),
            ("from=2025-10-25&to=2025-10-24", "to"),
            ("pointz=5", "query"),
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.name, name, "{q}: {e}");
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}
