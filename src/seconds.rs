//! A duration setting written in seconds (`ROOMCAST_ROOM_IDLE_TTL=3600`,
//! `0.5`): parsed and range-checked once, when the configuration is read,
//! so the subsystem that owns the setting holds a [`Duration`] and never
//! converts or re-validates a float.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The longest duration a setting may name: 30 days.
pub const MAX_SECONDS: f64 = 30.0 * 86_400.0;

/// A positive, finite number of seconds, at most [`MAX_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(Duration);

impl Seconds {
    /// `secs` whole seconds (for defaults in code and tests).
    pub const fn from_secs(secs: u64) -> Self {
        Seconds(Duration::from_secs(secs))
    }

    /// `secs` seconds, for code and tests; settings are parsed ([`FromStr`]).
    ///
    /// # Panics
    ///
    /// When `secs` is not a positive, finite number of seconds within
    /// [`MAX_SECONDS`].
    pub fn from_secs_f64(secs: f64) -> Self {
        assert!(
            secs.is_finite() && secs > 0.0 && secs <= MAX_SECONDS,
            "{secs} is not a number of seconds in (0, {MAX_SECONDS}]"
        );
        Seconds(Duration::from_secs_f64(secs))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Why a value is not a number of seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a number of seconds in (0, {MAX_SECONDS}]")]
pub struct BadSeconds(String);

impl FromStr for Seconds {
    type Err = BadSeconds;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadSeconds(text.chars().take(32).collect());
        let secs: f64 = text.trim().parse().map_err(|_| bad())?;
        if !secs.is_finite() || secs <= 0.0 || secs > MAX_SECONDS {
            return Err(bad());
        }
        Ok(Seconds(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_fractions_and_refuse_what_is_not_a_positive_bounded_duration() {
        assert_eq!("3600".parse(), Ok(Seconds::from_secs(3600)));
        assert_eq!(
            "0.25".parse::<Seconds>().unwrap().get(),
            Duration::from_millis(250)
        );
        for bad in ["0", "-1", "NaN", "inf", "", "1h", "2592001"] {
            assert!(bad.parse::<Seconds>().is_err(), "{bad}");
        }
        assert_eq!(
            Seconds::from_secs(90).to_string().parse(),
            Ok(Seconds::from_secs(90))
        );
    }
}
