//! `roomcast seed-modeldata`: fills a PostgreSQL `modeldata` table with
//! realistic rows from the simulated models, at scale, for benchmarks and
//! demos (`--groups 8 --rows-per-group 1000000`). Creates the table from
//! `sql/001_modeldata.sql` when it is missing, streams rows with `COPY`
//! (text format, so it works whatever the columns' numeric and timestamp
//! types), then `VACUUM ANALYZE`s so index-only scans and plans are good.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;

use super::database_url::{DatabaseUrl, cause_chain};
use super::model::{ModelWalk, model_name};
use super::postgres::db_error;
use super::store::StoreError;
use crate::protocol::modeldata::Point;

/// The table's definition, applied when the table is missing.
pub const SCHEMA_SQL: &str = include_str!("../../../sql/001_modeldata.sql");

/// Bytes buffered before a chunk is sent to `COPY`.
const CHUNK: usize = 1 << 20;

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
pub async fn seed_modeldata(args: &SeedArgs) -> Result<SeedReport, StoreError> {
    let url = DatabaseUrl::parse(&args.database_url, args.ssl_root_cert.as_deref())
        .map_err(|e| StoreError::Config(cause_chain(&e)))?;
    let tls = url
        .connector()
        .map_err(|e| StoreError::Config(cause_chain(&e)))?;
    let (client, connection) =
        url.config()
            .connect(tls)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(_) => db_error(e),
                None => StoreError::Unavailable(format!("{}: {}", url.target(), cause_chain(&e))),
            })?;
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
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf)).await.map_err(db_error)?;
    }
    let rows = sink.as_mut().finish().await.map_err(db_error)?;
    let insert = started.elapsed();

    let vacuum_started = Instant::now();
    if !args.no_vacuum {
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
