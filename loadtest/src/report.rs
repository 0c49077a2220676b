//! The result of a run: one serialisable [`Report`], printed as a human
//! table on stdout followed by one JSON line (or only the JSON line with
//! `--json`), so scripts such as `compare.sh` read the last line and people
//! read the rest. Optional sections appear only for the scenarios that fill them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::conn::SlowOutcome;
use crate::procfs::NofileLimit;
use crate::stats::Pcts;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `idle`, `fanout`, `rooms`, `slow` or `churn`.
    pub scenario: &'static str,
    /// Protocol spoken (`seed001`, `seed001-patterns`, `nchan`).
    pub dialect: &'static str,
    /// Free-form `--label` (which server, which build) for comparisons.
    pub label: Option<String>,
    /// Servers the subscribers connected to.
    pub urls: Vec<String>,
    /// Start of the run, seconds since the Unix epoch (when it was measured).
    pub started_unix: u64,
    /// Wall time of the whole run.
    pub duration_secs: f64,
    /// Runtime threads of the generator (1 = current-thread runtime).
    pub threads: usize,
    /// Open-file limit (bounds connections per generator process).
    pub nofile: NofileLimit,
    /// Subscriber connections.
    pub connections: ConnReport,
    /// The server process, when `--server-pid` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerReport>,
    /// The generator itself: a saturated generator measures itself, not the server.
    pub generator: GenReport,
    /// Publishing and delivery (fanout, rooms, slow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishReport>,
    /// Idle scenario figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleReport>,
    /// Slow-consumer scenario figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow: Option<SlowReport>,
    /// Churn scenario figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnReport>,
    /// Trading (seed 004) scenario figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trading: Option<TradingReport>,
}

/// Subscriber connections of the run.
#[derive(Debug, Serialize)]
pub struct ConnReport {
    /// Connections asked for (`-n`).
    pub target: usize,
    /// Connected and joined.
    pub opened: usize,
    /// Failed to connect or join.
    pub failed: usize,
    /// Failures by cause.
    pub failure_reasons: BTreeMap<String, u64>,
    /// TCP connect + WebSocket handshake.
    pub connect_ms: Pcts,
    /// Handshake → all confirmations (seed 001: `subscription` and `history`).
    pub subscribe_ms: Pcts,
    /// Time from the first connection started to all joined or failed.
    pub ramp_secs: f64,
    /// Joined connections that ended before the run did.
    pub closed_during_run: usize,
    /// Those ends by close code or reason.
    pub closes: BTreeMap<String, u64>,
    /// `error` replies received after joining.
    pub error_replies: u64,
}

/// The server process (from `/proc/PID`).
#[derive(Debug, Serialize)]
pub struct ServerReport {
    /// Its PID.
    pub pid: u32,
    /// RSS before any connection was opened, KiB.
    pub rss_kib_before: Option<u64>,
    /// RSS with every connection open and joined, KiB.
    pub rss_kib_connected: Option<u64>,
    /// (connected − before) / opened connections: the memory cost of one subscriber.
    pub rss_bytes_per_conn: Option<f64>,
    /// RSS at the end of the run (before the generator disconnects), KiB.
    pub rss_kib_end: Option<u64>,
    /// CPU during the ramp, % of one core.
    pub cpu_pct_ramp: Option<f64>,
    /// CPU during the measured phase (publishing, holding or churning), % of one core.
    pub cpu_pct_run: Option<f64>,
    /// CPU over the whole run, % of one core.
    pub cpu_pct_total: Option<f64>,
}

/// The generator process.
#[derive(Debug, Serialize)]
pub struct GenReport {
    /// CPU during the ramp, % of one core.
    pub cpu_pct_ramp: Option<f64>,
    /// CPU during the measured phase, % of one core (near 100 × threads = saturated).
    pub cpu_pct_run: Option<f64>,
    /// CPU over the whole run.
    pub cpu_pct_total: Option<f64>,
    /// Its RSS at the end, KiB (memory per client connection on the generator side).
    pub rss_kib_end: Option<u64>,
}

