//! `trading`: seed 004's price batches to N clients over K symbol sets.
//!
//! Client i opens `/ws?client_id=lt-<i>` (roomcast auto-subscribes it at
//! once) and, when K > 1, narrows its prices to set i mod K; then it only
//! reads. Nothing is published by the generator: every
//! `WEBSOCKET_PRICE_UPDATE_INTERVAL` the server sends one `price_update`
//! batch per distinct set (a *round*; all of a round's batches carry the
//! same `timestamp`, taken when the round starts), plus the paper
//! account's `signal`, `trade_executed` and `portfolio_update`.
//!
//! The measured window is a whole number of intervals whose ends fall
//! midway between rounds, so every round in it is complete and none
//! straddles an edge. For each client: its set's batches whose `timestamp`
//! is in the window (received, duplicates, batches of another set),
//! latency = receive time − `timestamp` (the server's round start, to the
//! millisecond), intervals between consecutive batches as received.
//! Rounds are the distinct `(set, timestamp)` seen by any client; a
//! client's loss is its set's rounds minus the batches it received.
//!
//! Server CPU: `utime + stime` over the window ÷ rounds (everything the
//! server did, the paper account's events and pings included), and an
//! attribution from a 10 ms series of the server threads' run time
//! (`/proc/PID/task/*/schedstat`, ns): each round's CPU between its start
//! and its last delivery, minus the CPU rate of the window's quiet time
//! (no fan-out in flight), over the rounds no other fan-out overlapped.
//! roomcast's `/metrics` counters (events published, frames and bytes sent,
//! socket writes) are read at both ends of the window.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tokio::sync::OwnedSemaphorePermit;

use super::{Phases, Run, merged};
use crate::cli::TradingArgs;
use crate::clock::Clock;
use crate::conn::{self, ConnSpec, Ctx};
use crate::dialect::DialectKind;
use crate::dialect::seed004::{self, PRICE_UPDATE, Seed004, SetSignature};
use crate::publish::{self, prom_value};
use crate::report::{Report, Spread, TradingCounters, TradingCpu, TradingReport};
use crate::stats::{Pcts, histogram};
use crate::ws::OpCode;

/// The paper account's event types, counted and timed like rounds (their
/// fan-outs are excluded from the price rounds' CPU).
const OTHER_TYPES: [&[u8]; 3] = [
    br#"{"type":"signal""#,
    br#"{"type":"trade_executed""#,
    br#"{"type":"portfolio_update""#,
];
/// Names of the frame kinds counted in the report.
const KIND_NAMES: [&str; 6] = [
    "price_update (own set)",
    "price_update (another set)",
    "signal",
    "trade_executed",
    "portfolio_update",
    "other",
];

/// One client's counters (atomics: the task is aborted at the end).
#[derive(Default)]
struct Slot {
    /// Connected (and narrowed): counted in the expected deliveries.
    joined: AtomicBool,
    /// Its set's batches with a timestamp in the window (duplicates excluded).
    received: AtomicU32,
    /// Receive time of its set's first batch, µs (0 = none yet).
    first_us: AtomicU64,
}

/// Delivery of one round (or one paper-account event) as the clients saw it.
#[derive(Debug, Clone, Copy, Default)]
struct RoundRecv {
    /// Frames received.
    delivered: u64,
    /// Earliest and latest receive time, µs.
    first_recv: u64,
    last_recv: u64,
}

impl RoundRecv {
    fn add(&mut self, now: u64) {
        if self.delivered == 0 || now < self.first_recv {
            self.first_recv = now;
        }
        self.last_recv = self.last_recv.max(now);
        self.delivered += 1;
    }

    fn merge(&mut self, o: &RoundRecv) {
        if o.delivered == 0 {
            return;
        }
        if self.delivered == 0 || o.first_recv < self.first_recv {
            self.first_recv = o.first_recv;
        }
        self.last_recv = self.last_recv.max(o.last_recv);
        self.delivered += o.delivered;
    }
}

