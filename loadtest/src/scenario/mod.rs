//! The scenarios and the phases they share: building the shared state,
//! ramping connections up at a bounded rate, sampling the server and the
//! generator from `/proc`, and assembling the report. Each phase is bounded in
//! time (ramp: connections / rate + timeouts; publishing: the schedule plus
//! `--max-lag-secs`; drains: their own flags), so every run ends by itself.

mod churn;
mod idle;
mod publishing;
mod trading;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::AbortHandle;

use crate::cli::{Cli, Common, Scenario};
use crate::clock::Clock;
use crate::conn::{self, ConnSpec, Ctx};
use crate::dialect::Dialect;
use crate::procfs::{self, NofileLimit, Sample};
use crate::report::{ConnReport, GenReport, Report, ServerReport};
use crate::stats::{Pcts, Shard, ShardStats, merge_all};
use crate::target::{self, Target};

/// Descriptors kept free beside the connections (publisher, /proc, stdio, runtime).
const FD_RESERVE: usize = 64;

/// A run in progress: options, shared state, the connection tasks.
pub struct Run {
    /// The common options.
    pub common: Common,
    /// Subscriber targets.
    pub targets: Vec<Target>,
    /// Publish target.
    pub publish_target: Target,
    /// The open-file limit found and set at start.
    pub nofile: NofileLimit,
    /// When the run started (for its duration).
    pub started: Instant,
    /// Unix time of the start, for the report.
    pub started_unix: u64,
    /// First sample of server and generator, for whole-run CPU.
    pub first: Probe,
    /// Subscriber tasks, aborted when the run ends (dropping their sockets).
    pub tasks: Vec<AbortHandle>,
}

/// Server and generator readings at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// The server (`None` without `--server-pid`).
    pub server: Option<Sample>,
    /// This process.
    pub generator: Sample,
}

