//! The modeldata source (seed 000): resampled `modeldata` series published
//! into one room per distinct option set ("feed").
//!
//! One long-lived task owns the [`Store`] (PostgreSQL or the embedded
//! simulated models), so no lock is ever held across a query. It refreshes
//! the store's view every `MODELDATA_INTERVAL_SECS` (keeping it warm and the
//! readiness flag honest) and, while a feed has connections, samples it once
//! per interval — one query round and one serialisation per option set,
//! shared by all its connections — and publishes the result into the feed's
//! room. A new feed gets its first snapshot at once (`initial_modeldata`);
//! the broadcast for a feed stops when its last connection leaves.
//!
//! Failures never close connections: the task retries with exponential
//! backoff and jitter, clients keep the last good data and receive a
//! `modeldata_status` message (`degraded`, then `ok` on recovery), and
//! `/ready` reports false while the database is down.

pub mod database_url;
pub mod ladder;
pub mod memory;
pub mod model;
pub mod options;
pub mod postgres;
pub mod resample;
pub mod seed;
pub mod settings;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use options::{FeedOptions, OptionsError, Sampler};
pub use store::{Store, StoreError};

use crate::catalog::RoomName;
use crate::frame;
use crate::protocol::modeldata::{EncodedSnapshot, SourceStatus, StatusMessage, encode_snapshot};
use crate::protocol::{Event, ModelDataFrame, time};
use crate::publisher::Publisher;
use crate::telemetry::metrics;

/// First retry delay after a failure; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a connection cannot have a feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The node already runs `MODELDATA_MAX_FEEDS` distinct option sets.
    #[error(
        "too many distinct modeldata option sets on this server ({0}); use the defaults or options other clients use"
    )]
    TooManyFeeds(usize),
}

/// Settings of the modeldata source.
#[derive(Debug, Clone)]
pub struct ModelDataConfig {
    /// Time between two `modeldata_update`s of a feed.
    pub interval: Duration,
    /// Distinct option sets served at once.
    pub max_feeds: usize,
    /// Largest `?points`.
    pub max_points: usize,
    /// In a fleet, how long a node leads a feed without renewing (renewed
    /// every interval): one node samples each feed for the whole fleet.
    pub lead_ttl: Duration,
}

/// Connections per feed, shared between sessions and the task.
#[derive(Debug, Default)]
struct Registry {
    /// Open connections per option set.
    leases: HashMap<FeedOptions, usize>,
}

/// What status endpoints show; written by the task.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceReport {
    /// `postgres` or `memory`.
    pub source: &'static str,
    /// Whether the last refresh succeeded.
    pub healthy: bool,
    /// The last failure, while unhealthy.
    pub last_error: Option<String>,
    /// When data was last sampled successfully.
    pub last_update: Option<String>,
    /// Groups in the last snapshot of the default feed (or any feed).
    pub groups: usize,
    /// Rows the store knows of.
    pub rows: u64,
    /// Duration of the last refresh plus sampling round, in milliseconds.
    pub last_round_ms: Option<f64>,
}

/// The node's modeldata service: feed leases, status, and the task's inbox.
#[derive(Debug)]
pub struct ModelData {
    /// Settings.
    config: ModelDataConfig,
    /// Connections per feed.
    registry: Mutex<Registry>,
    /// Wakes the task when a feed appears or goes.
    changed: Notify,
    /// Whether some feed is being broadcast (seed 000's `modeldata_stream_task_running`).
    broadcasting: AtomicBool,
    /// Whether a database backs the store (readiness depends on it).
    uses_database: bool,
    /// Source health and figures for status endpoints.
    report: Mutex<SourceReport>,
}

/// Keeps a feed broadcasting while a connection holds it.
#[derive(Debug)]
pub struct FeedLease {
    /// The service, to release the lease.
    modeldata: Arc<ModelData>,
    /// The feed held.
    options: FeedOptions,
}

