//! Where modeldata rows come from — PostgreSQL or the embedded simulated
//! models — behind one interface the feeds sample through: bring the view up
//! to date, find each group's rows in a time range by position, and fetch
//! the rows at chosen positions. [`sample`] turns that into the points of one
//! option set (seed 000's even spread, or LTTB).

use std::sync::Arc;

use super::memory::MemoryStore;
use super::options::{FeedOptions, Sampler};
use super::postgres::PgStore;
use super::resample::{LTTB_OVERSAMPLE, even_positions, lttb};
use crate::protocol::modeldata::GroupSeries;

/// Why the store could not answer; the feed keeps the last good data and retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, reset, timed
    /// out) or refuses the connection (password, missing database, no TLS);
    /// connection errors name `host:port/db` and say why.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The table is missing or has columns roomcast cannot read.
    #[error("modeldata table unusable: {0}")]
    Schema(String),
    /// The database refused a query.
    #[error("database error: {0}")]
    Query(String),
    /// The connection settings are invalid.
    #[error("database configuration: {0}")]
    Config(String),
    /// Sampling was asked for before the first successful refresh.
    #[error("modeldata store not initialised yet")]
    NotReady,
}

/// One group's rows in a time range, by position in `(created_at, id)` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpan {
    /// The group's `display_name`.
    pub name: Arc<str>,
    /// First row in range.
    pub lo: u64,
    /// One past the last row in range.
    pub hi: u64,
}

/// The configured store.
#[derive(Debug)]
pub enum Store {
    /// The user's `modeldata` table.
    Postgres(Box<PgStore>),
    /// Simulated models in memory (the embedded default).
    Memory(MemoryStore),
}

impl Store {
    /// Rows the store knows of (all groups).
    pub fn rows(&self) -> u64 {
        match self {
            Store::Postgres(pg) => pg.rows(),
            Store::Memory(m) => m.rows(),
        }
    }

    /// Brings the view up to date: new groups and new rows.
    pub async fn refresh(&mut self) -> Result<(), StoreError> {
        match self {
            Store::Postgres(pg) => pg.refresh().await,
            Store::Memory(m) => {
                m.advance_to(chrono::Utc::now().timestamp_micros());
                Ok(())
            }
        }
    }

    async fn spans(
        &self,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<GroupSpan>, StoreError> {
        match self {
            Store::Postgres(pg) => pg.spans(from, to).await,
            Store::Memory(m) => Ok(m.spans(from, to)),
        }
    }

    async fn rows_at(
        &self,
        requests: &[(Arc<str>, Vec<u64>)],
    ) -> Result<Vec<Vec<crate::protocol::modeldata::Point>>, StoreError> {
        match self {
            Store::Postgres(pg) => pg.rows_at(requests).await,
            Store::Memory(m) => Ok(m.rows_at(requests)),
        }
    }
}

/// The points of every group for one option set, groups ordered by name.
/// Groups with no rows in the range are left out.
pub async fn sample(store: &Store, options: &FeedOptions) -> Result<Vec<GroupSeries>, StoreError> {
    let spans = store.spans(options.from, options.to).await?;
    let requests: Vec<(Arc<str>, Vec<u64>)> = spans
        .iter()
        .filter(|s| s.hi > s.lo)
        .map(|s| {
            let n = s.hi - s.lo;
            let wanted = match options.sampler {
                Sampler::Even => options.points,
                Sampler::Lttb => options.points.saturating_mul(LTTB_OVERSAMPLE),
            };
            let positions = even_positions(n, wanted)
                .into_iter()
                .map(|p| p + s.lo)
                .collect();
            (Arc::clone(&s.name), positions)
        })
        .collect();
    let rows = store.rows_at(&requests).await?;
    Ok(requests
        .into_iter()
        .zip(rows)
        .filter(|(_, points)| !points.is_empty())
        .map(|((display_name, _), points)| {
            let points = match options.sampler {
                Sampler::Lttb if points.len() > options.points => {
                    let x: Vec<f64> = points.iter().map(|p| p.created_at as f64).collect();
                    let y: Vec<f64> = points
                        .iter()
                        .map(|p| p.account_value.unwrap_or(f64::NAN))
                        .collect();
                    lttb(&x, &y, options.points)
                        .into_iter()
                        .map(|i| points[i])
                        .collect()
                }
                _ => points,
            };
            GroupSeries {
                display_name,
                points,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::modeldata::memory::MemoryConfig;
    use std::time::Duration;

    fn memory(rows: usize) -> Store {
        Store::Memory(MemoryStore::new(
            MemoryConfig {
                models: 2,
                row_interval: Duration::from_secs(1),
                backfill_rows: rows - 1,
                max_rows: rows,
                seed: 3,
            },
            10_000_000_000,
        ))
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn default_options_give_500_points_from_first_to_latest() {
        let store = memory(10_000);
        let groups = block_on(sample(&store, &FeedOptions::default())).unwrap();
        assert_eq!(groups.len(), 2);
        for g in &groups {
            assert_eq!(g.points.len(), 500);
            assert_eq!(g.points[0].created_at, 10_000_000_000 - 9_999_000_000);
            assert_eq!(g.points[499].created_at, 10_000_000_000);
            assert!(
                g.points
                    .windows(2)
                    .all(|w| w[0].created_at < w[1].created_at)
            );
        }
    }

    #[test]
    fn lttb_and_time_range_bound_the_points() {
        let store = memory(10_000);
        let options = FeedOptions {
            points: 50,
            sampler: Sampler::Lttb,
            from: Some(10_000_000_000 - 1_000_000_000),
            to: None,
        };
        let groups = block_on(sample(&store, &options)).unwrap();
        for g in &groups {
            assert_eq!(g.points.len(), 50);
            assert_eq!(g.points[0].created_at, 9_000_000_000);
            assert_eq!(g.points[49].created_at, 10_000_000_000);
        }
    }

    #[test]
    fn a_range_with_no_rows_leaves_groups_out() {
        let store = memory(100);
        let options = FeedOptions {
            from: Some(20_000_000_000),
            ..FeedOptions::default()
        };
        assert!(block_on(sample(&store, &options)).unwrap().is_empty());
    }
}
