//! One subscriber connection's life, and the state all of them share.
//!
//! A subscriber connects, joins its room(s), waits for the dialect's
//! confirmations, reports itself ready (the publisher starts only when every
//! connection is ready or has failed), then reads frames until the run ends
//! (the task is aborted) or the server closes it. Per frame it does one
//! dialect check on the first bytes, one substring search for the scheduled
//! time and one histogram record under its shard's (uncontended) lock:
//! nothing is allocated and no JSON is parsed. A *slow* subscriber instead
//! stops reading after joining, until told to resume, and then reports what
//! it finds queued for it (a prefix and a 4008 close, or conflated prices).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::timeout_at;

use crate::clock::Clock;
use crate::dialect::{Classified, Dialect};
use crate::stats::Shard;
use crate::target::Target;
use crate::ws::{self, OpCode, ReadError, WsClient};

/// State shared by every connection task, the publisher and the scenario.
pub struct Ctx {
    /// The server's protocol.
    pub dialect: Box<dyn Dialect>,
    /// Servers to connect subscribers to (round-robin by connection id).
    pub targets: Vec<Target>,
    /// Room names (`<prefix><i>`), indexed by room number.
    pub rooms: Vec<String>,
    /// The one clock for scheduled and receive times.
    pub clock: Clock,
    /// Per-thread statistics (see [`crate::stats`]).
    pub shards: Vec<Shard>,
    /// Connections that joined all their rooms (the publish barrier).
    pub ready: AtomicUsize,
    /// Slow consumers among `ready` (they are not counted in `room_subs`).
    pub slow_ready: AtomicUsize,
    /// Connections that failed to connect or join.
    pub failed: AtomicUsize,
    /// Ready connections that ended before the run did (closed by the server, reset).
    pub closed: AtomicUsize,
    /// Ready *fast* subscribers per delivery room: expected deliveries of a
    /// publish = this count for its room.
    pub room_subs: Vec<AtomicU64>,
    /// Bound on TCP connect + WebSocket handshake.
    pub connect_timeout: Duration,
    /// Bound on waiting for the subscription confirmations.
    pub subscribe_timeout: Duration,
    /// Flipped to `true` when slow subscribers should start reading again.
    pub resume: watch::Sender<bool>,
    /// How long a resumed slow subscriber may read before giving up.
    pub slow_drain: Duration,
    /// What each slow subscriber found once it read again.
    pub slow_outcomes: Mutex<Vec<SlowOutcome>>,
}

impl Ctx {
    /// The shard of connection `id`.
    pub fn shard(&self, id: usize) -> &Shard {
        &self.shards[id % self.shards.len()]
    }

    /// Events delivered so far, over all shards.
    pub fn delivered(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.stats.lock().delivered_total())
            .sum()
    }
}

/// Which connection to open.
#[derive(Debug, Clone)]
pub struct ConnSpec {
    /// Connection number (shard, target and room assignment derive from it).
    pub id: usize,
    /// Index into [`Ctx::targets`].
    pub target: usize,
    /// Room numbers to join.
    pub rooms: Vec<usize>,
    /// A slow consumer: stops reading once joined, until resumed.
    pub slow: bool,
    /// Receive buffer size for the socket (small for slow consumers), or the OS default.
    pub rcvbuf: Option<u32>,
}

/// What a slow subscriber saw after it resumed reading.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SlowOutcome {
    /// Events it read (all queued for it while it was not reading, then any after).
    pub events: u64,
    /// Scheduled time of the last event it read: equal to the last published
    /// one means conflation kept it current.
    pub last_ts: Option<u64>,
    /// Close code it received, if the server closed it (4008 = slow consumer).
    pub close_code: Option<u16>,
    /// It ended without a close frame (reset, EOF) — e.g. dropped after a stalled write.
    pub dropped: bool,
    /// Still open when the drain ended (conflated, not closed).
    pub open: bool,
}

