//! The `roomcast` binary: configuration → telemetry → bind → [`roomcast::run`]
//! until SIGINT or SIGTERM, then a bounded graceful drain. `roomcast
//! seed-modeldata` instead fills a PostgreSQL `modeldata` table with
//! generated rows (benchmarks, demos).

use anyhow::Context;
use clap::{Parser, Subcommand};
use roomcast::Config;
use roomcast::sources::modeldata::seed::{SeedArgs, seed_modeldata};
use tokio::net::TcpListener;

/// roomcast: a real-time WebSocket streaming gateway for trading platforms.
#[derive(Debug, Parser)]
#[command(name = "roomcast", version, about, long_about = None)]
struct Cli {
    /// Without a command, roomcast serves.
    #[command(subcommand)]
    command: Option<Command>,
    /// Server settings.
    #[command(flatten)]
    config: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fill a PostgreSQL modeldata table with realistic generated rows.
    SeedModeldata(SeedArgs),
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Raises the open-file soft limit to the hard limit: every WebSocket is a descriptor.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("could not raise the open-file limit");
            }
        }
    }
}

/// Grows the kernel's descriptor table to hold `fds` descriptors now, while
/// the process has one thread. The kernel grows it by doubling as descriptors
/// are opened, and in a multi-threaded process each growth waits for an RCU
/// grace period: measured here, the 256th and 512th accepted connection of a
/// fresh server each stalled the accept loop 10–23 ms. The table never
/// shrinks, so this costs about 8 bytes of kernel memory per slot, once.
fn pregrow_fd_table(fds: usize) {
    let Ok(target) = libc::c_int::try_from(fds.saturating_sub(1)) else {
        return;
    };
    // SAFETY: plain descriptor calls on a descriptor we open and close here.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0 {
            return;
        }
        let high = libc::fcntl(null, libc::F_DUPFD_CLOEXEC, target);
        if high >= 0 {
            libc::close(high);
        }
        libc::close(null);
    }
}

/// Descriptors the server may hold: the open-file soft limit, at most what
/// the connection cap needs (plus room for listeners, pools and files).
fn expected_fds(max_connections: usize) -> usize {
    // SAFETY: getrlimit only writes the struct we pass.
    let soft = unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur
    };
    usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .min(max_connections.saturating_add(1024))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    roomcast::telemetry::init_tracing();
    if cli.command.is_none() {
        // Before the runtime's threads exist (see pregrow_fd_table).
        raise_fd_limit();
        pregrow_fd_table(expected_fds(cli.config.max_connections));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    if let Some(Command::SeedModeldata(args)) = cli.command {
        let report = runtime
            .block_on(seed_modeldata(&args))
            .context("seed-modeldata")?;
        println!(
            "inserted {} rows into {} in {:.1} s ({:.0} rows/s); VACUUM ANALYZE {:.1} s",
            report.rows,
            args.table,
            report.insert.as_secs_f64(),
            report.rows as f64 / report.insert.as_secs_f64().max(1e-9),
            report.vacuum.as_secs_f64()
        );
        return Ok(());
    }
    let config = cli.config;
    config.validate().context("configuration")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        tracing::info!(addr = %listener.local_addr()?, "roomcast listening");
        roomcast::run(listener, config, shutdown_signal()).await?;
        Ok(())
    })
}
