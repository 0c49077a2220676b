//! The `roomcast` binary: configuration → telemetry → bind → [`roomcast::run`]
//! until SIGINT or SIGTERM, then a bounded graceful drain. `roomcast
//! seed-modeldata` instead fills a PostgreSQL `modeldata` table with
//! generated rows (benchmarks, demos).
#![deny(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use roomcast::sources::modeldata::seed::{SeedArgs, seed_modeldata};
use roomcast::{Config, sys};
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
        // Before the runtime's threads exist (see sys::pregrow_fd_table).
        if !sys::raise_fd_limit() {
            tracing::warn!("could not raise the open-file limit");
        }
        sys::pregrow_fd_table(sys::expected_fds(cli.config.ws.max_connections));
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
