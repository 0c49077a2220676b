//! The PostgreSQL test harness itself (`tests/common/postgres.rs`): fresh
//! databases on the shared server are usable and dropped afterwards, and a
//! private instance stops, restarts on the same port with its data, and
//! leaves nothing behind.

mod common;

use common::postgres::{PgInstance, TestDb, connect, database_url, shared_url};

/// Whether a database called `name` exists on the shared server.
async fn database_exists(name: &str) -> bool {
    let admin = connect(&shared_url()).await;
    let row = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("querying pg_database");
    row.get::<_, i64>(0) == 1
}

#[tokio::test]
async fn test_database_accepts_queries_and_is_dropped_afterwards() {
    let db = TestDb::create().await;
    let name = db.name().to_owned();
    assert!(name.starts_with("roomcast_test_"), "{name}");
    assert!(database_exists(&name).await, "{name} was not created");

    let client = db.client().await;
    let current: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, name, "TestDb::url points at another database");
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, label text NOT NULL)")
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO t VALUES ($1, $2), ($3, $4)",
            &[&1i32, &"one", &2i32, &"two"],
        )
        .await
        .unwrap();
    let labels: Vec<String> = client
        .query("SELECT label FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(labels, ["one", "two"]);

    // Still connected: the drop has to terminate this session itself.
    drop(db);
    assert!(
        !database_exists(&name).await,
        "{name} still exists after drop"
    );
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "a session on the dropped database is still alive"
    );
}

#[tokio::test]
async fn test_databases_are_separate_from_each_other() {
    let a = TestDb::create().await;
    let b = TestDb::create().await;
    assert_ne!(a.name(), b.name());
    a.client()
        .await
        .batch_execute("CREATE TABLE only_in_a (x int)")
        .await
        .unwrap();
    let visible_in_b: i64 = b
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible_in_b, 0);
}

#[tokio::test]
async fn private_instance_stops_and_restarts_on_the_same_port() {
    let mut pg = PgInstance::start();
    let port = pg.port();
    assert_eq!(
        pg.url(),
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    );

    let client = connect(&pg.url()).await;
    let listen: String = client
        .query_one("SHOW listen_addresses", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listen, "127.0.0.1");
    client
        .batch_execute("CREATE DATABASE kept; ")
        .await
        .unwrap();
    let kept = connect(&pg.url_for("kept")).await;
    kept.batch_execute(
        "CREATE TABLE survivor (v text); INSERT INTO survivor VALUES ('before stop')",
    )
    .await
    .unwrap();

    pg.stop();
    assert_eq!(pg.pid(), None);
    assert!(
        pg.data_dir().join("PG_VERSION").exists(),
        "stop removed the data directory"
    );
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "a session survived the stop"
    );
    match tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await {
        Ok(_) => panic!("connected to a stopped server"),
        Err(e) => assert!(
            e.as_db_error().is_none(),
            "expected a refused connection, got {e}"
        ),
    }

    pg.restart();
    assert_eq!(pg.port(), port, "restart moved to another port");
    let kept = connect(&pg.url_for("kept")).await;
    let v: String = kept
        .query_one("SELECT v FROM survivor", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "before stop");
}

#[tokio::test]
async fn dropping_a_private_instance_kills_its_server_and_removes_its_directory() {
    let pg = PgInstance::start();
    let pid = pg.pid().expect("running after start") as libc::pid_t;
    let dir = pg.data_dir();
    let url = pg.url();
    connect(&url).await.simple_query("SELECT 1").await.unwrap();

    drop(pg);
    // SAFETY: signal 0 only checks for existence.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "postmaster {pid} still exists after drop");
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
    assert!(
        tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_err()
    );
}

#[test]
fn database_url_replaces_only_the_database_name() {
    assert_eq!(
        database_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        database_url(
            "postgresql://u:p%2Fw@db.example:6543/app?sslmode=disable&dbname=app&connect_timeout=5",
            "t_1"
        ),
        "postgresql://u:p%2Fw@db.example:6543/t_1?sslmode=disable&connect_timeout=5"
    );
    assert_eq!(
        database_url("postgres://localhost", "x"),
        "postgres://localhost/x"
    );
    assert_eq!(
        database_url("postgres://localhost?sslmode=disable", "x"),
        "postgres://localhost/x?sslmode=disable"
    );
    assert_eq!(
        database_url("postgres://h/a", "odd name"),
        "postgres://h/odd%20name"
    );
    assert_eq!(
        database_url("host=/run/postgresql user=postgres", "x"),
        "host=/run/postgresql user=postgres dbname='x'"
    );
}
