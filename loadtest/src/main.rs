//! `loadtest`: roomcast's load generator. It opens 1,000 to 15,000+
//! WebSocket subscribers against a server on this machine (loopback only),
//! publishes over a few keep-alive HTTP/1.1 connections at a fixed rate, in
//! steps, or closed loop, and measures delivery latency from the scheduled
//! send time each message carries (no coordinated omission, no JSON parsing
//! on the receive path), loss, throughput, and the server's and its own
//! memory and CPU from `/proc`. See `loadtest/README.md`.
//!
//! Layout: `cli` (flags), `target` (loopback URL check), `dialect/` (one
//! file per server protocol), `ws` (the lean WebSocket client), `conn`
//! (a subscriber's life), `publish` (schedule and HTTP publisher), `scan`
//! (the digit scanner), `stats` (histograms per shard, merged), `procfs`
//! (RSS, CPU, RLIMIT_NOFILE), `scenario/` (idle, fanout/rooms/slow, churn,
//! trading: seed 004's server-timed price batches),
//! `report` (table and JSON line).

mod cli;
mod clock;
mod conn;
mod dialect;
mod procfs;
mod publish;
mod report;
mod scan;
mod scenario;
mod stats;
mod target;
mod ws;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let nofile = procfs::raise_nofile();
    if !cli.common.quiet {
        eprintln!(
            "[loadtest] RLIMIT_NOFILE: soft {} -> {} (hard {}); one process can hold about {} connections",
            nofile.soft_before,
            nofile.soft,
            nofile.hard,
            nofile.soft.saturating_sub(100)
        );
    }
    let threads = cli.common.threads;
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let json = cli.common.json;
    let result = runtime.block_on(scenario::run(cli, nofile));
    // Dropping the runtime drops every connection still open.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(report) => {
            report.print(json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}
