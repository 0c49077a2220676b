//! Inbound rate limiting for one session: a token bucket (sustained rate plus
//! a bucket size for bursts). An over-rate message is rejected (the dialect
//! sends an `error` and the message has no effect); a client that keeps
//! sending past the hard limit of rejections within one second is closed with
//! 4029. Pure bookkeeping on `Instant`s, no timers.

use std::time::{Duration, Instant};

/// What to do with one client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: handle it.
    Allow,
    /// Over the rate: reply with an error, do not handle it.
    Reject,
    /// Far over the rate: close the session (4029).
    Close,
}

/// Per-session token bucket.
#[derive(Debug)]
pub struct Throttle {
    /// Tokens added per second (sustained messages per second).
    rate: f64,
    /// Bucket size: messages that may arrive back to back.
    burst: f64,
    /// Tokens available now.
    tokens: f64,
    /// When `tokens` was last refilled.
    refilled: Instant,
    /// Rejections within one second that close the session.
    hard_limit: u32,
    /// Rejections in the current one-second window.
    rejected: u32,
    /// Start of the current rejection window.
    window: Instant,
}

impl Throttle {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, hard_limit: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Throttle {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            refilled: now,
            hard_limit: hard_limit.max(1),
            rejected: 0,
            window: now,
        }
    }

    /// Judges one message arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.rejected = 0;
        }
        self.rejected += 1;
        if self.rejected > self.hard_limit {
            Verdict::Close
        } else {
            Verdict::Reject
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, 10, 50, t0);
        for _ in 0..10 {
            assert_eq!(t.check(t0), Verdict::Allow);
        }
        assert_eq!(t.check(t0), Verdict::Reject);
        // 100 ms later one token is back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(t.check(t1), Verdict::Allow);
        assert_eq!(t.check(t1), Verdict::Reject);
    }

    #[test]
    fn sustained_rate_is_allowed() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, 1, 50, t0);
        for i in 0..100 {
            assert_eq!(t.check(t0 + Duration::from_millis(100 * i)), Verdict::Allow);
        }
    }

    #[test]
    fn flood_past_hard_limit_closes() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, 10, 5, t0);
        let verdicts: Vec<_> = (0..20).map(|_| t.check(t0)).collect();
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Allow).count(),
            10
        );
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Reject).count(),
            5
        );
        assert_eq!(verdicts[15], Verdict::Close);
    }

    #[test]
    fn rejection_window_resets_each_second() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1, 1, 2, t0);
        assert_eq!(t.check(t0), Verdict::Allow);
        assert_eq!(t.check(t0), Verdict::Reject);
        assert_eq!(t.check(t0), Verdict::Reject);
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(t.check(t1), Verdict::Allow);
        assert_eq!(t.check(t1), Verdict::Reject);
    }
}
