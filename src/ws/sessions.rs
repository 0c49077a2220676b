//! The session registry: every open WebSocket session on this node. It
//! enforces the connection cap (`WEBSOCKET_MAX_CONNECTIONS`), runs the one
//! heartbeat sweep for all sessions (ping the quiet, close the silent — no
//! timer per session), and closes every session with 1001 on drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::close_code::CloseCode;
use crate::delivery::outbox::{Delivery, Outbox};
use crate::dialect::DialectKind;
use crate::frame;
use crate::ids::{RoomId, SessionId};
use crate::telemetry::metrics;

/// What the registry knows of one session.
#[derive(Debug)]
pub struct SessionHandle {
    /// The session's outbox: the sweep queues pings and close requests here.
    pub outbox: Arc<Outbox>,
    /// The wire dialect, for status endpoints.
    pub dialect: DialectKind,
    /// Milliseconds since the registry's clock when the client last sent a frame.
    last_seen_ms: AtomicU64,
    /// Milliseconds since the registry's clock when the sweep last pinged
    /// this session, so a quiet session is pinged once per ping interval,
    /// not on every sweep.
    last_ping_ms: AtomicU64,
}

/// When the heartbeat sweep pings a quiet session and when it closes a
/// silent one (`ROOMCAST_PING_INTERVAL`, `ROOMCAST_HEARTBEAT_TIMEOUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Silence after which the session is pinged (and pinged again each time).
    pub ping_after: Duration,
    /// Silence after which the session is closed with 4000.
    pub timeout: Duration,
}

