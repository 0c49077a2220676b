//! roomcast: a real-time WebSocket streaming gateway for trading platforms.
//!
//! Producers publish events (HTTP, built-in sources); each event goes through
//! the [`bus`] into its [`rooms::Room`], is encoded once per wire [`dialect`]
//! present, and the same bytes are queued to every member's outbox
//! ([`delivery`]), from which the flusher or the session's writer sends
//! everything queued in one vectored write. [`run`] serves a listener until a
//! shutdown future resolves, then drains. Direct system calls live in
//! [`sys`]; `unsafe` is denied everywhere else.
#![deny(unsafe_code)]

pub mod access;
pub mod alerts;
pub mod app;
pub mod auth;
pub mod bus;
pub mod catalog;
pub mod close_code;
pub mod config;
pub mod config_error;
pub mod delivery;
pub mod dialect;
pub mod frame;
pub mod http;
pub mod ids;
pub mod native;
pub mod peers;
pub mod protocol;
pub mod publisher;
pub mod reload;
pub mod rooms;
pub mod seconds;
pub mod secret;
pub mod seeds;
pub mod server;
pub mod sources;
pub mod sys;
pub mod telemetry;
pub mod throttle;
pub mod tls;
pub mod ws;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use app::App;
pub use config::{Config, ConfigError};

use close_code::CloseCode;

/// How often histogram buffers are drained when nobody scrapes `/metrics`.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Serves `listener` with `config` until `shutdown` resolves, then drains:
/// stops accepting, closes every session with 1001 (after flushing what is
/// queued to it) and waits at most `ROOMCAST_SHUTDOWN_TIMEOUT` for tasks.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ConfigError> {
    config.validate()?;
    telemetry::prometheus();
    tls::install_default_provider();
    let modeldata =
        sources::modeldata_store(&config.modeldata, config.market.sim_seed).map_err(|e| {
            ConfigError {
                name: "DATABASE_URL",
                message: e.to_string(),
            }
        })?;
    // Loaded before anything starts, so a bad file fails the start cleanly.
    let certificate = config.tls.load()?;
    let bound = listener.local_addr().ok();
    let app = App::new(config).map_err(|e| ConfigError {
        name: "REDIS_URL",
        message: e.to_string(),
    })?;
    // SIGHUP is caught from here on, before the node serves: it reloads the
    // key and certificate files instead of killing the process.
    let hangups = reload::Hangups::install(&app.tracker, app.shutdown.clone());
    spawn_components(&app, modeldata, &hangups);
    log_access(&app.config);

    let tls = match certificate {
        None => None,
        Some(certificate) => {
            tracing::info!(
                cert = %certificate.cert_path().display(),
                "TLS on: serving wss:// and https://"
            );
            let acceptor = certificate.acceptor();
            let every = app.config.tls.reload_interval.get();
            app.tracker.spawn(reload::watch(
                certificate,
                every,
                hangups,
                app.shutdown.clone(),
            ));
            Some(acceptor)
        }
    };
    if let Some(bound) = bound {
        log_startup(&app, bound, tls.is_some());
    }
    // The accept loop is a task of its own so it runs on a runtime worker:
    // driven from here, under `block_on` in `main`, every accepted
    // connection would need a cross-thread wake-up of the main thread, which
    // then waits for a CPU the workers keep busy (milliseconds per accept
    // under load).
    let mut accepting = app
        .tracker
        .spawn(server::run(listener, Arc::clone(&app), tls));
    tokio::select! {
        _ = &mut accepting => {}
        _ = shutdown => {}
    }
    drain(&app).await;
    Ok(())
}

/// Says once at start what this node is and how to reach it: the mode (and
/// Redis's `host:port/db`), the modeldata source, TLS, and the URLs to try
/// (the dashboard first: a person starts there), from the bound address. No
/// user or password of a URL is logged.
fn log_startup(app: &App, bound: std::net::SocketAddr, tls: bool) {
    let [dashboard, docs, websocket, health, metrics] = urls_to_try(bound, tls);
    tracing::info!(
        mode = %app.bus.describe(),
        modeldata = %app.config.modeldata.describe(),
        tls = if tls { "on" } else { "off" },
        %dashboard,
        %docs,
        %websocket,
        %health,
        %metrics,
        "roomcast started"
    );
}

