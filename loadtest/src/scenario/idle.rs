//! `idle`: open N subscribed connections, hold them, and measure what an
//! idle subscriber costs the server (RSS per connection), whether that
//! memory grows while nothing happens, and whether it is returned when the
//! connections go away.

use std::time::{Duration, Instant};

use super::{Phases, Run, merged};
use crate::dialect;
use crate::report::{IdleReport, Report};

/// Runs the idle scenario.
pub async fn run(run: &mut Run, hold_secs: f64) -> anyhow::Result<Report> {
    let ctx = run.ctx(
        dialect::build(run.common.dialect, false)?,
        1,
        Duration::ZERO,
    );
    let before = run.probe();
    let specs = run.specs(run.common.connections, 1, 0, 0);
    let ramp_secs = run.ramp(&ctx, specs).await;
    let connected = run.probe();

    run.progress(&format!("holding {hold_secs} s"));
    let until = Instant::now() + Duration::from_secs_f64(hold_secs);
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(5))).await;
        if !left.is_zero() {
            run.progress(&format!(
                "holding: {} closed so far",
                ctx.closed.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
    }
    let run_end = run.probe();
    let stats = merged(&ctx);
    let mut report = run.report(
        "idle",
        &ctx,
        &stats,
        ramp_secs,
        &Phases {
            before,
            connected,
            run_end,
        },
    );
    run.progress("closing every connection");
    run.disconnect_all();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_close = run.probe();
    report.idle = Some(IdleReport {
        hold_secs,
        rss_kib_after_hold: run_end.server.and_then(|s| s.rss_kib),
        rss_kib_after_close: after_close.server.and_then(|s| s.rss_kib),
    });
    Ok(report)
}
