//! `roomcast seed-modeldata`: fills a PostgreSQL `modeldata` table with
//! realistic rows from the simulated models, at scale, for benchmarks and
//! demos (`--groups 8 --rows-per-group 1000000`). Creates the table from
//! `sql/001_modeldata.sql` when it is missing, streams rows with `COPY`
//! (text format, so it works whatever the columns' numeric and timestamp
//! types), then `VACUUM ANALYZE`s so index-only scans and plans are good.
//!
//! A table that already has rows is left alone unless `--append` (add to
//! them) or `--replace` (empty it first) says otherwise, so a second run
//! does not silently double the data. While rows stream in, a progress line
//! (rows, rows/s, ETA) goes to stderr about once a second. Connection
//! errors name `host:port/db` (never the password) and the server's reason.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;

use super::database_url::{DatabaseUrl, cause_chain, connect_error};
use super::model::{ModelWalk, model_name};
use super::postgres::db_error;
use super::store::StoreError;
use crate::protocol::modeldata::Point;

/// The table's definition, applied when the table is missing.
pub const SCHEMA_SQL: &str = include_str!("../../../sql/001_modeldata.sql");

/// Bytes buffered before a chunk is sent to `COPY`.
const CHUNK: usize = 1 << 20;

/// Least time between two progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Bound on connecting (an unreachable or filtered host fails, not hangs).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to generate.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// PostgreSQL to fill (libpq's `sslmode` and `sslrootcert` apply).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// CA certificates (PEM) for `sslmode=verify-ca`/`verify-full` when the
    /// URL names no `sslrootcert`.
    #[arg(long = "pg-ssl-root-cert", env = "PGSSLROOTCERT")]
    pub ssl_root_cert: Option<std::path::PathBuf>,
    /// Table to fill (created when missing).
    #[arg(long, env = "MODELDATA_TABLE", default_value = "modeldata")]
    pub table: String,
    /// Models (distinct `display_name`s).
    #[arg(long, default_value_t = 8)]
    pub groups: usize,
    /// Rows per model.
    #[arg(long, default_value_t = 100_000)]
    pub rows_per_group: u64,
    /// Seconds between a model's consecutive rows; the last row is now.
    #[arg(long, default_value_t = 1.0)]
    pub step_secs: f64,
    /// Random seed (the same seed gives the same rows).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Skip `VACUUM ANALYZE` at the end.
    #[arg(long)]
    pub no_vacuum: bool,
    /// Add rows to a table that already has some (without it, or
    /// `--replace`, a table with rows is refused).
    #[arg(long, conflicts_with = "replace")]
    pub append: bool,
    /// Empty the table (`TRUNCATE`) before filling it.
    #[arg(long)]
    pub replace: bool,
}

/// Why `seed-modeldata` stopped.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The database could not be reached or refused a statement.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The table already has rows and neither `--append` nor `--replace` was given.
    #[error(
        "table {table} already has {rows} rows: pass --append to add to them, or --replace to empty it first"
    )]
    NotEmpty {
        /// The table, as named.
        table: String,
        /// Its rows, so the user knows what `--replace` would remove.
        rows: i64,
    },
}

/// What was generated.
#[derive(Debug, Clone, Copy)]
pub struct SeedReport {
    /// Rows inserted.
    pub rows: u64,
    /// Time spent inserting.
    pub insert: Duration,
    /// Time spent in `VACUUM ANALYZE`.
    pub vacuum: Duration,
}

