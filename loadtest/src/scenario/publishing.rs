//! `fanout`, `rooms` and `slow`: subscribers join, then the publisher runs
//! its schedule while receivers record every delivery; afterwards the
//! deliveries still in flight get `--drain-secs` to arrive, and each step's
//! expected deliveries (ok publishes × subscribers of the room) are compared
//! with what arrived. `fanout` is one room; `rooms` spreads connections and
//! publishes over R rooms; `slow` adds subscribers that stop reading, and
//! checks what the server does with them (4008 or conflation) and that the
//! reading subscribers lose nothing meanwhile.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Phases, Run, merged};
use crate::cli::PublishArgs;
use crate::conn::Ctx;
use crate::dialect;
use crate::procfs;
use crate::publish::{self, Mode, PubStats, Schedule, prom_value};
use crate::report::{PublishReport, Report, SlowReport, StepReport};
use crate::stats::{Pcts, histogram};

/// Slow-consumer options.
pub struct SlowOpts {
    /// How many subscribers stop reading.
    pub slow: usize,
    /// Ordered (`patterns`, 4008) instead of conflating (ticker) stream.
    pub ordered: bool,
    /// Their socket receive buffer.
    pub rcvbuf: u32,
    /// How long they may read once resumed.
    pub drain_secs: f64,
}

/// Delay between building the schedule and its first publish, so every
/// publisher task is waiting before the first scheduled instant.
const LEAD: Duration = Duration::from_millis(200);

/// roomcast counters read around the slow scenario.
async fn roomcast_counters(run: &Run) -> Option<(f64, f64)> {
    let (status, body) = publish::get(&run.publish_target, "/metrics").await?;
    if status != 200 {
        return None;
    }
    let text = std::str::from_utf8(&body).ok()?;
    Some((
        prom_value(text, "roomcast_frames_conflated_total")?,
        prom_value(text, "roomcast_slow_consumer_closes_total").unwrap_or(0.0),
    ))
}

fn mode_of(args: &PublishArgs) -> Mode {
    if args.closed_loop {
        Mode::Closed {
            secs: args.secs,
            max: args.max_messages,
        }
    } else if let Some(rates) = &args.steps {
        Mode::Steps {
            rates: rates.clone(),
            step_secs: args.step_secs,
            settle_secs: args.settle_secs,
        }
    } else {
        Mode::Steps {
            rates: vec![args.rate],
            step_secs: args.secs,
            settle_secs: 0.0,
        }
    }
}

fn describe(args: &PublishArgs) -> String {
    if args.closed_loop {
        format!("closed loop {} s", args.secs)
    } else if let Some(rates) = &args.steps {
        let rates: Vec<String> = rates.iter().map(|r| r.to_string()).collect();
        format!("steps {} × {} s", rates.join(","), args.step_secs)
    } else {
        format!("rate {}/s × {} s", args.rate, args.secs)
    }
}

fn loss_pct(expected: u64, delivered: u64) -> f64 {
    if expected == 0 {
        0.0
    } else {
        let lost = expected.saturating_sub(delivered);
        (lost as f64 / expected as f64 * 100_000.0).round() / 1000.0
    }
}

/// Runs the schedule with per-step CPU samples; returns per-window publisher
/// stats and (server, generator) CPU % per window.
async fn publish_phase(
    run: &Run,
    ctx: &Arc<Ctx>,
    args: &PublishArgs,
) -> (
    Arc<Schedule>,
    Vec<PubStats>,
    Vec<(Option<f64>, Option<f64>)>,
) {
    let t0 = Instant::now() + LEAD;
    let schedule = Arc::new(Schedule::new(&mode_of(args), &ctx.clock, t0));
    let spans = schedule.spans();
    for shard in &ctx.shards {
        shard.stats.lock().set_windows(&spans);
    }
    let publisher = tokio::spawn(publish::run(
        Arc::clone(ctx),
        Arc::clone(&schedule),
        run.publish_target.clone(),
        args.http_conns,
        Duration::from_secs_f64(args.max_lag_secs),
    ));
    let mut cpu = Vec::new();
    for w in 0..schedule.windows.len() {
        let (start, end) = schedule.bounds(w);
        tokio::time::sleep_until(start.into()).await;
        let a = run.probe();
        let win = &schedule.windows[w];
        run.progress(&format!(
            "step {}/{}: {} for {} s",
            w + 1,
            schedule.windows.len(),
            win.rate
                .map_or("closed loop".to_string(), |r| format!("{r} publishes/s")),
            win.secs
        ));
        tokio::time::sleep_until(end.into()).await;
        let b = run.probe();
        let server = match (a.server, b.server) {
            (Some(a), Some(b)) => procfs::cpu_pct(&a, &b),
            _ => None,
        };
        cpu.push((server, procfs::cpu_pct(&a.generator, &b.generator)));
    }
    let stats = publisher
        .await
        .unwrap_or_else(|_| vec![PubStats::default(); schedule.windows.len()]);
    // Deliveries still in flight.
    let expected: u64 = stats.iter().map(|s| s.expected).sum();
    let until = Instant::now() + Duration::from_secs_f64(args.drain_secs);
    while ctx.delivered() < expected && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (schedule, stats, cpu)
}