impl Drop for FeedLease {
    fn drop(&mut self) {
        let mut registry = self.modeldata.registry.lock();
        if let Some(n) = registry.leases.get_mut(&self.options) {
            *n -= 1;
            if *n == 0 {
                registry.leases.remove(&self.options);
                drop(registry);
                self.modeldata.changed.notify_one();
            }
        }
    }
}

impl ModelData {
    /// A service for `store`'s kind; the task is started by [`ModelData::spawn`].
    pub fn new(config: ModelDataConfig, uses_database: bool) -> Arc<Self> {
        Arc::new(ModelData {
            config,
            registry: Mutex::new(Registry::default()),
            changed: Notify::new(),
            broadcasting: AtomicBool::new(false),
            uses_database,
            report: Mutex::new(SourceReport {
                source: if uses_database { "postgres" } else { "memory" },
                ..SourceReport::default()
            }),
        })
    }

    /// Settings.
    pub fn config(&self) -> &ModelDataConfig {
        &self.config
    }

    /// Checks that a connection with `options` can be served (before upgrading).
    pub fn check(&self, options: &FeedOptions) -> Result<(), FeedError> {
        let registry = self.registry.lock();
        if registry.leases.contains_key(options) || registry.leases.len() < self.config.max_feeds {
            Ok(())
        } else {
            Err(FeedError::TooManyFeeds(self.config.max_feeds))
        }
    }

    /// Holds the feed for `options` until the lease is dropped.
    pub fn attach(self: &Arc<Self>, options: &FeedOptions) -> FeedLease {
        let first = {
            let mut registry = self.registry.lock();
            let n = registry.leases.entry(options.clone()).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            self.changed.notify_one();
        }
        FeedLease {
            modeldata: Arc::clone(self),
            options: options.clone(),
        }
    }

    /// Open `/ws/modeldata-stream` connections.
    pub fn connections(&self) -> usize {
        self.registry.lock().leases.values().sum()
    }

    /// `(feed room, connections)` of every feed.
    pub fn feeds(&self) -> Vec<(RoomName, usize)> {
        let mut feeds: Vec<_> = self
            .registry
            .lock()
            .leases
            .iter()
            .map(|(o, n)| (o.room(), *n))
            .collect();
        feeds.sort();
        feeds
    }

    /// Whether some feed is being broadcast.
    pub fn is_broadcasting(&self) -> bool {
        self.broadcasting.load(Ordering::Relaxed)
    }

    /// Ready unless a configured database is down (or not reached yet).
    pub fn is_ready(&self) -> bool {
        !self.uses_database || self.report.lock().healthy
    }

    /// Source health and figures.
    pub fn report(&self) -> SourceReport {
        self.report.lock().clone()
    }

    fn wanted_feeds(&self) -> Vec<FeedOptions> {
        self.registry.lock().leases.keys().cloned().collect()
    }

    /// The task that owns `store`: it refreshes the store and publishes
    /// every feed through `publisher` (see [`FeedTask::run`]).
    pub fn task(self: &Arc<Self>, publisher: Publisher, store: Store) -> FeedTask {
        FeedTask {
            modeldata: Arc::clone(self),
            publisher,
            store,
            feeds: HashMap::new(),
            healthy: None,
            backoff: MIN_BACKOFF,
        }
    }
}

/// A feed's broadcast state, owned by the task.
#[derive(Debug)]
struct Feed {
    /// The feed's room.
    room: RoomName,
    /// The last good snapshot (sent to new members while degraded).
    last_good: Option<EncodedSnapshot>,
    /// When `last_good` was sampled.
    last_update: Option<String>,
    /// Whether a `degraded` status was published and not yet cleared.
    degraded: bool,
    /// Whether this node samples the feed (always embedded; the lease holder
    /// in a fleet — the other nodes' members get its snapshots via the bus).
    leading: bool,
}