/// Publishing and delivery.
#[derive(Debug, Serialize)]
pub struct PublishReport {
    /// `steps 50,100 × 10 s`, `rate 100 × 10 s` or `closed loop 10 s`.
    pub mode: String,
    /// Keep-alive publisher connections.
    pub http_conns: usize,
    /// Rooms published to (round-robin).
    pub rooms: usize,
    /// Reading (fast) subscribers over all rooms.
    pub subscribers: u64,
    /// Publishes answered 2xx.
    pub published_ok: u64,
    /// Publishes that failed.
    pub failed: u64,
    /// Publishes skipped for lagging more than `--max-lag-secs` behind schedule.
    pub unsent: u64,
    /// Failed publishes by cause.
    pub failure_reasons: BTreeMap<String, u64>,
    /// Publisher connections re-opened after the server closed them between
    /// requests (nginx's `keepalive_requests`); nothing is lost by these.
    pub reconnects: u64,
    /// Σ over ok publishes of the subscribers of their room.
    pub expected: u64,
    /// Events received by the fast subscribers.
    pub delivered: u64,
    /// expected − delivered (never negative).
    pub lost: u64,
    /// lost / expected, %.
    pub loss_pct: f64,
    /// Events outside every publish window (not this run's).
    pub stray: u64,
    /// roomcast's own Σ `recipients` of the publishes (cross-checks `expected`).
    pub server_recipients: Option<u64>,
    /// Delivery latency (receive − scheduled) over all windows.
    pub latency_ms: Pcts,
    /// Send lag (request sent − scheduled) over all windows: the generator's
    /// own share of `latency_ms` (timer granularity, publisher backlog).
    pub send_lag_ms: Pcts,
    /// Delivered events per second of publishing.
    pub delivered_per_sec: f64,
    /// Per step (one entry for a fixed rate or closed loop).
    pub steps: Vec<StepReport>,
    /// Highest step rate that lost nothing (no failed, unsent or missing
    /// publish or delivery) with p99 < 100 ms.
    pub best_step_rate: Option<f64>,
}

/// One step.
#[derive(Debug, Serialize)]
pub struct StepReport {
    /// Scheduled publishes/s (`None` in closed loop).
    pub rate: Option<f64>,
    /// Publishes/s actually answered (closed loop: the achieved rate).
    pub published_per_sec: f64,
    /// Step length.
    pub secs: f64,
    /// Publishes the schedule held for the step (closed loop: the bound).
    pub scheduled: u64,
    /// Publishes answered 2xx.
    pub published_ok: u64,
    /// Publishes that failed.
    pub failed: u64,
    /// Publishes skipped behind schedule.
    pub unsent: u64,
    /// Expected deliveries.
    pub expected: u64,
    /// Deliveries.
    pub delivered: u64,
    /// Missing deliveries, %.
    pub loss_pct: f64,
    /// Delivery latency.
    pub latency_ms: Pcts,
    /// Send lag (request sent − scheduled).
    pub send_lag_ms: Pcts,
    /// Deliveries per second of the step.
    pub delivered_per_sec: f64,
    /// Server CPU during the step, % of one core.
    pub server_cpu_pct: Option<f64>,
    /// Generator CPU during the step, % of one core.
    pub generator_cpu_pct: Option<f64>,
}

/// Idle scenario.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    /// How long the connections were held.
    pub hold_secs: f64,
    /// Server RSS after the hold, KiB (growth while idle = a leak or timers).
    pub rss_kib_after_hold: Option<u64>,
    /// Server RSS 2 s after the generator dropped every connection, KiB.
    pub rss_kib_after_close: Option<u64>,
}

