//! The modeldata store on PostgreSQL (`DATABASE_URL`): a deadpool pool of
//! tokio-postgres connections (prepared statements, cached per connection;
//! `Verified` recycling, so a connection killed by a database restart is
//! detected before use) over the user's own `modeldata` table, over TLS as
//! `DATABASE_URL`'s `sslmode` asks ([`super::database_url`]).
//!
//! roomcast never alters users' columns or rows. It reads the table's column
//! types once (numeric or double precision values, `created_at` with or
//! without time zone, `display_name` as text, varchar or char) and casts in
//! its queries; it creates one index, `(display_name, created_at, id)`, when
//! allowed (`MODELDATA_CREATE_INDEX`). Each group gets a [`Ladder`] built by
//! one index scan and then kept current from new rows only, so the work per
//! broadcast is a handful of bounded index probes per group: counting rows
//! up to a time bound and fetching the sampled rows, whatever the table size.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio_postgres::types::ToSql;

use super::database_url::{DatabaseUrl, cause_chain, connect_error};
use super::ladder::{DEFAULT_STRIDE, Key, Ladder};
use super::store::{GroupSpan, StoreError};
use crate::protocol::modeldata::Point;

/// Rows that can be placed: a finite `created_at` and an `id` (rows without
/// are not streamed, and must not reach the `int8` casts).
const VALID: &str = "id IS NOT NULL AND isfinite(created_at)";

/// Upper bound on any one query (a stuck query must not stall the feed);
/// the one-time ladder build and index creation run without it.
const STATEMENT_TIMEOUT_MS: u64 = 30_000;
/// Time to connect, or to wait for a pooled connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Sampled rows fetched per statement; a group's sample is split into
/// statements of this many probes that run in parallel.
const PROBES_PER_QUERY: usize = 128;
/// Keys read per round trip when extending a ladder.
const KEY_PAGE: i64 = 50_000;
/// Most groups (distinct `display_name`s) streamed.
pub const MAX_GROUPS: i64 = 1_000;
/// Rows committed up to this long (µs) after newer rows are still placed
/// exactly: each refresh re-reads the keys of the last minute.
const LATE_ROW_WINDOW_MICROS: i64 = 60_000_000;
/// Least time between two full rebuilds triggered by deletes or late rows.
const REBUILD_MIN_INTERVAL: Duration = Duration::from_secs(300);

/// Whether and how roomcast creates its index on the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexMode {
    /// `CREATE INDEX IF NOT EXISTS` at start (locks out writes while it builds).
    Create,
    /// `CREATE INDEX CONCURRENTLY IF NOT EXISTS`: no write lock, slower build.
    Concurrently,
    /// Never create it (the user manages indexes).
    Off,
}

/// The table's column types, as far as the queries' casts need them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Schema {
    /// `timestamptz` or `timestamp`: how a bound in µs becomes a `created_at`.
    time_type: &'static str,
    /// `text`, `varchar` or `bpchar`: the type group names are compared as, so
    /// comparisons use the index.
    name_type: &'static str,
}

/// The SQL of every statement, built once from the table name and schema.
#[derive(Debug, Clone)]
struct Sql {
    groups: String,
    checkpoints: String,
    keys_from: String,
    keys_after: String,
    count_before: String,
    count_through: String,
    rows_at: String,
    stats: String,
}

