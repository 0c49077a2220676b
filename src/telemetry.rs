//! Telemetry: tracing set-up and every metric roomcast exports, named in one
//! place. Metric handles are registered once and kept, so the hot path pays
//! one atomic add per update, never a registry lookup. Counters that seed 001's
//! `GET /api/ws/stats` reports are also kept as plain atomics here, so the
//! stats endpoint and `/metrics` always agree.
//!
//! Names follow Prometheus conventions: prefix `roomcast_`, base units
//! (seconds, bytes), `_total` on counters, label sets bounded by enums.
//! Every metric is described (`# HELP`) and registered when the handles are
//! first taken, which [`render`] forces: a fresh node's `/metrics` already
//! lists every series, each labelled family with every label, at 0.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};

use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::close_code::CloseCode;

/// Fan-out duration histogram: from publish to the frame queued in every member's outbox.
pub const FANOUT_SECONDS: &str = "roomcast_fanout_duration_seconds";

/// Buckets of [`FANOUT_SECONDS`]: 1 µs to 1 s.
const FANOUT_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0,
];

/// Modeldata round histogram: refresh plus sampling of the feeds, per round.
pub const MODELDATA_ROUND_SECONDS: &str = "roomcast_modeldata_round_duration_seconds";

/// Buckets of [`MODELDATA_ROUND_SECONDS`]: 1 ms to 30 s.
const MODELDATA_ROUND_BUCKETS: &[f64] = &[
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(FANOUT_SECONDS.into()), FANOUT_BUCKETS)
            .expect("fan-out buckets are a non-empty constant")
            .set_buckets_for_metric(
                Matcher::Full(MODELDATA_ROUND_SECONDS.into()),
                MODELDATA_ROUND_BUCKETS,
            )
            .expect("modeldata buckets are a non-empty constant");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. an embedding
        // application's); our handle then renders only what we record through
        // it, which is none of the global macros. Keep going rather than abort.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a global metrics recorder was already installed; /metrics will be empty"
            );
        }
        handle
    })
}

/// Renders `/metrics` (Prometheus text format); every metric is listed,
/// even before its first update.
pub fn render() -> String {
    metrics();
    prometheus().render()
}

/// Drains histogram buffers; run periodically so unscraped samples stay bounded.
pub fn run_upkeep() {
    prometheus().run_upkeep();
}

/// Every metric handle, registered once.
pub struct Metrics {
    /// Open WebSocket sessions on this node.
    pub connections: Gauge,
    /// WebSocket sessions accepted since start.
    pub connections_accepted: Counter,
    /// WebSocket upgrades refused for their token (401) or their user (403).
    pub auth_refused: Counter,
    /// Client messages (complete text/binary messages) received.
    pub client_messages: Counter,
    /// Frames written to sockets.
    pub frames_sent: Counter,
    /// Bytes written to sockets.
    pub bytes_sent: Counter,
    /// Vectored writes (syscalls) issued; frames_sent / writes is the batching factor.
    pub socket_writes: Counter,
    /// Rooms that exist on this node.
    pub rooms: Gauge,
    /// Room memberships (session × room) on this node.
    pub subscriptions: Gauge,
    /// Events published into rooms.
    pub events_published: Counter,
    /// Publish → queued-to-every-member duration.
    pub fanout_seconds: Histogram,
    /// Frames that replaced or became a pending latest value (conflation).
    pub frames_conflated: Counter,
    /// Frames discarded because a slow consumer on an ordered stream was closed.
    pub frames_dropped: Counter,
    /// Sessions closed with 4008 (slow consumer).
    pub slow_consumer_closes: Counter,
    /// Errors reported to clients or callers (bad client messages, bad HTTP bodies, I/O).
    pub errors: Counter,
    /// Successful modeldata rounds (refresh, sample, publish): their duration.
    pub modeldata_round_seconds: Histogram,
    /// 1 while the modeldata source answers, 0 while it fails.
    pub modeldata_source_up: Gauge,
    /// Failed modeldata refreshes or samples (each retried with backoff).
    pub modeldata_failures: Counter,
    /// Events this node published through the Redis bus (its own publishes;
    /// deliveries into its rooms count in `events_published`).
    pub bus_published: Counter,
    /// Events the Redis bus lost (trimmed from a room's stream before this
    /// node could deliver them); each is logged.
    pub bus_gaps: Counter,
    /// Times each protective limit fired ([`Limit`]), by limit.
    limit_hits: [Counter; Limit::ALL.len()],
    /// Failed `accept` calls (descriptor exhaustion and the like); the accept
    /// loop backs off and warns at most every few seconds.
    pub accept_errors: Counter,
    /// TLS handshakes that failed or timed out (a plain client on a TLS
    /// port, a stalled client hello, an untrusted certificate).
    pub tls_handshake_failures: Counter,
    /// Certificate reloads that took effect (SIGHUP or changed files).
    pub tls_reloads: Counter,
    /// Certificate reloads that failed and kept the previous certificate.
    pub tls_reload_failures: Counter,
    /// Rooms retired by their retention, by reason ([`RetireReason`]).
    rooms_retired: [Counter; 2],
    /// Sessions closed, by close code ([`CloseCode`]), registered up front so
    /// every code is listed at 0 before it first happens.
    session_closes: [Counter; CloseCode::ALL.len()],
    /// Totals behind seed 001's stats endpoint.
    pub totals: Totals,
}