/// Slow-consumer scenario.
#[derive(Debug, Serialize)]
pub struct SlowReport {
    /// Slow subscribers asked for.
    pub slow: usize,
    /// Slow subscribers that joined.
    pub slow_joined: usize,
    /// Ordered stream (4008 expected) rather than conflating.
    pub ordered: bool,
    /// Slow subscribers closed with 4008 (slow consumer).
    pub closed_4008: usize,
    /// Closed with another code, by code.
    pub closed_other: BTreeMap<String, u64>,
    /// Ended without a close frame (reset or EOF).
    pub dropped: usize,
    /// Still open when their drain ended.
    pub still_open: usize,
    /// Events read by a slow subscriber after resuming: fewest.
    pub events_min: u64,
    /// … most.
    pub events_max: u64,
    /// Publishes answered ok (what a lossless consumer would have received).
    pub published: u64,
    /// Open slow subscribers whose last event was the last published one
    /// (conflation kept them current).
    pub got_latest: usize,
    /// roomcast `/metrics` `roomcast_frames_conflated_total` increase during publishing.
    pub conflated_frames: Option<f64>,
    /// roomcast `/metrics` `roomcast_slow_consumer_closes_total` increase.
    pub slow_consumer_closes: Option<f64>,
}

impl SlowReport {
    /// Summarises the slow subscribers' outcomes.
    pub fn from_outcomes(
        slow: usize,
        ordered: bool,
        outcomes: &[SlowOutcome],
        published: u64,
        last_ts: Option<u64>,
    ) -> Self {
        let mut closed_other = BTreeMap::new();
        for o in outcomes {
            if let Some(c) = o.close_code.filter(|&c| c != 4008) {
                *closed_other.entry(c.to_string()).or_default() += 1;
            }
        }
        SlowReport {
            slow,
            slow_joined: outcomes.len(),
            ordered,
            closed_4008: outcomes
                .iter()
                .filter(|o| o.close_code == Some(4008))
                .count(),
            closed_other,
            dropped: outcomes.iter().filter(|o| o.dropped).count(),
            still_open: outcomes.iter().filter(|o| o.open).count(),
            events_min: outcomes.iter().map(|o| o.events).min().unwrap_or(0),
            events_max: outcomes.iter().map(|o| o.events).max().unwrap_or(0),
            published,
            got_latest: outcomes
                .iter()
                .filter(|o| o.open && last_ts.is_some() && o.last_ts == last_ts)
                .count(),
            conflated_frames: None,
            slow_consumer_closes: None,
        }
    }
}

/// Churn scenario.
#[derive(Debug, Serialize)]
pub struct ChurnReport {
    /// Cycles per second asked for.
    pub rate: f64,
    /// Seconds of churn.
    pub secs: f64,
    /// Cycles started.
    pub started: u64,
    /// Cycles that connected, joined and closed cleanly.
    pub ok: u64,
    /// Cycles that failed.
    pub failed: u64,
    /// Failures by cause.
    pub failure_reasons: BTreeMap<String, u64>,
    /// Cycles due while `--concurrency` were in progress (not started).
    pub skipped_busy: u64,
    /// ok cycles per second achieved.
    pub ok_per_sec: f64,
    /// Connect + handshake time of the churning connections.
    pub connect_ms: Pcts,
    /// Server RSS when churn started, KiB.
    pub rss_kib_start: Option<u64>,
    /// Highest server RSS seen during churn (sampled every second), KiB.
    pub rss_kib_max: Option<u64>,
    /// Server RSS 2 s after the last cycle ended, KiB.
    pub rss_kib_end: Option<u64>,
    /// end − start, KiB: memory not returned after churn.
    pub rss_drift_kib: Option<i64>,
}

/// min / median / mean / max of a few values.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    /// How many values.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `v` (all zero when empty), rounded to 0.001.
    pub fn of(mut v: Vec<f64>) -> Self {
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        Spread {
            count: n,
            min: r(v[0]),
            median: r(if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }),
            mean: r(v.iter().sum::<f64>() / n as f64),
            max: r(v[n - 1]),
        }
    }
}