impl Sql {
    fn new(table: &str, schema: &Schema) -> Self {
        let Schema {
            time_type: ts,
            name_type: nt,
        } = schema;
        let micros = |col: &str| format!("(extract(epoch from {col}) * 1000000)::int8");
        let at = |param: &str| {
            format!("('epoch'::{ts} + ({param})::int8::float8 * interval '1 microsecond')")
        };
        let keys = |op: &str| {
            format!(
                "SELECT {}, id::int8 FROM {table} \
                 WHERE display_name = $1::{nt} AND {VALID} AND (created_at, id) {op} ({}, $3::int8) \
                 ORDER BY created_at, id LIMIT $4",
                micros("created_at"),
                at("$2")
            )
        };
        let count = |op: &str| {
            format!(
                "SELECT count(*)::int8 FROM (SELECT 1 FROM {table} \
                 WHERE display_name = $1::{nt} AND {VALID} AND (created_at, id) >= ({}, $3::int8) \
                 AND created_at {op} {} ORDER BY created_at, id LIMIT $5) s",
                at("$2"),
                at("$4")
            )
        };
        Sql {
            groups: format!(
                "WITH RECURSIVE g(name) AS ( \
                   (SELECT display_name::text FROM {table} WHERE display_name IS NOT NULL \
                    ORDER BY display_name LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT display_name::text FROM {table} WHERE display_name > g.name::{nt} \
                           ORDER BY display_name LIMIT 1) FROM g WHERE g.name IS NOT NULL) \
                 SELECT name FROM g WHERE name IS NOT NULL LIMIT {MAX_GROUPS}"
            ),
            checkpoints: format!(
                "SELECT micros, id FROM ( \
                   SELECT {} AS micros, id::int8 AS id, \
                          row_number() OVER (ORDER BY created_at, id) AS rn \
                   FROM {table} WHERE display_name = $1::{nt} AND {VALID}) s \
                 WHERE (rn - 1) % $2 = 0 ORDER BY rn",
                micros("created_at")
            ),
            keys_from: keys(">="),
            keys_after: keys(">"),
            count_before: count("<"),
            count_through: count("<="),
            rows_at: format!(
                "SELECT m.id::int8, m.account_value::float8, m.return_value::float8, \
                        m.total_pnl::float8, m.fees::float8, m.trades::int8, {} \
                 FROM unnest($2::int8[], $3::int8[], $4::int8[]) WITH ORDINALITY AS k(ts, kid, skip, ord) \
                 CROSS JOIN LATERAL ( \
                   SELECT p.created_at, p.id FROM {table} p \
                   WHERE p.display_name = $1::{nt} AND p.id IS NOT NULL AND isfinite(p.created_at) \
                     AND (p.created_at, p.id) >= ({}, k.kid) \
                   ORDER BY p.created_at, p.id OFFSET k.skip LIMIT 1) pos \
                 JOIN {table} m ON m.display_name = $1::{nt} AND m.created_at = pos.created_at \
                   AND m.id = pos.id \
                 ORDER BY k.ord",
                micros("m.created_at"),
                at("k.ts")
            ),
            stats: "SELECT coalesce(n_tup_ins, 0)::int8, coalesce(n_tup_del, 0)::int8 \
                    FROM pg_stat_user_tables WHERE relid = to_regclass($1)"
                .to_string(),
        }
    }
}

/// Table counters at the last full build: rows inserted or deleted behind the
/// ladders' backs (older than the late-row window) trigger a rebuild.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    /// `n_tup_ins` then.
    inserted: i64,
    /// `n_tup_del` then.
    deleted: i64,
    /// Rows in all ladders then.
    rows: u64,
}

/// The store's view of the table; owned by the modeldata task (no locks).
#[derive(Debug)]
pub struct PgStore {
    /// Connections to the database.
    pool: Pool,
    /// `host:port/db`, so connection errors say which database failed.
    target: String,
    /// The table, as configured (validated identifier, optionally schema-qualified).
    table: String,
    /// Index creation policy.
    index: IndexMode,
    /// Connections in the pool: the most statements run at once.
    pool_size: usize,
    /// Statements; `None` until the table was introspected.
    sql: Option<Sql>,
    /// Per group (ordered by name), its position ladder.
    ladders: BTreeMap<Arc<str>, Ladder>,
    /// Counters at the last full build.
    baseline: Option<Baseline>,
    /// When the ladders were last rebuilt from scratch.
    rebuilt: Option<Instant>,
}

/// Maps a driver error: no server response means the database is
/// unreachable (the whole cause chain kept: the driver's own message does
/// not say why).
pub(super) fn db_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Query(format!("{}: {}", db.code().code(), db.message())),
        None => StoreError::Unavailable(cause_chain(&e)),
    }
}