/// The code of a close frame's payload, if it carries one.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

/// A short reason for a read error, for counting.
pub fn read_error(e: &ReadError) -> String {
    e.reason()
}

/// Connects, joins, and waits for the confirmations. On success returns the
/// socket; on failure has counted the reason and returns `None`.
pub async fn open_and_join(ctx: &Ctx, spec: &ConnSpec) -> Option<WsClient> {
    let shard = ctx.shard(spec.id);
    let fail = |reason: &str| {
        shard.stats.lock().failed(reason);
        ctx.failed.fetch_add(1, Ordering::Relaxed);
    };
    let rooms: Vec<String> = spec.rooms.iter().map(|&r| ctx.rooms[r].clone()).collect();
    let target = &ctx.targets[spec.target];
    let path = ctx.dialect.ws_path_for(spec.id, &rooms);

    let started = Instant::now();
    let mut ws =
        match tokio::time::timeout(ctx.connect_timeout, ws::connect(target, &path, spec.rcvbuf))
            .await
        {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                fail(&e.reason());
                return None;
            }
            Err(_) => {
                fail("connect timeout");
                return None;
            }
        };
    let connected = Instant::now();
    shard
        .stats
        .lock()
        .connect
        .saturating_record(connected.duration_since(started).as_micros() as u64);

    for message in ctx.dialect.subscribe_messages(&rooms) {
        if let Err(e) = ws.send_text(message.as_bytes()).await {
            fail(&format!("subscribe write: {}", read_error(&e.into())));
            return None;
        }
    }
    let need = ctx.dialect.confirmations(rooms.len());
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + ctx.subscribe_timeout;
    while got < need {
        let (opcode, payload) = match timeout_at(deadline, ws.next_frame()).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => {
                fail(&format!("subscribe: {}", read_error(&e)));
                return None;
            }
            Err(_) => {
                fail("subscribe timeout");
                return None;
            }
        };
        match opcode {
            OpCode::Text | OpCode::Binary => match ctx.dialect.classify(&payload) {
                Classified::Confirm => got += 1,
                Classified::Error => {
                    fail("error reply to subscribe");
                    return None;
                }
                Classified::Event(ts) => {
                    let now = ctx.clock.now_us();
                    shard.stats.lock().delivered(ts, now);
                }
                Classified::Other => {}
            },
            OpCode::Close => {
                let code =
                    close_code(&payload).map_or("close".to_string(), |c| format!("close {c}"));
                fail(&format!("subscribe: {code}"));
                return None;
            }
            _ => {}
        }
    }
    shard
        .stats
        .lock()
        .subscribe
        .saturating_record(connected.elapsed().as_micros() as u64);
    Some(ws)
}

/// A subscriber's whole life. `permit` bounds connections being opened at
/// once (the ramp's `--max-pending`); it is released once joined or failed.
pub async fn subscriber(ctx: Arc<Ctx>, spec: ConnSpec, permit: OwnedSemaphorePermit) {
    let Some(mut ws) = open_and_join(&ctx, &spec).await else {
        return;
    };
    if !spec.slow {
        for &r in &spec.rooms {
            ctx.room_subs[ctx.dialect.delivery_room(r)].fetch_add(1, Ordering::Relaxed);
        }
    }
    if spec.slow {
        ctx.slow_ready.fetch_add(1, Ordering::Relaxed);
    }
    ctx.ready.fetch_add(1, Ordering::Relaxed);
    drop(permit);

    if spec.slow {
        slow(&ctx, ws).await;
        return;
    }
    let shard = ctx.shard(spec.id);
    let dialect = &*ctx.dialect;
    // Per read: one clock read and one lock of the shard for every frame it
    // brought (frames read together arrived together).
    let reason = loop {
        if let Err(e) = ws.read_more().await {
            break read_error(&e);
        }
        let mut close = None;
        let taken = {
            let mut now = None;
            let mut stats = None;
            ws.take_frames(|frame| match frame.opcode {
                OpCode::Text | OpCode::Binary => match dialect.classify(frame.payload) {
                    Classified::Event(ts) => {
                        let now = *now.get_or_insert_with(|| ctx.clock.now_us());
                        stats
                            .get_or_insert_with(|| shard.stats.lock())
                            .delivered(ts, now);
                    }
                    Classified::Error => {
                        stats
                            .get_or_insert_with(|| shard.stats.lock())
                            .error_replies += 1
                    }
                    Classified::Confirm | Classified::Other => {}
                },
                OpCode::Close => {
                    close = Some(
                        close_code(frame.payload).map_or("close".to_string(), |c| c.to_string()),
                    );
                }
                _ => {}
            })
        };
        let replied = ws.send_replies().await;
        if let Some(reason) = close {
            break reason;
        }
        if let Err(e) = taken {
            break read_error(&e);
        }
        if let Err(e) = replied {
            break read_error(&e.into());
        }
    };
    ctx.closed.fetch_add(1, Ordering::Relaxed);
    shard.stats.lock().closed(&reason);
}