/// The server's CPU over the window.
#[derive(Debug, Serialize)]
pub struct TradingCpu {
    /// `utime + stime` of the server over the window, seconds (10 ms ticks).
    pub cpu_secs: Option<f64>,
    /// The same from the threads' schedstat series (ns), seconds.
    pub cpu_secs_schedstat: f64,
    /// Of `cpu_secs`: user time (roomcast's own code), seconds.
    pub user_secs: Option<f64>,
    /// Of `cpu_secs`: system time (the kernel: socket writes and, on
    /// loopback, the receiving side's TCP processing), seconds.
    pub system_secs: Option<f64>,
    /// Over the window, % of one core.
    pub cpu_pct: Option<f64>,
    /// `cpu_secs` ÷ rounds, ms: everything the server did per round
    /// (paper-account events, pings, the simulator included).
    pub per_round_ms: Option<f64>,
    /// `cpu_secs` ÷ (rounds × sets), ms.
    pub per_set_batch_ms: Option<f64>,
    /// CPU rate while no fan-out was in flight, % of one core (pings, simulator, timers).
    pub quiet_pct: f64,
    /// Share of the window with a fan-out in flight, %.
    pub busy_pct: f64,
    /// Rounds no paper-account fan-out overlapped (within 20 ms).
    pub clean_rounds: usize,
    /// CPU of each clean round above the quiet rate, from its start to its
    /// last delivery, ms.
    pub attributed_round_ms: Spread,
    /// The same ÷ sets, ms.
    pub attributed_set_batch_ms: Spread,
    /// The same ÷ batches delivered in the round, µs per delivery.
    pub attributed_per_delivery_us: Spread,
    /// Start → last delivery of the clean rounds, ms.
    pub round_span_ms: Spread,
    /// The generator's own CPU per clean round above its quiet rate, ms
    /// (reading the batches: if it nears the span, the generator bounds the latency).
    pub generator_round_ms: Spread,
    /// The generator's quiet CPU rate, % of one core.
    pub generator_quiet_pct: f64,
}

/// roomcast `/metrics` counters' increase over the window.
#[derive(Debug, Default, Serialize)]
pub struct TradingCounters {
    /// `roomcast_events_published_total` (every room publish: batches of
    /// every set incl. an empty "all" room, simulator prices, paper events).
    pub events_published: Option<f64>,
    /// `roomcast_frames_sent_total`.
    pub frames_sent: Option<f64>,
    /// `roomcast_socket_writes_total`.
    pub socket_writes: Option<f64>,
    /// `roomcast_bytes_sent_total`.
    pub bytes_sent: Option<f64>,
}

/// The `trading` scenario's figures.
#[derive(Debug, Serialize)]
pub struct TradingReport {
    /// Distinct symbol sets.
    pub sets: usize,
    /// Their names (`*` = all symbols), at most 32 listed.
    pub set_names: Vec<String>,
    /// Clients per set, fewest and most.
    pub clients_per_set: (u64, u64),
    /// Clients that received a batch of their set before the window.
    pub clients_served: usize,
    /// Connected → first batch of the client's set.
    pub first_batch_ms: Pcts,
    /// Window length, s (a whole number of intervals).
    pub window_secs: f64,
    /// The interval the gaps are judged against, s.
    pub interval_secs: f64,
    /// Distinct round timestamps in the window (over all sets).
    pub rounds: usize,
    /// Rounds per set, fewest and most.
    pub rounds_per_set: (usize, usize),
    /// Σ over clients of their set's rounds.
    pub expected: u64,
    /// Batches of their set the clients received in the window.
    pub delivered: u64,
    /// expected − delivered (per client, never negative).
    pub lost: u64,
    /// lost / expected, %.
    pub loss_pct: f64,
    /// Clients that missed at least one batch.
    pub clients_with_loss: usize,
    /// Batches a client received, fewest and most.
    pub per_client: (u32, u32),
    /// Batches received twice.
    pub duplicates: u64,
    /// Intervals skipped between consecutive batches (gaps > 1.5 intervals).
    pub gap_missed: u64,
    /// Delivery latency: receive − batch `timestamp` (0–1 ms high: ms timestamps).
    pub latency_ms: Pcts,
    /// Round start → last delivery of the round, per round.
    pub round_complete_ms: Spread,
    /// Receive-to-receive interval of consecutive batches, per client.
    pub recv_interval_ms: Pcts,
    /// Between consecutive round timestamps (the server's cadence), ms.
    pub server_interval_ms: Spread,
    /// Frames by kind, over the whole run.
    pub frames: BTreeMap<String, u64>,
    /// Mean payload bytes of a batch of the client's own set.
    pub batch_bytes: f64,
    /// Paper-account fan-outs (distinct events) during the window.
    pub other_fanouts: usize,
    /// Server CPU (with `--server-pid`).
    pub cpu: Option<TradingCpu>,
    /// roomcast's counters over the window.
    pub counters: TradingCounters,
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.0} %"))
}