impl PgStore {
    /// A store for `url` (the pool connects lazily: an unreachable database
    /// at start is retried by the caller, not fatal).
    pub fn new(
        url: &DatabaseUrl,
        table: &str,
        pool_size: usize,
        index: IndexMode,
    ) -> Result<Self, StoreError> {
        let tls = url
            .connector()
            .map_err(|e| StoreError::Config(cause_chain(&e)))?;
        let mut config = url.config().clone();
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("roomcast")
            .options(format!(
                "-c statement_timeout={STATEMENT_TIMEOUT_MS} -c jit=off"
            ));
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(PgStore {
            pool,
            target: url.target(),
            table: table.to_string(),
            index,
            pool_size,
            sql: None,
            ladders: BTreeMap::new(),
            baseline: None,
            rebuilt: None,
        })
    }

    /// Rows known per group (for status).
    pub fn rows(&self) -> u64 {
        self.ladders.values().map(Ladder::len).sum()
    }

    /// A pooled connection; a failure to connect names the database and
    /// says why (the server's reason for refusing it, a refused
    /// certificate, a refused connection), as [`StoreError::Unavailable`]:
    /// every feed is affected.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Unavailable(match &e {
                deadpool_postgres::PoolError::Backend(e) => connect_error(&self.target, e),
                other => connect_error(&self.target, other),
            })
        })
    }

    /// Reads the table's column types, creates the index if allowed, and
    /// builds the statements.
    async fn prepare(&mut self) -> Result<Sql, StoreError> {
        if let Some(sql) = &self.sql {
            return Ok(sql.clone());
        }
        let client = self.client().await?;
        let columns = client
            .query(
                "SELECT a.attname::text, t.typname::text FROM pg_attribute a \
                 JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&self.table],
            )
            .await
            .map_err(db_error)?;
        let types: BTreeMap<String, String> = columns
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        let schema = schema_of(&self.table, &types)?;
        if self.index != IndexMode::Off {
            let concurrently = if self.index == IndexMode::Concurrently {
                "CONCURRENTLY "
            } else {
                ""
            };
            let name = format!("{}_roomcast_group_time_idx", self.table.replace('.', "_"));
            // An unqualified index name: the index lands in the table's schema.
            let started = Instant::now();
            let ddl = format!(
                "CREATE INDEX {concurrently}IF NOT EXISTS {name} ON {} (display_name, created_at, id)",
                self.table
            );
            // Building may take long on a big table: no statement timeout.
            let _ = client.batch_execute("SET statement_timeout = 0").await;
            let mut created = client.batch_execute(&ddl).await;
            // An interrupted CONCURRENTLY build leaves an invalid index that
            // IF NOT EXISTS would keep: drop and build it again, once.
            let valid: Option<bool> = client
                .query_opt(
                    "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                    &[&name],
                )
                .await
                .ok()
                .flatten()
                .map(|r| r.get(0));
            if valid == Some(false) {
                tracing::warn!(index = %name, "invalid modeldata index (an interrupted build?): rebuilding");
                created = client
                    .batch_execute(&format!("DROP INDEX IF EXISTS {name}; {ddl}"))
                    .await;
            }
            let _ = client
                .batch_execute(&format!("SET statement_timeout = {STATEMENT_TIMEOUT_MS}"))
                .await;
            match created {
                Ok(()) => tracing::info!(
                    index = %name,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "modeldata index ready"
                ),
                // Not fatal: no privilege, say, means slower queries, not none.
                Err(e) => tracing::warn!(
                    error = %db_error(e),
                    "could not create the modeldata index; queries will be slower"
                ),
            }
        }
        let sql = Sql::new(&self.table, &schema);
        self.sql = Some(sql.clone());
        Ok(sql)
    }

    /// Brings every group's ladder up to date: new groups, new rows, and a
    /// full rebuild when rows were deleted or inserted too far in the past.
    pub async fn refresh(&mut self) -> Result<(), StoreError> {
        let sql = self.prepare().await?;
        let client = self.client().await?;
        let stats = client
            .query_opt(&sql.stats, &[&self.table])
            .await
            .map_err(db_error)?
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
        if self.needs_rebuild(stats) {
            tracing::info!(
                "modeldata rows changed behind the index (deletes or late rows): rebuilding"
            );
            self.ladders.clear();
            self.baseline = None;
        }
        let names: Vec<String> = client
            .query(&sql.groups, &[])
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if names.len() as i64 >= MAX_GROUPS {
            tracing::warn!(
                max = MAX_GROUPS,
                "modeldata has more groups than are streamed"
            );
        }
        let mut ladders = BTreeMap::new();
        for name in names {
            let name: Arc<str> = name.into();
            let ladder = self
                .ladders
                .remove(&name)
                .unwrap_or_else(|| Ladder::new(DEFAULT_STRIDE));
            ladders.insert(name, ladder);
        }
        let building = self.baseline.is_none();
        let started = Instant::now();
        drop(client);
        // Groups are read in parallel over the pool's connections.
        let this = &*self;
        // At most a pool's worth at once: a queued `get` must not time out
        // behind long builds. Finished ladders are kept if another fails.
        let builds: Vec<_> = ladders
            .iter_mut()
            .map(|(name, ladder)| {
                let sql = &sql;
                Box::pin(async move { extend(this.client().await?, sql, name, ladder).await })
            })
            .collect();
        let extended: Result<Vec<()>, StoreError> = stream::iter(builds)
            .buffer_unordered(self.pool_size)
            .try_collect()
            .await;
        self.ladders = ladders;
        extended?;
        if building {
            let rows = self.rows();
            tracing::info!(
                groups = self.ladders.len(),
                rows,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "modeldata ladders built"
            );
            // Counters after the build: anything they count that a refresh
            // does not see later was inserted behind the ladders' backs.
            let after = self
                .client()
                .await?
                .query_opt(&sql.stats, &[&self.table])
                .await
                .map_err(db_error)?
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
            self.baseline = after.map(|(inserted, deleted)| Baseline {
                inserted,
                deleted,
                rows,
            });
            self.rebuilt = Some(Instant::now());
        }
        Ok(())
    }

    fn needs_rebuild(&self, stats: Option<(i64, i64)>) -> bool {
        let (Some(base), Some((inserted, deleted))) = (self.baseline, stats) else {
            return false;
        };
        if self
            .rebuilt
            .is_some_and(|at| at.elapsed() < REBUILD_MIN_INTERVAL)
        {
            return false;
        }
        let grown = self.rows().saturating_sub(base.rows) as i64;
        // Stats were reset (counters went down): take new counters, no rebuild.
        if inserted < base.inserted || deleted < base.deleted {
            return false;
        }
        deleted > base.deleted || inserted - base.inserted > grown
    }

    /// Each group's rows `[lo, hi)` within `from ..= to`, by position.
    pub async fn spans(
        &self,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<GroupSpan>, StoreError> {
        let sql = self.sql.as_ref().ok_or(StoreError::NotReady)?;
        let counts: Vec<_> = self
            .ladders
            .iter()
            .map(|(name, ladder)| {
                Box::pin(async move {
                    let (lo, hi) = match (from, to) {
                        (None, None) => (0, ladder.len()),
                        _ => {
                            let client = self.client().await?;
                            let lo = match from {
                                Some(t) => {
                                    rank(&client, &sql.count_before, name, ladder, t, false).await?
                                }
                                None => 0,
                            };
                            let hi = match to {
                                Some(t) => {
                                    rank(&client, &sql.count_through, name, ladder, t, true).await?
                                }
                                None => ladder.len(),
                            };
                            (lo, hi)
                        }
                    };
                    Ok(GroupSpan {
                        name: Arc::clone(name),
                        lo,
                        hi: hi.max(lo),
                    })
                })
            })
            .collect();
        stream::iter(counts)
            .buffered(self.pool_size)
            .try_collect()
            .await
    }

    /// The rows at `positions` of each group. Each group's positions are cut
    /// into chunks of [`PROBES_PER_QUERY`], fetched in parallel over the pool's
    /// connections (one statement per chunk), so even a single group uses
    /// every core the database has.
    pub async fn rows_at(
        &self,
        requests: &[(Arc<str>, Vec<u64>)],
    ) -> Result<Vec<Vec<Point>>, StoreError> {
        let sql = self.sql.as_ref().ok_or(StoreError::NotReady)?;
        let chunks = requests.iter().flat_map(|(name, positions)| {
            let ladder = self.ladders.get(name);
            positions
                .chunks(PROBES_PER_QUERY)
                .map(move |chunk| (name, ladder, chunk))
        });
        let queries: Vec<_> = chunks
            .map(|(name, ladder, chunk)| {
                Box::pin(async move {
                    let Some(ladder) = ladder else {
                        return Ok(Vec::new());
                    };
                    let mut ts = Vec::with_capacity(chunk.len());
                    let mut ids = Vec::with_capacity(chunk.len());
                    let mut skips = Vec::with_capacity(chunk.len());
                    for &p in chunk {
                        if let Some(((t, id), skip)) = ladder.locate(p) {
                            ts.push(t);
                            ids.push(id);
                            skips.push(skip as i64);
                        }
                    }
                    let client = self.client().await?;
                    let statement = client
                        .prepare_cached(&sql.rows_at)
                        .await
                        .map_err(db_error)?;
                    let params: [&(dyn ToSql + Sync); 4] = [&&**name, &ts, &ids, &skips];
                    let rows = client.query(&statement, &params).await.map_err(db_error)?;
                    Ok::<_, StoreError>(
                        rows.iter()
                            .map(|r| Point {
                                id: r.get(0),
                                account_value: r.get(1),
                                return_value: r.get(2),
                                total_pnl: r.get(3),
                                fees: r.get(4),
                                trades: r.get(5),
                                created_at: r.get(6),
                            })
                            .collect::<Vec<_>>(),
                    )
                })
            })
            .collect();
        let fetched: Vec<Vec<Point>> = stream::iter(queries)
            .buffered(self.pool_size)
            .try_collect()
            .await?;
        // Reassemble each group from its chunks, in order.
        let mut fetched = fetched.into_iter();
        Ok(requests
            .iter()
            .map(|(_, positions)| {
                let chunks = positions.len().div_ceil(PROBES_PER_QUERY);
                fetched.by_ref().take(chunks).flatten().collect()
            })
            .collect())
    }
}

