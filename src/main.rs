//! The `roomcast` binary: configuration → telemetry → bind → [`roomcast::run`]
//! until SIGINT or SIGTERM, then a bounded graceful drain. `roomcast
//! seed-modeldata` instead fills a PostgreSQL `modeldata` table with
//! generated rows (benchmarks, demos).
#![deny(unsafe_code)]

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
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

/// Parses flags and environment, exiting with clap's usage error; a bad value
/// taken from an environment variable is reported under that variable's name.
fn parse_cli() -> Cli {
    Cli::try_parse().unwrap_or_else(|e| {
        let args: Vec<_> = std::env::args_os().collect();
        match env_value_error(Cli::command(), &e, &args, |name| std::env::var_os(name)) {
            Some(message) => {
                eprintln!("error: {message}");
                std::process::exit(2);
            }
            None => e.exit(),
        }
    })
}

/// For a bad value that came from an environment variable (its flag is not
/// on the command line and the variable holds that value): `invalid value
/// 'abc' for WEBSOCKET_MAX_CONNECTIONS: …`, instead of clap's
/// `--max-connections <MAX_CONNECTIONS>`. `None` leaves clap's message (a
/// flag given on the command line keeps naming the flag).
fn env_value_error(
    mut command: clap::Command,
    error: &clap::Error,
    args: &[std::ffi::OsString],
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        error.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return None;
    }
    let Some(ContextValue::String(shown)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let Some(ContextValue::String(value)) = error.get(ContextKind::InvalidValue) else {
        return None;
    };
    // Built, so each argument shows as clap's message shows it.
    command.build();
    let arg = std::iter::once(&command)
        .chain(command.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .find(|a| a.to_string() == *shown)?;
    let name = arg.get_env()?.to_str()?;
    let long = arg.get_long().map(|l| format!("--{l}"));
    let on_command_line = args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        long.as_deref()
            .is_some_and(|l| a == l || a.starts_with(&format!("{l}=")))
    });
    if on_command_line || env(name)?.to_str()? != value {
        return None;
    }
    let why = match (error.kind(), error.get(ContextKind::ValidValue)) {
        (ErrorKind::InvalidValue, Some(ContextValue::Strings(valid))) => {
            format!("expected one of: {}", valid.join(", "))
        }
        _ => std::error::Error::source(error)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "not accepted".into()),
    };
    // A variable whose values are hidden (a URL with a password) is not echoed.
    Some(if arg.is_hide_env_values_set() {
        format!("invalid value for {name}: {why}")
    } else {
        format!("invalid value '{value}' for {name}: {why}")
    })
}

fn main() -> anyhow::Result<()> {
    let cli = parse_cli();
    roomcast::telemetry::init_tracing(cli.config.log_format);
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

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    /// Parses `args` with `vars` as the environment, as `parse_cli` reports it.
    fn error_for(args: &[&str], vars: &[(&str, &str)]) -> Option<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let mut command = Cli::command();
        // clap reads the process's own environment, which a test must not
        // change: each variable's value is given as its argument's default
        // instead, which clap checks the same way (tests/first_hour.rs runs
        // the binary with the real environment).
        command = command.mut_args(|a| {
            let value = a
                .get_env()
                .and_then(|n| vars.iter().find(|(k, _)| n == *k))
                .map(|(_, v)| -> &'static str { Box::leak(v.to_string().into_boxed_str()) });
            match value {
                Some(v) => a.default_value(v),
                None => a,
            }
        });
        let error = command.try_get_matches_from(&args).unwrap_err();
        env_value_error(Cli::command(), &error, &args, |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let message = error_for(&["roomcast"], &[("WEBSOCKET_MAX_CONNECTIONS", "abc")]).unwrap();
        assert!(
            message.starts_with("invalid value 'abc' for WEBSOCKET_MAX_CONNECTIONS: "),
            "{message}"
        );
        let message = error_for(&["roomcast"], &[("ROOMCAST_LOG_FORMAT", "xml")]).unwrap();
        assert!(message.contains("ROOMCAST_LOG_FORMAT"), "{message}");
        assert!(message.contains("json"), "{message}");
    }

    #[test]
    fn a_bad_flag_keeps_clap_naming_the_flag() {
        assert_eq!(
            error_for(&["roomcast", "--max-connections", "abc"], &[]),
            None
        );
        assert_eq!(
            error_for(
                &["roomcast", "--max-connections=abc"],
                &[("WEBSOCKET_MAX_CONNECTIONS", "abc")]
            ),
            None
        );
    }
}