/// A slow consumer: reads nothing until resumed, then drains what is queued
/// until the server closes it, it goes quiet for 2 s, or `ctx.slow_drain` ends.
async fn slow(ctx: &Ctx, mut ws: WsClient) {
    let mut resume = ctx.resume.subscribe();
    // The scenario always resumes (or aborts) slow consumers; this cannot hang.
    let _ = resume.wait_for(|&go| go).await;
    let mut outcome = SlowOutcome::default();
    let deadline = tokio::time::Instant::now() + ctx.slow_drain;
    loop {
        let quiet = (tokio::time::Instant::now() + Duration::from_secs(2)).min(deadline);
        match timeout_at(quiet, ws.next_frame()).await {
            Ok(Ok((opcode, payload))) => match opcode {
                OpCode::Text | OpCode::Binary => {
                    if let Classified::Event(ts) = ctx.dialect.classify(&payload) {
                        outcome.events += 1;
                        outcome.last_ts = Some(ts);
                    }
                }
                OpCode::Close => {
                    outcome.close_code = close_code(&payload);
                    break;
                }
                _ => {}
            },
            Ok(Err(_)) => {
                outcome.dropped = true;
                break;
            }
            Err(_) => {
                outcome.open = true;
                break;
            }
        }
    }
    ctx.slow_outcomes.lock().push(outcome);
}

/// How one churn cycle ended.
pub enum Cycle {
    /// Connected, joined, closed cleanly (and counted).
    Ok,
    /// Failed (already counted in the shard by reason).
    Failed,
}

/// One churn cycle: connect, join, close with 1000 and wait (≤ 2 s) for the
/// server's close reply, as a well-behaved client that leaves would.
pub async fn churn_cycle(ctx: Arc<Ctx>, spec: ConnSpec, count: Arc<AtomicU64>) -> Cycle {
    let Some(mut ws) = open_and_join(&ctx, &spec).await else {
        return Cycle::Failed;
    };
    let shard = ctx.shard(spec.id);
    if let Err(e) = ws.send_close(1000).await {
        shard
            .stats
            .lock()
            .failed(&format!("close write: {}", read_error(&e.into())));
        ctx.failed.fetch_add(1, Ordering::Relaxed);
        return Cycle::Failed;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match timeout_at(deadline, ws.next_frame()).await {
            Ok(Ok((OpCode::Close, _))) => break,
            Ok(Ok(_)) => {}
            // The server may reset or end the connection right after its close: fine.
            Ok(Err(_)) => break,
            Err(_) => {
                shard.stats.lock().failed("no close reply in 2 s");
                ctx.failed.fetch_add(1, Ordering::Relaxed);
                return Cycle::Failed;
            }
        }
    }
    count.fetch_add(1, Ordering::Relaxed);
    Cycle::Ok
}