/// The dashboard, API docs, WebSocket, health and metrics URLs of a node
/// bound to `bound`. An unspecified address (`0.0.0.0`, `::`) is tried on
/// loopback.
fn urls_to_try(bound: std::net::SocketAddr, tls: bool) -> [String; 5] {
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let (ws, http) = if tls {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    [
        format!("{http}://{addr}/"),
        format!("{http}://{addr}/docs"),
        format!("{ws}://{addr}/api/ws"),
        format!("{http}://{addr}/health"),
        format!("{http}://{addr}/metrics"),
    ]
}

/// Says at start who may connect: the token policy of each WebSocket family.
fn log_access(config: &Config) {
    use auth::Family;
    if !config.auth.enabled() {
        tracing::info!(
            "WebSocket authentication off: any client may connect and join any room (set ROOMCAST_AUTH=required and ROOMCAST_JWT_SECRET, _PUBLIC_KEY or _JWKS to require tokens; see docs/security.md)"
        );
        return;
    }
    let policies = Family::ALL
        .iter()
        .map(|&f| format!("{}={:?}", f.label(), config.auth.mode(f)).to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    tracing::info!(%policies, "WebSocket authentication (JWT)");
}

/// Spawns every long-lived component of the node on its tracker, each with
/// the narrow handles it needs: the flusher, room retirement, heartbeat,
/// metrics upkeep, the built-in sources and, in a fleet, the bus's
/// subscriber, health check, leases and the seed 001 ingest.
fn spawn_components(
    app: &Arc<App>,
    modeldata: sources::modeldata::Store,
    hangups: &reload::Hangups,
) {
    let shutdown = &app.shutdown;
    let tracker = &app.tracker;
    tracker.spawn(Arc::clone(&app.flusher).run(shutdown.clone()));
    tracker.spawn(Arc::clone(&app.rooms).run_retirement(shutdown.clone()));
    tracker.spawn(Arc::clone(&app.backtests).run_expiry(shutdown.clone()));
    tracker.spawn(Arc::clone(&app.backtests).run_fleet(shutdown.clone()));
    tracker.spawn(Arc::clone(&app.sessions).run_heartbeat(shutdown.clone()));
    app.access.log_startup();
    tracker.spawn(reload::watch(
        app.access.keys(),
        app.access.key_poll(),
        hangups.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(reload::watch(
        Arc::clone(&app.auth) as Arc<dyn reload::Reloadable>,
        app.auth.reload_interval(),
        hangups.clone(),
        shutdown.clone(),
    ));
    let upkeep_shutdown = shutdown.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP);
        loop {
            tokio::select! {
                _ = upkeep_shutdown.cancelled() => return,
                _ = tick.tick() => telemetry::run_upkeep(),
            }
        }
    });
    tracker.spawn(
        app.modeldata
            .task(app.publisher.clone(), modeldata)
            .run(shutdown.clone()),
    );
    if app.config.market.simulator {
        let simulator =
            sources::market::MarketSimulator::new(&app.config.market, app.publisher.clone());
        tracker.spawn(simulator.run(shutdown.clone()));
    }
    app.trading
        .spawn_producers(&app.publisher, &app.bus, &app.node, tracker, shutdown);
    if let bus::Bus::Fleet(fleet) = &*app.bus {
        let (ingest_tx, ingested) = sources::ingest::queue();
        tracker.spawn(
            sources::ingest::Ingest::new(
                app.publisher.clone(),
                Arc::clone(&app.backtests),
                ingested,
            )
            .run(shutdown.clone()),
        );
        let subscriber =
            bus::redis::Subscriber::new(Arc::clone(&fleet.redis), fleet.ingest_lease(), ingest_tx);
        tracker.spawn(subscriber.run(shutdown.clone()));
        let sessions = Arc::clone(&app.sessions);
        let health =
            bus::redis::NodeHealth::new(Arc::clone(&fleet.redis), app.node.clone(), move || {
                sessions.len()
            });
        tracker.spawn(health.run(shutdown.clone()));
        for lease in fleet.leases() {
            tracker.spawn(Arc::clone(lease).run(shutdown.clone()));
        }
    }
}

/// Graceful drain: no new work, every backtest run ended with its
/// terminal error (queued to its viewers), then every session told to
/// reconnect (1001).
async fn drain(app: &App) {
    tracing::info!(sessions = app.sessions.len(), "draining");
    app.shutdown.cancel();
    let timeout = app.config.shutdown_timeout.get();
    if tokio::time::timeout(timeout, app.backtests.shut_down())
        .await
        .is_err()
    {
        tracing::warn!("backtest runs did not end within the shutdown timeout");
    }
    app.sessions.close_all(CloseCode::GoingAway);
    app.tracker.close();
    if tokio::time::timeout(timeout, app.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = app.tracker.len(),
            "shutdown timeout reached; dropping remaining tasks"
        );
    }
    tracing::info!("drained");
}

#[cfg(test)]
mod tests {
    use super::urls_to_try;

    #[test]
    fn the_urls_to_try_follow_the_bound_address_and_tls() {
        assert_eq!(
            urls_to_try("127.0.0.1:8000".parse().unwrap(), false),
            [
                "http://127.0.0.1:8000/",
                "http://127.0.0.1:8000/docs",
                "ws://127.0.0.1:8000/api/ws",
                "http://127.0.0.1:8000/health",
                "http://127.0.0.1:8000/metrics"
            ]
        );
        assert_eq!(
            urls_to_try("0.0.0.0:9000".parse().unwrap(), true),
            [
                "https://127.0.0.1:9000/",
                "https://127.0.0.1:9000/docs",
                "wss://127.0.0.1:9000/api/ws",
                "https://127.0.0.1:9000/health",
                "https://127.0.0.1:9000/metrics"
            ]
        );
        assert_eq!(
            urls_to_try("[::]:8000".parse().unwrap(), false)[3],
            "http://[::1]:8000/health"
        );
    }
}
