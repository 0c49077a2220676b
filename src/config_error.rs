//! Why a setting was refused, and the checks every configuration section
//! shares: a value's range, a duration in seconds. Sections owned by other
//! modules ([`crate::http::limits::HttpLimits`], [`crate::peers::PeerLimits`])
//! validate themselves with these, so they need nothing else of
//! [`crate::config`].

/// A setting that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}: {message}")]
pub struct ConfigError {
    /// The environment variable (or flag) at fault.
    pub name: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// A [`ConfigError`] for `name`.
pub fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        message: message.into(),
    }
}

/// Checks that a duration setting (already a positive number of seconds,
/// [`crate::seconds::Seconds`]) is at most a day.
pub fn check_secs(name: &'static str, value: std::time::Duration) -> Result<(), ConfigError> {
    if value > std::time::Duration::from_secs(86_400) {
        return Err(invalid(
            name,
            format!("{} s is more than a day (86400 s)", value.as_secs_f64()),
        ));
    }
    Ok(())
}

/// Checks that `value` is in `[min, max]`.
pub fn check_range(
    name: &'static str,
    value: usize,
    min: usize,
    max: usize,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(invalid(name, format!("{value} is not in [{min}, {max}]")));
    }
    Ok(())
}