/// Runs `fanout` (1 room), `rooms` (R rooms) or `slow` (1 room, with slow consumers).
pub async fn run(
    run: &mut Run,
    scenario: &'static str,
    rooms: usize,
    args: &PublishArgs,
    slow: Option<SlowOpts>,
) -> anyhow::Result<Report> {
    if run.common.dialect == dialect::DialectKind::Seed004 {
        anyhow::bail!(
            "seed 004's prices are batched by the server on its own clock: use the `trading` scenario"
        );
    }
    let ordered = slow.as_ref().is_some_and(|s| s.ordered);
    let drain = slow
        .as_ref()
        .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s.drain_secs));
    let ctx = run.ctx(dialect::build(run.common.dialect, ordered)?, rooms, drain);
    let before = run.probe();
    let specs = run.specs(
        run.common.connections,
        rooms,
        slow.as_ref().map_or(0, |s| s.slow),
        slow.as_ref().map_or(0, |s| s.rcvbuf),
    );
    let ramp_secs = run.ramp(&ctx, specs).await;
    let connected = run.probe();

    let counters_before = if slow.is_some() && ctx.dialect.has_roomcast_metrics() {
        roomcast_counters(run).await
    } else {
        None
    };
    let (schedule, pub_stats, cpu) = publish_phase(run, &ctx, args).await;
    let run_end = run.probe();

    let stats = merged(&ctx);
    let mut report = run.report(
        scenario,
        &ctx,
        &stats,
        ramp_secs,
        &Phases {
            before,
            connected,
            run_end,
        },
    );

    let mut steps = Vec::new();
    let mut all = histogram();
    let mut total = PubStats::default();
    for (w, win) in schedule.windows.iter().enumerate() {
        let p = &pub_stats[w];
        total.merge(p);
        let recv = stats.steps.get(w);
        let delivered = recv.map_or(0, |r| r.delivered);
        if let Some(r) = recv {
            all.add(&r.latency).expect("same bounds");
        }
        // Closed loop: the window really lasted from first to last send.
        let secs = match (win.rate, p.first_sent, p.last_sent) {
            (None, Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(0.001),
            _ => win.secs,
        };
        steps.push(StepReport {
            rate: win.rate,
            published_per_sec: (p.ok as f64 / secs * 10.0).round() / 10.0,
            secs: (secs * 100.0).round() / 100.0,
            scheduled: win.count,
            published_ok: p.ok,
            failed: p.failed,
            unsent: p.unsent,
            expected: p.expected,
            delivered,
            loss_pct: loss_pct(p.expected, delivered),
            latency_ms: recv.map_or_else(Pcts::default, |r| Pcts::of(&r.latency)),
            send_lag_ms: Pcts::of(&p.send_lag),
            delivered_per_sec: (delivered as f64 / secs).round(),
            server_cpu_pct: cpu.get(w).and_then(|c| c.0),
            generator_cpu_pct: cpu.get(w).and_then(|c| c.1),
        });
    }
    let best_step_rate = steps
        .iter()
        .filter(|s| {
            s.rate.is_some()
                && s.failed == 0
                && s.unsent == 0
                && s.expected > 0
                && s.delivered >= s.expected
                && s.latency_ms.p99 < 100.0
        })
        .filter_map(|s| s.rate)
        .fold(None, |best: Option<f64>, r| {
            Some(best.map_or(r, |b| b.max(r)))
        });
    let delivered = stats.delivered_total();
    let publish_secs: f64 = steps.iter().map(|s| s.secs).sum();
    report.publish = Some(PublishReport {
        mode: describe(args),
        http_conns: args.http_conns,
        rooms,
        subscribers: ctx
            .room_subs
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum(),
        published_ok: total.ok,
        failed: total.failed,
        unsent: total.unsent,
        failure_reasons: total.failures.clone(),
        reconnects: total.reconnects,
        expected: total.expected,
        delivered,
        lost: total.expected.saturating_sub(delivered),
        loss_pct: loss_pct(total.expected, delivered),
        stray: stats.stray,
        server_recipients: total.recipients,
        latency_ms: Pcts::of(&all),
        send_lag_ms: Pcts::of(&total.send_lag),
        delivered_per_sec: if publish_secs > 0.0 {
            (delivered as f64 / publish_secs).round()
        } else {
            0.0
        },
        steps,
        best_step_rate,
    });

    if let Some(opts) = slow {
        let counters_after = if ctx.dialect.has_roomcast_metrics() {
            roomcast_counters(run).await
        } else {
            None
        };
        let joined = ctx.slow_ready.load(Ordering::Relaxed);
        run.progress(&format!("resuming {joined} slow consumers"));
        ctx.resume.send_replace(true);
        let until =
            Instant::now() + Duration::from_secs_f64(opts.drain_secs) + Duration::from_secs(3);
        while ctx.slow_outcomes.lock().len() < joined && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let outcomes = ctx.slow_outcomes.lock().clone();
        let mut sr = SlowReport::from_outcomes(
            opts.slow,
            opts.ordered,
            &outcomes,
            total.ok,
            total.last_ok_ts,
        );
        if let (Some(a), Some(b)) = (counters_before, counters_after) {
            sr.conflated_frames = Some(b.0 - a.0);
            sr.slow_consumer_closes = Some(b.1 - a.1);
        }
        report.slow = Some(sr);
    }
    Ok(report)
}