impl Default for Heartbeat {
    /// The configuration's defaults: ping after 20 s, close after 60 s.
    fn default() -> Self {
        Heartbeat {
            ping_after: Duration::from_secs(20),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Every session on this node.
#[derive(Debug)]
pub struct Sessions {
    /// Open sessions by id.
    map: DashMap<SessionId, Arc<SessionHandle>>,
    /// Sessions open or being upgraded; checked against `max` before the 101.
    reserved: AtomicUsize,
    /// `WEBSOCKET_MAX_CONNECTIONS`.
    max: usize,
    /// Origin of `last_seen_ms`.
    clock: Instant,
    /// What the sweep ([`Sessions::run_heartbeat`]) does with quiet sessions.
    heartbeat: Heartbeat,
}

/// A reserved connection slot; released on drop.
#[derive(Debug)]
pub struct Permit {
    /// The registry the slot belongs to.
    sessions: Arc<Sessions>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.sessions.reserved.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sessions {
    /// An empty registry allowing `max` concurrent sessions, sweeping them by `heartbeat`.
    pub fn new(max: usize, heartbeat: Heartbeat) -> Self {
        Sessions {
            map: DashMap::new(),
            reserved: AtomicUsize::new(0),
            max,
            clock: Instant::now(),
            heartbeat,
        }
    }

    /// Reserves a slot for a new session, or `None` at the cap.
    pub fn try_reserve(self: &Arc<Self>) -> Option<Permit> {
        let prev = self.reserved.fetch_add(1, Ordering::AcqRel);
        let permit = Permit {
            sessions: Arc::clone(self),
        };
        (prev < self.max).then_some(permit)
    }

    /// The configured cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Registers an open session.
    pub fn insert(
        &self,
        id: SessionId,
        outbox: Arc<Outbox>,
        dialect: DialectKind,
    ) -> Arc<SessionHandle> {
        let handle = Arc::new(SessionHandle {
            outbox,
            dialect,
            last_seen_ms: AtomicU64::new(self.now_ms()),
            last_ping_ms: AtomicU64::new(0),
        });
        self.map.insert(id, Arc::clone(&handle));
        handle
    }

    /// Forgets a closed session.
    pub fn remove(&self, id: SessionId) {
        self.map.remove(&id);
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// Records that a session's client sent a frame.
    pub fn touch(&self, handle: &SessionHandle) {
        handle.last_seen_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Starts closing every session with `code` (queued frames are flushed first).
    pub fn close_all(&self, code: CloseCode) {
        let outboxes: Vec<Arc<Outbox>> = self
            .map
            .iter()
            .map(|entry| Arc::clone(&entry.value().outbox))
            .collect();
        for outbox in outboxes {
            outbox.close(code);
        }
    }

    /// One heartbeat pass: close sessions silent for `timeout` (4000), ping
    /// those silent for `ping_after` and not pinged within the last
    /// `ping_after`. Returns `(pinged, closed)`.
    pub fn sweep(&self, ping_after: Duration, timeout: Duration, ping: &Bytes) -> (usize, usize) {
        self.sweep_at(self.now_ms(), ping_after, timeout, ping)
    }

    /// [`Sessions::sweep`] at `now` milliseconds of the registry's clock.
    fn sweep_at(
        &self,
        now: u64,
        ping_after: Duration,
        timeout: Duration,
        ping: &Bytes,
    ) -> (usize, usize) {
        let ping_after = ping_after.as_millis() as u64;
        let timeout = timeout.as_millis() as u64;
        let mut due: Vec<(Arc<Outbox>, bool)> = Vec::new();
        for entry in self.map.iter() {
            let idle = now.saturating_sub(entry.last_seen_ms.load(Ordering::Relaxed));
            if idle >= timeout {
                due.push((Arc::clone(&entry.outbox), true));
            } else if idle >= ping_after {
                let last_ping = entry.last_ping_ms.load(Ordering::Relaxed);
                let pinged_recently = last_ping != 0 && now.saturating_sub(last_ping) < ping_after;
                if !pinged_recently {
                    entry.last_ping_ms.store(now.max(1), Ordering::Relaxed);
                    due.push((Arc::clone(&entry.outbox), false));
                }
            }
        }
        let (mut pinged, mut closed) = (0, 0);
        for (outbox, close) in due {
            if close {
                if outbox.is_open() {
                    metrics().closed(CloseCode::IdleTimeout);
                    closed += 1;
                }
                outbox.close(CloseCode::IdleTimeout);
            } else {
                // Conflated: a lagging session gets one pending ping, and a
                // full queue is never a reason to close it.
                outbox.push(ping, Delivery::Conflate(RoomId::HEARTBEAT));
                pinged += 1;
            }
        }
        (pinged, closed)
    }

    /// Runs the heartbeat sweep until `shutdown`: every `ping_after / 2` (at
    /// most once a second), so a silent session is closed at most that much
    /// after `timeout`.
    pub async fn run_heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        let Heartbeat {
            ping_after,
            timeout,
        } = self.heartbeat;
        let period = (ping_after / 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let ping = frame::ping(b"roomcast");
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    let (pinged, closed) = self.sweep(ping_after, timeout, &ping);
                    if closed > 0 {
                        tracing::debug!(pinged, closed, "heartbeat sweep");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::outbox::Drain;

    #[test]
    fn cap_refuses_reservations_until_released() {
        let sessions = Arc::new(Sessions::new(2, Heartbeat::default()));
        let a = sessions.try_reserve().unwrap();
        let _b = sessions.try_reserve().unwrap();
        assert!(sessions.try_reserve().is_none());
        drop(a);
        assert!(sessions.try_reserve().is_some());
    }

    #[test]
    fn sweep_pings_quiet_and_closes_silent_sessions() {
        let sessions = Sessions::new(10, Heartbeat::default());
        let outbox = Arc::new(Outbox::new(8));
        sessions.insert(SessionId::next(), Arc::clone(&outbox), DialectKind::Seed001);
        let ping = frame::ping(b"x");
        // Not yet quiet.
        assert_eq!(
            sessions.sweep(Duration::from_secs(20), Duration::from_secs(60), &ping),
            (0, 0)
        );
        // Everything counts as quiet or silent with zero thresholds.
        assert_eq!(
            sessions.sweep(Duration::ZERO, Duration::from_secs(60), &ping),
            (1, 0)
        );
        assert_eq!(outbox.len(), 1);
        assert_eq!(
            sessions.sweep(Duration::ZERO, Duration::ZERO, &ping),
            (0, 1)
        );
        let mut batch = Vec::new();
        assert_eq!(outbox.drain_into(&mut batch, 64), Drain::Frames);
        assert_eq!(
            outbox.drain_into(&mut batch, 64),
            Drain::Close(CloseCode::IdleTimeout)
        );
    }

    #[test]
    fn a_quiet_session_is_pinged_once_per_interval_not_every_sweep() {
        let sessions = Sessions::new(10, Heartbeat::default());
        let outbox = Arc::new(Outbox::new(8));
        let handle = sessions.insert(SessionId::next(), Arc::clone(&outbox), DialectKind::Seed001);
        handle.last_seen_ms.store(0, Ordering::Relaxed);
        let ping = frame::ping(b"x");
        let (interval, timeout) = (Duration::from_secs(20), Duration::from_secs(60));
        // One sweep a second from 0 s to 59 s of silence: pings at 20 s and 40 s only.
        let pinged_at: Vec<u64> = (0..60)
            .filter(|s| sessions.sweep_at(s * 1000, interval, timeout, &ping) == (1, 0))
            .collect();
        assert_eq!(pinged_at, vec![20, 40]);
        assert_eq!(sessions.sweep_at(60_000, interval, timeout, &ping), (0, 1));
    }

    #[test]
    fn pinging_a_lagging_session_never_overflows_it() {
        let sessions = Sessions::new(10, Heartbeat::default());
        let outbox = Arc::new(Outbox::new(16));
        sessions.insert(SessionId::next(), Arc::clone(&outbox), DialectKind::Seed001);
        let price = frame::text(b"price");
        for _ in 0..16 {
            outbox.push(&price, Delivery::Conflate(RoomId(99)));
        }
        let ping = frame::ping(b"x");
        for _ in 0..5 {
            sessions.sweep(Duration::ZERO, Duration::from_secs(60), &ping);
        }
        assert!(outbox.is_open());
        assert_eq!(outbox.len(), 17, "16 queued frames plus one pending ping");
    }
}