/// The long-lived task owning the store: every interval it refreshes the
/// store and samples each feed this node leads.
pub struct FeedTask {
    /// The service (leases, status).
    modeldata: Arc<ModelData>,
    /// Where feeds publish (and which feeds this node leads).
    publisher: Publisher,
    /// The rows.
    store: Store,
    /// Feeds being broadcast.
    feeds: HashMap<FeedOptions, Feed>,
    /// Outcome of the last refresh (`None` before the first).
    healthy: Option<bool>,
    /// Delay before the next retry after a failure.
    backoff: Duration,
}

impl FeedTask {
    /// Refreshes and broadcasts until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let interval = self.modeldata.config.interval;
        let mut next_round = Instant::now();
        loop {
            // Feeds that appeared get their first snapshot now; gone ones stop.
            let wanted = self.modeldata.wanted_feeds();
            let gone: Vec<RoomName> = self
                .feeds
                .iter()
                .filter(|(o, f)| !wanted.contains(o) && f.leading)
                .map(|(_, f)| f.room.clone())
                .collect();
            self.feeds.retain(|o, _| wanted.contains(o));
            for room in gone {
                // Another node with connections takes the feed over.
                self.publisher.resign(&room).await;
            }
            let mut new = Vec::new();
            let fleet = self.publisher.is_fleet();
            for options in wanted {
                self.feeds.entry(options.clone()).or_insert_with(|| {
                    new.push(options.clone());
                    Feed {
                        room: options.room(),
                        last_good: None,
                        last_update: None,
                        degraded: false,
                        // Embedded, this node is the only sampler.
                        leading: !fleet,
                    }
                });
            }
            self.modeldata
                .broadcasting
                .store(!self.feeds.is_empty(), Ordering::Relaxed);

            let now = Instant::now();
            if now >= next_round {
                let all: Vec<FeedOptions> = self.feeds.keys().cloned().collect();
                next_round = match self.round(&all, true).await {
                    Ok(()) => now + interval,
                    Err(()) => Instant::now() + self.next_backoff(),
                };
            } else if !new.is_empty() {
                // Sample only the new feeds, from the current view (refreshing
                // it first if it never succeeded).
                let refresh = self.healthy != Some(true);
                if self.round(&new, refresh).await.is_err() {
                    next_round = next_round.min(Instant::now() + self.next_backoff());
                }
            }

            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.modeldata.changed.notified() => {}
                _ = tokio::time::sleep_until(next_round.into()) => {}
            }
        }
    }

    fn next_backoff(&mut self) -> Duration {
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        // ±20% jitter, so a fleet does not retry in lockstep.
        delay.mul_f64(rand::rng().random_range(0.8..1.2))
    }

    /// Optionally refreshes the store, then samples and publishes `feeds`.
    async fn round(&mut self, feeds: &[FeedOptions], refresh: bool) -> Result<(), ()> {
        let started = Instant::now();
        if refresh && let Err(e) = self.store.refresh().await {
            self.fail(&e).await;
            return Err(());
        }
        let ttl = self.modeldata.config.lead_ttl;
        for options in feeds {
            let Some(feed) = self.feeds.get_mut(options) else {
                continue;
            };
            feed.leading = self.publisher.lead(&feed.room, ttl).await;
            if !feed.leading {
                continue;
            }
            match store::sample(&self.store, options).await {
                Ok(groups) => self.publish_snapshot(options, &groups).await,
                // The database is gone: every feed is affected.
                Err(e @ (StoreError::Unavailable(_) | StoreError::NotReady)) => {
                    self.fail(&e).await;
                    return Err(());
                }
                // A query of this option set failed: only its feed degrades,
                // retried at the next interval.
                Err(e) => {
                    tracing::warn!(error = %e, feed = %options.room(), "modeldata feed failed");
                    metrics().modeldata_failures.increment(1);
                    self.degrade(&e.to_string(), Some(options)).await;
                }
            }
        }
        self.recover(started.elapsed());
        Ok(())
    }

    async fn publish_snapshot(
        &mut self,
        options: &FeedOptions,
        groups: &[crate::protocol::modeldata::GroupSeries],
    ) {
        let Some(feed) = self.feeds.get_mut(options) else {
            return;
        };
        let now = time::now();
        let encoded = encode_snapshot(groups, &now);
        let mut events = Vec::with_capacity(2);
        if feed.degraded {
            feed.degraded = false;
            events.push(status_event(feed, SourceStatus::Ok, None, None, vec![]));
        }
        // The room sends `initial` instead to members that have not had one.
        events.push(Event::ModelData(ModelDataFrame {
            room: feed.room.clone(),
            frame: encoded.update.clone(),
            first: Some(encoded.initial.clone()),
            snapshot: Some(vec![encoded.initial.clone()]),
        }));
        feed.last_update = Some(now);
        {
            let mut report = self.modeldata.report.lock();
            report.groups = encoded.total_groups;
            report.last_update.clone_from(&feed.last_update);
        }
        feed.last_good = Some(encoded);
        for event in events {
            if let Err(e) = self.publisher.publish(event).await {
                tracing::warn!(error = %e, "modeldata publish failed");
            }
        }
    }

    /// Records a failure and tells every feed's members once per outage.
    async fn fail(&mut self, error: &StoreError) {
        if self.healthy != Some(false) {
            tracing::warn!(%error, "modeldata source failed; keeping last good data and retrying");
        } else {
            tracing::debug!(%error, "modeldata source still failing");
        }
        self.healthy = Some(false);
        metrics().modeldata_failures.increment(1);
        metrics().modeldata_source_up.set(0.0);
        {
            let mut report = self.modeldata.report.lock();
            report.healthy = false;
            report.last_error = Some(error.to_string());
        }
        self.degrade(&error.to_string(), None).await;
    }

    /// Tells the members of `only` (or of every feed) once that their data is
    /// stale and why; new members get the last good data and this status.
    async fn degrade(&mut self, message: &str, only: Option<&FeedOptions>) {
        let retry = self.backoff.as_secs_f64();
        let mut events = Vec::new();
        for (options, feed) in self.feeds.iter_mut() {
            if feed.degraded || !feed.leading || only.is_some_and(|o| o != options) {
                continue;
            }
            feed.degraded = true;
            let keep: Vec<_> = feed.last_good.iter().map(|s| s.initial.clone()).collect();
            events.push(status_event(
                feed,
                SourceStatus::Degraded,
                Some(message),
                Some(retry),
                keep,
            ));
        }
        for event in events {
            if let Err(e) = self.publisher.publish(event).await {
                tracing::warn!(error = %e, "modeldata status publish failed");
            }
        }
    }

    fn recover(&mut self, took: Duration) {
        if self.healthy == Some(false) {
            tracing::info!("modeldata source recovered");
        }
        self.healthy = Some(true);
        self.backoff = MIN_BACKOFF;
        metrics().modeldata_source_up.set(1.0);
        metrics().modeldata_round_seconds.record(took.as_secs_f64());
        let mut report = self.modeldata.report.lock();
        report.healthy = true;
        report.last_error = None;
        report.rows = self.store.rows();
        report.last_round_ms = Some(took.as_secs_f64() * 1000.0);
    }
}

/// A `modeldata_status` event; `keep` are the snapshot frames new members get
/// before it (the last good `initial_modeldata`).
fn status_event(
    feed: &Feed,
    status: SourceStatus,
    error: Option<&str>,
    retry_in_seconds: Option<f64>,
    mut keep: Vec<bytes::Bytes>,
) -> Event {
    let frame = frame::json(&StatusMessage {
        r#type: "modeldata_status",
        status,
        error,
        last_update: feed.last_update.as_deref(),
        retry_in_seconds,
        timestamp: time::now(),
    });
    let snapshot = match status {
        SourceStatus::Degraded => {
            keep.push(frame.clone());
            Some(keep)
        }
        SourceStatus::Ok => None,
    };
    Event::ModelData(ModelDataFrame {
        room: feed.room.clone(),
        frame,
        first: None,
        snapshot,
    })
}