/// Generates and inserts the rows.
pub async fn seed_modeldata(args: &SeedArgs) -> Result<SeedReport, SeedError> {
    let url = DatabaseUrl::parse(&args.database_url, args.ssl_root_cert.as_deref())
        .map_err(|e| StoreError::Config(cause_chain(&e)))?;
    let tls = url
        .connector()
        .map_err(|e| StoreError::Config(cause_chain(&e)))?;
    let mut config = url.config().clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| StoreError::Unavailable(connect_error(&url.target(), &e)))?;
    let connection = tokio::spawn(connection);
    let table = &args.table;
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[table])
        .await
        .map_err(db_error)?
        .get(0);
    if !exists {
        client
            .batch_execute(&SCHEMA_SQL.replace("modeldata", table))
            .await
            .map_err(db_error)?;
    } else {
        let has_rows: bool = client
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
            .await
            .map_err(db_error)?
            .get(0);
        if has_rows && args.replace {
            client
                .batch_execute(&format!("TRUNCATE {table}"))
                .await
                .map_err(db_error)?;
            eprintln!("seed-modeldata: emptied {table} (--replace)");
        } else if has_rows && !args.append {
            let rows: i64 = client
                .query_one(&format!("SELECT count(*)::int8 FROM {table}"), &[])
                .await
                .map_err(db_error)?
                .get(0);
            return Err(SeedError::NotEmpty {
                table: table.clone(),
                rows,
            });
        }
    }

    let started = Instant::now();
    let step = (args.step_secs * 1e6).round().max(1.0) as i64;
    let end = chrono::Utc::now().timestamp_micros();
    let first = end - step * (args.rows_per_group as i64 - 1);
    let mut walks: Vec<(String, ModelWalk)> = (0..args.groups)
        .map(|i| (model_name(i), ModelWalk::new(i, args.seed)))
        .collect();
    let sink = client
        .copy_in(&format!(
            "COPY {table} (display_name, account_value, return_value, total_pnl, fees, trades, created_at) FROM STDIN"
        ))
        .await
        .map_err(db_error)?;
    let mut sink = std::pin::pin!(sink);
    let mut buf = String::with_capacity(CHUNK + 4096);
    let total = args.rows_per_group.saturating_mul(args.groups as u64);
    let mut progress = Progress::new(total, started);
    for r in 0..args.rows_per_group as i64 {
        let at = first + r * step;
        for (name, walk) in &mut walks {
            write_row(&mut buf, name, &walk.next(0, at));
        }
        if buf.len() >= CHUNK {
            let chunk = Bytes::from(std::mem::replace(
                &mut buf,
                String::with_capacity(CHUNK + 4096),
            ));
            sink.send(chunk).await.map_err(db_error)?;
            let sent = (r as u64 + 1) * args.groups as u64;
            if let Some(line) = progress.line(sent, Instant::now()) {
                eprintln!("{line}");
            }
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf)).await.map_err(db_error)?;
    }
    let rows = sink.as_mut().finish().await.map_err(db_error)?;
    let insert = started.elapsed();

    let vacuum_started = Instant::now();
    if !args.no_vacuum {
        eprintln!("seed-modeldata: {rows} rows inserted; VACUUM ANALYZE {table}");
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .map_err(db_error)?;
    }
    drop(client);
    let _ = connection.await;
    Ok(SeedReport {
        rows,
        insert,
        vacuum: vacuum_started.elapsed(),
    })
}

/// Progress lines for `total` rows: at most one per [`PROGRESS_EVERY`].
#[derive(Debug)]
struct Progress {
    /// Rows to insert in all, for the percentage and the ETA.
    total: u64,
    /// When inserting began, for the rate.
    started: Instant,
    /// When the last line was printed (or inserting began), for the throttle.
    last: Instant,
}

impl Progress {
    fn new(total: u64, started: Instant) -> Self {
        Progress {
            total,
            started,
            last: started,
        }
    }

    /// The line to print now that `rows` are sent, if one is due.
    fn line(&mut self, rows: u64, now: Instant) -> Option<String> {
        if now.saturating_duration_since(self.last) < PROGRESS_EVERY {
            return None;
        }
        self.last = now;
        let secs = now.saturating_duration_since(self.started).as_secs_f64();
        let rate = rows as f64 / secs.max(1e-9);
        let left = self.total.saturating_sub(rows) as f64;
        let eta = if rate > 0.0 {
            duration_text(left / rate)
        } else {
            "unknown".into()
        };
        Some(format!(
            "seed-modeldata: {rows} of {} rows ({:.1}%), {rate:.0} rows/s, ETA {eta}",
            self.total,
            100.0 * rows as f64 / (self.total.max(1)) as f64
        ))
    }
}

/// `secs` as `1h02m`, `3m05s` or `12s`.
fn duration_text(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// One `COPY` text line; names are the simulator's, which need no escaping.
fn write_row(buf: &mut String, name: &str, p: &Point) {
    let opt = |v: Option<f64>| v.map_or_else(|| "\\N".to_string(), |v| v.to_string());
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(p.created_at)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S%.6f+00");
    let _ = writeln!(
        buf,
        "{name}\t{}\t{}\t{}\t{}\t{}\t{at}",
        opt(p.account_value),
        opt(p.return_value),
        opt(p.total_pnl),
        opt(p.fees),
        p.trades
            .map_or_else(|| "\\N".to_string(), |t| t.to_string()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_printed_at_most_once_a_second_with_rate_and_eta() {
        let t0 = Instant::now();
        let mut progress = Progress::new(1_000, t0);
        assert_eq!(progress.line(100, t0 + Duration::from_millis(500)), None);
        assert_eq!(
            progress.line(200, t0 + Duration::from_secs(2)).as_deref(),
            Some("seed-modeldata: 200 of 1000 rows (20.0%), 100 rows/s, ETA 8s")
        );
        // Not again within a second of the last line.
        assert_eq!(progress.line(250, t0 + Duration::from_millis(2_900)), None);
        assert!(progress.line(300, t0 + Duration::from_secs(3)).is_some());
        assert_eq!(duration_text(125.0), "2m05s");
        assert_eq!(duration_text(7_380.0), "2h03m");
    }

    #[test]
    fn copy_lines_are_tab_separated_with_utc_timestamps() {
        let mut buf = String::new();
        let p = Point {
            id: 0,
            account_value: Some(100_000.5),
            return_value: None,
            total_pnl: Some(0.5),
            fees: Some(1.0),
            trades: Some(3),
            created_at: 1_761_300_000_123_456,
        };
        write_row(&mut buf, "AI_Model_Alpha", &p);
        assert_eq!(
            buf,
            "AI_Model_Alpha\t100000.5\t\\N\t0.5\t1\t3\t2025-10-24 10:00:00.123456+00\n"
        );
    }
}