/// What one shard's clients recorded.
struct TShard {
    /// Latency of in-window batches of the client's set, µs.
    latency: Histogram<u64>,
    /// Receive-to-receive interval of consecutive in-window batches, µs.
    interval: Histogram<u64>,
    /// Connected → first batch of the client's set, µs.
    first: Histogram<u64>,
    /// In-window rounds: (set, timestamp µs) → delivery.
    rounds: BTreeMap<(usize, u64), RoundRecv>,
    /// Paper-account events near the window: (kind, timestamp µs) → delivery.
    others: BTreeMap<(usize, u64), RoundRecv>,
    /// Frames by kind ([`KIND_NAMES`]) and their payload bytes.
    frames: [u64; 6],
    bytes: [u64; 6],
    /// Own-set batches received twice (same timestamp as the previous one).
    duplicates: u64,
    /// Own-set batches outside the window.
    outside: u64,
    /// Gaps between consecutive own-set batches longer than 1.5 intervals,
    /// in missed intervals.
    gap_missed: u64,
}

impl Default for TShard {
    fn default() -> Self {
        TShard {
            latency: histogram(),
            interval: histogram(),
            first: histogram(),
            rounds: BTreeMap::new(),
            others: BTreeMap::new(),
            frames: [0; 6],
            bytes: [0; 6],
            duplicates: 0,
            outside: 0,
            gap_missed: 0,
        }
    }
}

impl TShard {
    fn merge(&mut self, o: &TShard) {
        self.latency.add(&o.latency).expect("same bounds");
        self.interval.add(&o.interval).expect("same bounds");
        self.first.add(&o.first).expect("same bounds");
        for (k, r) in &o.rounds {
            self.rounds.entry(*k).or_default().merge(r);
        }
        for (k, r) in &o.others {
            self.others.entry(*k).or_default().merge(r);
        }
        for i in 0..6 {
            self.frames[i] += o.frames[i];
            self.bytes[i] += o.bytes[i];
        }
        self.duplicates += o.duplicates;
        self.outside += o.outside;
        self.gap_missed += o.gap_missed;
    }
}

/// State every client task shares with the scenario.
struct Shared {
    /// Parses timestamps.
    dialect: Seed004,
    /// One per set (same index as the ctx's rooms).
    sigs: Vec<SetSignature>,
    /// One per connection id.
    slots: Vec<Slot>,
    /// Clients that received their set's first batch.
    firsts: AtomicUsize,
    /// Latest own-set batch timestamp seen by anyone, µs.
    latest_ts: AtomicU64,
    /// The window, µs since the epoch (`u64::MAX` = not started).
    start_us: AtomicU64,
    end_us: AtomicU64,
    /// Paper-account events are kept from this time on (window start − 5 s).
    others_from_us: AtomicU64,
    /// The server's batch interval, µs.
    interval_us: u64,
    /// Statistics, one per runtime thread.
    shards: Vec<Mutex<TShard>>,
}

impl Shared {
    fn shard(&self, id: usize) -> &Mutex<TShard> {
        &self.shards[id % self.shards.len()]
    }
}

/// Per-client state kept in its task.
struct Client {
    set: usize,
    id: usize,
    connected_us: u64,
    /// Timestamp and receive time of its set's previous batch.
    last_ts: Option<u64>,
    last_recv: Option<u64>,
}