fn pcts(p: &Pcts) -> String {
    format!(
        "p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (n={})",
        p.p50, p.p90, p.p99, p.max, p.count
    )
}

fn reasons(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// The human table.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let c = &self.connections;
        let _ = writeln!(
            s,
            "loadtest {} — {} → {}{}",
            self.scenario,
            self.dialect,
            self.urls.join(", "),
            self.label
                .as_ref()
                .map_or(String::new(), |l| format!("  [{l}]"))
        );
        let _ = writeln!(
            s,
            "{:<12} {} opened, {} failed of {} (ramp {:.1} s){}",
            "connections",
            c.opened,
            c.failed,
            c.target,
            c.ramp_secs,
            if c.failure_reasons.is_empty() {
                String::new()
            } else {
                format!(" — {}", reasons(&c.failure_reasons))
            }
        );
        let _ = writeln!(s, "{:<12} {}", "connect", pcts(&c.connect_ms));
        let _ = writeln!(s, "{:<12} {}", "subscribe", pcts(&c.subscribe_ms));
        if c.closed_during_run > 0 || c.error_replies > 0 {
            let _ = writeln!(
                s,
                "{:<12} {} closed during the run ({}), {} error replies",
                "",
                c.closed_during_run,
                reasons(&c.closes),
                c.error_replies
            );
        }
        if let Some(srv) = &self.server {
            let _ = writeln!(
                s,
                "{:<12} pid {}: RSS {} before → {} connected ({} B/conn) → {} end; CPU ramp {}, run {}, total {}",
                "server",
                srv.pid,
                mib(srv.rss_kib_before),
                mib(srv.rss_kib_connected),
                srv.rss_bytes_per_conn
                    .map_or("-".to_string(), |b| format!("{b:.0}")),
                mib(srv.rss_kib_end),
                pct(srv.cpu_pct_ramp),
                pct(srv.cpu_pct_run),
                pct(srv.cpu_pct_total)
            );
        }
        let g = &self.generator;
        let _ = writeln!(
            s,
            "{:<12} CPU ramp {}, run {}, total {}; RSS {}; {} thread(s); RLIMIT_NOFILE {} (hard {})",
            "generator",
            pct(g.cpu_pct_ramp),
            pct(g.cpu_pct_run),
            pct(g.cpu_pct_total),
            mib(g.rss_kib_end),
            self.threads,
            self.nofile.soft,
            self.nofile.hard
        );
        if g.cpu_pct_run.unwrap_or(0.0) >= 90.0 * self.threads as f64 {
            let _ = writeln!(
                s,
                "{:<12} WARNING: the generator was CPU-saturated; latencies include its own queueing",
                ""
            );
        }
        if let Some(p) = &self.publish {
            let _ = writeln!(
                s,
                "{:<12} {} over {} HTTP conn(s), {} room(s), {} subscribers: ok {}, failed {}, unsent {}, reconnects {}{}",
                "publish",
                p.mode,
                p.http_conns,
                p.rooms,
                p.subscribers,
                p.published_ok,
                p.failed,
                p.unsent,
                p.reconnects,
                if p.failure_reasons.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", reasons(&p.failure_reasons))
                }
            );
            let _ = writeln!(
                s,
                "{:<12} expected {}, delivered {}, lost {} ({:.3} %), stray {}, server recipients {}; {:.0} msg/s",
                "delivery",
                p.expected,
                p.delivered,
                p.lost,
                p.loss_pct,
                p.stray,
                opt(p.server_recipients),
                p.delivered_per_sec
            );
            let _ = writeln!(s, "{:<12} {}", "latency", pcts(&p.latency_ms));
            let _ = writeln!(s, "{:<12} {}", "send lag", pcts(&p.send_lag_ms));
            let _ = writeln!(
                s,
                "  {:>8} {:>8} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>6} {:>6}",
                "rate/s",
                "sent",
                "expected",
                "delivered",
                "loss%",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "deliv/s",
                "srv%",
                "gen%"
            );
            for st in &p.steps {
                let _ = writeln!(
                    s,
                    "  {:>8} {:>8} {:>10} {:>10} {:>8.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.0} {:>6} {:>6}",
                    st.rate
                        .map_or(format!("~{:.0}", st.published_per_sec), |r| format!("{r}")),
                    st.published_ok,
                    st.expected,
                    st.delivered,
                    st.loss_pct,
                    st.latency_ms.p50,
                    st.latency_ms.p90,
                    st.latency_ms.p99,
                    st.latency_ms.max,
                    st.delivered_per_sec,
                    st.server_cpu_pct
                        .map_or("-".to_string(), |v| format!("{v:.0}")),
                    st.generator_cpu_pct
                        .map_or("-".to_string(), |v| format!("{v:.0}")),
                );
            }
            let _ = writeln!(
                s,
                "{:<12} {}",
                "best step",
                p.best_step_rate.map_or(
                    "none (no step was loss-free with p99 < 100 ms)".to_string(),
                    |r| format!("{r}/s (loss-free, p99 < 100 ms)")
                )
            );
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                s,
                "{:<12} held {:.0} s; server RSS after hold {}, after close {}",
                "idle",
                i.hold_secs,
                mib(i.rss_kib_after_hold),
                mib(i.rss_kib_after_close)
            );
        }
        if let Some(sl) = &self.slow {
            let _ = writeln!(
                s,
                "{:<12} {} slow ({} joined, {} stream): closed 4008 {}, other closes {{{}}}, dropped {}, still open {} ({} with the latest event); read {}..{} of {} published; server conflated {} frames, slow-consumer closes {}",
                "slow",
                sl.slow,
                sl.slow_joined,
                if sl.ordered { "ordered" } else { "conflating" },
                sl.closed_4008,
                reasons(&sl.closed_other),
                sl.dropped,
                sl.still_open,
                sl.got_latest,
                sl.events_min,
                sl.events_max,
                sl.published,
                opt(sl.conflated_frames),
                opt(sl.slow_consumer_closes)
            );
        }
        if let Some(ch) = &self.churn {
            let _ = writeln!(
                s,
                "{:<12} {}/s for {:.0} s: started {}, ok {}, failed {}, skipped (busy) {}; {:.0} ok/s{}",
                "churn",
                ch.rate,
                ch.secs,
                ch.started,
                ch.ok,
                ch.failed,
                ch.skipped_busy,
                ch.ok_per_sec,
                if ch.failure_reasons.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", reasons(&ch.failure_reasons))
                }
            );
            let _ = writeln!(s, "{:<12} {}", "churn conn", pcts(&ch.connect_ms));
            let _ = writeln!(
                s,
                "{:<12} server RSS start {}, max {}, end {}, drift {} KiB",
                "churn rss",
                mib(ch.rss_kib_start),
                mib(ch.rss_kib_max),
                mib(ch.rss_kib_end),
                opt(ch.rss_drift_kib)
            );
        }
        if let Some(t) = &self.trading {
            t.human(&mut s);
        }
        let _ = writeln!(s, "{:<12} {:.1} s", "duration", self.duration_secs);
        s
    }

    /// Prints the table (unless `json_only`) and the JSON line.
    pub fn print(&self, json_only: bool) {
        if !json_only {
            print!("{}", self.human());
        }
        match serde_json::to_string(self) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("loadtest: cannot serialise the report: {e}"),
        }
    }
}