/// Extends one group's ladder with the rows after its resume point (the
/// whole group, via checkpoints computed in the database, when it is new).
async fn extend(
    mut client: deadpool_postgres::Object,
    sql: &Sql,
    name: &str,
    ladder: &mut Ladder,
) -> Result<(), StoreError> {
    if ladder.is_empty() {
        let stride = ladder.stride() as i64;
        // One scan of the whole group: no statement timeout for it.
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(db_error)?;
        let rows = tx
            .query(&sql.checkpoints, &[&name, &stride])
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        ladder.set_checkpoints(rows.iter().map(|r| (r.get(0), r.get(1))).collect());
    }
    let client = &client;
    let Some((index, key)) = ladder.resume_point(LATE_ROW_WINDOW_MICROS) else {
        return Ok(());
    };
    ladder.truncate(index);
    let statement = client
        .prepare_cached(&sql.keys_from)
        .await
        .map_err(db_error)?;
    let mut page = page_of(client, &statement, name, key).await?;
    loop {
        let full = page.len() as i64 == KEY_PAGE;
        for &k in &page {
            ladder.push(k);
        }
        let (true, Some(&last)) = (full, page.last()) else {
            return Ok(());
        };
        let after = client
            .prepare_cached(&sql.keys_after)
            .await
            .map_err(db_error)?;
        page = page_of(client, &after, name, last).await?;
    }
}

