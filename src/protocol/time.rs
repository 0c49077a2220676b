//! Timestamps on the wire: RFC 3339 UTC with milliseconds and a `Z`
//! (`2025-11-18T10:30:00.000Z`), the form every seed's clients parse.

use chrono::{DateTime, SecondsFormat, Utc};

/// The current time as a wire timestamp.
pub fn now() -> String {
    format(Utc::now())
}

/// Formats an instant as a wire timestamp.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_millis_and_z() {
        let at = DateTime::parse_from_rfc3339("2025-11-18T10:30:00+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format(at), "2025-11-18T10:30:00.000Z");
    }
}