fn spread(p: &Spread, unit: &str) -> String {
    format!(
        "min {:.3} / median {:.3} / mean {:.3} / max {:.3} {unit} (n={})",
        p.min, p.median, p.mean, p.max, p.count
    )
}

impl TradingReport {
    /// The trading section of the human table.
    fn human(&self, s: &mut String) {
        let names = if self.set_names.len() <= 4 {
            self.set_names.join(" ")
        } else {
            format!(
                "{} … {}",
                self.set_names[..3].join(" "),
                self.set_names.last().map_or("", String::as_str)
            )
        };
        let _ = writeln!(
            s,
            "{:<12} {} set(s) [{}], {}–{} clients each; {} clients had a batch of their set before the window",
            "sets",
            self.sets,
            names,
            self.clients_per_set.0,
            self.clients_per_set.1,
            self.clients_served
        );
        let _ = writeln!(s, "{:<12} {}", "first batch", pcts(&self.first_batch_ms));
        let _ = writeln!(
            s,
            "{:<12} {:.0} s = {} rounds (per set {}–{}) at {} s; server cadence {}",
            "window",
            self.window_secs,
            self.rounds,
            self.rounds_per_set.0,
            self.rounds_per_set.1,
            self.interval_secs,
            spread(&self.server_interval_ms, "ms")
        );
        let _ = writeln!(
            s,
            "{:<12} expected {}, delivered {}, lost {} ({:.3} %), {} clients with loss, per client {}–{}, duplicates {}, skipped intervals {}",
            "batches",
            self.expected,
            self.delivered,
            self.lost,
            self.loss_pct,
            self.clients_with_loss,
            self.per_client.0,
            self.per_client.1,
            self.duplicates,
            self.gap_missed
        );
        let _ = writeln!(s, "{:<12} {}", "latency", pcts(&self.latency_ms));
        let _ = writeln!(
            s,
            "{:<12} {}",
            "round done",
            spread(&self.round_complete_ms, "ms")
        );
        let _ = writeln!(s, "{:<12} {}", "interval", pcts(&self.recv_interval_ms));
        let _ = writeln!(
            s,
            "{:<12} {}; own batch {:.0} B; {} paper-account fan-outs in the window",
            "frames",
            reasons(&self.frames),
            self.batch_bytes,
            self.other_fanouts
        );
        if let Some(c) = &self.cpu {
            let _ = writeln!(
                s,
                "{:<12} {} CPU-s over the window ({} schedstat; user {}, system {}) = {}; per round {} ms, per set batch {} ms",
                "server cpu",
                opt(c.cpu_secs),
                c.cpu_secs_schedstat,
                opt(c.user_secs),
                opt(c.system_secs),
                pct(c.cpu_pct),
                opt(c.per_round_ms),
                opt(c.per_set_batch_ms)
            );
            let _ = writeln!(
                s,
                "{:<12} quiet rate {:.1} %, busy {:.1} % of the window; {} clean rounds: per round {}",
                "attributed",
                c.quiet_pct,
                c.busy_pct,
                c.clean_rounds,
                spread(&c.attributed_round_ms, "ms")
            );
            let _ = writeln!(
                s,
                "{:<12} per set batch {}; per delivery {}; span {}",
                "",
                spread(&c.attributed_set_batch_ms, "ms"),
                spread(&c.attributed_per_delivery_us, "µs"),
                spread(&c.round_span_ms, "ms")
            );
            let _ = writeln!(
                s,
                "{:<12} generator per clean round {} (quiet {:.1} %)",
                "",
                spread(&c.generator_round_ms, "ms"),
                c.generator_quiet_pct
            );
        }
        let k = &self.counters;
        let _ = writeln!(
            s,
            "{:<12} events published {}, frames sent {}, socket writes {}, bytes sent {}",
            "counters",
            opt(k.events_published),
            opt(k.frames_sent),
            opt(k.socket_writes),
            opt(k.bytes_sent)
        );
    }
}