impl Client {
    /// Records one text frame received at `now`.
    fn frame(&mut self, sh: &Shared, stats: &mut TShard, payload: &[u8], now: u64) {
        let start = sh.start_us.load(Ordering::Relaxed);
        let end = sh.end_us.load(Ordering::Relaxed);
        if payload.starts_with(PRICE_UPDATE) {
            let Some(ts) = sh.dialect.timestamp_us(payload) else {
                stats.frames[5] += 1;
                stats.bytes[5] += payload.len() as u64;
                return;
            };
            if !sh.sigs[self.set].matches(payload) {
                stats.frames[1] += 1;
                stats.bytes[1] += payload.len() as u64;
                return;
            }
            stats.frames[0] += 1;
            stats.bytes[0] += payload.len() as u64;
            let slot = &sh.slots[self.id];
            if slot.first_us.load(Ordering::Relaxed) == 0 {
                slot.first_us.store(now, Ordering::Relaxed);
                stats
                    .first
                    .saturating_record(now.saturating_sub(self.connected_us));
                sh.firsts.fetch_add(1, Ordering::Relaxed);
            }
            sh.latest_ts.fetch_max(ts, Ordering::Relaxed);
            if self.last_ts == Some(ts) {
                stats.duplicates += 1;
                return;
            }
            let in_window = ts >= start && ts < end;
            if in_window {
                slot.received.fetch_add(1, Ordering::Relaxed);
                stats.latency.saturating_record(now.saturating_sub(ts));
                stats.rounds.entry((self.set, ts)).or_default().add(now);
                if let (Some(last_ts), Some(last_recv)) = (self.last_ts, self.last_recv)
                    && last_ts >= start
                {
                    stats
                        .interval
                        .saturating_record(now.saturating_sub(last_recv));
                    let gap = ts.saturating_sub(last_ts);
                    if gap * 2 > sh.interval_us * 3 {
                        let intervals = (gap + sh.interval_us / 2) / sh.interval_us;
                        stats.gap_missed += intervals.saturating_sub(1);
                    }
                }
            } else {
                stats.outside += 1;
            }
            self.last_ts = Some(ts);
            self.last_recv = Some(now);
            return;
        }
        let kind = OTHER_TYPES
            .iter()
            .position(|p| payload.starts_with(p))
            .map_or(5, |i| i + 2);
        stats.frames[kind] += 1;
        stats.bytes[kind] += payload.len() as u64;
        if kind < 5
            && let Some(ts) = sh.dialect.timestamp_us(payload)
            && ts >= sh.others_from_us.load(Ordering::Relaxed)
        {
            stats.others.entry((kind, ts)).or_default().add(now);
        }
    }
}

/// One client's life: connect (and narrow), then read until aborted.
async fn client(ctx: Arc<Ctx>, sh: Arc<Shared>, spec: ConnSpec, permit: OwnedSemaphorePermit) {
    let Some(mut ws) = conn::open_and_join(&ctx, &spec).await else {
        return;
    };
    let set = spec.rooms[0];
    sh.slots[spec.id].joined.store(true, Ordering::Relaxed);
    ctx.room_subs[set].fetch_add(1, Ordering::Relaxed);
    ctx.ready.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    let mut me = Client {
        set,
        id: spec.id,
        connected_us: ctx.clock.now_us(),
        last_ts: None,
        last_recv: None,
    };
    let shard = sh.shard(spec.id);
    let reason = loop {
        if let Err(e) = ws.read_more().await {
            break conn::read_error(&e);
        }
        let mut close = None;
        let taken = {
            let now = ctx.clock.now_us();
            let mut stats = None;
            ws.take_frames(|frame| match frame.opcode {
                OpCode::Text | OpCode::Binary => {
                    let stats = stats.get_or_insert_with(|| shard.lock());
                    me.frame(&sh, stats, frame.payload, now);
                }
                OpCode::Close => {
                    close = Some(
                        conn::close_code(frame.payload)
                            .map_or("close".to_string(), |c| c.to_string()),
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
            break conn::read_error(&e);
        }
        if let Err(e) = replied {
            break conn::read_error(&e.into());
        }
    };
    ctx.closed.fetch_add(1, Ordering::Relaxed);
    ctx.shard(spec.id).stats.lock().closed(&reason);
}

// ---------------------------------------------------------------------------
// Server CPU time series

/// Cumulative CPU time of every thread of each of `pids` (ns, from each
/// thread's `schedstat`), sampled every `every` on its own OS thread
/// (tokio's timer would quantise to 1 ms and share the runtime with
/// 15,000 clients).
struct CpuSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<Vec<(u64, u64)>>>,
}

/// The run time (ns) of each thread of `pid`.
fn thread_runtimes(pid: u32, into: &mut HashMap<u32, u64>) {
    into.clear();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat"))
            && let Some(ns) = text.split_whitespace().next().and_then(|v| v.parse().ok())
        {
            into.insert(tid, ns);
        }
    }
}

impl CpuSampler {
    fn start(pids: Vec<u32>, clock: Clock, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut last: Vec<HashMap<u32, u64>> = pids.iter().map(|_| HashMap::new()).collect();
            let mut now = HashMap::new();
            let mut totals = vec![0u64; pids.len()];
            let mut series: Vec<Vec<(u64, u64)>> = pids.iter().map(|_| Vec::new()).collect();
            for (i, &pid) in pids.iter().enumerate() {
                thread_runtimes(pid, &mut last[i]);
                series[i].push((clock.now_us(), 0));
            }
            let mut next = std::time::Instant::now() + every;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
                next += every;
                for (i, &pid) in pids.iter().enumerate() {
                    thread_runtimes(pid, &mut now);
                    let at = clock.now_us();
                    for (tid, ns) in &now {
                        // A thread born since the last sample ran only since then.
                        totals[i] += ns.saturating_sub(last[i].get(tid).copied().unwrap_or(0));
                    }
                    std::mem::swap(&mut last[i], &mut now);
                    series[i].push((at, totals[i]));
                }
            }
            series
        });
        CpuSampler { stop, handle }
    }

    fn finish(self) -> Vec<Vec<(u64, u64)>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// `utime` and `stime` of `pid`, ticks.
