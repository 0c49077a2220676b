//! Inbound rate limiting: the token-bucket arithmetic ([`TokenBucket`]), and
//! one session's budget built on it ([`Throttle`]): data messages and control
//! frames (pings, pongs) draw from separate buckets of the same rate and
//! size, so a ping flood cannot starve subscribes and subscribes cannot make
//! pings go unanswered. An over-rate message is rejected (the dialect sends
//! an `error`, the message has no effect; an over-rate ping gets no pong); a
//! client that keeps sending past the hard limit of rejections within one
//! second is closed with 4029. Pure bookkeeping on `Instant`s, no timers, and
//! small: it sits in every session's future.

use std::time::{Duration, Instant};

/// What to do with one client frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: handle it.
    Allow,
    /// Over the rate: reject it (an error reply for a message, no pong for a ping).
    Reject,
    /// Far over the rate: close the session (4029).
    Close,
}

/// Which bucket a frame draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// A complete text or binary message.
    Message,
    /// A ping or pong.
    Control,
}

/// A token bucket's state; its rate and size belong to its owner, so many
/// buckets can share one configuration. `f32` tokens are exact up to 16 million.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    /// Tokens available at `refilled`.
    tokens: f32,
    /// When `tokens` was last brought up to date.
    refilled: Instant,
}

impl TokenBucket {
    /// A bucket holding `size` tokens at `now`.
    pub fn full(size: f32, now: Instant) -> Self {
        TokenBucket {
            tokens: size,
            refilled: now,
        }
    }

    /// Refills at `rate` tokens a second up to `size`, then takes one token
    /// if there is one.
    pub fn take(&mut self, rate: f32, size: f32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f32();
        self.tokens = (self.tokens + elapsed * rate).min(size);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the bucket was last drawn from.
    pub fn last_draw(&self) -> Instant {
        self.refilled
    }
}

/// One session's inbound budget.
#[derive(Debug)]
pub struct Throttle {
    /// Tokens added per second to each bucket (sustained frames per second).
    rate: f32,
    /// Bucket size: frames that may arrive back to back.
    burst: f32,
    /// Rejections within one second that close the session.
    hard_limit: u32,
    /// Rejections (from either bucket) in the current one-second window.
    rejected: u32,
    /// Start of the current rejection window.
    window: Instant,
    /// Complete data messages.
    messages: TokenBucket,
    /// Pings and pongs.
    control: TokenBucket,
}

impl Throttle {
    /// Full buckets of `burst` frames refilled at `rate` per second each;
    /// `hard_limit` rejections within a second close the session.
    pub fn new(rate: u32, burst: u32, hard_limit: u32, now: Instant) -> Self {
        let burst = burst.max(1) as f32;
        Throttle {
            rate: rate.max(1) as f32,
            burst,
            hard_limit: hard_limit.max(1),
            rejected: 0,
            window: now,
            messages: TokenBucket::full(burst, now),
            control: TokenBucket::full(burst, now),
        }
    }

    /// Judges one frame of kind `draw` arriving at `now`.
    pub fn check(&mut self, draw: Draw, now: Instant) -> Verdict {
        let bucket = match draw {
            Draw::Message => &mut self.messages,
            Draw::Control => &mut self.control,
        };
        if bucket.take(self.rate, self.burst, now) {
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

    const M: Draw = Draw::Message;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, 10, 50, t0);
        for _ in 0..10 {
            assert_eq!(t.check(M, t0), Verdict::Allow);
        }
        assert_eq!(t.check(M, t0), Verdict::Reject);
        // 100 ms later one token is back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(t.check(M, t1), Verdict::Allow);
        assert_eq!(t.check(M, t1), Verdict::Reject);
    }

    #[test]
    fn sustained_rate_is_allowed() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, 1, 50, t0);
        for i in 0..100 {
            assert_eq!(
                t.check(M, t0 + Duration::from_millis(100 * i)),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn flood_past_hard_limit_closes() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, 10, 5, t0);
        let verdicts: Vec<_> = (0..20).map(|_| t.check(M, t0)).collect();
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
        assert_eq!(t.check(M, t0), Verdict::Allow);
        assert_eq!(t.check(M, t0), Verdict::Reject);
        assert_eq!(t.check(M, t0), Verdict::Reject);
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(t.check(M, t1), Verdict::Allow);
        assert_eq!(t.check(M, t1), Verdict::Reject);
    }

    #[test]
    fn messages_and_control_frames_have_separate_buckets_and_one_hard_limit() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, 2, 3, t0);
        assert_eq!(t.check(Draw::Control, t0), Verdict::Allow);
        assert_eq!(t.check(Draw::Control, t0), Verdict::Allow);
        assert_eq!(t.check(Draw::Control, t0), Verdict::Reject);
        // A ping flood has not used up the message budget ...
        assert_eq!(t.check(M, t0), Verdict::Allow);
        assert_eq!(t.check(M, t0), Verdict::Allow);
        // ... but rejections of both kinds count toward the close.
        assert_eq!(t.check(M, t0), Verdict::Reject);
        assert_eq!(t.check(Draw::Control, t0), Verdict::Reject);
        assert_eq!(t.check(M, t0), Verdict::Close);
    }

    #[test]
    fn a_bucket_refills_up_to_its_size() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(2.0, t0);
        assert!(bucket.take(1.0, 2.0, t0));
        assert!(bucket.take(1.0, 2.0, t0));
        assert!(!bucket.take(1.0, 2.0, t0));
        let later = t0 + Duration::from_secs(60);
        assert!(bucket.take(1.0, 2.0, later));
        assert!(bucket.take(1.0, 2.0, later));
        assert!(!bucket.take(1.0, 2.0, later));
        assert_eq!(bucket.last_draw(), later);
    }
}
