//! The embedded modeldata store (no `DATABASE_URL`): simulated AI trading
//! models kept in memory, so `cargo run --release` shows a live stream with
//! the same resampler and protocol as PostgreSQL. Each model starts with a
//! backfilled history and gains one row per `row_interval` of wall time,
//! generated when the store is refreshed; the oldest rows go once a group
//! holds `max_rows`, so memory is bounded.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::model::{ModelWalk, model_name};
use super::store::GroupSpan;
use crate::protocol::modeldata::Point;

/// Settings of the simulated models.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Number of models (groups).
    pub models: usize,
    /// Wall time between two rows of a model.
    pub row_interval: Duration,
    /// Rows generated for each model's past at start.
    pub backfill_rows: usize,
    /// Rows a group keeps; older ones are dropped.
    pub max_rows: usize,
    /// Random seed (reproducible runs).
    pub seed: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            models: 6,
            row_interval: Duration::from_secs(5),
            backfill_rows: 10_000,
            max_rows: 50_000,
            seed: 0x5eed,
        }
    }
}

/// One simulated model's rows.
#[derive(Debug)]
struct Group {
    /// The model's `display_name`.
    name: Arc<str>,
    /// Its walk, producing the next rows.
    walk: ModelWalk,
    /// Rows, oldest first.
    rows: VecDeque<Point>,
}

/// The in-memory store.
#[derive(Debug)]
pub struct MemoryStore {
    /// Settings.
    config: MemoryConfig,
    /// Groups ordered by name.
    groups: Vec<Group>,
    /// Next row id (one sequence for all models, like a serial column).
    next_id: i64,
    /// `created_at` (µs) of the next row to generate.
    next_at: i64,
}

impl MemoryStore {
    /// A store with each model's backfill ending now (`now_micros`).
    pub fn new(config: MemoryConfig, now_micros: i64) -> Self {
        let step = config.row_interval.as_micros().max(1) as i64;
        let mut groups: Vec<Group> = (0..config.models)
            .map(|i| Group {
                name: model_name(i).into(),
                walk: ModelWalk::new(i, config.seed),
                rows: VecDeque::new(),
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        let mut store = MemoryStore {
            next_at: now_micros - step * config.backfill_rows as i64,
            next_id: 1,
            config,
            groups,
        };
        store.advance_to(now_micros);
        store
    }

    /// Generates every row due up to `now_micros`.
    pub fn advance_to(&mut self, now_micros: i64) {
        let step = self.config.row_interval.as_micros().max(1) as i64;
        while self.next_at <= now_micros {
            for group in &mut self.groups {
                let point = group.walk.next(self.next_id, self.next_at);
                self.next_id += 1;
                if group.rows.len() == self.config.max_rows {
                    group.rows.pop_front();
                }
                group.rows.push_back(point);
            }
            self.next_at += step;
        }
    }

    /// Rows held in all groups.
    pub fn rows(&self) -> u64 {
        self.groups.iter().map(|g| g.rows.len() as u64).sum()
    }

    /// Each group's rows `[lo, hi)` within `from ..= to`.
    pub fn spans(&self, from: Option<i64>, to: Option<i64>) -> Vec<GroupSpan> {
        self.groups
            .iter()
            .map(|g| {
                let lo = from.map_or(0, |t| g.rows.partition_point(|p| p.created_at < t));
                let hi = to.map_or(g.rows.len(), |t| {
                    g.rows.partition_point(|p| p.created_at <= t)
                });
                GroupSpan {
                    name: Arc::clone(&g.name),
                    lo: lo as u64,
                    hi: hi.max(lo) as u64,
                }
            })
            .collect()
    }

    /// The rows at `positions` of each group.
    pub fn rows_at(&self, requests: &[(Arc<str>, Vec<u64>)]) -> Vec<Vec<Point>> {
        requests
            .iter()
            .map(|(name, positions)| {
                let Some(group) = self.groups.iter().find(|g| g.name == *name) else {
                    return Vec::new();
                };
                positions
                    .iter()
                    .filter_map(|&p| group.rows.get(p as usize).copied())
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(backfill: usize, max_rows: usize) -> MemoryStore {
        MemoryStore::new(
            MemoryConfig {
                models: 3,
                row_interval: Duration::from_secs(1),
                backfill_rows: backfill,
                max_rows,
                seed: 1,
            },
            1_000_000_000,
        )
    }

    #[test]
    fn backfill_ends_now_and_groups_are_sorted() {
        let s = store(100, 1000);
        let spans = s.spans(None, None);
        let names: Vec<_> = spans.iter().map(|g| g.name.to_string()).collect();
        assert_eq!(names, ["AI_Model_Alpha", "AI_Model_Beta", "AI_Model_Gamma"]);
        assert!(spans.iter().all(|g| g.hi == 101));
        let last = &s.rows_at(&[(spans[0].name.clone(), vec![100])])[0][0];
        assert_eq!(last.created_at, 1_000_000_000);
    }

    #[test]
    fn new_rows_appear_and_the_oldest_go_past_the_cap() {
        let mut s = store(10, 12);
        s.advance_to(1_000_000_000 + 5_000_000);
        let spans = s.spans(None, None);
        assert_eq!(spans[0].hi, 12);
        let rows = s.rows_at(&[(spans[0].name.clone(), vec![0, 11])]);
        assert_eq!(rows[0][1].created_at, 1_005_000_000);
        assert_eq!(rows[0][0].created_at, 1_005_000_000 - 11_000_000);
    }

    #[test]
    fn time_range_selects_inclusive_bounds() {
        let s = store(100, 1000);
        let spans = s.spans(
            Some(1_000_000_000 - 10_000_000),
            Some(1_000_000_000 - 5_000_000),
        );
        assert_eq!((spans[0].lo, spans[0].hi), (90, 96));
    }
}
