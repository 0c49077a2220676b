//! TLS to PostgreSQL (`docs/tls.md`): a private server with `ssl=on` and a
//! certificate from a CA the test makes; seed 000's modeldata streamed with
//! libpq's `sslmode=require` and `verify-full`, and the verifying modes
//! refusing what they must (a certificate from another CA, another host
//! name) with errors that name the database and the cause.

mod common;

use common::postgres::PgInstance;
use common::tls::{LOOPBACK, TestCa};
use common::{TestServer, recv_json};
use roomcast::seconds::Seconds;
use roomcast::sources::modeldata::StoreError;
use roomcast::sources::modeldata::database_url::DatabaseUrl;
use roomcast::sources::modeldata::postgres::{IndexMode, PgStore};
use roomcast::sources::modeldata::seed::{SeedArgs, seed_modeldata};

/// Fills `url`'s `modeldata` table with 2 groups of 600 rows.
async fn seed(url: &str, ca: Option<&std::path::Path>) {
    seed_modeldata(&SeedArgs {
        database_url: url.to_string(),
        ssl_root_cert: ca.map(std::path::Path::to_path_buf),
        table: "modeldata".into(),
        groups: 2,
        rows_per_group: 600,
        step_secs: 1.0,
        seed: 3,
        no_vacuum: true,
        append: false,
        replace: false,
    })
    .await
    .expect("seed-modeldata over TLS");
}

/// A TLS PostgreSQL whose certificate (for `names`) `ca` signed.
fn tls_postgres(ca: &TestCa, names: &[&str]) -> PgInstance {
    let (chain, key, _) = ca.server_pem(names);
    PgInstance::start_tls(&chain, &key)
}

/// Connections from roomcast (`application_name`) that are encrypted.
async fn roomcast_tls_connections(pg: &PgInstance) -> i64 {
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(conn);
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = 'roomcast' AND ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Streams the table through a roomcast server with `url` (and
/// `PGSSLROOTCERT` = `ca`): the initial message holds both groups.
async fn streams(url: &str, ca: Option<&std::path::Path>) {
    let (url, ca) = (url.to_string(), ca.map(std::path::Path::to_path_buf));
    let server = TestServer::start(move |c| {
        c.modeldata.database_url = Some(url);
        c.modeldata.ssl_root_cert = ca;
        c.modeldata.interval = Seconds::from_secs(60);
    })
    .await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    let initial = recv_json(&mut ws).await;
    assert_eq!(initial["type"], "initial_modeldata", "{initial}");
    assert_eq!(initial["total_groups"], 2, "{initial}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modeldata_streams_over_tls_with_require_and_with_verify_full() {
    let ca = TestCa::new("pg");
    let pg = tls_postgres(&ca, &LOOPBACK);
    let ca_file = ca.write_ca("ca.pem");

    seed(&format!("{}?sslmode=require", pg.url()), None).await;
    streams(&format!("{}?sslmode=require", pg.url()), None).await;
    // verify-full: the CA from PGSSLROOTCERT, then from the URL.
    streams(&format!("{}?sslmode=verify-full", pg.url()), Some(&ca_file)).await;
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        ca_file.display()
    );
    // roomcast's pool is still connected while it streams: its
    // connections are encrypted.
    let server = TestServer::start({
        let url = url.clone();
        move |c| {
            c.modeldata.database_url = Some(url);
            c.modeldata.interval = Seconds::from_secs(60);
        }
    })
    .await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    let initial = recv_json(&mut ws).await;
    assert_eq!(initial["total_groups"], 2, "{initial}");
    assert!(roomcast_tls_connections(&pg).await > 0);
    server.shutdown().await.unwrap();
}

/// The error of a first refresh of a store on `url`.
async fn refresh_error(url: &str) -> String {
    let url = DatabaseUrl::parse(url, None).expect("url");
    let mut store = PgStore::new(&url, "modeldata", 1, IndexMode::Off).expect("store");
    match store.refresh().await {
        Err(StoreError::Unavailable(message)) => message,
        other => panic!("expected the connection to be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_certificate_from_another_ca_naming_the_database() {
    let ca = TestCa::new("pg-right");
    let pg = tls_postgres(&ca, &LOOPBACK);
    let other = TestCa::new("pg-wrong");
    let wrong = other.write_ca("wrong.pem");
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        wrong.display()
    );
    let message = refresh_error(&url).await;
    assert!(
        message.contains(&format!("127.0.0.1:{}/postgres", pg.port())),
        "{message}"
    );
    assert!(message.contains("UnknownIssuer"), "{message}");
    // The same server is fine with its own CA (the failure was the CA).
    let right = ca.write_ca("right.pem");
    seed(
        &format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            pg.url(),
            right.display()
        ),
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ca_checks_the_chain_and_verify_full_also_the_host_name() {
    let ca = TestCa::new("pg-name");
    // A certificate for another name than the 127.0.0.1 we connect to.
    let pg = tls_postgres(&ca, &["db.internal.example"]);
    let ca_file = ca.write_ca("ca.pem");
    let with = |mode: &str| {
        format!(
            "{}?sslmode={mode}&sslrootcert={}",
            pg.url(),
            ca_file.display()
        )
    };
    seed(&with("verify-ca"), None).await;
    let mut store = PgStore::new(
        &DatabaseUrl::parse(&with("verify-ca"), None).unwrap(),
        "modeldata",
        1,
        IndexMode::Off,
    )
    .unwrap();
    store
        .refresh()
        .await
        .expect("verify-ca ignores the host name");
    let message = refresh_error(&with("verify-full")).await;
    assert!(message.contains("not valid for name"), "{message}");
}