/// Why a room with retained history was retired: the label of
/// `roomcast_rooms_retired_total{reason}`. (Rooms without history go with
/// their last member and are not counted here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireReason {
    /// Memberless and idle longer than its retention keeps it.
    Idle = 0,
    /// Memberless and among the longest idle when the room cap was reached.
    Evicted = 1,
}

/// A limit that protects the node from a client, the label of
/// `roomcast_limit_hits_total{limit}`. Each one's response (an HTTP status, a
/// close code, a dropped frame) is documented in `docs/limits.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A request head did not arrive within `ROOMCAST_HEADER_TIMEOUT` (connection closed).
    HeaderTimeout,
    /// A request head exceeded `ROOMCAST_MAX_HEADER_SIZE` (431).
    HeaderSize,
    /// A request body did not arrive within `ROOMCAST_BODY_TIMEOUT` (408).
    BodyTimeout,
    /// A request body exceeded `ROOMCAST_MAX_BODY_SIZE` (413).
    BodySize,
    /// A kept-alive connection sat idle for `ROOMCAST_KEEPALIVE_TIMEOUT` (closed).
    KeepaliveTimeout,
    /// An upgrade beyond `WEBSOCKET_MAX_CONNECTIONS` (503).
    Connections,
    /// A connection beyond `ROOMCAST_MAX_CONNECTIONS_PER_IP` from one address (429).
    PeerConnections,
    /// A connection beyond `ROOMCAST_CONNECT_RATE_PER_IP` from one address (429).
    PeerConnectRate,
    /// A WebSocket message over `ROOMCAST_MAX_MESSAGE_SIZE` (1009).
    MessageSize,
    /// A WebSocket message incomplete after `ROOMCAST_MESSAGE_TIMEOUT` (1008).
    MessageTimeout,
    /// A client message over the message rate (dialect error; 4029 past the hard limit).
    MessageRate,
    /// A ping or pong over the control-frame rate (no pong; 4029 past the hard limit).
    ControlRate,
    /// A join beyond `ROOMCAST_MAX_SUBSCRIPTIONS` on one connection (dialect error).
    Subscriptions,
    /// A join or publish that would create a room beyond `ROOMCAST_MAX_ROOMS`
    /// (dialect error, or 503 to a publisher).
    Rooms,
    /// An alert armed beyond `ROOMCAST_MAX_ALERTS` (429).
    Alerts,
}

impl Limit {
    /// Every limit, in label-table order.
    pub const ALL: [Limit; 15] = [
        Limit::HeaderTimeout,
        Limit::HeaderSize,
        Limit::BodyTimeout,
        Limit::BodySize,
        Limit::KeepaliveTimeout,
        Limit::Connections,
        Limit::PeerConnections,
        Limit::PeerConnectRate,
        Limit::MessageSize,
        Limit::MessageTimeout,
        Limit::MessageRate,
        Limit::ControlRate,
        Limit::Subscriptions,
        Limit::Rooms,
        Limit::Alerts,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Limit::HeaderTimeout => "header_timeout",
            Limit::HeaderSize => "header_size",
            Limit::BodyTimeout => "body_timeout",
            Limit::BodySize => "body_size",
            Limit::KeepaliveTimeout => "keepalive_timeout",
            Limit::Connections => "connections",
            Limit::PeerConnections => "peer_connections",
            Limit::PeerConnectRate => "peer_connect_rate",
            Limit::MessageSize => "message_size",
            Limit::MessageTimeout => "message_timeout",
            Limit::MessageRate => "message_rate",
            Limit::ControlRate => "control_rate",
            Limit::Subscriptions => "subscriptions",
            Limit::Rooms => "rooms",
            Limit::Alerts => "alerts",
        }
    }
}

