//! The first steps with PostgreSQL (README): `seed-modeldata` into a
//! database, then roomcast reading it. Connection errors name the target
//! (`host:port/db`, never the password) and the server's reason, in both
//! the modeldata source and `seed-modeldata`; `seed-modeldata` leaves a
//! table with rows alone unless told `--append` or `--replace`, and refuses a
//! server without TLS under `sslmode=require`. Each test runs its own
//! private PostgreSQL (`tests/common/postgres.rs`).

mod common;

use common::postgres::{PgInstance, connect};
use roomcast::sources::modeldata::StoreError;
use roomcast::sources::modeldata::database_url::DatabaseUrl;
use roomcast::sources::modeldata::postgres::{IndexMode, PgStore};
use roomcast::sources::modeldata::seed::{SeedArgs, SeedError, seed_modeldata};

/// Arguments filling `url`'s `modeldata` with 2 groups of `rows` rows.
fn args(url: &str, rows: u64) -> SeedArgs {
    SeedArgs {
        database_url: url.to_string(),
        ssl_root_cert: None,
        table: "modeldata".into(),
        groups: 2,
        rows_per_group: rows,
        step_secs: 1.0,
        seed: 5,
        no_vacuum: true,
        append: false,
        replace: false,
    }
}

/// The error of a first refresh of the modeldata source on `url`.
async fn source_error(url: &str) -> String {
    let url = DatabaseUrl::parse(url, None).expect("url");
    let mut store = PgStore::new(&url, "modeldata", 1, IndexMode::Off).expect("store");
    match store.refresh().await {
        Err(e @ StoreError::Unavailable(_)) => e.to_string(),
        other => panic!("expected the connection to be refused, got {other:?}"),
    }
}

/// The error of `seed-modeldata` on `url`.
async fn seed_error(url: &str) -> String {
    match seed_modeldata(&args(url, 10)).await {
        Err(e) => e.to_string(),
        Ok(report) => panic!("seeded {} rows, expected a refusal", report.rows),
    }
}

/// Rows in `url`'s `modeldata`.
async fn rows(url: &str) -> i64 {
    connect(url)
        .await
        .query_one("SELECT count(*)::int8 FROM modeldata", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_name_the_database_and_the_servers_reason_never_the_password() {
    let pg = PgInstance::start_with_passwords();
    connect(&pg.url())
        .await
        .batch_execute("CREATE ROLE app LOGIN PASSWORD 'right-secret'")
        .await
        .expect("create role");
    let port = pg.port();
    let target = format!("127.0.0.1:{port}/postgres");

    // A wrong password: the server's reason and SQLSTATE.
    let wrong = format!("postgres://app:wrong-secret@127.0.0.1:{port}/postgres");
    for message in [source_error(&wrong).await, seed_error(&wrong).await] {
        assert!(message.contains(&target), "{message}");
        assert!(
            message.contains("password authentication failed for user \"app\""),
            "{message}"
        );
        assert!(message.contains("28P01"), "{message}");
        assert!(!message.contains("wrong-secret"), "{message}");
    }

    // No password in the URL (the README's old example): said so, with how.
    let none = format!("postgres://app@127.0.0.1:{port}/postgres");
    for message in [source_error(&none).await, seed_error(&none).await] {
        assert!(message.contains(&target), "{message}");
        assert!(message.contains("password missing"), "{message}");
        assert!(message.contains("postgres://user:PASSWORD@"), "{message}");
    }

    // A database that does not exist: named, with the server's reason.
    let missing = format!("postgres://app:right-secret@127.0.0.1:{port}/trading");
    for message in [source_error(&missing).await, seed_error(&missing).await] {
        assert!(
            message.contains(&format!("127.0.0.1:{port}/trading")),
            "{message}"
        );
        assert!(
            message.contains("database \"trading\" does not exist"),
            "{message}"
        );
        assert!(!message.contains("right-secret"), "{message}");
    }

    // The right password and an existing database work.
    let right = format!("postgres://app:right-secret@127.0.0.1:{port}/postgres");
    connect(&pg.url())
        .await
        .batch_execute("GRANT CREATE ON SCHEMA public TO app")
        .await
        .expect("grant");
    let report = seed_modeldata(&args(&right, 10)).await.expect("seed");
    assert_eq!(report.rows, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_a_table_with_rows_needs_append_or_replace() {
    let pg = PgInstance::start();
    let url = pg.url();
    seed_modeldata(&args(&url, 100)).await.expect("first seed");
    assert_eq!(rows(&url).await, 200);

    // Again without a flag: refused, naming the rows, nothing added.
    match seed_modeldata(&args(&url, 100)).await {
        Err(e @ SeedError::NotEmpty { rows: 200, .. }) => {
            let message = e.to_string();
            assert!(message.contains("200 rows"), "{message}");
            assert!(message.contains("--append"), "{message}");
            assert!(message.contains("--replace"), "{message}");
        }
        other => panic!("expected a refusal naming 200 rows, got {other:?}"),
    }
    assert_eq!(rows(&url).await, 200);

    let append = SeedArgs {
        append: true,
        ..args(&url, 50)
    };
    assert_eq!(seed_modeldata(&append).await.expect("append").rows, 100);
    assert_eq!(rows(&url).await, 300);

    let replace = SeedArgs {
        replace: true,
        ..args(&url, 30)
    };
    assert_eq!(seed_modeldata(&replace).await.expect("replace").rows, 60);
    assert_eq!(rows(&url).await, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_refuses_a_server_without_tls_saying_so() {
    let pg = PgInstance::start();
    let url = format!("{}?sslmode=require", pg.url());
    let target = format!("127.0.0.1:{}/postgres", pg.port());
    for message in [seed_error(&url).await, source_error(&url).await] {
        assert!(message.contains(&target), "{message}");
        assert!(message.contains("server does not support TLS"), "{message}");
    }
    // The default (prefer) falls back to plain TCP on the same server.
    seed_modeldata(&args(&pg.url(), 10))
        .await
        .expect("sslmode=prefer on a server without TLS");
}
