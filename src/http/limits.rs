//! The HTTP phase's bounds, a section of [`crate::Config`]: how long a client
//! may take to send a request head and a body, how long a kept-alive
//! connection may sit idle, and how large a head and a body may be. Without
//! them a socket that sends nothing, or one header byte a second, holds a
//! descriptor and its buffers forever; with them every connection that is not
//! an upgraded WebSocket ends in bounded time (see `docs/limits.md`).

use crate::config_error::{ConfigError, check_range, check_secs, invalid};
use crate::seconds::Seconds;

/// Timeouts and sizes of the HTTP phase (before any WebSocket upgrade).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct HttpLimits {
    /// Seconds a client may take to send a complete request head, counted
    /// from the connection's start or the previous response; then the
    /// connection is closed.
    #[arg(
        long = "header-timeout",
        env = "ROOMCAST_HEADER_TIMEOUT",
        default_value_t = Seconds::from_secs(10)
    )]
    pub header_timeout: Seconds,

    /// Seconds a client may take to send a request body once its head has
    /// arrived; then 408 and the connection is closed.
    #[arg(
        long = "body-timeout",
        env = "ROOMCAST_BODY_TIMEOUT",
        default_value_t = Seconds::from_secs(10)
    )]
    pub body_timeout: Seconds,

    /// Seconds a kept-alive connection may wait for its next request before
    /// it is closed (at most ROOMCAST_HEADER_TIMEOUT, which also runs then).
    #[arg(
        long = "keepalive-timeout",
        env = "ROOMCAST_KEEPALIVE_TIMEOUT",
        default_value_t = Seconds::from_secs(5)
    )]
    pub keepalive_timeout: Seconds,

    /// Largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, env = "ROOMCAST_MAX_HEADER_SIZE", default_value_t = 16_384)]
    pub max_header_size: usize,

    /// Largest HTTP request body in bytes; larger gets 413.
    #[arg(long, env = "ROOMCAST_MAX_BODY_SIZE", default_value_t = 65_536)]
    pub max_body_size: usize,
}

impl HttpLimits {
    /// Rejects values the server cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs("ROOMCAST_HEADER_TIMEOUT", self.header_timeout.get())?;
        check_secs("ROOMCAST_BODY_TIMEOUT", self.body_timeout.get())?;
        check_secs("ROOMCAST_KEEPALIVE_TIMEOUT", self.keepalive_timeout.get())?;
        if self.keepalive_timeout > self.header_timeout {
            return Err(invalid(
                "ROOMCAST_KEEPALIVE_TIMEOUT",
                "must not exceed ROOMCAST_HEADER_TIMEOUT: the header timeout also runs while a kept-alive connection waits for its next request",
            ));
        }
        // hyper's read buffer cannot be smaller than 8 KiB.
        check_range(
            "ROOMCAST_MAX_HEADER_SIZE",
            self.max_header_size,
            1024,
            1 << 20,
        )?;
        check_range("ROOMCAST_MAX_BODY_SIZE", self.max_body_size, 128, 64 << 20)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn defaults_are_bounded_and_valid() {
        let limits = Config::default().http;
        limits.validate().unwrap();
        assert_eq!(limits.header_timeout.get().as_secs(), 10);
        assert_eq!(limits.body_timeout.get().as_secs(), 10);
        assert_eq!(limits.keepalive_timeout.get().as_secs(), 5);
        assert_eq!(limits.max_body_size, 65_536);
    }

    #[test]
    fn keepalive_longer_than_the_header_timeout_is_refused() {
        let mut limits = Config::default().http;
        limits.keepalive_timeout = crate::seconds::Seconds::from_secs(30);
        assert_eq!(
            limits.validate().unwrap_err().name,
            "ROOMCAST_KEEPALIVE_TIMEOUT"
        );
    }
}