/// Plain counters read back by `GET /api/ws/stats`.
#[derive(Debug, Default)]
pub struct Totals {
    /// Sessions accepted since start (`total_connections`).
    pub connections: AtomicU64,
    /// Frames written to clients (`messages_sent`).
    pub messages_sent: AtomicU64,
    /// Client messages received (`messages_received`).
    pub messages_received: AtomicU64,
    /// Errors (`errors`).
    pub errors: AtomicU64,
}

/// The `# HELP` text of every metric (the recorder must be installed first).
fn describe() {
    describe_gauge!(
        "roomcast_connections",
        "Open WebSocket sessions on this node."
    );
    describe_counter!(
        "roomcast_connections_accepted_total",
        "WebSocket sessions accepted since start."
    );
    describe_counter!(
        "roomcast_auth_refused_total",
        "WebSocket upgrades refused for their token (401) or their user (403)."
    );
    describe_counter!(
        "roomcast_client_messages_received_total",
        "Complete client messages (text or binary) received."
    );
    describe_counter!("roomcast_frames_sent_total", "Frames written to sockets.");
    describe_counter!("roomcast_bytes_sent_total", "Bytes written to sockets.");
    describe_counter!(
        "roomcast_socket_writes_total",
        "Vectored socket writes (frames_sent / socket_writes is the batching factor)."
    );
    describe_gauge!("roomcast_rooms", "Rooms that exist on this node.");
    describe_gauge!(
        "roomcast_subscriptions",
        "Room memberships (session x room) on this node."
    );
    describe_counter!(
        "roomcast_events_published_total",
        "Events published into rooms on this node."
    );
    describe_histogram!(
        FANOUT_SECONDS,
        "Publish to queued in every member's outbox, in seconds."
    );
    describe_counter!(
        "roomcast_frames_conflated_total",
        "Frames that replaced or became a pending latest value (conflation)."
    );
    describe_counter!(
        "roomcast_frames_dropped_total",
        "Frames discarded because a slow consumer on an ordered stream was closed."
    );
    describe_counter!(
        "roomcast_slow_consumer_closes_total",
        "Sessions closed with 4008 (slow consumer)."
    );
    describe_counter!(
        "roomcast_errors_total",
        "Errors reported to clients or callers: bad client messages, bad HTTP requests (not 404 or 405), stalled writers, bus errors."
    );
    describe_histogram!(
        MODELDATA_ROUND_SECONDS,
        "One modeldata refresh and sampling round, in seconds."
    );
    describe_gauge!(
        "roomcast_modeldata_source_up",
        "1 while the modeldata source answers, 0 while it fails."
    );
    describe_counter!(
        "roomcast_modeldata_failures_total",
        "Failed modeldata refreshes or samples (each retried with backoff)."
    );
    describe_counter!(
        "roomcast_bus_gaps_total",
        "Events the Redis bus lost (trimmed before this node could deliver them)."
    );
    describe_counter!(
        "roomcast_bus_published_total",
        "Events this node published through the Redis bus."
    );
    describe_counter!(
        "roomcast_limit_hits_total",
        "Times a protective limit refused or closed something, by limit (docs/limits.md)."
    );
    describe_counter!(
        "roomcast_accept_errors_total",
        "Failed accept calls (descriptor exhaustion and the like)."
    );
    describe_counter!(
        "roomcast_tls_handshake_failures_total",
        "TLS handshakes that failed or timed out."
    );
    describe_counter!(
        "roomcast_tls_reloads_total",
        "Certificate reloads that took effect."
    );
    describe_counter!(
        "roomcast_tls_reload_failures_total",
        "Certificate reloads that failed and kept the previous certificate."
    );
    describe_counter!(
        "roomcast_rooms_retired_total",
        "Rooms with history retired by their retention, by reason (idle, evicted)."
    );
    describe_counter!(
        "roomcast_session_closes_total",
        "WebSocket sessions closed, by close reason (docs/close-codes.md)."
    );
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    prometheus();
    describe();
    Metrics {
        connections: gauge!("roomcast_connections"),
        connections_accepted: counter!("roomcast_connections_accepted_total"),
        auth_refused: counter!("roomcast_auth_refused_total"),
        client_messages: counter!("roomcast_client_messages_received_total"),
        frames_sent: counter!("roomcast_frames_sent_total"),
        bytes_sent: counter!("roomcast_bytes_sent_total"),
        socket_writes: counter!("roomcast_socket_writes_total"),
        rooms: gauge!("roomcast_rooms"),
        subscriptions: gauge!("roomcast_subscriptions"),
        events_published: counter!("roomcast_events_published_total"),
        fanout_seconds: histogram!(FANOUT_SECONDS),
        frames_conflated: counter!("roomcast_frames_conflated_total"),
        frames_dropped: counter!("roomcast_frames_dropped_total"),
        slow_consumer_closes: counter!("roomcast_slow_consumer_closes_total"),
        errors: counter!("roomcast_errors_total"),
        modeldata_round_seconds: histogram!(MODELDATA_ROUND_SECONDS),
        modeldata_source_up: gauge!("roomcast_modeldata_source_up"),
        modeldata_failures: counter!("roomcast_modeldata_failures_total"),
        bus_gaps: counter!("roomcast_bus_gaps_total"),
        bus_published: counter!("roomcast_bus_published_total"),
        limit_hits: Limit::ALL
            .map(|limit| counter!("roomcast_limit_hits_total", "limit" => limit.label())),
        accept_errors: counter!("roomcast_accept_errors_total"),
        tls_handshake_failures: counter!("roomcast_tls_handshake_failures_total"),
        tls_reloads: counter!("roomcast_tls_reloads_total"),
        tls_reload_failures: counter!("roomcast_tls_reload_failures_total"),
        rooms_retired: ["idle", "evicted"]
            .map(|reason| counter!("roomcast_rooms_retired_total", "reason" => reason)),
        session_closes: CloseCode::ALL
            .map(|code| counter!("roomcast_session_closes_total", "reason" => code.label())),
        totals: Totals::default(),
    }
});