async fn page_of(
    client: &deadpool_postgres::Object,
    statement: &tokio_postgres::Statement,
    name: &str,
    (ts, id): Key,
) -> Result<Vec<Key>, StoreError> {
    Ok(client
        .query(statement, &[&name, &ts, &id, &KEY_PAGE])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Rows of the group before `micros` (or through it, when `inclusive`): the
/// checkpoints' count plus one bounded count inside the last block.
async fn rank(
    client: &deadpool_postgres::Object,
    sql: &str,
    name: &str,
    ladder: &Ladder,
    micros: i64,
    inclusive: bool,
) -> Result<u64, StoreError> {
    let Some((index, (ts, id))) = ladder.floor(micros, inclusive) else {
        return Ok(0);
    };
    let stride = ladder.stride() as i64;
    let in_block: i64 = client
        .query_one(sql, &[&name, &ts, &id, &micros, &stride])
        .await
        .map_err(db_error)?
        .get(0);
    Ok((index as u64 * ladder.stride() + in_block as u64).min(ladder.len()))
}

/// Checks the table's columns and picks the casts the queries need.
fn schema_of(table: &str, types: &BTreeMap<String, String>) -> Result<Schema, StoreError> {
    if types.is_empty() {
        return Err(StoreError::Schema(format!(
            "table {table} not found (create it with sql/001_modeldata.sql or set MODELDATA_TABLE)"
        )));
    }
    const NUMBERS: &[&str] = &["float8", "float4", "numeric", "int2", "int4", "int8"];
    const INTEGERS: &[&str] = &["int2", "int4", "int8"];
    let check = |column: &str, allowed: &[&str]| -> Result<String, StoreError> {
        match types.get(column) {
            None => Err(StoreError::Schema(format!(
                "table {table} has no column {column}"
            ))),
            Some(t) if allowed.contains(&t.as_str()) => Ok(t.clone()),
            Some(t) => Err(StoreError::Schema(format!(
                "column {table}.{column} has type {t}; expected one of {}",
                allowed.join(", ")
            ))),
        }
    };
    check("id", INTEGERS)?;
    for column in [
        "account_value",
        "return_value",
        "total_pnl",
        "fees",
        "trades",
    ] {
        check(column, NUMBERS)?;
    }
    let time_type = match check("created_at", &["timestamptz", "timestamp"])?.as_str() {
        "timestamptz" => "timestamptz",
        _ => "timestamp",
    };
    let name_type = match check("display_name", &["text", "varchar", "bpchar"])?.as_str() {
        "text" => "text",
        "varchar" => "varchar",
        _ => "bpchar",
    };
    Ok(Schema {
        time_type,
        name_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const SEED: &[(&str, &str)] = &[
        ("id", "int4"),
        ("display_name", "varchar"),
        ("account_value", "numeric"),
        ("return_value", "float8"),
        ("total_pnl", "numeric"),
        ("fees", "float8"),
        ("trades", "int4"),
        ("created_at", "timestamp"),
    ];

    #[test]
    fn alternative_column_types_are_accepted_with_matching_casts() {
        let s = schema_of("modeldata", &types(SEED)).unwrap();
        assert_eq!(s.time_type, "timestamp");
        assert_eq!(s.name_type, "varchar");
        let sql = Sql::new("modeldata", &s);
        assert!(sql.rows_at.contains("'epoch'::timestamp +"));
        assert!(sql.groups.contains("g.name::varchar"));
    }

    #[test]
    fn missing_table_or_wrong_types_are_named() {
        let e = schema_of("modeldata", &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        let mut t = types(SEED);
        t.insert("created_at".into(), "text".into());
        let e = schema_of("modeldata", &t).unwrap_err();
        assert!(
            e.to_string().contains("modeldata.created_at has type text"),
            "{e}"
        );
        t.remove("created_at");
        let e = schema_of("modeldata", &t).unwrap_err();
        assert!(e.to_string().contains("no column created_at"), "{e}");
    }
}