impl Run {
    /// Progress line on stderr (unless `--quiet`).
    pub fn progress(&self, line: &str) {
        if !self.common.quiet {
            eprintln!(
                "[loadtest {:>6.1}s] {line}",
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    /// Reads the server and the generator now.
    pub fn probe(&self) -> Probe {
        Probe {
            server: self.common.server_pid.map(|pid| procfs::sample(Some(pid))),
            generator: procfs::sample(None),
        }
    }

    /// Shared state for `rooms` rooms with `dialect`.
    pub fn ctx(&self, dialect: Box<dyn Dialect>, rooms: usize, slow_drain: Duration) -> Arc<Ctx> {
        let names = dialect.room_names(&self.common.room_prefix, rooms);
        self.ctx_with_rooms(dialect, names, slow_drain)
    }

    /// Shared state for rooms named `rooms` (a dialect whose rooms are not
    /// `<prefix><i>`, like seed 004's symbol sets) with `dialect`.
    pub fn ctx_with_rooms(
        &self,
        dialect: Box<dyn Dialect>,
        rooms: Vec<String>,
        slow_drain: Duration,
    ) -> Arc<Ctx> {
        let (resume, _) = watch::channel(false);
        let count = rooms.len();
        Arc::new(Ctx {
            dialect,
            targets: self.targets.clone(),
            rooms,
            clock: Clock::new(),
            shards: (0..self.common.threads).map(|_| Shard::default()).collect(),
            ready: AtomicUsize::new(0),
            slow_ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            room_subs: (0..count).map(|_| AtomicU64::new(0)).collect(),
            connect_timeout: Duration::from_secs_f64(self.common.connect_timeout_secs),
            subscribe_timeout: Duration::from_secs_f64(self.common.subscribe_timeout_secs),
            resume,
            slow_drain,
            slow_outcomes: Mutex::new(Vec::new()),
        })
    }

    /// Connection specs: `n` subscribers, connection i on target i mod T and
    /// room i mod R; the first `slow` of every `n / slow` are slow consumers.
    pub fn specs(&self, n: usize, rooms: usize, slow: usize, slow_rcvbuf: u32) -> Vec<ConnSpec> {
        let stride = n.checked_div(slow).unwrap_or(0);
        (0..n)
            .map(|id| {
                let is_slow = stride > 0 && id % stride == 0 && id / stride < slow;
                ConnSpec {
                    id,
                    target: id % self.targets.len(),
                    rooms: vec![id % rooms],
                    slow: is_slow,
                    rcvbuf: is_slow.then_some(slow_rcvbuf),
                }
            })
            .collect()
    }

    /// Opens `specs` at `--ramp-rate`, at most `--max-pending` in progress,
    /// and waits (bounded) until every one has joined or failed. Returns the ramp's seconds.
    pub async fn ramp(&mut self, ctx: &Arc<Ctx>, specs: Vec<ConnSpec>) -> f64 {
        self.ramp_with(ctx, specs, conn::subscriber).await
    }

    /// [`Run::ramp`] with another connection task than [`conn::subscriber`]
    /// (it must release the permit once joined or failed, and count itself
    /// in `ctx.ready` or `ctx.failed`).
    pub async fn ramp_with<F, Fut>(&mut self, ctx: &Arc<Ctx>, specs: Vec<ConnSpec>, task: F) -> f64
    where
        F: Fn(Arc<Ctx>, ConnSpec, OwnedSemaphorePermit) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let total = specs.len();
        let rate = self.common.ramp_rate;
        let pending = Arc::new(Semaphore::new(self.common.max_pending));
        let start = Instant::now();
        let mut last_progress = Instant::now();
        let mut specs = specs.into_iter();
        let mut started = 0;
        while started < total {
            let due = ((start.elapsed().as_secs_f64() * rate) as usize + 1).min(total);
            while started < due {
                let permit = Arc::clone(&pending)
                    .acquire_owned()
                    .await
                    .expect("semaphore never closed");
                let spec = specs.next().expect("counted");
                let handle = tokio::spawn(task(Arc::clone(ctx), spec, permit));
                self.tasks.push(handle.abort_handle());
                started += 1;
            }
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                self.progress(&format!(
                    "ramp: {started}/{total} started, {} joined, {} failed",
                    ctx.ready.load(Ordering::Relaxed),
                    ctx.failed.load(Ordering::Relaxed)
                ));
            }
            if started < total {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        // Everything started; each finishes within its connect + subscribe timeouts.
        let deadline =
            Instant::now() + ctx.connect_timeout + ctx.subscribe_timeout + Duration::from_secs(2);
        loop {
            let done = ctx.ready.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed);
            if done >= total || Instant::now() >= deadline {
                break;
            }
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                self.progress(&format!(
                    "ramp: {} joined, {} failed of {total}",
                    ctx.ready.load(Ordering::Relaxed),
                    ctx.failed.load(Ordering::Relaxed)
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        self.progress(&format!(
            "ramp done in {secs:.1} s: {} joined, {} failed of {total}",
            ctx.ready.load(Ordering::Relaxed),
            ctx.failed.load(Ordering::Relaxed)
        ));
        secs
    }

    /// Aborts every subscriber task (their sockets close).
    pub fn disconnect_all(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// The report skeleton common to every scenario.
    pub fn report(
        &self,
        scenario: &'static str,
        ctx: &Ctx,
        stats: &ShardStats,
        ramp_secs: f64,
        phases: &Phases,
    ) -> Report {
        let end = self.probe();
        let opened = ctx.ready.load(Ordering::Relaxed);
        let server = self.common.server_pid.map(|pid| {
            let rss = |p: &Probe| p.server.and_then(|s| s.rss_kib);
            let before = rss(&phases.before);
            let connected = rss(&phases.connected);
            let cpu = |a: &Probe, b: &Probe| match (a.server, b.server) {
                (Some(a), Some(b)) => procfs::cpu_pct(&a, &b),
                _ => None,
            };
            ServerReport {
                pid,
                rss_kib_before: before,
                rss_kib_connected: connected,
                rss_bytes_per_conn: match (before, connected) {
                    (Some(b), Some(c)) if opened > 0 => {
                        Some(((c as f64 - b as f64) * 1024.0 / opened as f64).round())
                    }
                    _ => None,
                },
                rss_kib_end: rss(&phases.run_end),
                cpu_pct_ramp: cpu(&phases.before, &phases.connected),
                cpu_pct_run: cpu(&phases.connected, &phases.run_end),
                cpu_pct_total: cpu(&self.first, &end),
            }
        });
        let gen_cpu = |a: &Probe, b: &Probe| procfs::cpu_pct(&a.generator, &b.generator);
        Report {
            scenario,
            dialect: ctx.dialect.name(),
            label: self.common.label.clone(),
            urls: self.targets.iter().map(|t| t.url.clone()).collect(),
            started_unix: self.started_unix,
            duration_secs: (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            threads: self.common.threads,
            nofile: self.nofile,
            connections: ConnReport {
                target: self.common.connections,
                opened,
                failed: ctx.failed.load(Ordering::Relaxed),
                failure_reasons: stats.failures.clone(),
                connect_ms: Pcts::of(&stats.connect),
                subscribe_ms: Pcts::of(&stats.subscribe),
                ramp_secs: (ramp_secs * 100.0).round() / 100.0,
                closed_during_run: ctx.closed.load(Ordering::Relaxed),
                closes: stats.closes.clone(),
                error_replies: stats.error_replies,
            },
            server,
            generator: GenReport {
                cpu_pct_ramp: gen_cpu(&phases.before, &phases.connected),
                cpu_pct_run: gen_cpu(&phases.connected, &phases.run_end),
                cpu_pct_total: gen_cpu(&self.first, &end),
                rss_kib_end: end.generator.rss_kib,
            },
            publish: None,
            idle: None,
            slow: None,
            churn: None,
            trading: None,
        }
    }
}

/// The probes that split a run into ramp and measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    /// Before the first connection.
    pub before: Probe,
    /// Every connection joined (start of the measured phase).
    pub connected: Probe,
    /// End of the measured phase (before disconnecting).
    pub run_end: Probe,
}

/// Merged statistics of `ctx`'s shards.
pub fn merged(ctx: &Ctx) -> ShardStats {
    merge_all(&ctx.shards)
}

/// Runs the chosen scenario; returns its report.
pub async fn run(cli: Cli, nofile: NofileLimit) -> anyhow::Result<Report> {
    cli.validate()?;
    let common = cli.common;
    let targets = common
        .url
        .iter()
        .map(|u| target::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    let publish_target = match &common.publish_url {
        Some(u) => target::parse(u)?,
        None => targets[0].clone(),
    };
    let extra = match &cli.scenario {
        Scenario::Churn { concurrency, .. } => *concurrency,
        Scenario::Fanout { publish }
        | Scenario::Rooms { publish, .. }
        | Scenario::Slow { publish, .. } => publish.http_conns,
        Scenario::Idle { .. } | Scenario::Trading(_) => 0,
    };
    let needed = common.connections + extra + FD_RESERVE;
    if nofile.soft > 0 && needed as u64 > nofile.soft {
        anyhow::bail!(
            "{} connections need about {needed} descriptors but RLIMIT_NOFILE is {} (hard {}): \
             lower -n, raise the hard limit, or run several generators",
            common.connections,
            nofile.soft,
            nofile.hard
        );
    }
    let mut run = Run {
        targets,
        publish_target,
        nofile,
        started: Instant::now(),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        first: Probe {
            server: None,
            generator: procfs::sample(None),
        },
        tasks: Vec::new(),
        common,
    };
    run.first = run.probe();
    if let Some(pid) = run.common.server_pid
        && run.first.server.is_some_and(|s| s.rss_kib.is_none())
    {
        anyhow::bail!("--server-pid {pid}: no such process (cannot read /proc/{pid}/status)");
    }
    let report = match cli.scenario {
        Scenario::Idle { hold_secs } => idle::run(&mut run, hold_secs).await?,
        Scenario::Fanout { publish } => {
            publishing::run(&mut run, "fanout", 1, &publish, None).await?
        }
        Scenario::Rooms { rooms, publish } => {
            publishing::run(&mut run, "rooms", rooms, &publish, None).await?
        }
        Scenario::Slow {
            slow,
            ordered,
            slow_rcvbuf,
            slow_drain_secs,
            publish,
        } => {
            let opts = publishing::SlowOpts {
                slow,
                ordered,
                rcvbuf: slow_rcvbuf,
                drain_secs: slow_drain_secs,
            };
            publishing::run(&mut run, "slow", 1, &publish, Some(opts)).await?
        }
        Scenario::Churn {
            churn_rate,
            secs,
            concurrency,
            rooms,
        } => churn::run(&mut run, churn_rate, secs, concurrency, rooms).await?,
        Scenario::Trading(args) => trading::run(&mut run, &args).await?,
    };
    run.disconnect_all();
    Ok(report)
}