/// The process's metric handles.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Records one error (stats `errors` and `roomcast_errors_total`).
    pub fn error(&self) {
        self.errors.increment(1);
        self.totals.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that `limit` refused or closed something.
    pub fn limit_hit(&self, limit: Limit) {
        self.limit_hits[limit as usize].increment(1);
    }

    /// Records `count` rooms retired for `reason`.
    pub fn rooms_retired(&self, reason: RetireReason, count: usize) {
        self.rooms_retired[reason as usize].increment(count as u64);
    }

    /// Records one received client message.
    pub fn client_message(&self) {
        self.client_messages.increment(1);
        self.totals
            .messages_received
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Records one socket write of `frames` frames and `bytes` bytes.
    pub fn wrote(&self, frames: usize, bytes: usize) {
        self.wrote_many(1, frames, bytes);
    }

    /// Records `writes` socket writes carrying `frames` frames and `bytes`
    /// bytes in all (the flusher sums a walk and records it once).
    pub fn wrote_many(&self, writes: usize, frames: usize, bytes: usize) {
        self.socket_writes.increment(writes as u64);
        self.frames_sent.increment(frames as u64);
        self.bytes_sent.increment(bytes as u64);
        self.totals
            .messages_sent
            .fetch_add(frames as u64, Ordering::Relaxed);
    }

    /// Records one session closed with `code` (sent by the server, or echoed to a client's close).
    pub fn closed(&self, code: CloseCode) {
        self.session_closes[code as usize].increment(1);
        if code == CloseCode::SlowConsumer {
            self.slow_consumer_closes.increment(1);
        }
    }
}

/// How log lines are written (`ROOMCAST_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event; coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Whether text logs carry ANSI colours: only when they go to a terminal
/// (not a file, a pipe or journald) and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
pub fn log_colours(to_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    to_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Sets up `tracing` on stdout from `RUST_LOG` (default `info`), in `format`.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(log_colours(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(log_colours(true, None));
        assert!(
            log_colours(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!log_colours(true, Some(OsStr::new("1"))));
        assert!(!log_colours(false, None), "a file, a pipe or journald");
    }

    #[test]
    fn limits_index_their_own_counter() {
        for (i, limit) in Limit::ALL.iter().enumerate() {
            assert_eq!(*limit as usize, i, "{limit:?}");
        }
    }
}