fn user_system_ticks(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// One process's CPU over the window, split into fan-outs and quiet time.
struct Attributed {
    /// CPU over the window, ns.
    total_ns: f64,
    /// CPU rate while no fan-out was in flight, ns per ns.
    quiet_rate: f64,
    /// Time with a fan-out in flight, µs.
    busy_us: u64,
    /// Each clean round's CPU above the quiet rate, ns; its span, µs;
    /// its deliveries.
    rounds: Vec<(f64, u64, u64)>,
}

/// Splits `series`' CPU over `[start, end)`: `rounds` are the price rounds
/// (start, last delivery, deliveries), `others` the paper-account fan-outs.
fn attribute(
    series: &[(u64, u64)],
    start: u64,
    end: u64,
    rounds: &[(u64, u64, u64)],
    others: &[(u64, u64)],
) -> Attributed {
    let busy = union(
        rounds
            .iter()
            .map(|&(a, b, _)| (a, b))
            .chain(others.iter().copied())
            .map(|(a, b)| (a.max(start), b.min(end)))
            .filter(|(a, b)| a < b)
            .collect(),
    );
    let busy_us: u64 = busy.iter().map(|(a, b)| b - a).sum();
    let busy_cpu: f64 = busy.iter().map(|&(a, b)| cpu_between(series, a, b)).sum();
    let total_ns = cpu_between(series, start, end);
    let quiet_us = ((end - start) as f64 - busy_us as f64).max(1.0);
    let quiet_rate = (total_ns - busy_cpu).max(0.0) / (quiet_us * 1000.0);
    let rounds = rounds
        .iter()
        .filter(|&&(a, b, _)| {
            !others
                .iter()
                .any(|&(oa, ob)| oa < b + 20_000 && a < ob + 20_000)
        })
        .map(|&(a, b, delivered)| {
            let ns = cpu_between(series, a, b) - quiet_rate * (b - a) as f64 * 1000.0;
            (ns, b - a, delivered)
        })
        .collect();
    Attributed {
        total_ns,
        quiet_rate,
        busy_us,
        rounds,
    }
}

/// Cumulative CPU ns at `t` (linear between samples, clamped at the ends).
fn cpu_at(series: &[(u64, u64)], t: u64) -> f64 {
    match series.partition_point(|&(at, _)| at <= t) {
        0 => series.first().map_or(0.0, |s| s.1 as f64),
        i if i == series.len() => series.last().map_or(0.0, |s| s.1 as f64),
        i => {
            let (t0, c0) = series[i - 1];
            let (t1, c1) = series[i];
            let f = (t - t0) as f64 / (t1 - t0).max(1) as f64;
            c0 as f64 + f * (c1 as f64 - c0 as f64)
        }
    }
}

/// CPU ns within `[a, b)`.
fn cpu_between(series: &[(u64, u64)], a: u64, b: u64) -> f64 {
    (cpu_at(series, b) - cpu_at(series, a)).max(0.0)
}

/// Merges overlapping spans (sorted by start).
fn union(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

async fn counters(run: &Run) -> Option<String> {
    let (status, body) = publish::get(&run.publish_target, "/metrics").await?;
    (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
}

fn delta(a: &Option<String>, b: &Option<String>, name: &str) -> Option<f64> {
    Some(prom_value(b.as_deref()?, name)? - prom_value(a.as_deref()?, name)?)
}

/// Runs the trading scenario.
pub async fn run(run: &mut Run, args: &TradingArgs) -> anyhow::Result<Report> {
    if !matches!(
        run.common.dialect,
        DialectKind::Seed001 | DialectKind::Seed004
    ) {
        anyhow::bail!("the trading scenario speaks seed 004 (roomcast's /ws) only");
    }
    let symbols: Vec<String> = args.symbols.iter().map(|s| s.to_uppercase()).collect();
    let Some(sets) = seed004::symbol_sets(&symbols, args.sets) else {
        anyhow::bail!(
            "--sets {}: {} symbols have fewer distinct proper subsets",
            args.sets,
            symbols.len()
        );
    };
    let k = sets.len();
    let n = run.common.connections;
    let ctx = run.ctx_with_rooms(Box::new(Seed004::new()), sets.clone(), Duration::ZERO);
    let interval_us = (args.interval_secs * 1e6) as u64;
    let sh = Arc::new(Shared {
        dialect: Seed004::new(),
        sigs: sets.iter().map(|s| SetSignature::new(s)).collect(),
        slots: (0..n).map(|_| Slot::default()).collect(),
        firsts: AtomicUsize::new(0),
        latest_ts: AtomicU64::new(0),
        start_us: AtomicU64::new(u64::MAX),
        end_us: AtomicU64::new(u64::MAX),
        others_from_us: AtomicU64::new(u64::MAX),
        interval_us,
        shards: (0..run.common.threads)
            .map(|_| Mutex::new(TShard::default()))
            .collect(),
    });

    let before = run.probe();
    let specs = run.specs(n, k, 0, 0);
    let task_sh = Arc::clone(&sh);
    let ramp_secs = run
        .ramp_with(&ctx, specs, move |ctx, spec, permit| {
            client(ctx, Arc::clone(&task_sh), spec, permit)
        })
        .await;

    // Every client's first batch of its set (the greeting, or a new set's batch).
    let ready = ctx.ready.load(Ordering::Relaxed);
    let settle_until = std::time::Instant::now() + Duration::from_secs_f64(args.settle_secs);
    while sh.firsts.load(Ordering::Relaxed) < ready && std::time::Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = sh.firsts.load(Ordering::Relaxed);
    run.progress(&format!(
        "{served} of {ready} clients have a batch of their set"
    ));

    // Window: a whole number of intervals, starting midway between rounds
    // after the next round.
    let rounds_wanted = (args.secs / args.interval_secs).round().max(1.0) as u64;
    let now = ctx.clock.now_us();
    let latest = sh.latest_ts.load(Ordering::Relaxed);
    let mut start = if latest == 0 {
        now + interval_us / 2
    } else {
        latest + interval_us / 2
    };
    while start < now + 200_000 {
        start += interval_us;
    }
    let end = start + rounds_wanted * interval_us;
    sh.others_from_us
        .store(start.saturating_sub(5_000_000), Ordering::Relaxed);
    sh.end_us.store(end, Ordering::Relaxed);
    sh.start_us.store(start, Ordering::Relaxed);
    // Series 0: this generator; series 1: the server (with --server-pid).
    let sampler = CpuSampler::start(
        std::iter::once(std::process::id())
            .chain(run.common.server_pid)
            .collect(),
        ctx.clock,
        Duration::from_millis(args.cpu_sample_ms),
    );
    let sleep_until_us = |t: u64| {
        let now = ctx.clock.now_us();
        tokio::time::sleep(Duration::from_micros(t.saturating_sub(now)))
    };
    sleep_until_us(start).await;
    let connected = run.probe();
    let split_before = run.common.server_pid.and_then(user_system_ticks);
    let metrics_before = counters(run).await;
    run.progress(&format!(
        "window: {rounds_wanted} intervals of {} s",
        args.interval_secs
    ));
    let mut next_progress = start + 10_000_000;
    while ctx.clock.now_us() < end {
        sleep_until_us(next_progress.min(end)).await;
        next_progress += 10_000_000;
        let delivered: u64 = sh
            .slots
            .iter()
            .map(|s| u64::from(s.received.load(Ordering::Relaxed)))
            .sum();
        run.progress(&format!(
            "{delivered} batches delivered so far, {} closed",
            ctx.closed.load(Ordering::Relaxed)
        ));
    }
    let run_end = run.probe();
    let split_after = run.common.server_pid.and_then(user_system_ticks);
    let metrics_after = counters(run).await;
    tokio::time::sleep(Duration::from_secs_f64(args.drain_secs)).await;
    let series = sampler.finish();

    // Merge.
    let mut t = TShard::default();
    for shard in &sh.shards {
        t.merge(&shard.lock());
    }
    let stats = merged(&ctx);
    let mut report = run.report(
        "trading",
        &ctx,
        &stats,
        ramp_secs,
        &Phases {
            before,
            connected,
            run_end,
        },
    );

    // Rounds and loss.
    let mut rounds_of_set = vec![0usize; k];
    let mut round_ts = BTreeSet::new();
    let mut by_ts: BTreeMap<u64, RoundRecv> = BTreeMap::new();
    for (&(set, ts), r) in &t.rounds {
        rounds_of_set[set] += 1;
        round_ts.insert(ts);
        by_ts.entry(ts).or_default().merge(r);
    }
    let set_of = |id: usize| id % k;
    let mut expected = 0u64;
    let mut delivered = 0u64;
    let mut lost = 0u64;
    let mut clients_with_loss = 0;
    let mut per_client = (u32::MAX, 0u32);
    let mut clients_per_set = vec![0u64; k];
    for (id, slot) in sh.slots.iter().enumerate() {
        if !slot.joined.load(Ordering::Relaxed) {
            continue;
        }
        let set = set_of(id);
        clients_per_set[set] += 1;
        let want = rounds_of_set[set] as u64;
        let got = slot.received.load(Ordering::Relaxed);
        expected += want;
        delivered += u64::from(got);
        let miss = want.saturating_sub(u64::from(got));
        lost += miss;
        if miss > 0 {
            clients_with_loss += 1;
        }
        per_client = (per_client.0.min(got), per_client.1.max(got));
    }
    if per_client.0 == u32::MAX {
        per_client.0 = 0;
    }
    let ts_list: Vec<u64> = round_ts.iter().copied().collect();
    let server_interval_ms = Spread::of(
        ts_list
            .windows(2)
            .map(|w| (w[1] - w[0]) as f64 / 1000.0)
            .collect(),
    );
    let round_complete_ms = Spread::of(
        by_ts
            .iter()
            .map(|(&ts, r)| r.last_recv.saturating_sub(ts) as f64 / 1000.0)
            .collect(),
    );

    // CPU.
    let other_spans: Vec<(u64, u64)> = t
        .others
        .iter()
        .map(|(&(_, ts), r)| (ts.saturating_sub(2_000), r.last_recv + 2_000))
        .collect();
    let other_fanouts = t
        .others
        .keys()
        .filter(|(_, ts)| *ts >= start && *ts < end)
        .map(|&(_, ts)| ts)
        .collect::<BTreeSet<_>>()
        .len();
    let round_spans: Vec<(u64, u64, u64)> = by_ts
        .iter()
        .map(|(&ts, r)| (ts.saturating_sub(2_000), r.last_recv + 2_000, r.delivered))
        .collect();
    let empty = Vec::new();
    let generator = attribute(
        series.first().unwrap_or(&empty),
        start,
        end,
        &round_spans,
        &other_spans,
    );
    let cpu = run.common.server_pid.map(|_| {
        let server = attribute(
            series.get(1).unwrap_or(&empty),
            start,
            end,
            &round_spans,
            &other_spans,
        );
        let cpu_secs = match (connected.server, run_end.server) {
            (Some(a), Some(b)) => match (a.cpu_ticks, b.cpu_ticks) {
                (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / ticks_per_sec()),
                _ => None,
            },
            _ => None,
        };
        let (user_secs, system_secs) = match (split_before, split_after) {
            (Some((u0, s0)), Some((u1, s1))) => (
                Some(r3(u1.saturating_sub(u0) as f64 / ticks_per_sec())),
                Some(r3(s1.saturating_sub(s0) as f64 / ticks_per_sec())),
            ),
            _ => (None, None),
        };
        let window_us = (end - start) as f64;
        let rounds = ts_list.len().max(1) as f64;
        let ms_of = |rounds: &[(f64, u64, u64)], div: f64| {
            Spread::of(rounds.iter().map(|r| r.0 / 1e6 / div).collect())
        };
        TradingCpu {
            cpu_secs: cpu_secs.map(r3),
            cpu_secs_schedstat: r3(server.total_ns / 1e9),
            user_secs,
            system_secs,
            cpu_pct: cpu_secs.map(|c| (c / (window_us / 1e6) * 1000.0).round() / 10.0),
            per_round_ms: cpu_secs.map(|c| r3(c * 1000.0 / rounds)),
            per_set_batch_ms: cpu_secs.map(|c| r3(c * 1000.0 / (rounds * k as f64))),
            quiet_pct: (server.quiet_rate * 1000.0).round() / 10.0,
            busy_pct: (server.busy_us as f64 / window_us * 1000.0).round() / 10.0,
            clean_rounds: server.rounds.len(),
            attributed_round_ms: ms_of(&server.rounds, 1.0),
            attributed_set_batch_ms: ms_of(&server.rounds, k as f64),
            attributed_per_delivery_us: Spread::of(
                server
                    .rounds
                    .iter()
                    .map(|r| r.0 / 1e3 / r.2.max(1) as f64)
                    .collect(),
            ),
            round_span_ms: Spread::of(server.rounds.iter().map(|r| r.1 as f64 / 1e3).collect()),
            generator_round_ms: ms_of(&generator.rounds, 1.0),
            generator_quiet_pct: (generator.quiet_rate * 1000.0).round() / 10.0,
        }
    });

    let frames = KIND_NAMES
        .iter()
        .zip(t.frames)
        .map(|(name, count)| (name.to_string(), count))
        .collect();
    let counters = TradingCounters {
        events_published: delta(
            &metrics_before,
            &metrics_after,
            "roomcast_events_published_total",
        ),
        frames_sent: delta(
            &metrics_before,
            &metrics_after,
            "roomcast_frames_sent_total",
        ),
        socket_writes: delta(
            &metrics_before,
            &metrics_after,
            "roomcast_socket_writes_total",
        ),
        bytes_sent: delta(&metrics_before, &metrics_after, "roomcast_bytes_sent_total"),
    };
    report.trading = Some(TradingReport {
        sets: k,
        set_names: sets.iter().take(32).cloned().collect(),
        clients_per_set: (
            clients_per_set.iter().copied().min().unwrap_or(0),
            clients_per_set.iter().copied().max().unwrap_or(0),
        ),
        clients_served: served,
        first_batch_ms: Pcts::of(&t.first),
        window_secs: (end - start) as f64 / 1e6,
        interval_secs: args.interval_secs,
        rounds: ts_list.len(),
        rounds_per_set: (
            rounds_of_set.iter().copied().min().unwrap_or(0),
            rounds_of_set.iter().copied().max().unwrap_or(0),
        ),
        expected,
        delivered,
        lost,
        loss_pct: if expected == 0 {
            0.0
        } else {
            (lost as f64 / expected as f64 * 100_000.0).round() / 1000.0
        },
        clients_with_loss,
        per_client,
        duplicates: t.duplicates,
        gap_missed: t.gap_missed,
        latency_ms: Pcts::of(&t.latency),
        round_complete_ms,
        recv_interval_ms: Pcts::of(&t.interval),
        server_interval_ms,
        frames,
        batch_bytes: if t.frames[0] > 0 {
            (t.bytes[0] as f64 / t.frames[0] as f64).round()
        } else {
            0.0
        },
        other_fanouts,
        cpu,
        counters,
    });
    Ok(report)
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_series_interpolates_and_unions_merge() {
        let series = vec![(0, 0), (10, 100), (20, 100), (30, 400)];
        assert_eq!(cpu_at(&series, 5), 50.0);
        assert_eq!(cpu_between(&series, 5, 25), 200.0);
        assert_eq!(cpu_between(&series, 40, 50), 0.0);
        assert_eq!(
            union(vec![(5, 10), (0, 3), (2, 4), (10, 12)]),
            vec![(0, 4), (5, 12)]
        );
        let s = Spread::of(vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.min, s.median, s.mean, s.max), (1.0, 2.5, 4.0, 10.0));
    }

    #[test]
    fn a_client_counts_its_sets_batches_in_the_window_once() {
        let sh = Shared {
            dialect: Seed004::new(),
            sigs: vec![SetSignature::new("AAPL")],
            slots: vec![Slot::default()],
            firsts: AtomicUsize::new(0),
            latest_ts: AtomicU64::new(0),
            start_us: AtomicU64::new(1_796_187_810_000_000),
            end_us: AtomicU64::new(1_796_187_822_000_000),
            others_from_us: AtomicU64::new(0),
            interval_us: 3_000_000,
            shards: vec![Mutex::new(TShard::default())],
        };
        let batch = |t: &str, sym: &str| {
            format!(
                r#"{{"type":"price_update","symbols":{{"{sym}":{{"price":1.0,"close":1.0}}}},"timestamp":"{t}"}}"#
            )
        };
        let mut c = Client {
            set: 0,
            id: 0,
            connected_us: 1_796_187_800_000_000,
            last_ts: None,
            last_recv: None,
        };
        let mut st = TShard::default();
        let at = |s: u64| 1_796_187_800_000_000 + s * 1_000_000 + 4_000;
        // Before the window, another set, in the window ×2 (one repeated), a gap.
        c.frame(
            &sh,
            &mut st,
            batch("2026-12-02T05:03:29.000Z", "AAPL").as_bytes(),
            at(9),
        );
        c.frame(
            &sh,
            &mut st,
            batch("2026-12-02T05:03:32.000Z", "MSFT").as_bytes(),
            at(12),
        );
        c.frame(
            &sh,
            &mut st,
            batch("2026-12-02T05:03:32.000Z", "AAPL").as_bytes(),
            at(12),
        );
        c.frame(
            &sh,
            &mut st,
            batch("2026-12-02T05:03:32.000Z", "AAPL").as_bytes(),
            at(12),
        );
        c.frame(
            &sh,
            &mut st,
            batch("2026-12-02T05:03:38.000Z", "AAPL").as_bytes(),
            at(18),
        );
        c.frame(
            &sh,
            &mut st,
            br#"{"type":"portfolio_update","channel":"portfolio","data":{},"timestamp":"2026-12-02T05:03:35.000Z"}"#,
            at(15),
        );
        assert_eq!(sh.slots[0].received.load(Ordering::Relaxed), 2);
        assert_eq!(sh.firsts.load(Ordering::Relaxed), 1);
        assert_eq!(st.outside, 1);
        assert_eq!(st.duplicates, 1);
        assert_eq!(st.frames[1], 1, "another set's batch");
        assert_eq!(st.gap_missed, 1, "05:03:35 was skipped");
        assert!(st.latency.equivalent(st.latency.max(), 4_000));
        assert_eq!(st.rounds.len(), 2);
        assert_eq!(st.others.len(), 1);
        assert_eq!(st.interval.len(), 1);
    }
}
