//! `churn`: beside N held connections, start connect → join → close cycles
//! at a fixed rate for a duration (at most `--concurrency` in progress; a
//! cycle due while all are busy is skipped and counted, so the schedule is
//! never silently stretched). Reports failed cycles by cause, connect times,
//! and the server's RSS before, during (max) and after — memory that is not
//! returned after thousands of sessions come and go is a leak.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::{Phases, Run, merged};
use crate::conn::{self, ConnSpec};
use crate::dialect;
use crate::report::{ChurnReport, Report};
use crate::stats::Pcts;

/// Runs the churn scenario.
pub async fn run(
    run: &mut Run,
    rate: f64,
    secs: f64,
    concurrency: usize,
    rooms: usize,
) -> anyhow::Result<Report> {
    let held = run.ctx(
        dialect::build(run.common.dialect, false)?,
        rooms,
        Duration::ZERO,
    );
    let before = run.probe();
    let specs = run.specs(run.common.connections, rooms, 0, 0);
    let ramp_secs = run.ramp(&held, specs).await;
    let connected = run.probe();

    // The churning connections get their own state, so their figures are theirs.
    let churn = run.ctx(
        dialect::build(run.common.dialect, false)?,
        rooms,
        Duration::ZERO,
    );
    let ok = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(Semaphore::new(concurrency));
    let rss = |p: &super::Probe| p.server.and_then(|s| s.rss_kib);
    let rss_start = rss(&connected);
    let mut rss_max = rss_start;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut started: u64 = 0;
    let mut skipped: u64 = 0;
    let mut next_sample = start + Duration::from_secs(1);
    run.progress(&format!("churning {rate}/s for {secs} s"));
    while Instant::now() < end {
        let due = (start.elapsed().as_secs_f64() * rate) as u64 + 1;
        while started + skipped < due {
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => {
                    let i = started as usize;
                    let spec = ConnSpec {
                        id: i,
                        target: i % run.targets.len(),
                        rooms: vec![i % rooms],
                        slow: false,
                        rcvbuf: None,
                    };
                    let (ctx, ok) = (Arc::clone(&churn), Arc::clone(&ok));
                    tokio::spawn(async move {
                        let _ = conn::churn_cycle(ctx, spec, ok).await;
                        drop(permit);
                    });
                    started += 1;
                }
                Err(_) => skipped += 1,
            }
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            let p = run.probe();
            rss_max = rss_max.max(rss(&p));
            run.progress(&format!(
                "churn: {started} started, {} ok, {} failed, {skipped} skipped; server RSS {} KiB",
                ok.load(Ordering::Relaxed),
                churn.failed.load(Ordering::Relaxed),
                rss(&p).map_or("-".to_string(), |r| r.to_string())
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Let the cycles in progress finish (each is bounded by its timeouts + 2 s).
    let bound = churn.connect_timeout + churn.subscribe_timeout + Duration::from_secs(3);
    let _ = tokio::time::timeout(bound, slots.acquire_many(concurrency as u32)).await;
    let churn_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let run_end = run.probe();
    rss_max = rss_max.max(rss(&run_end));

    let stats = merged(&held);
    let mut report = run.report(
        "churn",
        &held,
        &stats,
        ramp_secs,
        &Phases {
            before,
            connected,
            run_end,
        },
    );
    let cstats = merged(&churn);
    let ok = ok.load(Ordering::Relaxed);
    let rss_end = rss(&run_end);
    report.churn = Some(ChurnReport {
        rate,
        secs,
        started,
        ok,
        failed: churn.failed.load(Ordering::Relaxed) as u64,
        failure_reasons: cstats.failures.clone(),
        skipped_busy: skipped,
        ok_per_sec: (ok as f64 / churn_secs * 10.0).round() / 10.0,
        connect_ms: Pcts::of(&cstats.connect),
        rss_kib_start: rss_start,
        rss_kib_max: rss_max,
        rss_kib_end: rss_end,
        rss_drift_kib: match (rss_start, rss_end) {
            (Some(a), Some(b)) => Some(b as i64 - a as i64),
            _ => None,
        },
    });
    Ok(report)
}
